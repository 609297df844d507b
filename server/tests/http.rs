//! The HTTP surface, driven through the router without a socket.

mod support;

use axum::http::StatusCode;
use server::config::KafkaConfig;
use server::reading::Reading;
use server::store::{Batch, write_batch};
use sqlx::PgPool;
use support::{get, state};

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn healthz_reports_postgres(pool: PgPool) {
    let reply = get(state(pool, None), "/healthz").await;
    let (status, body) = (reply.status, reply.body);
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["postgres"]["ok"], true);
    assert!(json["kafka"].is_null());
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn healthz_is_degraded_when_kafka_is_unreachable(pool: PgPool) {
    // Nothing listens on port 1.
    let kafka = KafkaConfig {
        bootstrap_servers: "127.0.0.1:1".into(),
        readings_topic: "unused".into(),
        group_id: "unused".into(),
        ..Default::default()
    };
    let reply = get(state(pool, Some(kafka)), "/healthz").await;
    let (status, body) = (reply.status, reply.body);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["status"], "degraded");
    assert_eq!(json["postgres"]["ok"], true);
    assert_eq!(json["kafka"]["ok"], false);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_sensor_page_renders_six_series_and_the_averages(pool: PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut rng = rand::rng();
    let mut waves = server::simulator::seed_waves();
    let mut readings: Vec<Reading> = Vec::new();
    for step in 0..10 {
        readings.extend(
            waves
                .iter_mut()
                .map(|w| w.next_reading(now - 10 + step, &mut rng)),
        );
    }
    write_batch(
        &pool,
        &Batch {
            readings,
            dead_letters: vec![],
        },
    )
    .await
    .expect("written");

    let reply = get(state(pool, None), "/").await;
    let (status, html) = (reply.status, reply.body);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-series="6""#), "{html}");
    assert!(html.contains(r#"data-points="60""#), "{html}");
    for location in [
        "Research Lab #2203",
        "Wafer Inspection Lab #0211C",
        "Zone 2 Semiconductor Assembly Area A2",
    ] {
        assert!(html.contains(location), "{location} missing");
    }
    // One table row per sensor with readings.
    assert_eq!(html.matches("<tr data-guid=").count(), 6, "{html}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_streams_page_shows_rate_latency_and_dead_letters(pool: PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let readings: Vec<Reading> = (0..120)
        .map(|i| Reading::new("s", now - (i % 10), 70.0))
        .collect();
    let dead_letters = vec![server::store::DeadLetter {
        stream: Some("sensors".into()),
        source: "test".into(),
        position: None,
        payload: b"x".to_vec(),
        reason: "bad".into(),
    }];
    write_batch(
        &pool,
        &Batch {
            readings,
            dead_letters,
        },
    )
    .await
    .expect("written");

    let reply = get(state(pool, None), "/streams").await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = reply.body;
    assert!(html.contains(r#"<tr data-stream="sensors">"#), "{html}");
    // 120 rows stored just now, over the previous minute and this one so far:
    // between 60 and 120 seconds, so 1.0 to 2.0 per second.
    let rate: f64 = html
        .split(r#"<td class="num rate">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate: {html}"));
    assert!((1.0..=2.0).contains(&rate), "{rate}");
    // A stream with nothing stored yet still has its row.
    assert!(html.contains(r#"<tr data-stream="purchases">"#), "{html}");
    assert!(html.contains("none in 10 min"), "{html}");
    assert_eq!(
        html.matches(r#"<td class="num dead-letters">1</td>"#)
            .count(),
        1,
        "one dead letter, for the sensors only: {html}"
    );
    assert!(
        html.contains(r#"<td class="num lag">—</td>"#),
        "no consumer, no lag: {html}"
    );
    assert!(html.contains(" ms</td>"), "latency shown: {html}");
}
