//! A histogram of durations in the Prometheus text format, updated without
//! locks: `/metrics` shows one for flushes and one per part of drawing a chart.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: 1 ms to 1 s.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct DurationHistogram {
    count: AtomicU64,
    micros: AtomicU64,
    /// Observations at most each bound, cumulative as the format wants.
    buckets: [AtomicU64; BUCKETS.len()],
}

impl DurationHistogram {
    pub fn observe(&self, took: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Appends the series of `name` with `labels` (`key="value"` pairs,
    /// already escaped): buckets, `+Inf`, sum and count.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let seconds = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {seconds}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_sum_and_count_follow_each_observation() {
        let histogram = DurationHistogram::default();
        histogram.observe(Duration::from_micros(800));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(2));
        let mut out = String::new();
        histogram.render(&mut out, "t_seconds", "part=\"x\"");
        let value = |series: &str| {
            out.lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {series} in {out}"))
                .to_string()
        };
        assert_eq!(value("t_seconds_bucket{part=\"x\",le=\"0.001\"}"), "1");
        assert_eq!(value("t_seconds_bucket{part=\"x\",le=\"0.025\"}"), "1");
        assert_eq!(value("t_seconds_bucket{part=\"x\",le=\"0.05\"}"), "2");
        assert_eq!(value("t_seconds_bucket{part=\"x\",le=\"1\"}"), "2");
        assert_eq!(value("t_seconds_bucket{part=\"x\",le=\"+Inf\"}"), "3");
        assert_eq!(value("t_seconds_count{part=\"x\"}"), "3");
        assert_eq!(value("t_seconds_sum{part=\"x\"}"), "2.0308");
    }
}
