//! Faults of the services around Pulseboard, injected while it ingests: the
//! Kafka broker restarted, Postgres stopped for 30 s. The broker and the
//! Postgres that fail are the tests' own, started with the project's
//! scripts, so stopping them disturbs no other test.

mod support;

use server::config::KafkaConfig;
use server::kafka::ReadingPublisher;
use server::reading::Reading;
use server::simulator::seed_waves;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{scalar, wait_for};

/// A single-node Kafka broker in a directory of its own.
struct Broker {
    dir: PathBuf,
    port: u16,
}

impl Broker {
    fn start() -> Self {
        let broker = Broker {
            dir: std::env::temp_dir()
                .join(format!("pulseboard-broker-{:x}", rand::random::<u64>())),
            port: support::free_port(),
        };
        broker.run("kafka_start", true);
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kafka_start`, `kafka_restart` or `kafka_stop` from `scripts/lib/kafka.sh`.
    fn run(&self, function: &str, with_port: bool) {
        let port = if with_port {
            self.port.to_string()
        } else {
            String::new()
        };
        script(
            "kafka.sh",
            &format!("{function} '{}' {port}", self.dir.display()),
        );
    }

    fn stop(&self) {
        self.run("kafka_stop", false);
    }
}

/// Runs `call` in bash with `scripts/lib/tools.sh` and `scripts/lib/{library}` loaded.
fn script(library: &str, call: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source scripts/lib/tools.sh && source scripts/lib/{library} && {call}"
        ))
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("bash runs");
    assert!(status.success(), "{call} failed");
}

/// A Postgres 15 cluster in a directory of its own.
struct Postgres {
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Self {
        let postgres = Postgres {
            dir: std::env::temp_dir().join(format!("pulseboard-pg-{:x}", rand::random::<u64>())),
            port: support::free_port(),
        };
        postgres.resume();
        postgres
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/pulseboard", self.port)
    }

    /// Starts it again with the data it had.
    fn resume(&self) {
        script(
            "postgres.sh",
            &format!("pg_start '{}' {}", self.dir.display(), self.port),
        );
    }

    fn stop(&self) {
        script("postgres.sh", &format!("pg_stop '{}'", self.dir.display()));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One reading per sensor for each second in `seconds`: distinct
/// `(guid, ts)` pairs, so a duplicate shows.
async fn publish(config: &KafkaConfig, seconds: std::ops::Range<i64>) -> i64 {
    let publisher = ReadingPublisher::new(config).expect("producer");
    let mut rng = rand::rng();
    let mut waves = seed_waves();
    let mut batch: Vec<Reading> = Vec::new();
    let mut published = 0;
    for second in seconds {
        for wave in waves.iter_mut() {
            batch.push(wave.next_reading(1_700_000_000 + second, &mut rng));
        }
        if batch.len() >= 6_000 {
            publisher.publish(&batch).await.expect("published");
            published += batch.len() as i64;
            batch.clear();
        }
    }
    publisher.publish(&batch).await.expect("published");
    published + batch.len() as i64
}

/// The shipped sensors stream, reading `topic`.
fn sensors_definition(topic: &str) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../streams/sensors.toml");
    let text = std::fs::read_to_string(shipped).expect("shipped definition");
    let dir = std::env::temp_dir().join(format!("pulseboard-streams-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("definitions dir");
    std::fs::write(
        dir.join("sensors.toml"),
        text.replace("\"sensor.readings\"", &format!("{topic:?}")),
    )
    .expect("definition written");
    dir
}

/// The broker stops while Pulseboard works through a backlog and comes back
/// 5 s later: Pulseboard reconnects, takes the rest of the backlog and what
/// is produced after the restart, and stores every reading exactly once.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_broker_restarted_under_ingest_loses_and_doubles_nothing(pool: PgPool) {
    let broker = Broker::start();
    let nonce: u64 = rand::random();
    let config = KafkaConfig {
        bootstrap_servers: broker.bootstrap(),
        readings_topic: format!("test.restart.{nonce:x}"),
        group_id: format!("test-restart-{nonce:x}"),
        ..Default::default()
    };
    let before = publish(&config, 0..40_000).await;
    let dir = sensors_definition(&config.readings_topic);
    let _instance = support::start_instance(
        &pool,
        &[
            ("PULSEBOARD_STREAMS_DIR", dir.to_str().expect("utf-8 path")),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", &config.bootstrap_servers),
            ("PULSEBOARD_KAFKA_TOPIC", &config.readings_topic),
            ("PULSEBOARD_KAFKA_GROUP", &config.group_id),
            // Small flushes: the stop lands among many of them.
            ("PULSEBOARD_FLUSH_MAX_RECORDS", "2000"),
        ],
    );
    let stored = "SELECT count(*) FROM message";
    let storing = wait_for(&pool, stored, 1, Duration::from_secs(120)).await;
    assert!(storing > 0, "nothing stored in 2 minutes");

    broker.stop();
    let at_stop = scalar(&pool, stored).await;
    assert!(
        at_stop < before,
        "the backlog was stored before the broker stopped: nothing tested"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    broker.run("kafka_restart", false);
    let after = publish(&config, 40_000..45_000).await;

    let total = before + after;
    let all = wait_for(&pool, stored, total, Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scalar(&pool, stored).await, total, "after {all}");
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM (SELECT DISTINCT guid, ts FROM message) d"
        )
        .await,
        total
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT sum(msg_count)::int8 FROM sensor_stats_minutely"
        )
        .await,
        total
    );
    eprintln!("broker stopped with {at_stop} of {before} readings stored; all {total} stored once");
    let _ = std::fs::remove_dir_all(dir);
}

/// Postgres stops for 30 s while Pulseboard works through a Kafka backlog
/// and takes HTTP ingest. Meanwhile health says degraded, HTTP ingest answers
/// with a retryable error and stores nothing, and no Kafka offset moves.
/// After Postgres returns, every reading produced before and during the
/// outage is stored once, and HTTP ingest works again.
#[tokio::test]
async fn postgres_stopped_for_30_s_under_ingest_loses_nothing() {
    let postgres = Postgres::start();
    let pool = PgPool::connect(&postgres.url()).await.expect("connect");
    let nonce: u64 = rand::random();
    let config = KafkaConfig {
        bootstrap_servers: std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
            .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP (./scripts/test starts a broker)"),
        readings_topic: format!("test.outage.{nonce:x}"),
        group_id: format!("test-outage-{nonce:x}"),
        ..Default::default()
    };
    let backlog = publish(&config, 0..40_000).await;
    let dir = sensors_definition(&config.readings_topic);
    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _instance = support::start_instance(
        &pool,
        &[
            ("DATABASE_URL", &postgres.url()),
            ("PULSEBOARD_ADDR", &addr),
            ("PULSEBOARD_STREAMS_DIR", dir.to_str().expect("utf-8 path")),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", &config.bootstrap_servers),
            ("PULSEBOARD_KAFKA_TOPIC", &config.readings_topic),
            ("PULSEBOARD_KAFKA_GROUP", &config.group_id),
            ("PULSEBOARD_FLUSH_MAX_RECORDS", "2000"),
        ],
    );
    support::wait_until_serving(port).await;
    let stored = "SELECT count(*) FROM message";
    assert!(wait_for(&pool, stored, 1, Duration::from_secs(120)).await > 0);

    let at_stop = scalar(&pool, stored).await;
    support::ingest_key(&pool).await;
    postgres.stop();
    let stopped = tokio::time::Instant::now();
    let (status, health) = support::request(port, "GET", "/healthz", &[], b"").await;
    assert_eq!(status, 503, "{health}");
    assert!(health.contains("degraded"), "{health}");
    let record = br#"{"guid": "outage-sensor", "ts": 1700000000, "temp": 21.5}"#;
    let (status, reply) = support::post_ingest(&pool, port, "/ingest/sensors", &[], record).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains("retry"), "{reply}");
    let during = publish(&config, 40_000..45_000).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let committed_early = support::committed_total(&config);
    tokio::time::sleep_until(stopped + Duration::from_secs(30)).await;
    assert_eq!(
        support::committed_total(&config),
        committed_early,
        "offsets committed while Postgres was down"
    );
    postgres.resume();

    let total = backlog + during;
    let all = wait_for(&pool, stored, total, Duration::from_secs(300)).await;
    assert_eq!(
        all, total,
        "stored {all} of {total}; {at_stop} before the outage"
    );
    let (status, reply) = support::post_ingest(&pool, port, "/ingest/sensors", &[], record).await;
    assert_eq!(status, 200, "{reply}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scalar(&pool, stored).await, total + 1);
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM (SELECT DISTINCT guid, ts FROM message) d"
        )
        .await,
        total + 1
    );
    let (status, health) = support::request(port, "GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200, "{health}");
    eprintln!(
        "Postgres stopped 30 s with {at_stop} of {backlog} readings stored; all {total} stored once after"
    );
    pool.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
