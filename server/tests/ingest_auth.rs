//! Authenticated ingest through the real router and Postgres: Firehose
//! requests must carry a Signature Version 4 signature of an active ingest
//! key, NDJSON requests the key itself; anything else is refused in the
//! protocol's own shape and stores nothing, not even a dead letter.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sqlx::PgPool;
use support::{Reply, count, send_as_is, state};

const TARGET: &str = "Firehose_20150804.PutRecord";

fn body(guid: &str) -> String {
    let record = json!({"guid": guid, "ts": 1_795_600_000, "temp": 20.5}).to_string();
    json!({"DeliveryStreamName": "sensors", "Record": {"Data": BASE64.encode(record)}}).to_string()
}

fn now() -> i64 {
    server::reading::epoch_micros() / 1_000_000
}

/// A Firehose request signed with `key` at `when`; `sent` is the body that
/// actually goes out (the signed one unless a test tampers with it).
async fn firehose(
    pool: &PgPool,
    key: Option<(&str, &str)>,
    when: i64,
    signed: &str,
    sent: &str,
) -> Reply {
    let headers = [("host", "pulseboard.test"), ("x-amz-target", TARGET)];
    let mut request = Request::post("/")
        .header("host", "pulseboard.test")
        .header("x-amz-target", TARGET);
    if let Some(key) = key {
        for (name, value) in server::sigv4::sign(
            "POST",
            "/",
            &headers,
            signed.as_bytes(),
            key,
            "us-east-1",
            when,
        ) {
            request = request.header(name, value);
        }
    }
    send_as_is(
        state(pool.clone(), None),
        request.body(Body::from(sent.to_string())).unwrap(),
    )
    .await
}

fn error_type(reply: &Reply) -> String {
    reply.json()["__type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn stored_nothing(pool: &PgPool) {
    assert_eq!(
        count(pool, "message").await,
        0,
        "a refused request stored a reading"
    );
    assert_eq!(
        count(pool, "dead_letters").await,
        0,
        "a refused request stored a dead letter"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn firehose_requests_need_a_valid_signature_of_an_active_key(pool: PgPool) {
    let key = app::accounts::keys::create(&pool, "test", "test")
        .await
        .unwrap();
    let key = (key.access_key_id.as_str(), key.secret.as_str());
    let b = body("signed-sensor");

    let unsigned = firehose(&pool, None, now(), &b, &b).await;
    assert_eq!(unsigned.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&unsigned), "MissingAuthenticationTokenException");

    let refusals = [
        (
            firehose(&pool, Some((key.0, "not the secret")), now(), &b, &b).await,
            "InvalidSignatureException",
        ),
        (
            firehose(&pool, Some(("PBKNOSUCHKEY00000000", key.1)), now(), &b, &b).await,
            "UnrecognizedClientException",
        ),
        (
            firehose(&pool, Some(key), now(), &b, &body("another-sensor")).await,
            "InvalidSignatureException",
        ),
        (
            firehose(&pool, Some(key), now() - 3600, &b, &b).await,
            "InvalidSignatureException",
        ),
    ];
    for (reply, expected) in &refusals {
        assert_eq!(error_type(reply), *expected, "{}", reply.body);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    assert!(
        refusals[3].0.body.contains("Signature expired"),
        "{}",
        refusals[3].0.body
    );
    let mut garbled = Request::post("/")
        .header("host", "pulseboard.test")
        .header("x-amz-target", TARGET)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=nonsense")
        .body(Body::from(b.clone()))
        .unwrap();
    garbled
        .headers_mut()
        .insert("x-amz-date", "20261126T000000Z".parse().unwrap());
    let garbled = send_as_is(state(pool.clone(), None), garbled).await;
    assert_eq!(
        error_type(&garbled),
        "IncompleteSignatureException",
        "{}",
        garbled.body
    );
    let signed_headers = [("host", "pulseboard.test"), ("x-amz-target", TARGET)];
    let mut other_service = Request::post("/")
        .header("host", "pulseboard.test")
        .header("x-amz-target", TARGET);
    for (name, value) in server::sigv4::sign(
        "POST",
        "/",
        &signed_headers,
        b.as_bytes(),
        key,
        "us-east-1",
        now(),
    ) {
        // A credential scoped to another AWS service.
        other_service = other_service.header(name, value.replace("/firehose/", "/s3/"));
    }
    let other_service = send_as_is(
        state(pool.clone(), None),
        other_service.body(Body::from(b.clone())).unwrap(),
    )
    .await;
    assert_eq!(error_type(&other_service), "InvalidSignatureException");
    assert!(
        other_service
            .body
            .contains("scoped to correct service: 'firehose'"),
        "{}",
        other_service.body
    );
    stored_nothing(&pool).await;

    let accepted = firehose(&pool, Some(key), now(), &b, &b).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(count(&pool, "message").await, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_revoked_key_is_refused_from_the_next_request(pool: PgPool) {
    let key = app::accounts::keys::create(&pool, "to revoke", "test")
        .await
        .unwrap();
    let b = body("revoked-sensor");
    let signed = (key.access_key_id.as_str(), key.secret.as_str());
    assert_eq!(
        firehose(&pool, Some(signed), now(), &b, &b).await.status,
        StatusCode::OK
    );

    // Revoked by an admin through the server function the admin page calls.
    let id: i64 = sqlx::query_scalar("SELECT id FROM ingest_keys WHERE access_key_id = $1")
        .bind(&key.access_key_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let path = support::server_fn_path("revoke_ingest_key");
    let revoke = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("id={id}")))
        .unwrap();
    let revoked = support::send(state(pool.clone(), None), revoke).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);

    let after = firehose(&pool, Some(signed), now(), &b, &b).await;
    assert_eq!(error_type(&after), "UnrecognizedClientException");
    let ndjson = Request::post("/ingest/sensors")
        .header(
            "authorization",
            format!("Bearer {}:{}", key.access_key_id, key.secret),
        )
        .body(Body::from(
            r#"{"guid": "revoked-sensor", "ts": 1795600000, "temp": 1.5}"#,
        ))
        .unwrap();
    assert_eq!(
        send_as_is(state(pool.clone(), None), ndjson).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        count(&pool, "message").await,
        1,
        "only the reading sent before revoking"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn ndjson_requests_need_an_active_key(pool: PgPool) {
    let key = app::accounts::keys::create(&pool, "test", "test")
        .await
        .unwrap();
    let line = r#"{"guid": "ndjson-sensor", "ts": 1795600000, "temp": 19.0}"#;
    let post = |authorization: Option<String>| {
        let pool = pool.clone();
        async move {
            let mut request = Request::post("/ingest/sensors");
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            send_as_is(state(pool, None), request.body(Body::from(line)).unwrap()).await
        }
    };
    let missing = post(None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert!(
        missing.body.contains("needs an ingest key"),
        "{}",
        missing.body
    );
    for wrong in [
        format!("Bearer {}:wrong", key.access_key_id),
        format!("Bearer {}", key.access_key_id),
        format!("Bearer PBKNOSUCHKEY00000000:{}", key.secret),
        format!("Basic {}", key.secret),
    ] {
        assert_eq!(
            post(Some(wrong.clone())).await.status,
            StatusCode::UNAUTHORIZED,
            "{wrong}"
        );
    }
    stored_nothing(&pool).await;
    let good = post(Some(format!("Bearer {}:{}", key.access_key_id, key.secret))).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert_eq!(count(&pool, "message").await, 1);
}
