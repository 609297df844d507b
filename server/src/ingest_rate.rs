//! Records per second per ingest key: a token bucket per key that holds up to
//! one second's worth, so one producer cannot take the whole database from
//! the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys remembered at most; beyond that, keys whose bucket has refilled are forgotten.
const REMEMBERED_KEYS: usize = 10_000;

#[derive(Clone)]
pub struct IngestRates {
    per_second: f64,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

struct Bucket {
    tokens: f64,
    filled_at: Instant,
}

/// The key is over its rate: how long until the request would be admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverLimit {
    pub per_second: u32,
    pub retry_after: Duration,
}

impl IngestRates {
    pub fn new(records_per_second: u32) -> Self {
        IngestRates {
            per_second: f64::from(records_per_second.max(1)),
            buckets: Arc::default(),
        }
    }

    /// Takes `records` from the key's bucket, or says how long to wait. A
    /// request larger than the bucket is admitted when the bucket is full.
    pub fn admit(&self, key: &str, records: usize) -> Result<(), OverLimit> {
        self.admit_at(key, records, Instant::now())
    }

    fn admit_at(&self, key: &str, records: usize, now: Instant) -> Result<(), OverLimit> {
        let cost = (records as f64).min(self.per_second);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= REMEMBERED_KEYS && !buckets.contains_key(key) {
            let full = self.per_second;
            buckets.retain(|_, bucket| bucket.level(full, now) < full);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.per_second,
            filled_at: now,
        });
        bucket.tokens = bucket.level(self.per_second, now);
        bucket.filled_at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        let missing = cost - bucket.tokens;
        Err(OverLimit {
            per_second: self.per_second as u32,
            retry_after: Duration::from_secs_f64(missing / self.per_second),
        })
    }
}

impl Bucket {
    fn level(&self, full: f64, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(self.filled_at).as_secs_f64() * full;
        (self.tokens + refill).min(full)
    }
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this ingest key is over its limit of {} records per second; nothing was stored, retry in {} ms",
            self.per_second,
            self.retry_after.as_millis().max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_a_second_worth_then_waits_for_the_refill() {
        let rates = IngestRates::new(1_000);
        let start = Instant::now();
        assert!(rates.admit_at("a", 600, start).is_ok());
        assert!(rates.admit_at("a", 400, start).is_ok());
        let refused = rates.admit_at("a", 500, start).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(rates.admit_at("b", 1_000, start).is_ok());
        // Half a second refills half the bucket.
        let later = start + Duration::from_millis(500);
        assert!(rates.admit_at("a", 500, later).is_ok());
        assert!(rates.admit_at("a", 1, later).is_err());
    }

    #[test]
    fn a_request_larger_than_the_bucket_passes_only_when_it_is_full() {
        let rates = IngestRates::new(100);
        let start = Instant::now();
        assert!(rates.admit_at("a", 500, start).is_ok());
        assert!(rates.admit_at("a", 500, start).is_err());
        assert!(
            rates
                .admit_at("a", 500, start + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn idle_keys_are_forgotten_when_many_are_remembered() {
        let rates = IngestRates::new(10);
        let start = Instant::now();
        for key in 0..REMEMBERED_KEYS {
            rates.admit_at(&key.to_string(), 1, start).unwrap();
        }
        rates
            .admit_at("new", 1, start + Duration::from_secs(1))
            .unwrap();
        assert_eq!(rates.buckets.lock().unwrap().len(), 1);
    }
}
