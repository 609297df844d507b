//! Firehose `PutRecordBatch` against the service's router, served as in
//! production (connection limits, request-time limit, per-key rates), each
//! request signed as an AWS SDK signs it: flat out over a few connections,
//! and at a sustained rate for minutes with each request's latency.

use crate::http::Connection;
use crate::served::percentile;
use crate::{BENCH_FLUSH, Reading};
use server::config::HttpLimits;
use server::group_commit::GroupCommit;
use server::ingest_rate::IngestRates;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The service's HTTP side on a loopback port, with an ingest key.
struct Service {
    addr: SocketAddr,
    stop: CancellationToken,
    key: Arc<(String, String)>,
}

impl Service {
    async fn start(pool: &PgPool) -> anyhow::Result<Service> {
        let state = server::state::AppState {
            charts: app::chart::service::ChartService::new(
                pool.clone(),
                app::chart::dataset::builtin(),
                Default::default(),
            ),
            live: Default::default(),
            pages: Default::default(),
            sessions: Default::default(),
            writer: GroupCommit::start(pool.clone(), BENCH_FLUSH.max_records, None),
            pool: pool.clone(),
            leptos_options: leptos::config::LeptosOptions::builder()
                .output_name("pulseboard")
                .build(),
            kafka: None,
            ingest_streams: vec!["sensors".to_string()].into(),
            catalog: Default::default(),
            custom_streams: Default::default(),
            ingest_rates: IngestRates::new(HttpLimits::DEFAULT.ingest_records_per_second),
            request_timeout: HttpLimits::DEFAULT.request_timeout,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        // As the service does: the medians' value counts are folded meanwhile.
        tokio::spawn(server::median_counts::run(pool.clone(), stop.clone()));
        tokio::spawn(server::connections::serve(
            listener,
            server::router::router(state),
            HttpLimits::DEFAULT,
            stop.clone(),
        ));
        let key = app::accounts::keys::create(pool, "bench", "bench").await?;
        Ok(Service {
            addr,
            stop,
            key: Arc::new((key.access_key_id, key.secret)),
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Signs and sends one `PutRecordBatch`; an error unless every record was stored.
async fn put_batch(
    connection: &mut Connection,
    key: &(String, String),
    body: &str,
) -> anyhow::Result<()> {
    let headers = [
        ("host", "bench"),
        ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
        ("content-type", "application/x-amz-json-1.1"),
    ];
    let now = server::reading::epoch_micros() / 1_000_000;
    let [date, authorization] = server::sigv4::sign(
        "POST",
        "/",
        &headers,
        body.as_bytes(),
        (&key.0, &key.1),
        "us-east-1",
        now,
    );
    let reply = connection
        .request(
            "POST",
            "/",
            &[
                headers[1],
                headers[2],
                (date.0, &date.1),
                (authorization.0, &authorization.1),
            ],
            body.as_bytes(),
        )
        .await?;
    anyhow::ensure!(
        reply.status == 200 && reply.text().contains("\"FailedPutCount\":0"),
        "status {}: {}",
        reply.status,
        reply.text()
    );
    Ok(())
}

async fn stored(pool: &PgPool) -> anyhow::Result<usize> {
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM message")
        .fetch_one(pool)
        .await?;
    Ok(stored as usize)
}

/// Sends `bodies` (500 records each) over `connections` keep-alive
/// connections as fast as they are answered; the time until all are stored.
pub async fn ingest(
    pool: &PgPool,
    bodies: &[String],
    records: usize,
    connections: usize,
) -> anyhow::Result<Duration> {
    let service = Service::start(pool).await?;
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for share in bodies.chunks(bodies.len().div_ceil(connections)) {
        let share = share.to_vec();
        let (addr, key) = (service.addr, service.key.clone());
        clients.spawn(async move {
            let mut connection = Connection::open(addr).await?;
            for body in share {
                put_batch(&mut connection, &key, &body).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let took = started.elapsed();
    drop(service);
    let stored = stored(pool).await?;
    anyhow::ensure!(stored == records, "Firehose stored {stored} of {records}");
    Ok(took)
}

/// The request bodies for `rows`, 500 records each, prepared before timing.
pub fn bodies(rows: &[Reading]) -> Vec<String> {
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

/// What a sustained run measured.
pub struct Sustained {
    /// Per-request latency under the sustained load, ms.
    pub p50: f64,
    pub p99: f64,
    /// The same requests one at a time with nothing else running, ms.
    pub unloaded_p50: f64,
    pub unloaded_p99: f64,
    /// Requests that failed (any status but 200, any record refused, any
    /// connection error), and records sent but not stored.
    pub errors: usize,
    pub lost: usize,
    /// Records per second actually sent over the whole run.
    pub rate: f64,
}

/// Requests sent one at a time for the unloaded baseline.
const UNLOADED_REQUESTS: usize = 200;
/// Client connections of the sustained run, as a few SDK producers keep.
const SUSTAINED_CONNECTIONS: usize = 4;

/// `PutRecordBatch` of 500 readings at `records_per_second` over 4
/// connections for `duration`, each connection on a fixed schedule. A
/// request's latency counts from when it was due, so a slow answer that
/// delays the next request counts against the server in both.
pub async fn sustained(
    pool: &PgPool,
    records_per_second: usize,
    duration: Duration,
) -> anyhow::Result<Sustained> {
    let service = Service::start(pool).await?;
    let per_request = server::firehose::MAX_BATCH_RECORDS;

    let mut unloaded = Vec::with_capacity(UNLOADED_REQUESTS);
    let mut connection = Connection::open(service.addr).await?;
    let mut next = fresh_readings(0);
    for _ in 0..UNLOADED_REQUESTS {
        let body = bodies(&next(per_request)).remove(0);
        let started = Instant::now();
        put_batch(&mut connection, &service.key, &body).await?;
        unloaded.push(started.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(connection);
    let before = stored(pool).await?;

    let interval = Duration::from_secs_f64(
        (per_request * SUSTAINED_CONNECTIONS) as f64 / records_per_second as f64,
    );
    let started = tokio::time::Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..SUSTAINED_CONNECTIONS {
        let (addr, key) = (service.addr, service.key.clone());
        // Clients spread evenly over one interval.
        let first = started + interval.mul_f64(client as f64 / SUSTAINED_CONNECTIONS as f64);
        clients.spawn(async move {
            let mut next = fresh_readings(client + 1);
            let mut connection = None;
            let (mut latencies, mut errors, mut sent) = (Vec::new(), 0, 0);
            let mut due = first;
            while due < started + duration {
                let body = bodies(&next(per_request)).remove(0);
                tokio::time::sleep_until(due).await;
                let answered = async {
                    if connection.is_none() {
                        connection = Some(Connection::open(addr).await?);
                    }
                    let open = connection.as_mut().expect("opened above");
                    put_batch(open, &key, &body).await
                }
                .await;
                match answered {
                    Ok(()) => latencies.push(due.elapsed().as_secs_f64() * 1e3),
                    Err(error) => {
                        eprintln!("  sustained Firehose request failed: {error:#}");
                        errors += 1;
                        connection = None;
                    }
                }
                sent += per_request;
                due += interval;
            }
            (latencies, errors, sent)
        });
    }
    let (mut latencies, mut errors, mut sent) = (Vec::new(), 0, 0);
    while let Some(done) = clients.join_next().await {
        let (client_latencies, client_errors, client_sent) = done?;
        latencies.extend(client_latencies);
        errors += client_errors;
        sent += client_sent;
    }
    let took = started.elapsed();
    drop(service);
    let stored = stored(pool).await? - before;
    anyhow::ensure!(!latencies.is_empty(), "no sustained request succeeded");
    Ok(Sustained {
        p50: percentile(latencies.clone(), 0.5),
        p99: percentile(latencies, 0.99),
        unloaded_p50: percentile(unloaded.clone(), 0.5),
        unloaded_p99: percentile(unloaded, 0.99),
        errors,
        lost: sent.saturating_sub(stored),
        rate: sent as f64 / took.as_secs_f64(),
    })
}

/// Readings of the six seed sensors, a new second for each batch, so that
/// minutes of them need no memory up front. `client` keeps clients' apart.
fn fresh_readings(client: usize) -> impl FnMut(usize) -> Vec<Reading> {
    use rand::SeedableRng;
    let mut waves = server::simulator::seed_waves();
    let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
    let mut second = 1_700_000_000 + client as i64 * 100_000_000;
    move |count| {
        second += 1;
        (0..count)
            .map(|i| waves[i % 6].next_reading(second, &mut rng))
            .collect()
    }
}
