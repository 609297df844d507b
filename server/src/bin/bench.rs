//! Ingest benchmark: Kafka to Postgres (raw rows and aggregates) beside
//! baselines measured in the same run, printed as a table and written as JSON.
//!
//! Needs DATABASE_URL (a role that may create databases) and
//! PULSEBOARD_KAFKA_BOOTSTRAP; `./scripts/bench` provides both.

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use server::config::{DatabaseConfig, FlushConfig, KafkaConfig};
use server::kafka::{self, ReadingPublisher};
use server::pgcopy::BinaryRows;
use server::reading::Reading;
use server::simulator::seed_waves;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Options {
    records: usize,
    runs: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        records: 1_000_000,
        runs: 3,
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
            other => anyhow::bail!("unknown option {other}; use --records N --runs R"),
        }
    }
    anyhow::ensure!(
        options.records > 0 && options.runs > 0,
        "--records and --runs must be at least 1"
    );
    Ok(options)
}

/// `count` readings of the six seed sensors, one second apart per sensor.
fn readings(count: usize) -> Vec<Reading> {
    let mut rng = rand::rng();
    let mut waves = seed_waves();
    let start = 1_700_000_000;
    (0..count)
        .map(|i| {
            let wave = &mut waves[i % 6];
            wave.next_reading(start + (i / 6) as i64, &mut rng)
        })
        .collect()
}

async fn fresh_database(admin: &PgPool, admin_url: &str, name: &str) -> anyhow::Result<PgPool> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin)
        .await?;
    let url = format!(
        "{}/{name}",
        admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base)
    );
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
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
    let data = encoded.finish();
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY message (guid, ts, temp) FROM STDIN (FORMAT binary)")
        .await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    anyhow::ensure!(
        copied as usize == rows.len(),
        "COPY stored {copied} of {} rows",
        rows.len()
    );
    Ok(started.elapsed())
}

/// Pulseboard's consumer group, from the start of the topic until every record is stored.
async fn kafka_to_postgres(
    pool: &PgPool,
    kafka_config: &KafkaConfig,
    records: usize,
) -> anyhow::Result<Duration> {
    let shutdown = CancellationToken::new();
    let flush = FlushConfig {
        max_records: 5_000,
        interval: Duration::from_millis(250),
    };
    let started = Instant::now();
    let task = tokio::spawn(kafka::run_consumer(
        pool.clone(),
        kafka_config.clone(),
        flush,
        shutdown.clone(),
    ));
    loop {
        // The stored offsets say how many records are in, without counting rows.
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT sum(next_offset)::int8 FROM kafka_offsets WHERE group_id = $1",
        )
        .bind(&kafka_config.group_id)
        .fetch_one(pool)
        .await?;
        if stored.unwrap_or(0) as usize >= records {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "ingest did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    shutdown.cancel();
    task.await?;
    Ok(took)
}

/// A plain rdkafka consumer that only counts messages: the ceiling for any consumer.
async fn consume_only(kafka_config: &KafkaConfig, records: usize) -> anyhow::Result<Duration> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka_config.bootstrap_servers)
        .set(
            "group.id",
            format!("bench-count-{:x}", rand::random::<u64>()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[kafka_config.readings_topic.as_str()])?;
    let started = Instant::now();
    let mut seen = 0;
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
        group_id: String::new(),
    })?;
    let started = Instant::now();
    for chunk in rows.chunks(20_000) {
        publisher.publish(chunk).await?;
    }
    let produce_rate = options.records as f64 / started.elapsed().as_secs_f64();

    let (mut copy_rates, mut kafka_rates, mut consume_rates) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=options.runs {
        let copy_db = fresh_database(&admin, &admin_url, &format!("bench_copy_{nonce:x}")).await?;
        let took = binary_copy(&copy_db, &rows).await?;
        copy_rates.push(options.records as f64 / took.as_secs_f64());
        copy_db.close().await;

        let kafka_db =
            fresh_database(&admin, &admin_url, &format!("bench_kafka_{nonce:x}")).await?;
        let kafka_config = KafkaConfig {
            bootstrap_servers: bootstrap.clone(),
            readings_topic: topic.clone(),
            group_id: format!("bench-{nonce:x}-{run}"),
        };
        let took = kafka_to_postgres(&kafka_db, &kafka_config, options.records).await?;
        kafka_rates.push(options.records as f64 / took.as_secs_f64());
        kafka_db.close().await;

        let took = consume_only(&kafka_config, options.records).await?;
        consume_rates.push(options.records as f64 / took.as_secs_f64());
        eprintln!(
            "run {run}: copy {:.0}/s, kafka to postgres {:.0}/s, consume only {:.0}/s",
            copy_rates[run - 1],
            kafka_rates[run - 1],
            consume_rates[run - 1]
        );
    }
    for name in [
        format!("bench_copy_{nonce:x}"),
        format!("bench_kafka_{nonce:x}"),
    ] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin)
            .await?;
    }

    let (kafka, copy, consume) = (
        median(kafka_rates.clone()),
        median(copy_rates.clone()),
        median(consume_rates.clone()),
    );
    let noisy = spread(&copy_rates) > 0.25 || spread(&consume_rates) > 0.25;
    println!();
    println!(
        "{} sensor readings, median of {} runs{}",
        options.records,
        options.runs,
        if noisy {
            " (NOISY: baselines spread over 25%)"
        } else {
            ""
        }
    );
    println!("| figure | events/s | baseline | baseline events/s | ratio | target |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| Kafka to Postgres, raw rows and aggregates | {kafka:.0} | binary COPY of the same rows | {copy:.0} | {:.2} | at least 0.5 |",
        kafka / copy
    );
    println!(
        "| Kafka to Postgres, raw rows and aggregates | {kafka:.0} | rdkafka consumer that only counts | {consume:.0} | {:.2} | (aggregates-only figure not measured yet) |",
        kafka / consume
    );
    println!("(producing the input ran at {produce_rate:.0} events/s)");

    let json = serde_json::json!({
        "records": options.records,
        "runs": options.runs,
        "noisy": noisy,
        "kafka_to_postgres_events_per_s": kafka_rates,
        "binary_copy_events_per_s": copy_rates,
        "consume_only_events_per_s": consume_rates,
        "median": { "kafka_to_postgres": kafka, "binary_copy": copy, "consume_only": consume },
        "produce_events_per_s": produce_rate,
    });
    let out = std::path::Path::new("target/bench");
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("ingest.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    eprintln!("written to target/bench/ingest.json");
    Ok(())
}
