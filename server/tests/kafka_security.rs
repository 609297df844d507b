//! Kafka over the security modes MSK offers, against the test broker's TLS
//! and SASL/SCRAM-over-TLS listeners: settings read as a user writes them,
//! readings produced and consumed into Postgres, and a wrong password refused.

use server::config::{Config, KafkaConfig};
use server::kafka::{self, ReadingPublisher};
use server::reading::Reading;
use sqlx::PgPool;
use std::collections::HashMap;

mod support;
use std::time::Duration;

fn test_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} must be set (./scripts/test starts a broker with TLS and SCRAM listeners)")
    })
}

/// The Kafka settings a user would give for `protocol`, read by the service's own parser.
fn settings(protocol: &str, password: &str) -> KafkaConfig {
    let nonce: u64 = rand::random();
    let bootstrap = match protocol {
        "ssl" => test_env("PULSEBOARD_TEST_KAFKA_TLS_BOOTSTRAP"),
        _ => test_env("PULSEBOARD_TEST_KAFKA_SASL_BOOTSTRAP"),
    };
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", "postgres://unused/db".to_string()),
        ("PULSEBOARD_KAFKA_BOOTSTRAP", bootstrap),
        (
            "PULSEBOARD_KAFKA_TOPIC",
            format!("test.secure.{protocol}.{nonce:x}"),
        ),
        ("PULSEBOARD_KAFKA_GROUP", format!("test-secure-{nonce:x}")),
        ("PULSEBOARD_KAFKA_SECURITY_PROTOCOL", protocol.to_string()),
        (
            "PULSEBOARD_KAFKA_CA_FILE",
            test_env("PULSEBOARD_TEST_KAFKA_CA_FILE"),
        ),
        (
            "PULSEBOARD_KAFKA_USERNAME",
            test_env("PULSEBOARD_TEST_KAFKA_SCRAM_USERNAME"),
        ),
        ("PULSEBOARD_KAFKA_PASSWORD", password.to_string()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("valid settings");
    config.kafka.expect("kafka configured")
}

async fn readings_arrive(pool: PgPool, config: KafkaConfig) {
    let readings: Vec<Reading> = (0..50)
        .map(|i| Reading::new("secure-sensor", 1_700_000_000 + i, 70.0 + i as f64 / 10.0))
        .collect();
    ReadingPublisher::new(&config)
        .expect("producer")
        .publish(&readings)
        .await
        .expect("published over the secured listener");
    let (shutdown, task) = support::start_consumer(&pool, &config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut stored: i64 = 0;
    while stored < 50 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stored = sqlx::query_scalar("SELECT count(*) FROM message WHERE guid = 'secure-sensor'")
            .fetch_one(&pool)
            .await
            .expect("count");
    }
    shutdown.cancel();
    task.await.expect("consumer stopped");
    assert_eq!(stored, 50);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn readings_flow_over_tls(pool: PgPool) {
    readings_arrive(pool, settings("ssl", "")).await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn readings_flow_over_sasl_scram(pool: PgPool) {
    let password = test_env("PULSEBOARD_TEST_KAFKA_SCRAM_PASSWORD");
    readings_arrive(pool, settings("sasl_ssl", &password)).await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_shown() {
    let password = "not-the-password-1234";
    let config = settings("sasl_ssl", password);
    let error = kafka::broker_reachable(&config)
        .await
        .expect_err("a wrong password must not get metadata");
    assert!(!error.contains(password), "{error}");
    assert!(!format!("{config:?}").contains(password));
    let right = settings(
        "sasl_ssl",
        &test_env("PULSEBOARD_TEST_KAFKA_SCRAM_PASSWORD"),
    );
    kafka::broker_reachable(&right)
        .await
        .expect("the right password gets metadata");
}
