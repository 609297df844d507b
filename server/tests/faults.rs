//! Faults of the services around Pulseboard, injected while it ingests: the
//! Kafka broker restarted. The broker here is one of this test's own,
//! started with the project's scripts, so stopping it disturbs no other test.

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
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let port = if with_port {
            self.port.to_string()
        } else {
            String::new()
        };
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source scripts/lib/tools.sh && source scripts/lib/kafka.sh && {function} '{}' {port}",
                self.dir.display()
            ))
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("bash runs");
        assert!(status.success(), "{function} failed");
    }

    fn stop(&self) {
        self.run("kafka_stop", false);
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
