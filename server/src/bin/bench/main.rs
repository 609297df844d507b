//! Ingest benchmark, for sensor readings and for purchases: Kafka to Postgres
//! (raw rows and aggregates, and aggregates only) and Firehose ingest, each
//! beside a baseline measured in the same run, printed as a table and written
//! as JSON.
//!
//! Needs DATABASE_URL (a role that may create databases) and
//! PULSEBOARD_KAFKA_BOOTSTRAP; `./scripts/bench` provides both.

mod firehose;
mod http;
mod process;
mod served;
mod table;

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use server::config::{DatabaseConfig, FlushConfig, KafkaConfig};
use server::consumer;
use server::custom::{CustomBatch, CustomStream};
use server::definitions;
use server::kafka::{self, JsonPublisher, ReadingPublisher};
use server::median_counts;
use server::metrics::{self, Source};
use server::operators::window::WindowSpec;
use server::pgcopy::BinaryRows;
use server::reading::Reading;
use server::sales::{SalesConfig, SalesGenerator, enrich, parse_timestamp};
use server::sales_kafka::{SalesSink, SalesStreams};
use server::sales_pipeline::{COPY_PURCHASES, StoredPurchase, encode_purchases};
use server::simulator::seed_waves;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Options {
    records: usize,
    runs: usize,
    /// Raw readings under the window chart.
    raw_readings: usize,
    /// Minutes of continuous ingest for the memory figures.
    soak_minutes: u64,
    /// Seconds Postgres stays stopped under ingest.
    outage_seconds: u64,
    /// Minutes and records per second of the sustained Firehose run.
    sustained_minutes: u64,
    sustained_rate: usize,
    /// Keys of the table rows to measure (with their baselines); all when empty.
    only: Vec<String>,
}

impl Options {
    /// Whether a figure or baseline is to be measured.
    fn measures(&self, name: &str) -> bool {
        self.only.is_empty()
            || table::ROWS.iter().any(|row| {
                self.only.iter().any(|o| o == row.key)
                    && (row.key == name || row.base_key == Some(name))
            })
    }
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        records: 1_000_000,
        runs: 3,
        raw_readings: 10_000_000,
        soak_minutes: 10,
        outage_seconds: 30,
        sustained_minutes: 5,
        sustained_rate: 20_000,
        only: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--records" => options.records = value.parse().context("--records takes a number")?,
            "--runs" => options.runs = value.parse().context("--runs takes a number")?,
            "--raw-readings" => {
                options.raw_readings = value.parse().context("--raw-readings takes a number")?
            }
            "--soak-minutes" => {
                options.soak_minutes = value.parse().context("--soak-minutes takes a number")?
            }
            "--outage-seconds" => {
                options.outage_seconds = value.parse().context("--outage-seconds takes a number")?
            }
            "--sustained-minutes" => {
                options.sustained_minutes = value
                    .parse()
                    .context("--sustained-minutes takes a number")?
            }
            "--sustained-rate" => {
                options.sustained_rate = value.parse().context("--sustained-rate takes a number")?
            }
            "--only" => options.only = value.split(',').map(str::to_string).collect(),
            other => anyhow::bail!(
                "unknown option {other}; use --records N --runs R --raw-readings N --soak-minutes M \
                 --outage-seconds S --sustained-minutes M --sustained-rate R --only figure[,figure]"
            ),
        }
    }
    anyhow::ensure!(
        options.records > 0 && options.runs > 0,
        "--records and --runs must be at least 1"
    );
    anyhow::ensure!(
        options.sustained_minutes > 0 && options.sustained_rate > 0,
        "--sustained-minutes and --sustained-rate must be at least 1"
    );
    let keys: Vec<&str> = table::ROWS.iter().map(|row| row.key).collect();
    if let Some(unknown) = options.only.iter().find(|o| !keys.contains(&o.as_str())) {
        anyhow::bail!(
            "--only: no figure {unknown:?}; figures: {}",
            keys.join(", ")
        );
    }
    Ok(options)
}

/// `count` readings of the six seed sensors, one second apart per sensor.
fn readings(count: usize) -> Vec<Reading> {
    readings_spaced(count, 1_700_000_000, 6)
}

/// `count` readings of the six seed sensors from `start` (epoch seconds),
/// `per_second` of them (all sensors together) each second.
fn readings_spaced(count: usize, start: i64, per_second: usize) -> Vec<Reading> {
    let mut rng = rand::rng();
    let mut waves = seed_waves();
    (0..count)
        .map(|i| {
            let wave = &mut waves[i % 6];
            wave.next_reading(start + (i / per_second) as i64, &mut rng)
        })
        .collect()
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let server = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{server}/{name}")
}

async fn fresh_database(admin: &PgPool, admin_url: &str, name: &str) -> anyhow::Result<PgPool> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&database_url(admin_url, name))
        .await?;
    server::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The same rows as the pipeline writes, by binary COPY into `message`.
async fn binary_copy(pool: &PgPool, rows: &[Reading]) -> anyhow::Result<Duration> {
    let mut encoded = BinaryRows::with_capacity(rows.len());
    for r in rows {
        encoded
            .row(3)
            .text(&r.guid)
            .int8(r.ts)
            .numeric2((r.temp * 100.0).round() as i64);
    }
    copy_into(
        pool,
        "COPY message (guid, ts, temp) FROM STDIN (FORMAT binary)",
        encoded.finish(),
        rows.len(),
    )
    .await
}

/// Streams encoded rows through one COPY and checks they all landed; times only the COPY.
async fn copy_into(
    pool: &PgPool,
    statement: &str,
    data: Vec<u8>,
    rows: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    anyhow::ensure!(
        copied as usize == rows,
        "COPY stored {copied} of {rows} rows"
    );
    Ok(started.elapsed())
}

/// Every Kafka path runs with the service's default flush settings.
const BENCH_FLUSH: FlushConfig = FlushConfig::DEFAULT;

/// Starts a consumer with `start` and waits until the group's stored offsets
/// reach `records`: every record is in Postgres, with its aggregates. Timed
/// from the first record received, as the counting baseline is, so joining
/// the consumer group counts in neither.
async fn until_stored<F>(
    pool: &PgPool,
    group: &str,
    records: usize,
    start: impl FnOnce(CancellationToken) -> F,
) -> anyhow::Result<Duration>
where
    F: Future<Output = ()> + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let received = || metrics::global().received_total(Source::Kafka);
    let before = received();
    let launched = Instant::now();
    let task = tokio::spawn(start(shutdown.clone()));
    let too_long = |since: Instant| {
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(900),
            "ingest did not finish in 15 minutes"
        );
        Ok(())
    };
    while received() == before {
        too_long(launched)?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    loop {
        // The stored offsets say how many records are in, without counting rows.
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT sum(next_offset)::int8 FROM kafka_offsets WHERE group_id = $1",
        )
        .bind(group)
        .fetch_one(pool)
        .await?;
        if stored.unwrap_or(0) as usize >= records {
            break;
        }
        too_long(started)?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    shutdown.cancel();
    task.await?;
    Ok(took)
}

/// The readings pipeline's consumer group: raw rows, statistics, latency.
async fn readings_to_postgres(
    pool: &PgPool,
    kafka_config: &KafkaConfig,
    records: usize,
) -> anyhow::Result<Duration> {
    let (pool_for_task, config) = (pool.clone(), kafka_config.clone());
    until_stored(
        pool,
        &kafka_config.group_id,
        records,
        move |shutdown| async move {
            // As the service does: the medians' value counts are folded meanwhile.
            let folding = median_counts::run(pool_for_task.clone(), shutdown.clone());
            let consuming = kafka::run_consumer(pool_for_task, config, BENCH_FLUSH, shutdown);
            tokio::join!(folding, consuming);
        },
    )
    .await
}

/// A custom stream from `definition` (aggregates only), consumed until every record is in.
async fn custom_stream_to_postgres(
    pool: &PgPool,
    kafka_config: &KafkaConfig,
    definition: &str,
    records: usize,
) -> anyhow::Result<Duration> {
    let parsed = definitions::parse_all(&[("bench.toml".into(), definition.into())])?.remove(0);
    let stream = Arc::new(CustomStream::plan(&parsed)?);
    stream.prepare(pool).await?;
    let subscription = stream.subscription(&kafka_config.group_id);
    let group = subscription.group.clone();
    let (pool_for_task, config) = (pool.clone(), kafka_config.clone());
    until_stored(pool, &group, records, move |shutdown| {
        consumer::run(
            pool_for_task,
            config,
            subscription,
            CustomBatch::new(stream),
            BENCH_FLUSH,
            shutdown,
        )
    })
    .await
}

/// The sales pipeline's consumer group: enrichment, running totals, windows.
async fn sales_to_postgres(
    pool: &PgPool,
    kafka_config: &KafkaConfig,
    streams: &SalesStreams,
    messages: usize,
) -> anyhow::Result<Duration> {
    let subscription = streams.subscription(&kafka_config.group_id);
    let group = subscription.group.clone();
    let sink = SalesSink::new(streams.clone(), None);
    let (pool_for_task, config) = (pool.clone(), kafka_config.clone());
    until_stored(pool, &group, messages, move |shutdown| {
        consumer::run(
            pool_for_task,
            config,
            subscription,
            sink,
            BENCH_FLUSH,
            shutdown,
        )
    })
    .await
}

/// The aggregates the sensors pipeline keeps, as a custom stream without raw rows.
fn readings_aggregates_only(topic: &str) -> String {
    format!(
        r#"
name = "bench_readings"
raw_rows = false
sources = {{ kafka_topics = ["{topic}"] }}
event_time = {{ field = "ts", format = "epoch_seconds" }}
fields = [
    {{ name = "guid", type = "string", role = "dimension" }},
    {{ name = "ts", type = "integer", role = "time" }},
    {{ name = "temp", type = "float", role = "metric" }},
]
[[rollups]]
name = "per_minute"
grains = ["1m"]
group_by = ["guid"]
measures = [{{ fn = "count" }}, {{ fn = "avg", field = "temp" }}, {{ fn = "min", field = "temp" }}, {{ fn = "max", field = "temp" }}]
[[rollups]]
name = "all_time"
group_by = ["guid"]
measures = [{{ fn = "count" }}, {{ fn = "avg", field = "temp" }}, {{ fn = "min", field = "temp" }}, {{ fn = "max", field = "temp" }}]
"#
    )
}

/// Running totals and 10-minute sales per product, as a custom stream without raw rows.
fn purchases_aggregates_only(topic: &str) -> String {
    format!(
        r#"
name = "bench_purchases"
raw_rows = false
sources = {{ kafka_topics = ["{topic}"] }}
event_time = {{ field = "transaction_time", format = "sql_timestamp" }}
fields = [
    {{ name = "transaction_time", type = "string", role = "time" }},
    {{ name = "product_id", type = "string", role = "dimension" }},
    {{ name = "quantity", type = "integer", role = "metric" }},
    {{ name = "total_purchase", type = "float", role = "metric" }},
]
[[rollups]]
name = "totals"
group_by = ["product_id"]
measures = [{{ fn = "count" }}, {{ fn = "sum", field = "quantity" }}, {{ fn = "sum", field = "total_purchase" }}]
[[rollups]]
name = "per_10m"
grains = ["10m"]
group_by = ["product_id"]
measures = [{{ fn = "count" }}, {{ fn = "sum", field = "quantity" }}, {{ fn = "sum", field = "total_purchase" }}]
"#
    )
}

/// The sales input: `count` purchases of the seed's generator with their
/// restocks and the menu, produced to fresh topics; and the enriched rows
/// the pipeline stores, for the COPY baseline.
struct SalesInput {
    streams: SalesStreams,
    purchases: usize,
    /// Every message produced: menu, purchases and restocks.
    messages: usize,
    enriched: Vec<StoredPurchase>,
}

async fn produce_sales(bootstrap: &str, nonce: u32, count: usize) -> anyhow::Result<SalesInput> {
    let topic = |name: &str| format!("bench.{name}.{nonce:x}");
    let streams = SalesStreams {
        products_topics: vec![topic("products")],
        purchases_topics: vec![topic("purchases")],
        inventories_topics: vec![topic("inventories")],
        join_wait: Duration::from_secs(30),
        windows: WindowSpec::new(600_000, 300_000, 600_000, 300_000)?,
        enriched_topic: None,
        running_totals_topic: None,
    };
    // A busy chain rather than the seed's one shop (a sale every 2 to 5 s):
    // about a thousand sales per second of event time, as a live stream at
    // these rates has. Spread thinner, each flush touches many more windows.
    let config = SalesConfig {
        min_gap_ms: 0,
        max_gap_ms: 2,
        ..SalesConfig::default()
    };
    let mut generator = SalesGenerator::new(config, u64::from(nonce));
    let start_ms = 1_700_000_000_000;
    let publisher = JsonPublisher::new(&KafkaConfig {
        bootstrap_servers: bootstrap.to_string(),
        ..Default::default()
    })?;
    let mut pending: Vec<(String, String, Vec<u8>)> = generator
        .product_events(start_ms)
        .into_iter()
        .map(|e| {
            let json = serde_json::to_vec(&e).unwrap_or_default();
            (
                streams.products_topics[0].clone(),
                e.product.product_id,
                json,
            )
        })
        .collect();
    let mut messages = 0;
    let mut enriched = Vec::with_capacity(count);
    let mut produced = 0;
    while produced < count {
        let events = generator.run(start_ms + produced as i64, (count - produced).min(50_000));
        produced += events.len();
        for event in events {
            let purchase = &event.purchase;
            let product = generator
                .product(&purchase.product_id)
                .context("known product")?;
            enriched.push(StoredPurchase {
                enriched: enrich(purchase, product),
                transaction_ms: parse_timestamp(&purchase.transaction_time).context("time")?,
                received_us: 1_700_000_000_000_000,
            });
            let json = serde_json::to_vec(purchase)?;
            pending.push((
                streams.purchases_topics[0].clone(),
                purchase.product_id.clone(),
                json,
            ));
            for restock in &event.restocks {
                let json = serde_json::to_vec(restock)?;
                pending.push((
                    streams.inventories_topics[0].clone(),
                    restock.product_id.clone(),
                    json,
                ));
            }
        }
        messages += pending.len();
        publisher.publish_all(&pending).await?;
        pending.clear();
    }
    Ok(SalesInput {
        streams,
        purchases: count,
        messages,
        enriched,
    })
}

/// The enriched purchases the sales pipeline stores, by binary COPY into `purchases_enriched`.
async fn copy_purchases(pool: &PgPool, rows: &[StoredPurchase]) -> anyhow::Result<Duration> {
    copy_into(pool, COPY_PURCHASES, encode_purchases(rows), rows.len()).await
}

/// A plain rdkafka consumer that only counts messages: the ceiling for any
/// consumer. Timed from the first message, so the group join is not counted.
async fn consume_only(bootstrap: &str, topic: &str, records: usize) -> anyhow::Result<Duration> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("bench-count-{:x}", rand::random::<u64>()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    let started = Instant::now();
    let mut seen = 1;
    while seen < records {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        seen += 1;
    }
    Ok(started.elapsed())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(values.to_vec())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let admin_url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let bootstrap = std::env::var("PULSEBOARD_KAFKA_BOOTSTRAP")
        .context("PULSEBOARD_KAFKA_BOOTSTRAP is not set")?;
    let admin = server::service::connect(&DatabaseConfig {
        url: admin_url.clone(),
        max_connections: 2,
    })
    .await?;
    let nonce = rand::random::<u32>();
    let topic = format!("bench.readings.{nonce:x}");
    let rows = readings(options.records);

    eprintln!("producing {} readings to {topic}", options.records);
    let publisher = ReadingPublisher::new(&KafkaConfig {
        bootstrap_servers: bootstrap.clone(),
        readings_topic: topic.clone(),
        ..Default::default()
    })?;
    let started = Instant::now();
    for chunk in rows.chunks(20_000) {
        publisher.publish(chunk).await?;
    }
    let produce_rate = options.records as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "producing {} purchases with their menu and restocks",
        options.records
    );
    let sales = produce_sales(&bootstrap, nonce, options.records).await?;

    let bodies = firehose::bodies(&rows);
    let mut figures = Figures::default();
    let database = |name: &str| format!("bench_{name}_{nonce:x}");
    for run in 1..=options.runs {
        let kafka_config = KafkaConfig {
            bootstrap_servers: bootstrap.clone(),
            readings_topic: topic.clone(),
            group_id: format!("bench-{nonce:x}-{run}"),
            ..Default::default()
        };
        let records = options.records;

        if options.measures("readings_copy") {
            eprintln!("measuring readings_copy");
            let db = fresh_database(&admin, &admin_url, &database("copy")).await?;
            figures.add("readings_copy", records, binary_copy(&db, &rows).await?);
            db.close().await;
        }
        if options.measures("readings_kafka") {
            eprintln!("measuring readings_kafka");
            let db = fresh_database(&admin, &admin_url, &database("kafka")).await?;
            figures.add(
                "readings_kafka",
                records,
                readings_to_postgres(&db, &kafka_config, records).await?,
            );
            db.close().await;
        }
        if options.measures("readings_aggregates") {
            eprintln!("measuring readings_aggregates");
            let db = fresh_database(&admin, &admin_url, &database("aggregates")).await?;
            let definition = readings_aggregates_only(&topic);
            figures.add(
                "readings_aggregates",
                records,
                custom_stream_to_postgres(&db, &kafka_config, &definition, records).await?,
            );
            db.close().await;
        }
        if options.measures("readings_consume") {
            eprintln!("measuring readings_consume");
            figures.add(
                "readings_consume",
                records,
                consume_only(&bootstrap, &topic, records).await?,
            );
        }
        // Few clients, and as many as SDK clients commonly keep open: a
        // transaction holds the requests in flight, so concurrency sets its size.
        for (name, connections) in [("readings_firehose", 4), ("readings_firehose_16", 16)] {
            if !options.measures(name) {
                continue;
            }
            eprintln!("measuring {name}");
            let db = fresh_database(&admin, &admin_url, &database("http")).await?;
            figures.add(
                name,
                records,
                firehose::ingest(&db, &bodies, records, connections).await?,
            );
            db.close().await;
        }

        let purchases_topic = &sales.streams.purchases_topics[0];
        if options.measures("purchases_copy") {
            eprintln!("measuring purchases_copy");
            let db = fresh_database(&admin, &admin_url, &database("copy")).await?;
            figures.add(
                "purchases_copy",
                sales.purchases,
                copy_purchases(&db, &sales.enriched).await?,
            );
            db.close().await;
        }
        if options.measures("purchases_kafka") {
            eprintln!("measuring purchases_kafka");
            let db = fresh_database(&admin, &admin_url, &database("kafka")).await?;
            figures.add(
                "purchases_kafka",
                sales.purchases,
                sales_to_postgres(&db, &kafka_config, &sales.streams, sales.messages).await?,
            );
            db.close().await;
        }
        if options.measures("purchases_aggregates") {
            eprintln!("measuring purchases_aggregates");
            let db = fresh_database(&admin, &admin_url, &database("aggregates")).await?;
            let definition = purchases_aggregates_only(purchases_topic);
            figures.add(
                "purchases_aggregates",
                sales.purchases,
                custom_stream_to_postgres(&db, &kafka_config, &definition, sales.purchases).await?,
            );
            db.close().await;
        }
        if options.measures("purchases_consume") {
            eprintln!("measuring purchases_consume");
            figures.add(
                "purchases_consume",
                sales.purchases,
                consume_only(&bootstrap, purchases_topic, sales.purchases).await?,
            );
        }
        eprintln!("run {run}: {}", figures.last_run());
    }
    if options.measures("firehose_sustained_p50")
        || options.measures("firehose_sustained_p99")
        || options.measures("firehose_sustained_errors")
    {
        eprintln!(
            "measuring firehose_sustained: {} records/s for {} minutes",
            options.sustained_rate, options.sustained_minutes
        );
        let db = fresh_database(&admin, &admin_url, &database("sustained")).await?;
        let run = firehose::sustained(
            &db,
            options.sustained_rate,
            Duration::from_secs(options.sustained_minutes * 60),
        )
        .await?;
        eprintln!("  sent {:.0} records/s", run.rate);
        figures.add_value("firehose_sustained_p50", run.p50);
        figures.add_value("firehose_unloaded_p50", run.unloaded_p50);
        figures.add_value("firehose_sustained_p99", run.p99);
        figures.add_value("firehose_unloaded_p99", run.unloaded_p99);
        figures.add_value("firehose_sustained_errors", (run.errors + run.lost) as f64);
        db.close().await;
    }
    for name in ["copy", "kafka", "aggregates", "http", "sustained"] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", database(name)))
            .execute(&admin)
            .await?;
    }

    served::measure(
        &served::Setup {
            admin: &admin,
            admin_url: &admin_url,
            bootstrap: &bootstrap,
            nonce,
        },
        &options,
        &mut figures,
    )
    .await?;
    if ["wasm_shared", "wasm_raw", "wasm_gzip", "wasm_brotli"]
        .iter()
        .any(|key| options.measures(key))
    {
        let bundle = wasm_bundle()?;
        for (route, page) in &bundle.pages {
            eprintln!(
                "wasm of the {route} page: {:.1} KiB raw, {:.1} gzip, {:.1} brotli",
                kib(page.raw),
                kib(page.gzip),
                kib(page.brotli)
            );
        }
        figures.add_value("wasm_shared", bundle.shared_raw);
        figures.add_value("wasm_raw", kib(bundle.page.raw));
        figures.add_value("wasm_gzip", kib(bundle.page.gzip));
        figures.add_value("wasm_brotli", kib(bundle.page.brotli));
    }

    let baselines = [
        "readings_copy",
        "readings_consume",
        "purchases_copy",
        "purchases_consume",
        "psql_window",
        "psql_window_scan",
        "psql_rollup",
        "psql_totals",
        "service_ingest",
        "hello",
    ];
    let noisy: Vec<&str> = baselines
        .into_iter()
        .filter(|b| figures.values.get(*b).is_some_and(|v| spread(v) > 0.25))
        .collect();
    println!();
    println!(
        "{} sensor readings and {} purchases, median of {} runs{}",
        options.records,
        sales.purchases,
        options.runs,
        if noisy.is_empty() {
            String::new()
        } else {
            format!(" (NOISY: baselines spread over 25%: {})", noisy.join(", "))
        }
    );
    println!("{}", table::HEADER);
    let mut rows = Vec::new();
    for row in &table::ROWS {
        if !figures.values.contains_key(row.key)
            || row
                .base_key
                .is_some_and(|b| !figures.values.contains_key(b))
        {
            continue;
        }
        let base = row.base_key.map(|b| figures.median(b));
        let (text, json) = table::line(row, figures.median(row.key), base);
        println!("{text}");
        rows.push(json);
    }
    for (name, reason) in &figures.failures {
        let first_line = reason.lines().next().unwrap_or("");
        println!("(FAILED, not measured: {name}: {first_line}; the whole reason is above)");
    }
    if let Some(median) = figures.values.get("visible_browser_median") {
        println!("(in the browser, live mode, median {:.0} ms)", median[0]);
    }
    println!("(producing the readings ran at {produce_rate:.0} events/s)");

    let json = serde_json::json!({
        "records": options.records,
        "runs": options.runs,
        "noisy": noisy,
        "table": rows,
        "runs_values": figures.values,
        "failures": figures.failures,
        "produce_events_per_s": produce_rate,
    });
    let out = std::path::Path::new("target/bench");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("bench.json"), serde_json::to_string_pretty(&json)?)?;
    eprintln!("written to target/bench/bench.json");
    Ok(())
}

/// The browser's wasm as served, in KiB: the module every page loads, and
/// the most any one page loads (that module plus the split modules its route
/// needs, as the split manifest lists them), raw and as the precompressed
/// files the server sends: brotli to browsers, gzip to clients without it.
/// Each is the largest page in that form: the page with the most raw code
/// need not be the one with the most compressed bytes.
struct WasmBundle {
    shared_raw: f64,
    page: Sizes,
    /// Every page's own figures, by route.
    pages: Vec<(String, Sizes)>,
}

/// Bytes of a file as stored, gzip- and brotli-compressed.
#[derive(Clone, Copy, Default)]
struct Sizes {
    raw: u64,
    gzip: u64,
    brotli: u64,
}

impl Sizes {
    /// The larger of each figure.
    fn most(self, other: Sizes) -> Sizes {
        Sizes {
            raw: self.raw.max(other.raw),
            gzip: self.gzip.max(other.gzip),
            brotli: self.brotli.max(other.brotli),
        }
    }
}

impl std::ops::Add for Sizes {
    type Output = Sizes;
    fn add(self, other: Sizes) -> Sizes {
        Sizes {
            raw: self.raw + other.raw,
            gzip: self.gzip + other.gzip,
            brotli: self.brotli + other.brotli,
        }
    }
}

fn wasm_bundle() -> anyhow::Result<WasmBundle> {
    let site_root = std::env::var("PULSEBOARD_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let pkg = std::path::Path::new(&site_root).join("pkg");
    let size = |file: String| -> anyhow::Result<u64> {
        let path = pkg.join(file);
        Ok(std::fs::metadata(&path)
            .with_context(|| format!("{} (build the site with --precompress)", path.display()))?
            .len())
    };
    let sizes = |module: &str| -> anyhow::Result<Sizes> {
        Ok(Sizes {
            raw: size(format!("{module}.wasm"))?,
            gzip: size(format!("{module}.wasm.gz"))?,
            brotli: size(format!("{module}.wasm.br"))?,
        })
    };
    let shared = sizes("pulseboard")?;
    let manifest_path = pkg.join("__wasm_split_manifest.json");
    let manifest: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("{} (build with --split)", manifest_path.display()))?,
    )?;
    let (mut most, mut pages) = (shared, Vec::new());
    for (route, modules) in manifest {
        let mut total = shared;
        for module in modules {
            total = total + sizes(module.as_str())?;
        }
        most = most.most(total);
        pages.push((page_name(&route).to_string(), total));
    }
    Ok(WasmBundle {
        shared_raw: kib(shared.raw),
        page: most,
        pages,
    })
}

/// The page a split module is loaded for, from the lazy route's view that the
/// split build names it after (`__dashboard_route_view_<hash>`: `dashboard`).
fn page_name(split: &str) -> &str {
    let name = split.trim_start_matches('_');
    name.find("_route_view_").map_or(name, |end| &name[..end])
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// Each figure's value in each run (events per second for rates).
#[derive(Default)]
struct Figures {
    values: std::collections::BTreeMap<&'static str, Vec<f64>>,
    last: Vec<(&'static str, f64)>,
    /// Figures that could not be measured, and why.
    failures: Vec<(&'static str, String)>,
}

impl Figures {
    fn add(&mut self, name: &'static str, events: usize, took: Duration) {
        self.add_value(name, events as f64 / took.as_secs_f64());
    }

    fn add_value(&mut self, name: &'static str, value: f64) {
        eprintln!("  {name}: {value:.2}");
        self.values.entry(name).or_default().push(value);
        self.last.push((name, value));
    }

    fn median(&self, name: &str) -> f64 {
        median(self.values[name].clone())
    }

    fn failed(&mut self, name: &'static str, reason: String) {
        eprintln!("  {name}: FAILED: {reason}");
        self.failures.push((name, reason));
    }

    /// The figures added since the last call, as `name value` pairs.
    fn last_run(&mut self) -> String {
        let line = self
            .last
            .iter()
            .map(|(name, value)| format!("{name} {value:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.last.clear();
        line
    }
}
