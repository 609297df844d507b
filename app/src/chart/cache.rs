//! One query per chart per refresh, whoever asks: drawn charts are kept
//! briefly, keyed by everything that shapes them, and concurrent requests
//! for the same chart wait for one query instead of each running their own.
//!
//! An answer always reflects every flush committed before it was asked for.
//! While flushes land many times a second, a chart is still not computed
//! back to back: a computation may start only [`COST_SHARE`] times its last
//! duration after the previous one started, and no sooner than
//! [`SHORTEST_GAP`]. A request that finds the newest computation outdated but
//! younger than that waits for its turn, and every request waiting shares the
//! next one. An expensive chart so takes at most a third of a core however
//! many watch it and however fast data arrives (ingest keeps the rest), and a
//! cheap one at most four computations a second. The price is freshness: a
//! chart that takes a second under load is redrawn every three.

use super::view::ChartView;
use crate::error::AppError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

type Outcome = Result<Arc<ChartView>, AppError>;

struct Slot {
    started: Instant,
    /// How long the computation took, in microseconds; 0 while it runs.
    took_us: AtomicU64,
    /// The data version of the chart's streams when the query started.
    version: u64,
    outcome: OnceCell<Outcome>,
    /// Set when the request that started the computation went away (timed
    /// out, disconnected) before it finished: nobody will finish it.
    abandoned: AtomicBool,
}

/// Marks the slot abandoned if it is dropped before the slot has its outcome.
struct FinishOrAbandon(Arc<Slot>);

impl Drop for FinishOrAbandon {
    fn drop(&mut self) {
        if !self.0.outcome.initialized() {
            self.0.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

pub struct QueryCache {
    slots: Mutex<Slots>,
    /// Flushes seen per stream; a chart's entry is stale once one of its
    /// streams has stored new data.
    versions: Mutex<HashMap<String, u64>>,
    /// The longest an entry is used, also when no change was announced.
    max_age: Duration,
    queries: AtomicU64,
}

/// Two computations of one chart start at least this many times the
/// duration of the earlier one apart.
pub const COST_SHARE: u32 = 3;

/// The shortest gap between two computations of one chart.
pub const SHORTEST_GAP: Duration = Duration::from_millis(250);

/// How often a request waiting for a computation still running looks again.
const POLL: Duration = Duration::from_millis(10);

impl Slot {
    /// How long after this computation started the next one may start.
    fn gap(&self) -> Duration {
        let took = Duration::from_micros(self.took_us.load(Ordering::Relaxed));
        (took * COST_SHARE).max(SHORTEST_GAP)
    }

    /// Whether the slot may still answer a request or delay the next
    /// computation of its chart.
    fn matters(&self, max_age: Duration) -> bool {
        if self.outcome.initialized() {
            self.started.elapsed() < max_age.max(self.gap())
        } else {
            !self.abandoned.load(Ordering::Relaxed)
        }
    }
}

/// The newest computation of each chart, and when those that no longer
/// matter were last removed.
struct Slots {
    by_key: HashMap<String, Arc<Slot>>,
    pruned: Instant,
}

impl Slots {
    /// Removes, at most once per `max_age`, the slots that no longer matter:
    /// a drawn chart is large, and charts drawn once (a page's odd tile
    /// size, an edited chart) are not asked for again.
    fn prune(&mut self, max_age: Duration) {
        if self.pruned.elapsed() >= max_age {
            self.by_key.retain(|_, slot| slot.matters(max_age));
            self.pruned = Instant::now();
        }
    }
}

impl QueryCache {
    pub fn new(max_age: Duration) -> Self {
        QueryCache {
            slots: Mutex::new(Slots {
                by_key: HashMap::new(),
                pruned: Instant::now(),
            }),
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

    /// How many charts are held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots.lock().expect("slots lock").by_key.len()
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
        let asked = Instant::now();
        let (slot, started_here) = loop {
            let version = self.version(streams);
            // Either the slot to answer from, or when to look again.
            let found = {
                let mut slots = self.slots.lock().expect("slots lock");
                let newest = slots.by_key.get(&key).cloned();
                match newest {
                    // Started after we asked, or nothing committed since it
                    // started and it is young enough.
                    Some(slot) if slot.started >= asked => Ok((slot, false)),
                    Some(slot)
                        if slot.version == version && slot.started.elapsed() < self.max_age =>
                    {
                        Ok((slot, false))
                    }
                    Some(slot)
                        if !slot.outcome.initialized()
                            && !slot.abandoned.load(Ordering::Relaxed) =>
                    {
                        Err(Instant::now() + POLL)
                    }
                    Some(slot) if slot.started.elapsed() < slot.gap() => {
                        Err(slot.started + slot.gap())
                    }
                    _ => {
                        slots.prune(self.max_age);
                        let slot = Arc::new(Slot {
                            started: Instant::now(),
                            took_us: AtomicU64::new(0),
                            version,
                            outcome: OnceCell::new(),
                            abandoned: AtomicBool::new(false),
                        });
                        slots.by_key.insert(key.clone(), slot.clone());
                        Ok((slot, true))
                    }
                }
            };
            match found {
                Ok(found) => break found,
                Err(turn) => tokio::time::sleep_until(turn.into()).await,
            }
        };
        let _abandoned_unless_finished = started_here.then(|| FinishOrAbandon(slot.clone()));
        slot.outcome
            .get_or_init(|| async {
                self.queries.fetch_add(1, Ordering::Relaxed);
                let outcome = compute.await;
                let took = slot.started.elapsed().as_micros().max(1);
                slot.took_us
                    .store(u64::try_from(took).unwrap_or(u64::MAX), Ordering::Relaxed);
                outcome
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

    /// Charts drawn once, as for a tile of a size no page shows again,
    /// are let go once they can neither answer nor delay a computation.
    #[tokio::test]
    async fn charts_no_one_asks_for_again_are_let_go() {
        let cache = QueryCache::new(Duration::from_millis(100));
        let sensors = vec!["sensors".to_string()];
        for width in 0..50 {
            let key = format!("window chart at {width} px");
            cache
                .get_or_compute(key, &sensors, async { view("v") })
                .await
                .unwrap();
        }
        assert_eq!(cache.held(), 50);
        // Past the age limit and the shortest gap between computations.
        tokio::time::sleep(SHORTEST_GAP + Duration::from_millis(50)).await;
        let fresh = async { view("fresh") };
        cache
            .get_or_compute("totals".into(), &sensors, fresh)
            .await
            .unwrap();
        assert_eq!(cache.held(), 1);
    }

    /// A request that goes away mid-computation (timed out, disconnected)
    /// leaves nobody to finish it: the next viewer computes the chart
    /// instead of waiting for it forever.
    #[tokio::test]
    async fn a_computation_abandoned_midway_is_started_again() {
        let cache = QueryCache::new(Duration::from_secs(60));
        let sensors = vec!["sensors".to_string()];
        let slow = cache.get_or_compute("k".into(), &sensors, async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            view("never")
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), slow)
                .await
                .is_err()
        );
        cache.data_changed("sensors");
        let next = cache.get_or_compute("k".into(), &sensors, async { view("next") });
        let answer = tokio::time::timeout(Duration::from_secs(2), next).await;
        assert_eq!(answer.expect("not left waiting").unwrap().name, "next");
    }

    /// Flushes every 10 ms and 20 viewers asking every 10 ms for a second, a
    /// computation taking 20 ms: every answer was computed after the viewer
    /// asked or with no flush since, yet computations start no closer than
    /// the shortest gap.
    #[tokio::test]
    async fn constant_flushes_are_coalesced_without_serving_an_outdated_answer() {
        let cache = Arc::new(QueryCache::new(Duration::from_secs(60)));
        let flushes = Arc::new(AtomicU64::new(0));
        let writer = {
            let (cache, flushes) = (cache.clone(), flushes.clone());
            tokio::spawn(async move {
                for _ in 0..100 {
                    cache.data_changed("sensors");
                    flushes.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let mut viewers = Vec::new();
        for _ in 0..20 {
            let (cache, flushes) = (cache.clone(), flushes.clone());
            viewers.push(tokio::spawn(async move {
                let streams = vec!["sensors".to_string()];
                for _ in 0..100 {
                    let flushes_before = flushes.load(Ordering::SeqCst);
                    let answer = cache
                        .get_or_compute("k".into(), &streams, {
                            let flushes = flushes.clone();
                            async move {
                                // The name records how many flushes the computation saw.
                                let seen = flushes.load(Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                view(&seen.to_string())
                            }
                        })
                        .await
                        .unwrap();
                    let seen: u64 = answer.name.parse().unwrap();
                    assert!(
                        seen >= flushes_before,
                        "answer saw {seen} flushes; {flushes_before} were committed before asking"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }));
        }
        for viewer in viewers {
            viewer.await.unwrap();
        }
        writer.await.unwrap();
        let queries = cache.queries();
        // About a second of flushes, a computation every 250 ms or more.
        assert!((2..=8).contains(&queries), "{queries} computations");
    }

    /// A chart taking 100 ms, asked for constantly while data changes
    /// constantly, and kept for only 50 ms: it is computed at most every
    /// 300 ms, a third of the time, not back to back.
    #[tokio::test]
    async fn an_expensive_chart_takes_at_most_its_share_of_the_time() {
        let cache = Arc::new(QueryCache::new(Duration::from_millis(50)));
        let busy = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut viewers = Vec::new();
        for _ in 0..5 {
            let (cache, busy) = (cache.clone(), busy.clone());
            viewers.push(tokio::spawn(async move {
                let streams = vec!["sensors".to_string()];
                while started.elapsed() < Duration::from_millis(1_500) {
                    cache.data_changed("sensors");
                    let busy = busy.clone();
                    cache
                        .get_or_compute("k".into(), &streams, async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            busy.fetch_add(100, Ordering::SeqCst);
                            view("x")
                        })
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }));
        }
        for viewer in viewers {
            viewer.await.unwrap();
        }
        let share = busy.load(Ordering::SeqCst) as f64 / started.elapsed().as_millis() as f64;
        // Back to back it would be near 1; a third plus the last computation's overrun.
        assert!(
            share <= 0.45,
            "computing {:.0} % of the time",
            share * 100.0
        );
        assert!(cache.queries() >= 3, "{} computations", cache.queries());
    }
}
