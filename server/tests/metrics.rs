//! `/metrics`: the Prometheus text format, with counts that follow what was ingested.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sqlx::PgPool;
use support::{get, sample, send_as_is, server_fn_path, session_cookie, state};

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn metrics_count_what_http_ingest_stored(pool: PgPool) {
    let stored = r#"pulseboard_records_stored_total{source="firehose"}"#;
    let dead = r#"pulseboard_dead_letters_total{source="firehose"}"#;
    let before = get(state(pool.clone(), None), "/metrics").await.body;
    let (stored_before, dead_before) = (
        sample(&before, stored).expect("stored"),
        sample(&before, dead).expect("dead"),
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let record = |temp: f64| json!({ "Data": BASE64.encode(json!({"guid": "metrics-sensor", "ts": now, "temp": temp}).to_string()) });
    let body = json!({ "DeliveryStreamName": "sensors", "Records": [record(70.0), record(71.0), {"Data": "@@"}, record(72.0)] });
    let request = Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .body(Body::from(body.to_string()))
        .expect("request");
    assert_eq!(
        support::send_ingest(state(pool.clone(), None), request)
            .await
            .status,
        StatusCode::OK
    );

    let reply = get(state(pool.clone(), None), "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        reply.content_type
    );
    let text = reply.body;
    // Tests in this binary share the process-wide counters, so compare growth.
    assert!(
        sample(&text, stored).expect("stored") >= stored_before + 3.0,
        "{text}"
    );
    assert!(
        sample(&text, dead).expect("dead") >= dead_before + 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"pulseboard_flush_duration_seconds_count{source="firehose"}"#
        )
        .expect("flushes")
            >= 1.0
    );

    // Per stream, from this test's own database: exactly what this request left.
    assert_eq!(
        sample(
            &text,
            r#"pulseboard_stream_records_stored_total{stream="sensors"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pulseboard_stream_dead_letters_total{stream="sensors"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // Latency comes from this test's own database: exactly the three stored readings.
    assert_eq!(
        sample(
            &text,
            r#"pulseboard_end_to_end_latency_milliseconds_count{stream="sensors"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"pulseboard_end_to_end_latency_milliseconds{stream="sensors",quantile="0.99"}"#
        )
        .is_some()
    );

    // Every line is a comment or `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(
            series.starts_with("pulseboard_") && series.ends_with('}'),
            "bad series {line:?}"
        );
        assert!(value.parse::<f64>().is_ok(), "bad value {line:?}");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn metrics_time_the_query_and_the_rendering_of_each_chart_drawn(pool: PgPool) {
    let query = r#"pulseboard_chart_part_duration_seconds_count{part="query"}"#;
    let render = r#"pulseboard_chart_part_duration_seconds_count{part="render"}"#;
    let all_queries = r#"pulseboard_chart_part_duration_seconds_bucket{part="query",le="+Inf"}"#;
    let before = get(state(pool.clone(), None), "/metrics").await.body;
    let (queries_before, renders_before) = (
        sample(&before, query).expect("query count"),
        sample(&before, render).expect("render count"),
    );

    let viewer = session_cookie(&pool, app::accounts::Role::Viewer).await;
    let path = server_fn_path("preview_chart");
    let body = json!({
        "definition": app::chart::definition::ChartDefinition::starter(),
        "options": { "time_range": null, "filters": [], "width": 640, "height": 300 },
    });
    let request = Request::post(path)
        .header("host", "pulseboard.test")
        .header("origin", "http://pulseboard.test")
        .header("cookie", viewer)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let drawn = send_as_is(state(pool.clone(), None), request).await;
    assert_eq!(drawn.status, StatusCode::OK, "{}", drawn.body);

    let after = get(state(pool.clone(), None), "/metrics").await.body;
    // Other tests in this binary may draw too, so compare growth.
    assert!(
        sample(&after, query).expect("query count") >= queries_before + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, render).expect("render count") >= renders_before + 1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, all_queries),
        sample(&after, query),
        "{after}"
    );
    assert!(
        sample(
            &after,
            r#"pulseboard_chart_part_duration_seconds_sum{part="render"}"#
        )
        .expect("render sum")
            > 0.0,
        "{after}"
    );
}
