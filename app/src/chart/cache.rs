//! One query per chart per refresh, whoever asks: drawn charts are kept
//! briefly, keyed by everything that shapes them, and concurrent requests
//! for the same chart wait for one query instead of each running their own.

use super::view::ChartView;
use crate::error::AppError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

type Outcome = Result<Arc<ChartView>, AppError>;

struct Slot {
    started: Instant,
    /// The data version of the chart's streams when the query started.
    version: u64,
    outcome: OnceCell<Outcome>,
}

pub struct QueryCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Flushes seen per stream; a chart's entry is stale once one of its
    /// streams has stored new data.
    versions: Mutex<HashMap<String, u64>>,
    /// The longest an entry is used, also when no change was announced.
    max_age: Duration,
    queries: AtomicU64,
}

/// Entries beyond this many are pruned of expired ones.
const PRUNE_ABOVE: usize = 1_000;

impl QueryCache {
    pub fn new(max_age: Duration) -> Self {
        QueryCache {
            slots: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            max_age,
            queries: AtomicU64::new(0),
        }
    }

    /// A flush of `stream` committed.
    pub fn data_changed(&self, stream: &str) {
        *self
            .versions
            .lock()
            .expect("versions lock")
            .entry(stream.to_string())
            .or_default() += 1;
    }

    fn version(&self, streams: &[String]) -> u64 {
        let versions = self.versions.lock().expect("versions lock");
        streams.iter().filter_map(|s| versions.get(s)).sum()
    }

    /// How many times a chart was actually computed.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The fresh entry for `key`, computing it with `compute` when there is
    /// none; callers that arrive while it is computed share its outcome.
    pub async fn get_or_compute<F>(&self, key: String, streams: &[String], compute: F) -> Outcome
    where
        F: Future<Output = Outcome>,
    {
        let version = self.version(streams);
        let slot = {
            let mut slots = self.slots.lock().expect("slots lock");
            let fresh = slots
                .get(&key)
                .filter(|s| s.version == version && s.started.elapsed() < self.max_age)
                .cloned();
            match fresh {
                Some(slot) => slot,
                None => {
                    if slots.len() > PRUNE_ABOVE {
                        slots.retain(|_, s| s.started.elapsed() < self.max_age);
                    }
                    let slot = Arc::new(Slot {
                        started: Instant::now(),
                        version,
                        outcome: OnceCell::new(),
                    });
                    slots.insert(key, slot.clone());
                    slot
                }
            }
        };
        slot.outcome
            .get_or_init(|| async {
                self.queries.fetch_add(1, Ordering::Relaxed);
                compute.await
            })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::definition::ChartType;

    fn view(name: &str) -> Outcome {
        Ok(Arc::new(ChartView {
            name: name.into(),
            chart_type: ChartType::Kpi,
            dataset: "d".into(),
            svg: None,
            table: None,
            series: 0,
            points: 0,
            data_as_of_ms: 0,
            filtered_by: vec![],
        }))
    }

    #[tokio::test]
    async fn concurrent_viewers_share_one_query() {
        let cache = Arc::new(QueryCache::new(Duration::from_secs(60)));
        let streams = vec!["sensors".to_string()];
        let mut viewers = Vec::new();
        for _ in 0..100 {
            let (cache, streams) = (cache.clone(), streams.clone());
            viewers.push(tokio::spawn(async move {
                cache
                    .get_or_compute("chart 1".into(), &streams, async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        view("first")
                    })
                    .await
            }));
        }
        for viewer in viewers {
            assert_eq!(viewer.await.unwrap().unwrap().name, "first");
        }
        assert_eq!(cache.queries(), 1);
    }

    #[tokio::test]
    async fn new_data_in_its_stream_or_age_makes_an_entry_stale() {
        let cache = QueryCache::new(Duration::from_millis(200));
        let sensors = vec!["sensors".to_string()];
        let get = |name: &'static str| {
            cache.get_or_compute("k".into(), &sensors, async move { view(name) })
        };
        assert_eq!(get("a").await.unwrap().name, "a");
        assert_eq!(get("b").await.unwrap().name, "a");
        cache.data_changed("purchases");
        assert_eq!(get("c").await.unwrap().name, "a", "another stream's data");
        cache.data_changed("sensors");
        assert_eq!(get("d").await.unwrap().name, "d");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(get("e").await.unwrap().name, "e");
        assert_eq!(cache.queries(), 3);
    }
}
