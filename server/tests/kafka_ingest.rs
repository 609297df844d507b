//! Readings through a real Kafka broker into Postgres.
//!
//! Needs a broker: `./scripts/test` starts one and sets
//! `PULSEBOARD_TEST_KAFKA_BOOTSTRAP`. Without it these tests fail; they never skip.

mod support;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use server::config::KafkaConfig;
use server::kafka::ReadingPublisher;
use server::reading::Reading;
use server::simulator::seed_waves;
use sqlx::PgPool;
use std::time::Duration;
use support::{committed_total, scalar, wait_for};

/// How long a test waits for rows to arrive.
const WAIT: Duration = Duration::from_secs(60);

fn broker() -> String {
    std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
        .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP must name a running Kafka broker (./scripts/test starts one)")
}

/// A topic and group no other test uses.
fn unique_config(test: &str) -> KafkaConfig {
    let nonce: u64 = rand::random();
    KafkaConfig {
        bootstrap_servers: broker(),
        readings_topic: format!("test.{test}.{nonce:x}"),
        group_id: format!("test-{test}-{nonce:x}"),
        ..Default::default()
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn readings_on_a_topic_reach_message_and_sensor_avg_temp(pool: PgPool) {
    let config = unique_config("readings");
    let publisher = ReadingPublisher::new(&config).expect("producer");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut rng = rand::rng();
    let mut waves = seed_waves();
    let mut readings: Vec<Reading> = Vec::new();
    for step in 0..50 {
        readings.extend(
            waves
                .iter_mut()
                .map(|w| w.next_reading(ts - 50 + step, &mut rng)),
        );
    }
    publisher.publish(&readings).await.expect("published");

    // A payload that is not a reading: it must be kept as a dead letter, not stop the partition.
    send_junk(&config).await;

    let (shutdown, task) = support::start_consumer(&pool, &config);

    let stored = wait_for(
        &pool,
        "SELECT count(*) FROM message",
        readings.len() as i64,
        WAIT,
    )
    .await;
    let dead = wait_for(&pool, "SELECT count(*) FROM dead_letters", 1, WAIT).await;
    // The consumer reports each partition's lag for /metrics; all caught up, it is zero.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let lag = loop {
        let lag = server::metrics::global().kafka_lag(&config.readings_topic);
        if (lag.len() == 3 && lag.values().all(|l| *l == 0))
            || tokio::time::Instant::now() > deadline
        {
            break lag;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        lag.into_iter().collect::<Vec<_>>(),
        [(0, 0), (1, 0), (2, 0)]
    );
    shutdown.cancel();
    task.await.expect("consumer task");

    assert_eq!(stored, readings.len() as i64);
    assert_eq!(dead, 1);
    let (payload, position): (Vec<u8>, String) =
        sqlx::query_as("SELECT payload, position FROM dead_letters")
            .fetch_one(&pool)
            .await
            .expect("dead letter");
    assert_eq!(payload, b"{not json");
    assert!(position.starts_with(&config.readings_topic), "{position}");

    // The view agrees with an average computed here from what was sent.
    let guid = "03e39872-e105-4be4-83c0-9ade818465dc";
    let sent: Vec<f64> = readings
        .iter()
        .filter(|r| r.guid == guid)
        .map(|r| r.temp)
        .collect();
    let mean = sent.iter().sum::<f64>() / sent.len() as f64;
    let (avg, n): (f64, i64) = sqlx::query_as(
        "SELECT avg_temp::float8, msg_count::int8 FROM sensor_avg_temp WHERE guid = $1",
    )
    .bind(guid)
    .fetch_one(&pool)
    .await
    .expect("sensor_avg_temp row");
    assert_eq!(n, 50);
    // Each temperature is stored to the cent (numeric(5,2)) and the view
    // rounds its average to the cent: each moves it by up to 0.005.
    assert!(
        (avg - mean).abs() <= 0.01 + 1e-9,
        "view {avg} vs the mean sent {mean}"
    );

    // Offsets are committed only for what was stored: all 301 records. The
    // copy in Kafka is committed asynchronously, so give it a moment.
    let expected = readings.len() as i64 + 1;
    assert_eq!(committed_once_settled(&config, expected).await, expected);
}

/// Produces `{not json` to the test's topic: a record that is not a reading.
async fn send_junk(config: &KafkaConfig) {
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create()
        .expect("producer");
    raw.send(
        FutureRecord::to(&config.readings_topic)
            .key("junk")
            .payload("{not json"),
        Duration::from_secs(10),
    )
    .await
    .expect("junk sent");
}

/// The group's committed offsets in Kafka, once they reach `expected` or 10 s
/// pass: Kafka's copy is committed asynchronously.
async fn committed_once_settled(config: &KafkaConfig, expected: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while committed_total(config) < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    committed_total(config)
}

/// One reading from each seed sensor, taken at `ts`.
fn one_per_sensor(ts: i64) -> Vec<Reading> {
    let mut rng = rand::rng();
    seed_waves()
        .iter_mut()
        .map(|w| w.next_reading(ts, &mut rng))
        .collect()
}

/// Runs a consumer until `expected` rows are stored, gives a re-read the
/// chance to show up, stops it, and returns how many rows are stored.
async fn consume_until(pool: &PgPool, config: &KafkaConfig, expected: i64) -> i64 {
    let (shutdown, task) = support::start_consumer(pool, config);
    wait_for(pool, "SELECT count(*) FROM message", expected, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    task.await.expect("consumer task");
    support::count(pool, "message").await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_restarted_consumer_resumes_without_rereading(pool: PgPool) {
    let config = unique_config("resume");
    let publisher = ReadingPublisher::new(&config).expect("producer");
    publisher
        .publish(&one_per_sensor(1_700_000_000))
        .await
        .expect("published");
    assert_eq!(consume_until(&pool, &config, 6).await, 6);
    publisher
        .publish(&one_per_sensor(1_700_000_001))
        .await
        .expect("published");
    assert_eq!(consume_until(&pool, &config, 12).await, 12);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn records_already_stored_are_skipped_when_kafka_forgot_its_offsets(pool: PgPool) {
    let config = unique_config("replay");
    let publisher = ReadingPublisher::new(&config).expect("producer");
    publisher
        .publish(&one_per_sensor(1_700_000_000))
        .await
        .expect("published");
    publisher
        .publish(&one_per_sensor(1_700_000_001))
        .await
        .expect("published");
    assert_eq!(consume_until(&pool, &config, 12).await, 12);

    // As after a crash between the Postgres commit and the Kafka commit: the
    // group's offsets in Kafka are gone, so it reads the topic from the start.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create()
        .expect("admin client");
    let deleted = admin
        .delete_groups(&[config.group_id.as_str()], &AdminOptions::new())
        .await
        .expect("delete group");
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");
    assert_eq!(committed_total(&config), 0);

    publisher
        .publish(&one_per_sensor(1_700_000_002))
        .await
        .expect("published");
    assert_eq!(
        consume_until(&pool, &config, 18).await,
        18,
        "the first 12 must not be stored twice"
    );
    let offsets =
        server::offsets::stored_for_topic(&pool, &config.group_id, &config.readings_topic)
            .await
            .expect("stored offsets");
    assert_eq!(offsets.values().sum::<i64>(), 18);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn replay_rebuilds_readings_and_statistics_from_the_topic(pool: PgPool) {
    use server::replay::{self, Progress};
    let config = unique_config("replay-cli");
    let publisher = ReadingPublisher::new(&config).expect("producer");
    let mut readings = Vec::new();
    for second in 0..100 {
        readings.extend(one_per_sensor(1_700_000_000 + second));
    }
    publisher.publish(&readings).await.expect("published");
    send_junk(&config).await;

    let mut seen = Vec::new();
    let topics = [config.readings_topic.clone()];
    let mut batch = server::store::Batch::default();
    let done = replay::run(&pool, &config, &topics, &mut batch, |p| seen.push(p))
        .await
        .expect("replay");
    assert_eq!(
        done,
        Progress {
            done: 601,
            total: 601
        }
    );
    assert_eq!(
        seen.first(),
        Some(&Progress {
            done: 0,
            total: 601
        })
    );
    assert_eq!(seen.last(), Some(&done));
    assert_eq!(scalar(&pool, "SELECT count(*) FROM message").await, 600);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM dead_letters").await, 1);
    assert_eq!(
        scalar(&pool, "SELECT sum(msg_count)::int8 FROM sensor_stats").await,
        600
    );

    // Again with a reset: rebuilt, not doubled.
    replay::reset_readings(&pool).await.expect("reset");
    replay::run(&pool, &config, &topics, &mut batch, |_| {})
        .await
        .expect("replay again");
    assert_eq!(scalar(&pool, "SELECT count(*) FROM message").await, 600);
    assert_eq!(
        scalar(&pool, "SELECT sum(msg_count)::int8 FROM sensor_stats").await,
        600
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM dead_letters").await, 1);
    // The live consumer group never moved.
    assert_eq!(committed_total(&config), 0);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn records_are_read_again_when_kafka_remembers_more_than_postgres(pool: PgPool) {
    let config = unique_config("restore");
    let publisher = ReadingPublisher::new(&config).expect("producer");
    for second in 0..2 {
        publisher
            .publish(&one_per_sensor(1_700_000_000 + second))
            .await
            .expect("published");
    }
    assert_eq!(consume_until(&pool, &config, 12).await, 12);
    assert_eq!(
        committed_once_settled(&config, 12).await,
        12,
        "Kafka holds the group's offsets"
    );

    // As after restoring an empty database: Kafka still says 12 were read.
    sqlx::query("DELETE FROM message")
        .execute(&pool)
        .await
        .expect("emptied");
    sqlx::query("DELETE FROM kafka_offsets")
        .execute(&pool)
        .await
        .expect("offsets forgotten");
    publisher
        .publish(&one_per_sensor(1_700_000_002))
        .await
        .expect("published");
    assert_eq!(
        consume_until(&pool, &config, 18).await,
        18,
        "Postgres holds no offsets, so the topic is read from its start"
    );
}
