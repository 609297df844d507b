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

/// Firehose `PutRecordBatch` requests of 500 records over `connections`
/// keep-alive connections to the service's router, until every record is stored.
async fn firehose_ingest(
    pool: &PgPool,
    bodies: &[String],
    records: usize,
    connections: usize,
) -> anyhow::Result<Duration> {
    let state = server::state::AppState {
        pool: pool.clone(),
        leptos_options: leptos::config::LeptosOptions::builder()
            .output_name("pulseboard")
            .build(),
        kafka: None,
        ingest_streams: vec!["sensors".to_string()].into(),
        custom_streams: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server =
        tokio::spawn(async move { axum::serve(listener, server::router::router(state)).await });
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for share in bodies.chunks(bodies.len().div_ceil(connections)) {
        let share = share.to_vec();
        clients.spawn(async move {
            let mut connection =
                tokio::io::BufStream::new(tokio::net::TcpStream::connect(addr).await?);
            for body in share {
                let (status, reply) = put_record_batch(&mut connection, &body).await?;
                anyhow::ensure!(
                    status == 200 && reply.contains("\"FailedPutCount\":0"),
                    "status {status}: {reply}"
                );
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let took = started.elapsed();
    server.abort();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM message")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        stored as usize == records,
        "Firehose stored {stored} of {records}"
    );
    Ok(took)
}

/// One request over a keep-alive HTTP/1.1 connection; returns status and body.
async fn put_record_batch(
    connection: &mut tokio::io::BufStream<tokio::net::TcpStream>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST / HTTP/1.1\r\nHost: bench\r\nX-Amz-Target: Firehose_20150804.PutRecordBatch\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    connection.write_all(head.as_bytes()).await?;
    connection.write_all(body.as_bytes()).await?;
    connection.flush().await?;
    let mut line = String::new();
    connection.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let mut length = 0;
    loop {
        line.clear();
        connection.read_line(&mut line).await?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut reply = vec![0; length];
    connection.read_exact(&mut reply).await?;
    Ok((status, String::from_utf8_lossy(&reply).into_owned()))
}

/// The request bodies for `rows`, 500 records each, prepared before timing.
fn firehose_bodies(rows: &[Reading]) -> Vec<String> {
    use base64::Engine;
    rows.chunks(server::firehose::MAX_BATCH_RECORDS)
        .map(|chunk| {
            let records: Vec<serde_json::Value> = chunk
                .iter()
                .map(|r| serde_json::json!({ "Data": base64::engine::general_purpose::STANDARD.encode(r.to_json()) }))
                .collect();
            serde_json::json!({ "DeliveryStreamName": "sensors", "Records": records }).to_string()
        })
        .collect()
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
        ..Default::default()
    })?;
    let started = Instant::now();
    for chunk in rows.chunks(20_000) {
        publisher.publish(chunk).await?;
    }
    let produce_rate = options.records as f64 / started.elapsed().as_secs_f64();

    let bodies = firehose_bodies(&rows);
    let (mut copy_rates, mut kafka_rates, mut consume_rates, mut http_rates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
            ..Default::default()
        };
        let took = kafka_to_postgres(&kafka_db, &kafka_config, options.records).await?;
        kafka_rates.push(options.records as f64 / took.as_secs_f64());
        kafka_db.close().await;

        let http_db = fresh_database(&admin, &admin_url, &format!("bench_http_{nonce:x}")).await?;
        let took = firehose_ingest(&http_db, &bodies, options.records, 4).await?;
        http_rates.push(options.records as f64 / took.as_secs_f64());
        http_db.close().await;

        let took = consume_only(&kafka_config, options.records).await?;
        consume_rates.push(options.records as f64 / took.as_secs_f64());
        eprintln!(
            "run {run}: copy {:.0}/s, kafka to postgres {:.0}/s, firehose {:.0}/s, consume only {:.0}/s",
            copy_rates[run - 1],
            kafka_rates[run - 1],
            http_rates[run - 1],
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

    let (kafka, copy, consume, http) = (
        median(kafka_rates.clone()),
        median(copy_rates.clone()),
        median(consume_rates.clone()),
        median(http_rates.clone()),
    );
    // The Kafka path is the baseline of the Firehose figure.
    let noisy =
        spread(&copy_rates) > 0.25 || spread(&consume_rates) > 0.25 || spread(&kafka_rates) > 0.25;
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
    println!(
        "| Firehose PutRecordBatch ingest (4 connections) | {http:.0} | the Kafka path above | {kafka:.0} | {:.2} | at least 0.8 |",
        http / kafka
    );
    println!("(producing the input ran at {produce_rate:.0} events/s)");

    let json = serde_json::json!({
        "records": options.records,
        "runs": options.runs,
        "noisy": noisy,
        "kafka_to_postgres_events_per_s": kafka_rates,
        "binary_copy_events_per_s": copy_rates,
        "consume_only_events_per_s": consume_rates,
        "firehose_events_per_s": http_rates,
        "median": { "kafka_to_postgres": kafka, "binary_copy": copy, "consume_only": consume, "firehose": http },
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
