//! Event-time windows declared in a stream of one's own: tumbling and hopping
//! windows with a watermark and allowed lateness, kept in Postgres flush by
//! flush. Rows are provisional until the watermark passes their end, then
//! final; late events inside the lateness still count; later ones are kept in
//! `late_events`. The watermark is stored, so a restart changes nothing.

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::custom::{CustomBatch, CustomStream};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;

const DEFINITION: &str = r#"
name = "taps"
description = "Card taps at ticket gates"

[sources]
http_names = ["taps"]
kafka_topics = ["taps"]

[event_time]
field = "at"
format = "epoch_millis"

[[fields]]
name = "at"
type = "integer"
role = "time"

[[fields]]
name = "gate"
type = "string"
role = "dimension"

[[fields]]
name = "fare"
type = "float"
role = "metric"

[[windows]]
name = "per_minute"
kind = "tumbling"
size = "1m"
watermark = "30s"
allowed_lateness = "30s"
group_by = ["gate"]
measures = [{ fn = "count" }, { fn = "sum", field = "fare" }, { fn = "max", field = "fare" }]

[[windows]]
name = "busiest"
kind = "hopping"
size = "2m"
slide = "1m"
watermark = "20s"
group_by = ["gate"]
measures = [{ fn = "count" }]
top = { n = 1, by_measure = 0 }
"#;

const MINUTE: i64 = 60_000;
/// 2024-05-01T12:00:00Z.
const NOON: i64 = 1_714_564_800_000;

fn planned() -> Arc<CustomStream> {
    let parsed = server::definitions::parse_all(&[("taps.toml".into(), DEFINITION.into())])
        .expect("valid definition")
        .remove(0);
    Arc::new(CustomStream::plan(&parsed).expect("planned"))
}

fn tap(at: i64, gate: &str, fare: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "at": at, "gate": gate, "fare": fare })).expect("json")
}

/// One flush of `taps` through a fresh batch, as after a restart.
async fn flush(pool: &PgPool, stream: &Arc<CustomStream>, taps: &[Vec<u8>]) {
    let mut batch = CustomBatch::new(stream.clone());
    for (i, payload) in taps.iter().enumerate() {
        assert_eq!(batch.add("test", payload, &|| format!("tap {i}")), None);
    }
    let mut tx = pool.begin().await.expect("begin");
    batch.stage(&mut tx).await.expect("staged");
    tx.commit().await.expect("committed");
}

/// One flush of taps read from Kafka: `(partition, tap)`.
async fn flush_from(pool: &PgPool, stream: &Arc<CustomStream>, taps: &[(i32, Vec<u8>)]) {
    use server::consumer::Sink;
    let mut batch = CustomBatch::new(stream.clone());
    for (partition, payload) in taps {
        batch.admit("taps", *partition, payload, &|| format!("taps/{partition}"));
    }
    assert_eq!(batch.dead_letters.len(), 0);
    let mut tx = pool.begin().await.expect("begin");
    batch.stage(&mut tx).await.expect("staged");
    tx.commit().await.expect("committed");
}

/// `(minutes after noon, gate) -> (count, fare sum, is_final)` of the tumbling window.
async fn per_minute(pool: &PgPool) -> BTreeMap<(i64, String), (i64, f64, bool)> {
    let rows: Vec<(i64, String, i64, f64, bool)> = sqlx::query_as(
        "SELECT ((extract(epoch FROM window_start) * 1000)::int8 - $1) / 60000, gate, count,
                sum_fare, is_final
           FROM window_taps_per_minute_view",
    )
    .bind(NOON)
    .fetch_all(pool)
    .await
    .expect("window view");
    rows.into_iter()
        .map(|(minute, gate, count, sum, is_final)| ((minute, gate), (count, sum, is_final)))
        .collect()
}

async fn late_reasons(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT reason FROM late_events WHERE stream = 'taps' ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("late events")
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn windows_turn_final_take_late_events_and_keep_too_late_ones(pool: PgPool) {
    let stream = planned();
    stream.prepare(&pool).await.expect("tables");
    let s = 1_000;

    // Watermark 12:01:10 (12:01:40 less 30 s) passes the end of 12:00.
    flush(
        &pool,
        &stream,
        &[
            tap(NOON + 10 * s, "north", 2.0),
            tap(NOON + 50 * s, "south", 3.0),
            tap(NOON + MINUTE + 40 * s, "north", 5.0),
        ],
    )
    .await;
    let windows = per_minute(&pool).await;
    assert_eq!(windows[&(0, "north".into())], (1, 2.0, true));
    assert_eq!(windows[&(0, "south".into())], (1, 3.0, true));
    assert_eq!(windows[&(1, "north".into())], (1, 5.0, false));

    // Late but within the 30 s of lateness: the final window takes it.
    flush(&pool, &stream, &[tap(NOON + 30 * s, "north", 7.0)]).await;
    assert_eq!(
        per_minute(&pool).await[&(0, "north".into())],
        (2, 9.0, true)
    );

    // 12:02:20 moves the watermark to 12:01:50, past 12:01 + 30 s: the
    // 12:00 window closes, and a tap for it in the same flush is too late.
    flush(
        &pool,
        &stream,
        &[
            tap(NOON + 2 * MINUTE + 20 * s, "south", 1.0),
            tap(NOON + 40 * s, "north", 100.0),
        ],
    )
    .await;
    // A fresh batch from a fresh plan (a restart) still knows the watermark.
    let restarted = planned();
    flush(&pool, &restarted, &[tap(NOON + 45 * s, "south", 100.0)]).await;

    let windows = per_minute(&pool).await;
    assert_eq!(windows[&(0, "north".into())], (2, 9.0, true));
    assert_eq!(windows[&(0, "south".into())], (1, 3.0, true));
    assert_eq!(windows[&(1, "north".into())], (1, 5.0, false));
    assert_eq!(windows[&(2, "south".into())], (1, 1.0, false));
    // Each of the two taps was too late for both windows.
    let reasons = late_reasons(&pool).await;
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0]
            .contains("too late for window \"per_minute\": windows starting 2024-05-01 12:00:00"),
        "{reasons:?}"
    );
    let payload: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM late_events WHERE stream = 'taps' ORDER BY id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("late payload");
    assert_eq!(
        payload,
        serde_json::json!({ "at": NOON + 40 * s, "gate": "north", "fare": 100.0 })
    );

    // Counted where operators look: /metrics.
    let metrics = support::get(support::state(pool.clone(), None), "/metrics").await;
    assert!(
        metrics
            .body
            .contains("pulseboard_stream_late_events_total{stream=\"taps\"} 4"),
        "{}",
        metrics.body
    );

    // The hopping window's top view: the busiest gate of each two minutes.
    let top: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT ((extract(epoch FROM window_start) * 1000)::int8 - $1) / 60000, gate, count
           FROM window_taps_busiest_top ORDER BY 1, 2",
    )
    .bind(NOON)
    .fetch_all(&pool)
    .await
    .expect("top view");
    assert_eq!(
        top,
        [
            (-1, "north".to_string(), 1),
            (-1, "south".to_string(), 1),
            (0, "north".to_string(), 3),
            (1, "north".to_string(), 1),
            (1, "south".to_string(), 1),
            (2, "south".to_string(), 1),
        ]
    );
}

/// What the windows must hold, computed event by event from the rules alone:
/// the watermark is the largest event time so far less the delay; an event
/// counts in each of its windows unless the watermark before it had passed
/// that window's end plus the lateness.
struct Expected {
    counts: BTreeMap<(i64, String), (i64, f64)>,
    too_late: usize,
    watermark: i64,
}

fn expected(
    events: &[(i64, String, f64)],
    size: i64,
    slide: i64,
    delay: i64,
    lateness: i64,
) -> Expected {
    let mut counts: BTreeMap<(i64, String), (i64, f64)> = BTreeMap::new();
    let mut too_late = 0;
    let mut watermark: Option<i64> = None;
    for (at, gate, fare) in events {
        let mut start = at - at.rem_euclid(slide);
        let mut taken = 0;
        while start + size > *at {
            let closed = watermark.is_some_and(|w| w >= start + size + lateness);
            if !closed {
                let entry = counts.entry((start, gate.clone())).or_insert((0, 0.0));
                entry.0 += 1;
                entry.1 += fare;
                taken += 1;
            }
            start -= slide;
        }
        if taken == 0 {
            too_late += 1;
        }
        watermark = Some(watermark.map_or(at - delay, |w| w.max(at - delay)));
    }
    Expected {
        counts,
        too_late,
        watermark: watermark.expect("events"),
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn disordered_taps_over_many_flushes_match_a_brute_force_count(pool: PgPool) {
    let stream = planned();
    stream.prepare(&pool).await.expect("tables");
    let mut rng = StdRng::seed_from_u64(11);
    // Time moves forward about a second per tap; one tap in five is up to
    // three minutes behind, so some are late and some too late.
    let events: Vec<(i64, String, f64)> = (0..3_000)
        .map(|i| {
            let now = NOON + i * 1_000;
            let at = if rng.random_bool(0.2) {
                now - rng.random_range(0..3 * MINUTE)
            } else {
                now + rng.random_range(0..1_000)
            };
            let gate = ["north", "south", "east"][rng.random_range(0..3)].to_string();
            (at, gate, f64::from(rng.random_range(1..500_u32)) / 100.0)
        })
        .collect();
    let mut at = 0;
    while at < events.len() {
        let n = rng.random_range(1..200).min(events.len() - at);
        let taps: Vec<Vec<u8>> = events[at..at + n]
            .iter()
            .map(|(t, gate, fare)| tap(*t, gate, *fare))
            .collect();
        flush(&pool, &stream, &taps).await;
        at += n;
    }

    // Tumbling minute, 30 s watermark, 30 s lateness.
    let want = expected(&events, MINUTE, MINUTE, 30_000, 30_000);
    let stored = per_minute(&pool).await;
    assert_eq!(stored.len(), want.counts.len());
    for ((start, gate), (count, sum)) in &want.counts {
        let minute = (start - NOON).div_euclid(MINUTE);
        let (stored_count, stored_sum, is_final) = stored[&(minute, gate.clone())];
        assert_eq!(stored_count, *count, "minute {minute} {gate}");
        assert!((stored_sum - sum).abs() < 1e-6, "minute {minute} {gate}");
        assert_eq!(
            is_final,
            start + MINUTE <= want.watermark,
            "minute {minute} {gate}"
        );
    }
    // Hopping two minutes every minute, 20 s watermark, no lateness.
    let hopping = expected(&events, 2 * MINUTE, MINUTE, 20_000, 0);
    let busiest: i64 = sqlx::query_scalar("SELECT sum(records)::int8 FROM window_taps_busiest")
        .fetch_one(&pool)
        .await
        .expect("hopping total");
    assert_eq!(busiest, hopping.counts.values().map(|c| c.0).sum::<i64>());

    let late = late_reasons(&pool).await;
    let per_window = |name: &str| late.iter().filter(|r| r.contains(name)).count();
    assert_eq!(per_window("\"per_minute\""), want.too_late);
    assert_eq!(per_window("\"busiest\""), hopping.too_late);
    assert!(
        want.too_late > 0 && hopping.too_late > 0,
        "the test must exercise lateness"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_partition_read_behind_the_others_is_not_late(pool: PgPool) {
    let stream = planned();
    stream.prepare(&pool).await.expect("tables");
    let s = 1_000;
    // Partition 0 has got to 12:10; partition 1, catching up a backlog, to 12:00:05.
    flush_from(
        &pool,
        &stream,
        &[
            (0, tap(NOON + 10 * MINUTE, "north", 1.0)),
            (1, tap(NOON + 5 * s, "south", 1.0)),
        ],
    )
    .await;
    // A fresh batch (or instance) resumes both clocks: partition 1's next tap
    // is on time by its own clock, though ten minutes behind partition 0's.
    assert_eq!(late_reasons(&pool).await, Vec::<String>::new());
    let restarted = planned();
    flush_from(&pool, &restarted, &[(1, tap(NOON + 30 * s, "south", 2.0))]).await;
    assert_eq!(late_reasons(&pool).await, Vec::<String>::new());
    assert_eq!(
        per_minute(&pool).await[&(0, "south".into())],
        (2, 3.0, false)
    );
    let kept: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, max_event_ms FROM window_sources WHERE stream = 'taps' AND window_name = 'per_minute' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("clocks");
    assert_eq!(
        kept,
        [
            ("taps/0".to_string(), NOON + 10 * MINUTE),
            ("taps/1".to_string(), NOON + 30 * s)
        ]
    );
}
