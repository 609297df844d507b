//! The limits that keep one client from holding the server: records per
//! second per ingest key, the request-time limit and the connection limit.
//! Each is answered with a clear error in the protocol's shape, and a refused
//! request stores nothing (or, cut off while being stored, says it may have).

mod support;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use support::{Reply, count, send_as_is, send_ingest, state};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn reading(n: usize) -> String {
    json!({ "guid": format!("limit-sensor-{n}"), "ts": 1_795_600_000 + n as i64, "temp": 20.5 })
        .to_string()
}

fn put_batch(records: std::ops::Range<usize>) -> Request<Body> {
    let records: Vec<_> = records
        .map(|n| json!({ "Data": BASE64.encode(reading(n)) }))
        .collect();
    Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(
            json!({ "DeliveryStreamName": "sensors", "Records": records }).to_string(),
        ))
        .expect("request")
}

fn ndjson(records: std::ops::Range<usize>) -> Request<Body> {
    let lines: Vec<String> = records.map(reading).collect();
    Request::post("/ingest/sensors")
        .body(Body::from(lines.join("\n")))
        .expect("request")
}

fn message(reply: &Reply) -> String {
    let body = reply.json();
    body["message"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or_else(|| panic!("no error message: {body}"))
        .to_string()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_ingest_key_over_its_rate_is_told_when_to_retry_and_nothing_more_is_stored(
    pool: PgPool,
) {
    let mut limited = state(pool.clone(), None);
    limited.ingest_rates = server::ingest_rate::IngestRates::new(100);

    // A second's worth passes at once.
    let first = send_ingest(limited.clone(), put_batch(0..100)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    // Firehose's answer for a stream over its throughput: SDKs back off and retry.
    let over = send_ingest(limited.clone(), put_batch(100..200)).await;
    assert_eq!(
        over.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        over.body
    );
    assert_eq!(over.json()["__type"], "ServiceUnavailableException");
    assert!(
        message(&over).contains("over its limit of 100 records per second; nothing was stored"),
        "{}",
        over.body
    );
    assert_eq!(over.header("retry-after"), Some("1"));

    // The NDJSON endpoint answers 429, as HTTP clients expect.
    let over = send_ingest(limited.clone(), ndjson(200..210)).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(message(&over).contains("over its limit"), "{}", over.body);
    assert_eq!(over.header("retry-after"), Some("1"));

    // Another key has its own allowance.
    let other = app::accounts::keys::create(&pool, "other", "test")
        .await
        .expect("key");
    let mut request = ndjson(300..310);
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}:{}", other.access_key_id, other.secret)
            .parse()
            .expect("header"),
    );
    let other = send_as_is(limited.clone(), request).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);

    assert_eq!(count(&pool, "message").await, 110, "refused records stored");
    assert_eq!(count(&pool, "dead_letters").await, 0);

    // After the refill, the refused batch is accepted.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let retried = send_ingest(limited, put_batch(100..200)).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(count(&pool, "message").await, 210);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_request_whose_body_stalls_is_cut_off_and_nothing_is_stored(pool: PgPool) {
    let mut impatient = state(pool.clone(), None);
    impatient.request_timeout = Duration::from_millis(500);
    let key = support::ingest_key(&pool).await;
    // The first line arrives; the rest never does.
    let stalled = futures_stall(format!("{}\n", reading(1)));
    let request = Request::post("/ingest/sensors")
        .header("authorization", format!("Bearer {}:{}", key.0, key.1))
        .body(Body::from_stream(stalled))
        .expect("request");
    let reply = send_as_is(impatient, request).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        message(&reply).contains("nothing was stored, retry the request"),
        "{}",
        reply.body
    );
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(count(&pool, "message").await, 0);
    assert_eq!(count(&pool, "dead_letters").await, 0);
}

/// A body that sends `first` and then nothing, without ending.
fn futures_stall(
    first: String,
) -> impl tokio_stream::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    use tokio_stream::StreamExt;
    tokio_stream::once(Ok(Bytes::from(first))).chain(tokio_stream::pending())
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_ingest_request_held_up_in_the_database_says_its_records_may_still_be_stored(
    pool: PgPool,
) {
    let mut impatient = state(pool.clone(), None);
    impatient.request_timeout = Duration::from_secs(1);
    // Another session holds the raw table, as a long migration or vacuum might.
    let mut blocker = pool.begin().await.expect("transaction");
    sqlx::query("LOCK TABLE message IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");

    let reply = send_ingest(impatient, put_batch(0..3)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["__type"], "ServiceUnavailableException");
    assert!(
        message(&reply).contains("its records may still be stored"),
        "{}",
        reply.body
    );
    // Not "retry": a retry could store the records twice.
    assert_eq!(reply.header("retry-after"), None);

    // The transaction was already under way: once the table is free it commits.
    blocker.rollback().await.expect("unlock");
    let stored = support::wait_for(
        &pool,
        "SELECT count(*) FROM message",
        3,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(stored, 3);
}

/// Starts the binary on `port` with the project's stream definitions and `limits`.
fn start_limited(pool: &PgPool, port: u16, limits: &[(&str, &str)]) -> support::Instance {
    let addr = format!("127.0.0.1:{port}");
    let streams = concat!(env!("CARGO_MANIFEST_DIR"), "/../streams");
    let dashboards = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
    let mut env = vec![
        ("PULSEBOARD_ADDR", addr.as_str()),
        ("PULSEBOARD_STREAMS_DIR", streams),
        ("PULSEBOARD_DASHBOARDS_DIR", dashboards),
    ];
    env.extend_from_slice(limits);
    support::start_instance(pool, &env)
}

/// Reads until the server closes the connection; the response text.
async fn read_to_close(connection: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), connection.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn healthz_status(port: u16) -> String {
    let mut connection = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let answer = read_to_close(&mut connection).await;
    answer.lines().next().unwrap_or_default().to_string()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn connections_over_the_limit_are_answered_503_until_one_closes(pool: PgPool) {
    let port = support::free_port();
    let _instance = start_limited(&pool, port, &[("PULSEBOARD_MAX_CONNECTIONS", "3")]);
    support::wait_until_serving(port).await;
    // Let the server finish with the health check's connection.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    // Give the server time to accept all three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    fourth
        .write_all(b"POST /ingest/sensors HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .expect("send");
    let answer = read_to_close(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
    assert_eq!(body["__type"], "ServiceUnavailableException");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("3 connections open, its limit"),
        "{body}"
    );

    // One closes: a new connection is served again.
    drop(open.pop());
    let mut status = String::new();
    for _ in 0..50 {
        status = healthz_status(port).await;
        if status.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(count(&pool, "message").await, 0);
    assert_eq!(count(&pool, "dead_letters").await, 0);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn idle_and_half_sent_connections_are_closed_so_they_cannot_hold_the_server(pool: PgPool) {
    let port = support::free_port();
    let _instance = start_limited(
        &pool,
        port,
        &[
            ("PULSEBOARD_MAX_CONNECTIONS", "2"),
            ("PULSEBOARD_REQUEST_TIMEOUT", "1s"),
        ],
    );
    support::wait_until_serving(port).await;
    // Let the server finish with the health check's connection.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Both slots taken: one connection sends nothing, one half a request head.
    let mut idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut half = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        healthz_status(port).await.starts_with("HTTP/1.1 503"),
        "the two connections should fill the server"
    );

    // The server closes both after the request-time limit, and serves again.
    read_to_close(&mut idle).await;
    read_to_close(&mut half).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(healthz_status(port).await.starts_with("HTTP/1.1 200"));
}
