//! Count, sum, minimum and maximum of a metric: partial aggregates that merge
//! in any order to the same result, so a batch can be pre-aggregated in memory
//! and added to what Postgres already holds.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(value: f64) -> Self {
        Stats {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    pub fn add(&mut self, value: f64) {
        self.merge(&Stats::of(value));
    }

    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Partial aggregates keyed by group (for example sensor and minute).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedStats<K: Ord>(BTreeMap<K, Stats>);

impl<K: Ord> Default for GroupedStats<K> {
    fn default() -> Self {
        GroupedStats(BTreeMap::new())
    }
}

impl<K: Ord + Clone> GroupedStats<K> {
    pub fn add(&mut self, key: K, value: f64) {
        self.0
            .entry(key)
            .and_modify(|s| s.add(value))
            .or_insert_with(|| Stats::of(value));
    }

    pub fn merge(&mut self, other: &GroupedStats<K>) {
        for (key, stats) in &other.0 {
            self.0
                .entry(key.clone())
                .and_modify(|s| s.merge(stats))
                .or_insert(*stats);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &Stats)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Start of the minute that holds `epoch_seconds`.
pub fn minute_start(epoch_seconds: i64) -> i64 {
    step_start(epoch_seconds, 60)
}

/// The start of the step of `seconds` holding `epoch_seconds`.
pub fn step_start(epoch_seconds: i64, seconds: i64) -> i64 {
    epoch_seconds - epoch_seconds.rem_euclid(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn values(seed: u64, n: usize) -> Vec<(u8, f64)> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Two-decimal values, as readings are, so sums are exact enough to compare.
        (0..n)
            .map(|_| {
                (
                    rng.random_range(0..4),
                    rng.random_range(5_000..12_000) as f64 / 100.0,
                )
            })
            .collect()
    }

    #[test]
    fn stats_of_values() {
        let mut s = Stats::of(70.0);
        s.add(60.5);
        s.add(80.25);
        assert_eq!(
            s,
            Stats {
                count: 3,
                sum: 210.75,
                min: 60.5,
                max: 80.25
            }
        );
        assert_eq!(s.mean(), 70.25);
    }

    #[test]
    fn merging_partials_in_any_order_equals_one_pass() {
        for seed in 0..50 {
            let all = values(seed, 300);
            let mut one_pass = GroupedStats::default();
            for (key, value) in &all {
                one_pass.add(*key, *value);
            }
            // Cut the input into random partitions, aggregate each, merge in a random order.
            let mut rng = StdRng::seed_from_u64(seed + 1000);
            let mut partials: Vec<GroupedStats<u8>> = all
                .chunks(rng.random_range(1..60))
                .map(|chunk| {
                    let mut partial = GroupedStats::default();
                    for (key, value) in chunk {
                        partial.add(*key, *value);
                    }
                    partial
                })
                .collect();
            partials.shuffle(&mut rng);
            let mut merged = GroupedStats::default();
            for partial in &partials {
                merged.merge(partial);
            }
            assert_eq!(merged.len(), one_pass.len());
            for ((k1, a), (k2, b)) in merged.iter().zip(one_pass.iter()) {
                assert_eq!(k1, k2);
                assert_eq!(
                    (a.count, a.min, a.max),
                    (b.count, b.min, b.max),
                    "seed {seed}"
                );
                assert!(
                    (a.sum - b.sum).abs() < 1e-6,
                    "seed {seed}: {} vs {}",
                    a.sum,
                    b.sum
                );
            }
        }
    }

    #[test]
    fn minutes_start_on_the_minute() {
        assert_eq!(minute_start(1_583_292_719), 1_583_292_660);
        assert_eq!(minute_start(120), 120);
        assert_eq!(minute_start(-1), -60);
    }
}
