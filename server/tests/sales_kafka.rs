//! The sales pipeline fed from Kafka: a purchase waits for its product; two
//! instances in one consumer group, one killed mid-stream, store every
//! purchase exactly once; twenty kills in a row lose and double nothing; a
//! SIGTERM stores what was read before the process exits.

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use server::config::{FlushConfig, KafkaConfig};
use server::consumer;
use server::kafka::{JsonPublisher, Outgoing, ensure_topics};
use server::operators::window::WindowSpec;
use server::sales::{SalesConfig, SalesGenerator};
use server::sales_kafka::{SalesSink, SalesStreams};
use server::sales_pipeline::SalesOutputs;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Instance, results_reader, scalar, wait_for};
use tokio_util::sync::CancellationToken;

mod support;

fn broker() -> String {
    std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
        .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP must name a running Kafka broker (./scripts/test starts one)")
}

fn kafka_config(group: &str) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: broker(),
        readings_topic: String::new(),
        group_id: group.to_string(),
        ..Default::default()
    }
}

/// Sales topics no other test uses.
fn unique_streams(test: &str, join_wait: Duration) -> SalesStreams {
    let nonce: u64 = rand::random();
    let topic = |name: &str| format!("test.{test}.{name}.{nonce:x}");
    SalesStreams {
        products_topics: vec![topic("products")],
        purchases_topics: vec![topic("purchases")],
        inventories_topics: vec![topic("inventories")],
        join_wait,
        windows: WindowSpec::new(600_000, 300_000, 600_000, 300_000).expect("spec"),
        enriched_topic: None,
        running_totals_topic: None,
    }
}

async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

async fn produce(topic: &str, messages: &[(String, Vec<u8>)]) {
    let publisher = JsonPublisher::new(&kafka_config("")).expect("producer");
    for chunk in messages.chunks(10_000) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|(key, payload)| Outgoing {
                topic,
                key,
                payload: payload.clone(),
            })
            .collect();
        publisher.publish(&outgoing).await.expect("published");
    }
}

fn start_sink(pool: &PgPool, streams: &SalesStreams) -> CancellationToken {
    start_sink_with(pool, streams, None)
}

fn start_sink_with(
    pool: &PgPool,
    streams: &SalesStreams,
    outputs: Option<SalesOutputs>,
) -> CancellationToken {
    let group = format!("test-sales-{:x}", rand::random::<u64>());
    start_sink_in(pool, streams, outputs, &group)
}

/// A sales sink consuming in `group`, as one instance of that group would.
fn start_sink_in(
    pool: &PgPool,
    streams: &SalesStreams,
    outputs: Option<SalesOutputs>,
    group: &str,
) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let flush = FlushConfig {
        max_records: 500,
        interval: Duration::from_millis(100),
    };
    tokio::spawn(consumer::run(
        pool.clone(),
        kafka_config(group),
        streams.subscription(group),
        SalesSink::new(streams.clone(), outputs),
        flush,
        shutdown.clone(),
    ));
    shutdown
}

fn product_messages(generator: &SalesGenerator) -> Vec<(String, Vec<u8>)> {
    generator
        .product_events(1_700_000_000_000)
        .into_iter()
        .map(|e| {
            let json = serde_json::to_vec(&e).expect("json");
            (e.product.product_id, json)
        })
        .collect()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_purchase_waits_for_its_product_then_is_enriched(pool: PgPool) {
    let streams = unique_streams("wait", Duration::from_secs(120));
    let mut generator = SalesGenerator::new(SalesConfig::default(), 5);
    let purchase = generator.next_event(1_700_000_000_000).purchase;
    let payload = serde_json::to_vec(&purchase).expect("json");
    produce(
        &streams.purchases_topics[0],
        &[(purchase.product_id.clone(), payload)],
    )
    .await;
    let shutdown = start_sink(&pool, &streams);

    let waiting = "SELECT count(*) FROM pending_purchases";
    assert_eq!(
        wait_for(&pool, waiting, 1, Duration::from_secs(60)).await,
        1
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM purchases_enriched").await,
        0
    );

    produce(&streams.products_topics[0], &product_messages(&generator)).await;
    let enriched = "SELECT count(*) FROM purchases_enriched";
    assert_eq!(
        wait_for(&pool, enriched, 1, Duration::from_secs(60)).await,
        1
    );
    assert_eq!(scalar(&pool, waiting).await, 0);
    let (name, total): (String, f64) = sqlx::query_as(
        "SELECT product_name, total_purchase::float8 FROM purchases_enriched WHERE transaction_id = $1",
    )
    .bind(&purchase.transaction_id)
    .fetch_one(&pool)
    .await
    .expect("enriched row");
    let product = generator.product(&purchase.product_id).expect("product");
    assert_eq!(name, product.item);
    assert_eq!(total, purchase.total_purchase);
    let totals: Vec<(String, i64)> =
        sqlx::query_as("SELECT product_id, transactions FROM running_totals")
            .fetch_all(&pool)
            .await
            .expect("running totals");
    assert_eq!(totals, [(purchase.product_id.clone(), 1)]);
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn windows_closed_before_a_restart_stay_closed(pool: PgPool) {
    windows_stay_closed_after_a_restart(pool, Products::Before).await;
}

/// Purchases that waited for their product move no partition's clock, so
/// the clocks kept for a restart cannot tell which windows they closed.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn windows_closed_by_purchases_that_waited_stay_closed_after_a_restart(pool: PgPool) {
    windows_stay_closed_after_a_restart(pool, Products::AfterThePurchases).await;
}

enum Products {
    Before,
    AfterThePurchases,
}

async fn windows_stay_closed_after_a_restart(pool: PgPool, products_arrive: Products) {
    let streams = unique_streams("restart", Duration::from_secs(30));
    let generator = SalesGenerator::new(SalesConfig::default(), 17);
    let products = product_messages(&generator);
    let mut generator = generator;
    let first = generator.next_event(1_700_000_000_000).purchase;
    let at = |minutes: i64, id: &str| {
        let mut purchase = first.clone();
        purchase.transaction_time =
            server::sales::format_timestamp(1_700_000_000_000 + minutes * 60_000 + 1_000);
        purchase.transaction_id = id.to_string();
        (
            purchase.product_id.clone(),
            serde_json::to_vec(&purchase).expect("json"),
        )
    };
    let purchases = &streams.purchases_topics[0];
    // One partition: a partition not heard from would hold the watermark back.
    create_topic(purchases, 1).await;
    let group = format!("test-restart-{:x}", rand::random::<u64>());
    let before = start_sink_in(&pool, &streams, None, &group);
    // 40 minutes later: the watermark (10 minutes behind) closes the first windows.
    let in_time = [at(0, "1"), at(40, "2")];
    match products_arrive {
        Products::Before => {
            produce(&streams.products_topics[0], &products).await;
            let known = "SELECT count(*) FROM products";
            let all = products.len() as i64;
            assert_eq!(
                wait_for(&pool, known, all, Duration::from_secs(60)).await,
                all
            );
            produce(purchases, &in_time).await;
        }
        Products::AfterThePurchases => {
            produce(purchases, &in_time).await;
            let waiting = "SELECT count(*) FROM pending_purchases";
            assert_eq!(
                wait_for(&pool, waiting, 2, Duration::from_secs(60)).await,
                2
            );
            produce(&streams.products_topics[0], &products).await;
        }
    }
    let stored = "SELECT count(*) FROM purchases_enriched";
    assert_eq!(wait_for(&pool, stored, 2, Duration::from_secs(60)).await, 2);
    // The first purchase's two windows are closed before the restart (with
    // waiting purchases, once the partition, silent since, is idle).
    let closed = "SELECT count(*) FROM sales_windows WHERE is_final";
    assert_eq!(wait_for(&pool, closed, 2, Duration::from_secs(60)).await, 2);
    before.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // After the restart, a purchase for those closed windows is too late.
    produce(purchases, &[at(0, "3")]).await;
    let after = start_sink_in(&pool, &streams, None, &group);
    assert_eq!(wait_for(&pool, stored, 3, Duration::from_secs(60)).await, 3);
    let late = "SELECT count(*) FROM late_events WHERE stream = 'purchases'";
    assert_eq!(wait_for(&pool, late, 1, Duration::from_secs(10)).await, 1);
    // Each of the two purchases in time counts in its two windows; the late one in none.
    let counted = "SELECT sum(transactions)::int8 FROM sales_windows";
    assert_eq!(scalar(&pool, counted).await, 4);
    after.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_purchase_whose_product_never_comes_becomes_a_dead_letter(pool: PgPool) {
    let streams = unique_streams("expire", Duration::from_secs(1));
    let payload = br#"{"transaction_time": "2023-11-14 22:13:20.000000", "transaction_id": "77",
        "product_id": "XX99", "price": 4.99, "quantity": 1, "is_member": false,
        "member_discount": 0.0, "add_supplements": false, "supplement_price": 0.0,
        "total_purchase": 4.99}"#
        .to_vec();
    produce(
        &streams.purchases_topics[0],
        &[("XX99".into(), payload.clone())],
    )
    .await;
    let shutdown = start_sink(&pool, &streams);

    let dead = "SELECT count(*) FROM dead_letters";
    assert_eq!(wait_for(&pool, dead, 1, Duration::from_secs(60)).await, 1);
    let (stored, reason, position): (Vec<u8>, String, String) =
        sqlx::query_as("SELECT payload, reason, position FROM dead_letters")
            .fetch_one(&pool)
            .await
            .expect("dead letter");
    assert_eq!(stored, payload);
    assert!(reason.contains("XX99"), "{reason}");
    let topic = &streams.purchases_topics[0];
    assert!(
        position.starts_with(&format!("{topic}/")) && position.ends_with("@0"),
        "{position}"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM pending_purchases").await,
        0
    );
    shutdown.cancel();
}

/// The shipped definitions with the sales topics renamed to `streams`' topics.
fn definitions_dir(streams: &SalesStreams, sensors_topic: &str) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../streams");
    let dir = std::env::temp_dir().join(format!("pulseboard-streams-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("definitions dir");
    let renames = [
        ("\"demo.products\"", &streams.products_topics[0]),
        ("\"demo.purchases\"", &streams.purchases_topics[0]),
        ("\"demo.inventories\"", &streams.inventories_topics[0]),
        ("\"sensor.readings\"", &sensors_topic.to_string()),
    ];
    for file in [
        "sensors.toml",
        "products.toml",
        "purchases.toml",
        "inventories.toml",
    ] {
        let mut text = std::fs::read_to_string(shipped.join(file)).expect("shipped definition");
        for (from, to) in &renames {
            text = text.replace(from, &format!("{to:?}"));
        }
        // Results go to topics of this test only.
        text = text.replace("\"demo.", &format!("\"{}.", streams.purchases_topics[0]));
        std::fs::write(dir.join(file), text).expect("definition written");
    }
    dir
}

fn start_instance(pool: &PgPool, streams_dir: &Path, group: &str, sensors_topic: &str) -> Instance {
    start_instance_with(pool, streams_dir, group, sensors_topic, &[])
}

fn start_instance_with(
    pool: &PgPool,
    streams_dir: &Path,
    group: &str,
    sensors_topic: &str,
    more_env: &[(&str, &str)],
) -> Instance {
    let broker = broker();
    let mut env = vec![
        (
            "PULSEBOARD_STREAMS_DIR",
            streams_dir.to_str().expect("utf-8 path"),
        ),
        ("PULSEBOARD_KAFKA_BOOTSTRAP", &broker),
        ("PULSEBOARD_KAFKA_GROUP", group),
        ("PULSEBOARD_KAFKA_TOPIC", sensors_topic),
    ];
    env.extend_from_slice(more_env);
    support::start_instance(pool, &env)
}

/// One purchase line item: transaction, product, drinks, cents. A
/// transaction can hold several items.
type LineItem = (String, String, i64, i64);

/// Generated purchases and restocks as Kafka messages, and their line items.
struct SalesInput {
    purchases: Vec<(String, Vec<u8>)>,
    restocks: Vec<(String, Vec<u8>)>,
    line_items: Vec<LineItem>,
}

/// A product's running totals: purchases, drinks, cents.
type Totals = Vec<(String, i64, i64, i64)>;

impl SalesInput {
    fn generate(generator: &mut SalesGenerator, purchases: usize) -> Self {
        let mut input = SalesInput {
            purchases: Vec::with_capacity(purchases),
            restocks: Vec::new(),
            line_items: Vec::with_capacity(purchases),
        };
        for event in generator.run(1_700_000_000_000, purchases) {
            let p = &event.purchase;
            input.line_items.push((
                p.transaction_id.clone(),
                p.product_id.clone(),
                i64::from(p.quantity),
                (p.total_purchase * 100.0).round() as i64,
            ));
            input.purchases.push((
                p.transaction_id.clone(),
                serde_json::to_vec(p).expect("json"),
            ));
            for r in &event.restocks {
                input
                    .restocks
                    .push((r.product_id.clone(), serde_json::to_vec(r).expect("json")));
            }
        }
        input
    }

    /// Fails unless every stored line item is one of the input's, stored no
    /// more often than it was sent.
    fn assert_sent_at_most_once(&self, stored: &[LineItem], when: &str) {
        let mut unsent: HashMap<&LineItem, usize> = HashMap::new();
        for item in &self.line_items {
            *unsent.entry(item).or_default() += 1;
        }
        for item in stored {
            match unsent.get_mut(item) {
                Some(left) if *left > 0 => *left -= 1,
                _ => panic!("{when}: {item:?} stored but not sent, or stored twice"),
            }
        }
    }
}

/// The running totals line items add up to.
fn totals<'a>(items: impl IntoIterator<Item = &'a LineItem>) -> Totals {
    let mut totals: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for (_, product, drinks, cents) in items {
        let entry = totals.entry(product.clone()).or_default();
        entry.0 += 1;
        entry.1 += drinks;
        entry.2 += cents;
    }
    totals
        .into_iter()
        .map(|(id, (n, drinks, cents))| (id, n, drinks, cents))
        .collect()
}

async fn stored_line_items(db: impl sqlx::PgExecutor<'_>) -> Vec<LineItem> {
    sqlx::query_as(
        "SELECT transaction_id, product_id, purchase_quantity::int8, (total_purchase * 100)::int8 FROM purchases_enriched",
    )
    .fetch_all(db)
    .await
    .expect("stored purchases")
}

async fn stored_totals(db: impl sqlx::PgExecutor<'_>) -> Totals {
    sqlx::query_as(
        "SELECT product_id, transactions, quantities, (sales * 100)::int8 FROM running_totals ORDER BY product_id",
    )
    .fetch_all(db)
    .await
    .expect("totals")
}

/// How every test here ends: each purchase sent is stored exactly once, the
/// running totals are what they add up to, every restock is stored, and
/// every purchase's offset is committed.
async fn assert_all_stored_once(pool: &PgPool, input: &SalesInput, group: &str, topic: &str) {
    let stored = stored_line_items(pool).await;
    assert_eq!(stored.len(), input.line_items.len());
    input.assert_sent_at_most_once(&stored, "at the end");
    assert_eq!(stored_totals(pool).await, totals(&input.line_items));
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM inventories").await,
        input.restocks.len() as i64
    );
    assert_eq!(
        committed_offsets(pool, group, topic).await,
        input.line_items.len() as i64
    );
}

async fn committed_offsets(pool: &PgPool, group: &str, topic: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(next_offset), 0)::int8 FROM kafka_offsets WHERE group_id = $1 AND topic = $2",
    )
    .bind(format!("{group}.sales"))
    .bind(topic)
    .fetch_one(pool)
    .await
    .expect("offsets")
}

/// Topics with products, restocks and `purchases` purchases in them, and a
/// definitions folder pointing at them; returns the input, the consumer
/// group and the sensors topic the instances use.
async fn sales_topics_with_input(
    streams: &SalesStreams,
    purchases: usize,
    seed: u64,
    test: &str,
) -> (SalesInput, String, String, PathBuf) {
    create_topic(&streams.products_topics[0], 1).await;
    create_topic(&streams.purchases_topics[0], 3).await;
    create_topic(&streams.inventories_topics[0], 1).await;
    let mut generator = SalesGenerator::new(SalesConfig::default(), seed);
    produce(&streams.products_topics[0], &product_messages(&generator)).await;
    let input = SalesInput::generate(&mut generator, purchases);
    produce(&streams.inventories_topics[0], &input.restocks).await;
    produce(&streams.purchases_topics[0], &input.purchases).await;
    let nonce: u64 = rand::random();
    let group = format!("test-{test}-{nonce:x}");
    let sensors_topic = format!("test.{test}.readings.{nonce:x}");
    let dir = definitions_dir(streams, &sensors_topic);
    (input, group, sensors_topic, dir)
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn two_instances_one_killed_store_every_purchase_exactly_once(pool: PgPool) {
    const PURCHASES: usize = 100_000;
    let streams = unique_streams("kill", Duration::from_secs(30));
    let (input, group, sensors_topic, dir) =
        sales_topics_with_input(&streams, PURCHASES, 11, "kill").await;
    let mut first = start_instance(&pool, &dir, &group, &sensors_topic);
    let _second = start_instance(&pool, &dir, &group, &sensors_topic);

    let stored = "SELECT count(*) FROM purchases_enriched";
    let midway = wait_for(&pool, stored, 30_000, Duration::from_secs(180)).await;
    assert!(midway >= 30_000, "only {midway} purchases stored");
    assert!(
        midway < PURCHASES as i64,
        "all stored before the kill: nothing tested"
    );
    first.0.kill().expect("SIGKILL");
    first.0.wait().expect("reaped");
    let _restarted = start_instance(&pool, &dir, &group, &sensors_topic);

    let all = wait_for(&pool, stored, PURCHASES as i64, Duration::from_secs(300)).await;
    // Let any duplicate that was going to land, land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scalar(&pool, stored).await, PURCHASES as i64, "after {all}");
    assert_all_stored_once(&pool, &input, &group, &streams.purchases_topics[0]).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGKILL at a random moment of ingest, twenty times in a row. After each
/// kill, every stored purchase is one that was sent, none stored twice, and
/// the running totals are exactly what the stored purchases add up to; after
/// the last restart, every purchase is counted once.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn killed_twenty_times_mid_ingest_the_totals_match_the_input(pool: PgPool) {
    use rand::Rng;
    const PURCHASES: usize = 300_000;
    const KILLS: usize = 20;
    let streams = unique_streams("kills", Duration::from_secs(30));
    let (input, group, sensors_topic, dir) =
        sales_topics_with_input(&streams, PURCHASES, 17, "kills").await;
    let stored_count = "SELECT count(*) FROM purchases_enriched";
    let mut rng = rand::rng();
    for kill in 1..=KILLS {
        let before = scalar(&pool, stored_count).await;
        // Small flushes, so that kills land between and inside many of them.
        let mut instance = start_instance_with(
            &pool,
            &dir,
            &group,
            &sensors_topic,
            &[("PULSEBOARD_FLUSH_MAX_RECORDS", "2000")],
        );
        // Once this instance is storing, kill it at a random moment.
        let storing = wait_for(&pool, stored_count, before + 1, Duration::from_secs(120)).await;
        assert!(storing > before, "run {kill} stored nothing in 2 minutes");
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
        instance.0.kill().expect("SIGKILL");
        instance.0.wait().expect("reaped");

        // One snapshot for both tables: the killed instance's last COMMIT,
        // sent before the kill, can still land between two separate reads.
        let mut snapshot = pool.begin().await.expect("snapshot");
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *snapshot)
            .await
            .expect("repeatable read");
        let stored = stored_line_items(&mut *snapshot).await;
        let stored_totals_now = stored_totals(&mut *snapshot).await;
        snapshot.rollback().await.expect("snapshot ends");
        assert!(
            stored.len() < PURCHASES,
            "every purchase stored before kill {kill}: it was not mid-ingest"
        );
        let when = format!("after kill {kill}");
        eprintln!("{when}: {} of {PURCHASES} purchases stored", stored.len());
        input.assert_sent_at_most_once(&stored, &when);
        assert_eq!(stored_totals_now, totals(&stored), "{when}");
    }

    let _last = start_instance(&pool, &dir, &group, &sensors_topic);
    let all = wait_for(
        &pool,
        stored_count,
        PURCHASES as i64,
        Duration::from_secs(600),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scalar(&pool, stored_count).await,
        PURCHASES as i64,
        "after {all}"
    );
    assert_all_stored_once(&pool, &input, &group, &streams.purchases_topics[0]).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGTERM while every record has been read and none flushed (the flush
/// interval is an hour): the service stores them and commits their offsets
/// before it exits.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sigterm_stores_what_was_read_before_exiting(pool: PgPool) {
    const PURCHASES: usize = 5_000;
    let streams = unique_streams("term", Duration::from_secs(30));
    let (input, group, sensors_topic, dir) =
        sales_topics_with_input(&streams, PURCHASES, 5, "term").await;
    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut instance = start_instance_with(
        &pool,
        &dir,
        &group,
        &sensors_topic,
        &[
            ("PULSEBOARD_ADDR", &addr),
            ("PULSEBOARD_FLUSH_INTERVAL", "1h"),
            ("PULSEBOARD_FLUSH_MAX_RECORDS", "1000000"),
        ],
    );
    support::wait_until_serving(port).await;
    let products = SalesGenerator::new(SalesConfig::default(), 5)
        .product_events(0)
        .len();
    let everything = (products + input.restocks.len() + PURCHASES) as f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, metrics) = support::request(port, "GET", "/metrics", &[], b"").await;
        let received = support::sample(
            &metrics,
            "pulseboard_records_received_total{source=\"kafka\"}",
        );
        if received >= Some(everything) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {received:?} of {everything} records in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = "SELECT count(*) FROM purchases_enriched";
    assert_eq!(
        scalar(&pool, stored).await,
        0,
        "flushed before SIGTERM: nothing tested"
    );

    let signal = std::process::Command::new("kill")
        .args(["-TERM", &instance.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signal.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = instance.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 60 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exited with {status}");
    assert_eq!(scalar(&pool, stored).await, PURCHASES as i64);
    assert_all_stored_once(&pool, &input, &group, &streams.purchases_topics[0]).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn replay_rebuilds_the_sales_figures_from_the_topics(pool: PgPool) {
    use server::replay;
    const PURCHASES: usize = 2_000;
    let streams = unique_streams("replay", Duration::from_secs(30));
    // Three partitions, read at different paces: the watermark follows the
    // slowest, so no purchase is judged late.
    create_topic(&streams.purchases_topics[0], 3).await;
    create_topic(&streams.inventories_topics[0], 1).await;
    let mut generator = SalesGenerator::new(SalesConfig::default(), 23);
    produce(&streams.products_topics[0], &product_messages(&generator)).await;
    let events = generator.run(1_700_000_000_000, PURCHASES);
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut purchases = Vec::new();
    for event in &events {
        let p = &event.purchase;
        let entry = expected.entry(p.product_id.clone()).or_default();
        entry.0 += 1;
        entry.1 += i64::from(p.quantity);
        purchases.push((p.product_id.clone(), serde_json::to_vec(p).expect("json")));
    }
    produce(&streams.purchases_topics[0], &purchases).await;
    let topics = streams.subscription("").topics;
    let kafka = kafka_config("unused");

    for _ in 0..2 {
        // Reset first: rebuilt from the topics, never doubled.
        replay::reset_sales(&pool).await.expect("reset");
        let mut sink = SalesSink::new(streams.clone(), None);
        let done = replay::run(&pool, &kafka, &topics, &mut sink, |_| {})
            .await
            .expect("replay");
        assert_eq!(done.done, (PURCHASES + 27) as u64);
        let totals: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT product_id, transactions, quantities FROM running_totals ORDER BY product_id",
        )
        .fetch_all(&pool)
        .await
        .expect("totals");
        let wanted: Vec<(String, i64, i64)> = expected
            .iter()
            .map(|(id, (n, qty))| (id.clone(), *n, *qty))
            .collect();
        assert_eq!(totals, wanted);
        assert_eq!(
            scalar(&pool, "SELECT count(*) FROM purchases_enriched").await,
            PURCHASES as i64
        );
        // The seed's Spark job: every purchase lands in two 10-minute windows
        // sliding every 5.
        let windowed = "SELECT coalesce(sum(transactions), 0)::int8 FROM sales_windows";
        assert_eq!(scalar(&pool, windowed).await, 2 * PURCHASES as i64);
        assert_eq!(scalar(&pool, "SELECT count(*) FROM late_events").await, 0);
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn results_are_produced_to_the_output_topics_after_each_commit(pool: PgPool) {
    use rdkafka::Message;
    const PURCHASES: usize = 300;
    let mut streams = unique_streams("outputs", Duration::from_secs(30));
    let enriched_topic = format!("{}.enriched", streams.purchases_topics[0]);
    let totals_topic = format!("{}.totals", streams.purchases_topics[0]);
    streams.enriched_topic = Some(enriched_topic.clone());
    streams.running_totals_topic = Some(totals_topic.clone());
    let mut generator = SalesGenerator::new(SalesConfig::default(), 31);
    produce(&streams.products_topics[0], &product_messages(&generator)).await;
    let purchases: Vec<(String, Vec<u8>)> = generator
        .run(1_700_000_000_000, PURCHASES)
        .iter()
        .map(|e| {
            let json = serde_json::to_vec(&e.purchase).expect("json");
            (e.purchase.product_id.clone(), json)
        })
        .collect();
    produce(&streams.purchases_topics[0], &purchases).await;
    let publisher = JsonPublisher::new(&kafka_config("")).expect("producer");
    let outputs = streams.outputs(std::sync::Arc::new(publisher));
    // Created first, as the service does.
    ensure_topics(&kafka_config(""), &outputs.topics()).await;
    let shutdown = start_sink_with(&pool, &streams, Some(outputs));

    let stored = "SELECT count(*) FROM purchases_enriched";
    let n = wait_for(&pool, stored, PURCHASES as i64, Duration::from_secs(60)).await;
    assert_eq!(n, PURCHASES as i64);
    let consumer = results_reader(&broker(), &[&enriched_topic, &totals_topic]);
    let totals: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT product_id, transactions FROM running_totals")
            .fetch_all(&pool)
            .await
            .expect("totals")
            .into_iter()
            .collect();
    let (mut enriched, mut newest) = (0, BTreeMap::new());
    while enriched < PURCHASES || newest != totals {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("results arrive")
            .expect("message");
        let json: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
        if message.topic() == enriched_topic {
            // The seed's enriched purchase, every field of it.
            assert_eq!(json.as_object().map(|o| o.len()), Some(19), "{json}");
            enriched += 1;
        } else {
            let product = json["product_id"].as_str().expect("product_id").to_string();
            newest.insert(
                product,
                json["transactions"].as_i64().expect("transactions"),
            );
        }
    }
    assert_eq!(enriched, PURCHASES);
    shutdown.cancel();
}

/// The shipped definitions renamed to one test's own topics, for a service
/// instance; removed when dropped.
struct ServiceDefinitions {
    path: PathBuf,
    sensors_topic: String,
    group: String,
}

impl Drop for ServiceDefinitions {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Definitions for a service under `test`, and their two result topics as
/// `definitions_dir` renamed them: enriched purchases, running totals.
fn service_definitions(test: &str) -> (ServiceDefinitions, [String; 2]) {
    let streams = unique_streams(test, Duration::from_secs(30));
    let nonce: u64 = rand::random();
    let sensors_topic = format!("test.{test}.readings.{nonce:x}");
    let results = [".purchases.enriched", ".running.totals"]
        .map(|name| format!("{}{name}", streams.purchases_topics[0]));
    let definitions = ServiceDefinitions {
        path: definitions_dir(&streams, &sensors_topic),
        sensors_topic,
        group: format!("test-{test}-{nonce:x}"),
    };
    (definitions, results)
}

/// Whether the broker knows `topic` now (asked off the runtime: the client blocks).
async fn topic_exists(topic: &str) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker())
            .create()
            .expect("metadata client");
        let metadata = client
            .fetch_metadata(Some(&topic), Duration::from_secs(5))
            .expect("metadata");
        metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none())
    })
    .await
    .expect("metadata task")
}

#[tokio::test]
async fn a_topic_named_twice_in_one_request_is_created() {
    let topic = format!("test.twice.{:x}", rand::random::<u64>());
    ensure_topics(&kafka_config(""), &[topic.clone(), topic.clone()]).await;
    assert!(topic_exists(&topic).await, "{topic} was not created");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_service_creates_its_output_topics_before_the_first_result(pool: PgPool) {
    let (dir, outputs) = service_definitions("created");
    let _instance = start_instance(&pool, &dir.path, &dir.group, &dir.sensors_topic);

    // No purchase is ever produced, so only the service's start creates them:
    // a reader can subscribe before the first result.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(topic_exists(&outputs[0]).await && topic_exists(&outputs[1]).await) {
        assert!(
            std::time::Instant::now() < deadline,
            "{outputs:?} not created by the service's start"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_in_process_sales_simulator_follows_the_definitions(pool: PgPool) {
    use rdkafka::Message;
    let (dir, [enriched_topic, totals_topic]) = service_definitions("in-process");
    // Windows of one minute instead of the shipped ten.
    let purchases = dir.path.join("purchases.toml");
    let shipped = std::fs::read_to_string(&purchases).expect("definition");
    let one_minute = shipped.replace(
        "size = \"10m\"\nslide = \"5m\"",
        "size = \"1m\"\nslide = \"1m\"",
    );
    assert_ne!(one_minute, shipped, "the shipped windows are not 10m/5m");
    std::fs::write(&purchases, one_minute).expect("definition written");
    let _instance = start_instance_with(
        &pool,
        &dir.path,
        &dir.group,
        &dir.sensors_topic,
        &[
            ("PULSEBOARD_SALES_SIMULATOR", "true"),
            ("PULSEBOARD_SIMULATOR_SINK", "pipeline"),
            ("PULSEBOARD_SALES_RATE", "50"),
        ],
    );

    let consumer = results_reader(&broker(), &[&enriched_topic, &totals_topic]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut heard = BTreeMap::new();
    while heard.len() < 2 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => {
                let json: serde_json::Value =
                    serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
                heard.insert(message.topic().to_string(), json);
            }
            // The topics may not exist yet when the reader first asks for them.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
            Err(_) => panic!("within 60 s, results only on {:?}", heard.keys()),
        }
    }
    let enriched = &heard[&enriched_topic];
    assert!(enriched["product_id"].is_string(), "{enriched}");
    assert!(enriched["total_purchase"].is_number(), "{enriched}");
    let totals = &heard[&totals_topic];
    assert!(totals["transactions"].is_i64(), "{totals}");

    let windows = "SELECT count(*) FROM sales_windows";
    let stored = wait_for(&pool, windows, 1, Duration::from_secs(30)).await;
    assert!(stored >= 1, "no sales window stored");
    let other_lengths =
        "SELECT count(*) FROM sales_windows WHERE window_end - window_start <> interval '1 minute'";
    assert_eq!(scalar(&pool, other_lengths).await, 0);
}
