//! End-to-end latency (stored time minus event time) as a histogram whose
//! buckets keep three significant digits: exact below one second, and within
//! 1% above. Percentiles read from it (the `stream_latency` views) carry that
//! error bound.

use std::collections::BTreeMap;

/// The bucket that holds a latency of `ms` milliseconds: its lower bound.
pub fn bucket(ms: i64) -> i64 {
    if ms < 0 {
        return -bucket(-ms);
    }
    if ms < 1000 {
        return ms;
    }
    let digits = ms.ilog10(); // at least 3
    let width = 10_i64.pow(digits - 2);
    ms - ms % width
}

/// Latencies of one stream and key: exact count, sum, minimum and maximum, and
/// the bucket counts for percentiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    pub count: u64,
    pub sum_ms: i64,
    pub min_ms: i64,
    pub max_ms: i64,
    pub buckets: BTreeMap<i64, u64>,
}

impl Latencies {
    pub fn add(&mut self, ms: i64) {
        if self.count == 0 {
            self.min_ms = ms;
            self.max_ms = ms;
        }
        self.count += 1;
        self.sum_ms += ms;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        *self.buckets.entry(bucket(ms)).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_a_second_and_within_one_percent_above() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(999), 999);
        assert_eq!(bucket(1234), 1230);
        assert_eq!(bucket(64_999), 64_900);
        assert_eq!(bucket(-1234), -1230);
        for ms in (1000..2_000_000).step_by(7) {
            let b = bucket(ms);
            assert!(
                b <= ms && (ms - b) as f64 / ms as f64 <= 0.01,
                "{ms} -> {b}"
            );
        }
    }

    #[test]
    fn latencies_keep_exact_extremes_and_bucket_counts() {
        let mut l = Latencies::default();
        for ms in [1500, 20, 1234, 1239] {
            l.add(ms);
        }
        assert_eq!((l.count, l.sum_ms, l.min_ms, l.max_ms), (4, 3993, 20, 1500));
        assert_eq!(
            l.buckets.into_iter().collect::<Vec<_>>(),
            [(20, 1), (1230, 2), (1500, 1)]
        );
    }
}
