//! Raw-event retention: old raw rows and their finer summaries go in
//! batches; the aggregates built from them stay.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use server::retention::{raw_tables, remove_older_than};
use sqlx::PgPool;
use std::time::Duration;
use support::{scalar, state};

const DAY: i64 = 86_400;

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn old_raw_readings_go_in_batches_and_their_per_minute_statistics_stay(pool: PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // 25 readings 40 days old, a minute apart, and 5 from the last minutes.
    let mut lines = String::new();
    for i in 0..25 {
        let ts = now - 40 * DAY + i * 60;
        lines.push_str(&format!(
            "{{\"guid\": \"old-sensor\", \"ts\": {ts}, \"temp\": 20.5}}\n"
        ));
    }
    for i in 0..5 {
        let ts = now - 300 + i * 60;
        lines.push_str(&format!(
            "{{\"guid\": \"old-sensor\", \"ts\": {ts}, \"temp\": 22.0}}\n"
        ));
    }
    let request = Request::post("/ingest/sensors")
        .body(Body::from(lines))
        .expect("request");
    let reply = support::send_ingest(state(pool.clone(), None), request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM message").await, 30);
    let statistics = "SELECT guid, bucket_start::text, msg_count, temp_sum::text FROM sensor_stats_minutely ORDER BY 1, 2";
    let before: Vec<(String, String, i64, String)> = sqlx::query_as(statistics)
        .fetch_all(&pool)
        .await
        .expect("stats");
    assert_eq!(before.len(), 30);

    let thirty_days = Duration::from_secs(30 * DAY as u64);
    let (rows, transactions) = remove_older_than(&pool, &raw_tables(&[]), thirty_days, 10)
        .await
        .expect("removed");
    // The readings, and their summaries per 10 seconds and latency per minute.
    assert_eq!(rows, 3 * 25);
    // Each in batches of 10, 10 and 5; one (empty) pass over each other table.
    assert_eq!(transactions, 3 * 3 + 2);
    let kept: Vec<i64> = sqlx::query_scalar("SELECT ts FROM message ORDER BY ts")
        .fetch_all(&pool)
        .await
        .expect("kept");
    assert_eq!(kept, (0..5).map(|i| now - 300 + i * 60).collect::<Vec<_>>());
    let after: Vec<(String, String, i64, String)> = sqlx::query_as(statistics)
        .fetch_all(&pool)
        .await
        .expect("stats");
    assert_eq!(after, before, "per-minute statistics changed");
    for summary in ["sensor_stats_10s", "sensor_latency_batches"] {
        let kept =
            format!("SELECT count(*) FROM {summary} WHERE bucket_start > now() - interval '1 day'");
        assert_eq!(scalar(&pool, &kept).await, 5, "{summary}");
        let all = format!("SELECT count(*) FROM {summary}");
        assert_eq!(scalar(&pool, &all).await, 5, "{summary}");
    }

    // Nothing left to remove: one pass per table.
    let again = remove_older_than(&pool, &raw_tables(&[]), thirty_days, 10)
        .await
        .expect("removed");
    assert_eq!(again, (0, 5));
}
