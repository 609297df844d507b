//! The Firehose-compatible API and the NDJSON endpoint, through the router, on a real database.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sqlx::PgPool;
// The ingest APIs take keys, not the cookies of a signed-in browser.
use support::{Reply, count, send_ingest as send, state};

const LAB_2203: &str = "03e39872-e105-4be4-83c0-9ade818465dc";

fn b64(data: &str) -> String {
    BASE64.encode(data)
}

fn reading(ts: i64, temp: f64) -> String {
    json!({ "guid": LAB_2203, "ts": ts, "temp": temp }).to_string()
}

async fn firehose(pool: &PgPool, operation: &str, body: Value) -> Reply {
    let request = Request::post("/")
        .header("x-amz-target", format!("Firehose_20150804.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(state(pool.clone(), None), request).await
}

/// `PutRecordBatch` of `records` (a JSON array) to `stream`.
async fn put_batch(pool: &PgPool, stream: &str, records: Value) -> Reply {
    firehose(
        pool,
        "PutRecordBatch",
        json!({ "DeliveryStreamName": stream, "Records": records }),
    )
    .await
}

/// Posts `body` to `/ingest/sensors`; the answer, which must be 200.
async fn ndjson_to_sensors(pool: &PgPool, body: impl Into<Body>) -> Value {
    let request = Request::post("/ingest/sensors")
        .body(body.into())
        .expect("request");
    let reply = send(state(pool.clone(), None), request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

/// Dead letters as (source, position, payload, reason), oldest first.
async fn dead_letters(pool: &PgPool) -> Vec<(String, String, Vec<u8>, String)> {
    sqlx::query_as("SELECT source, position, payload, reason FROM dead_letters ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("dead letters")
}

fn assert_error(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.content_type, "application/x-amz-json-1.1");
    let body = reply.json();
    assert_eq!(body["__type"], kind, "{body}");
    assert!(
        !body["message"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn put_record_stores_the_reading_before_answering(pool: PgPool) {
    let body = json!({ "DeliveryStreamName": "sensors", "Record": { "Data": b64(&reading(1_700_000_000, 70.25)) } });
    let reply = firehose(&pool, "PutRecord", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.content_type, "application/x-amz-json-1.1");
    let out = reply.json();
    assert_eq!(out["Encrypted"], false);
    assert!(
        out["RecordId"].as_str().is_some_and(|id| id.len() >= 32),
        "{out}"
    );
    let stored: (String, i64, f64) =
        sqlx::query_as("SELECT guid::text, ts, temp::float8 FROM message")
            .fetch_one(&pool)
            .await
            .expect("one row");
    assert_eq!(stored, (LAB_2203.to_string(), 1_700_000_000, 70.25));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn put_record_batch_answers_per_record_in_order(pool: PgPool) {
    let records = json!([
        { "Data": b64(&reading(1, 70.0)) },
        { "Data": "%%% not base64" },
        { "Data": b64(&reading(2, 71.0)) },
        { "Data": b64("{\"guid\": \"x\"}") },
        { "Data": b64(&reading(3, 72.0)) },
    ]);
    let reply = put_batch(&pool, "sensors", records).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let out = reply.json();
    assert_eq!(out["FailedPutCount"], 2);
    let responses = out["RequestResponses"].as_array().expect("responses");
    assert_eq!(responses.len(), 5);
    for ok in [0, 2, 4] {
        assert!(responses[ok]["RecordId"].is_string(), "{out}");
        assert!(responses[ok].get("ErrorCode").is_none(), "{out}");
    }
    for bad in [1, 3] {
        assert_eq!(
            responses[bad]["ErrorCode"], "InvalidArgumentException",
            "{out}"
        );
        assert!(responses[bad]["ErrorMessage"].is_string(), "{out}");
        assert!(responses[bad].get("RecordId").is_none(), "{out}");
    }
    assert!(
        responses[1]["ErrorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("base64")
    );
    assert_eq!(count(&pool, "message").await, 3);

    // The refused records are kept, with where they came from and why.
    let letters = dead_letters(&pool).await;
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].0, "firehose");
    assert!(letters[0].1.ends_with("record 1"), "{:?}", letters[0]);
    assert_eq!(letters[0].2, b"%%% not base64");
    assert!(letters[1].1.ends_with("record 3"), "{:?}", letters[1]);
    assert_eq!(letters[1].2, b"{\"guid\": \"x\"}");
    assert!(letters[1].3.contains("JSON reading"), "{:?}", letters[1]);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn limits_and_unknown_streams_are_refused_whole(pool: PgPool) {
    let one = json!({ "Data": b64(&reading(1, 70.0)) });
    let reply = put_batch(&pool, "nope", json!([one])).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "ResourceNotFoundException");

    let too_many: Vec<Value> = (0..501).map(|_| one.clone()).collect();
    let reply = put_batch(&pool, "sensors", Value::from(too_many)).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "InvalidArgumentException");

    let reply = put_batch(&pool, "sensors", json!([])).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "InvalidArgumentException");

    // A record over 1,000 KiB is refused on its own; the rest of the batch lands.
    let huge = format!(
        "{{\"guid\":\"{LAB_2203}\",\"ts\":1,\"temp\":1,\"pad\":\"{}\"}}",
        "x".repeat(1_000 * 1024)
    );
    let records = json!([{ "Data": b64(&huge) }, one]);
    let reply = put_batch(&pool, "sensors", records).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["FailedPutCount"], 1);
    assert_eq!(count(&pool, "message").await, 1);
    // Each refused request, and the oversize record, is kept with its reason.
    let letters = dead_letters(&pool).await;
    assert_eq!(letters.len(), 4, "{letters:?}");
    assert!(
        letters[0].3.contains("\"nope\" not found"),
        "{:?}",
        letters[0].3
    );
    assert!(letters[1].3.contains("got 501"), "{:?}", letters[1].3);
    assert!(letters[3].1.ends_with("record 0") && letters[3].2.len() > 1_000 * 1024);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn malformed_requests_get_the_protocol_error(pool: PgPool) {
    let request = Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecord")
        .body(Body::from("{not json"))
        .expect("request");
    assert_error(
        &send(state(pool.clone(), None), request).await,
        StatusCode::BAD_REQUEST,
        "SerializationException",
    );

    let reply = firehose(
        &pool,
        "DeleteDeliveryStream",
        json!({ "DeliveryStreamName": "sensors" }),
    )
    .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "UnknownOperationException");

    let body = json!({ "DeliveryStreamName": "sensors", "Record": { "Data": b64("{\"guid\":\"g\",\"ts\":1,\"temp\":\"hot\"}") } });
    assert_error(
        &firehose(&pool, "PutRecord", body).await,
        StatusCode::BAD_REQUEST,
        "InvalidArgumentException",
    );
    assert_eq!(count(&pool, "message").await, 0);
    let letters = dead_letters(&pool).await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(letters[0].2, b"{not json");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_database_outage_is_a_retryable_error(pool: PgPool) {
    let app_state = state(pool.clone(), None);
    support::ingest_key(&pool).await;
    pool.close().await;
    let body =
        json!({ "DeliveryStreamName": "sensors", "Record": { "Data": b64(&reading(1, 70.0)) } });
    let request = Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecord")
        .body(Body::from(body.to_string()))
        .expect("request");
    assert_error(
        &send(app_state, request).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn ndjson_lines_are_stored_and_bad_lines_named(pool: PgPool) {
    let body = format!(
        "{}\n{{\"guid\":1}}\n\n{}\n",
        reading(1, 70.0),
        reading(2, 71.0)
    );
    let out = ndjson_to_sensors(&pool, body).await;
    assert_eq!(out["accepted"], 2);
    assert_eq!(out["rejected"][0]["line"], 2);
    assert_eq!(count(&pool, "message").await, 2);

    let request = Request::post("/ingest/unknown")
        .body(Body::from(reading(1, 70.0)))
        .expect("request");
    assert_eq!(
        send(state(pool.clone(), None), request).await.status,
        StatusCode::NOT_FOUND
    );
    let letters = dead_letters(&pool).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(
        (letters[0].0.as_str(), letters[0].2.as_slice()),
        ("ndjson", b"{\"guid\":1}".as_slice())
    );
    assert!(letters[0].1.ends_with("line 2"), "{:?}", letters[0]);
    assert!(letters[1].3.contains("not found"), "{:?}", letters[1]);
}

/// Hostile records: SQL and markup are stored as the plain values they are;
/// invalid UTF-8, an overlong value and deep nesting are refused line by line
/// with a reason, kept byte for byte as dead letters, and the rest lands.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn hostile_records_are_values_or_refused_with_a_reason(pool: PgPool) {
    let sql = "x'); DROP TABLE message; --";
    let markup = "<script>alert(1)</script>";
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let refused: Vec<Vec<u8>> = vec![
        b"{\"guid\":\"\xff\xfe\",\"ts\":1,\"temp\":1}".to_vec(),
        json!({ "guid": "g".repeat(100_000), "ts": 1, "temp": 1 })
            .to_string()
            .into_bytes(),
        format!("{{\"guid\":\"a\",\"ts\":1,\"temp\":{nested}}}").into_bytes(),
    ];
    let mut body = Vec::new();
    for guid in [sql, markup] {
        body.extend(
            json!({ "guid": guid, "ts": 1_700_000_000, "temp": 21.5 })
                .to_string()
                .into_bytes(),
        );
        body.push(b'\n');
    }
    for line in &refused {
        body.extend(line);
        body.push(b'\n');
    }
    let out = ndjson_to_sensors(&pool, body).await;
    assert_eq!(out["accepted"], 2, "{out}");
    let reasons: Vec<String> = out["rejected"]
        .as_array()
        .expect("rejected lines")
        .iter()
        .map(|r| r["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(reasons.len(), 3, "{out}");
    assert!(reasons[0].contains("invalid unicode"), "{reasons:?}");
    assert!(reasons[1].contains("1 to 36 characters"), "{reasons:?}");
    assert!(reasons[2].contains("expected f64"), "{reasons:?}");

    let stored: Vec<String> = sqlx::query_scalar("SELECT guid FROM message ORDER BY guid")
        .fetch_all(&pool)
        .await
        .expect("the table is still there");
    assert_eq!(stored, vec![markup.to_string(), sql.to_string()]);
    let letters = dead_letters(&pool).await;
    let kept: Vec<Vec<u8>> = letters.into_iter().map(|l| l.2).collect();
    assert_eq!(kept, refused);
}
