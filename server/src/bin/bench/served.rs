//! Figures of the service as users run it: the `pulseboard` binary consuming
//! a Kafka topic of sensor readings, with 10 million older readings in its
//! table (10 million by default), charts asked for over HTTP as the dashboard asks for them, and its
//! CPU time and memory read from /proc. Each beside a baseline taken in the
//! same run.

use crate::http::Connection;
use crate::process::{self, RunningService, sum_of};
use crate::{Figures, Options, database_url, fresh_database, readings_spaced};
use anyhow::Context;
use app::chart::definition::ChartDefinition;
use app::chart::view::{ChartView, ViewOptions};
use app::chart::{Cell, api};
use leptos::server_fn::ServerFn;
use server::config::FlushConfig;
use server::kafka::ReadingPublisher;
use server::pgcopy::BinaryRows;
use server::reading::Reading;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the served figures need from the run.
pub struct Setup<'a> {
    pub admin: &'a PgPool,
    pub admin_url: &'a str,
    pub bootstrap: &'a str,
    pub nonce: u32,
}

/// Samples per chart and per run: enough that a p95 is not simply the
/// slowest, except for the chart that reads every reading (8 s each).
const WINDOW_SAMPLES: usize = 40;
const SCAN_SAMPLES: usize = 10;
const ROLLUP_SAMPLES: usize = 40;
/// Records posted one at a time to time event-to-visible, per run.
const PROBES: usize = 20;
/// How often the probe's chart is asked for.
const POLL: Duration = Duration::from_millis(100);
/// Dashboard viewers for each ingest-under-load figure.
const VIEWER_LOADS: [(&str, usize); 2] = [("ingest_viewers", 10), ("ingest_viewers_50", 50)];
/// How far the soak's producer may run ahead of what the service stored.
const MAX_LAG: u64 = 1_000_000;

/// Distinct tile widths, so that no sample is served from the chart cache.
static WIDTH: AtomicU32 = AtomicU32::new(0);

/// A width from 900 to 3,999 pixels, each used again only after the 3,099
/// others: long after the cache has let its chart go.
fn fresh_width() -> u32 {
    900 + WIDTH.fetch_add(1, Ordering::Relaxed) % 3_100
}

/// The keys of the figures measured here.
pub const KEYS: [&str; 31] = [
    "service_ingest",
    "service_cpu",
    "postgres_cpu",
    "peak_rss",
    "window_chart",
    "psql_window",
    "window_scan",
    "psql_window_scan",
    "rollup_chart",
    "psql_rollup",
    "totals_chart",
    "psql_totals",
    "window_chart_ingesting",
    "ingest_charting",
    "window_query",
    "window_render",
    "window_query_ingesting",
    "window_render_ingesting",
    "psql_window_running",
    "psql_window_waiting",
    "psql_window_ingesting",
    "psql_window_running_ingesting",
    "psql_window_waiting_ingesting",
    "ingest_viewers",
    "ingest_viewers_50",
    "visible_api",
    "visible_budget",
    "ssr",
    "ssr_login",
    "hello",
    "visible_browser",
];

pub const SOAK_KEYS: [&str; 4] = ["rss_soak", "rss_1min", "rss_outage", "rss_before_outage"];

struct Charts {
    window: ChartDefinition,
    /// The window chart with a filter no summary answers: every reading read.
    window_scan: ChartDefinition,
    rollup: ChartDefinition,
    totals: ChartDefinition,
    probe: ChartDefinition,
}

fn chart(json: serde_json::Value) -> ChartDefinition {
    serde_json::from_value(json).expect("a valid chart definition")
}

impl Charts {
    /// `raw` is the span of the raw readings, `recent` that of the first
    /// backlog from Kafka, both in epoch seconds.
    fn new(raw: (i64, i64), recent: (i64, i64), probe_guid: &str) -> Charts {
        let between = |(from, to): (i64, i64)| serde_json::json!({ "between": { "from_ms": from * 1000, "to_ms": (to + 1) * 1000 } });
        let window = serde_json::json!({
            "name": "Average temperature per location and minute",
            "dataset": "sensor_msg_detail", "type": "line",
            "metrics": [{ "aggregate": "avg", "column": "temp" }],
            "group_by": ["location"], "time_grain": "1m",
            "time_range": between(raw), "visual": {}
        });
        let mut window_scan = window.clone();
        // Every reading passes; the statistics cannot tell, so all are read.
        window_scan["filters"] =
            serde_json::json!([{ "column": "temp", "op": "gt", "values": [-1000] }]);
        Charts {
            window: chart(window),
            window_scan: chart(window_scan),
            rollup: chart(serde_json::json!({
                "name": "Readings per sensor and minute",
                "dataset": "sensor_stats_minutely", "type": "line",
                "metrics": [{ "aggregate": "sum", "column": "msg_count" }],
                "group_by": ["guid"], "time_grain": "1m",
                "time_range": between(recent), "visual": {}
            })),
            totals: chart(serde_json::json!({
                "name": "Messages per sensor",
                "dataset": "sensor_stats", "type": "bar",
                "metrics": [{ "aggregate": "sum", "column": "msg_count" }],
                "group_by": ["location"], "time_range": "all", "visual": {}
            })),
            probe: chart(serde_json::json!({
                "name": "Messages from one sensor",
                "dataset": "sensor_stats", "type": "table",
                "metrics": [{ "aggregate": "sum", "column": "msg_count" }],
                "filters": [{ "column": "guid", "op": "eq", "values": [probe_guid] }],
                "time_range": "all", "visual": {}
            })),
        }
    }
}

/// The service, its database and topic, and how to start it again.
struct Bench<'a> {
    setup: &'a Setup<'a>,
    pool: PgPool,
    db_url: String,
    topic: String,
    publisher: ReadingPublisher,
    /// When the benchmark began, epoch seconds.
    began: i64,
    /// Backlogs produced so far.
    backlogs: i64,
    log: std::path::PathBuf,
    /// Largest resident set of any service process, MiB.
    peak_rss: f64,
    /// The session cookie of the benchmark's admin account.
    session: tokio::sync::OnceCell<String>,
}

impl Bench<'_> {
    async fn start(&self) -> anyhow::Result<RunningService> {
        let site_root =
            std::env::var("PULSEBOARD_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
        let mut service = RunningService::start(
            &[
                ("DATABASE_URL", self.db_url.clone()),
                (
                    "PULSEBOARD_KAFKA_BOOTSTRAP",
                    self.setup.bootstrap.to_string(),
                ),
                ("PULSEBOARD_KAFKA_TOPIC", self.topic.clone()),
                (
                    "PULSEBOARD_KAFKA_GROUP",
                    format!("bench-{:x}", self.setup.nonce),
                ),
                ("PULSEBOARD_SIMULATOR", "false".into()),
                ("PULSEBOARD_SALES_SIMULATOR", "false".into()),
                ("PULSEBOARD_SITE_ROOT", site_root),
                ("RUST_LOG", "warn".into()),
            ],
            &self.log,
        )
        .await
        .map(|mut service| {
            service.session = self.session.get().cloned().unwrap_or_default();
            service
        })?;
        // Dashboards are read by a signed-in account; the service has made
        // the accounts table by now.
        if service.session.is_empty() {
            service.session = self
                .session
                .get_or_try_init(|| async {
                    use app::accounts::{Role, store};
                    let password = self.password();
                    store::create_user(&self.pool, "bench", &password, Role::Admin).await?;
                    let (_, token) = store::sign_in(&self.pool, "bench", &password)
                        .await?
                        .context("the benchmark's account cannot sign in")?;
                    anyhow::Ok(format!("{}={token}", server::auth::SESSION_COOKIE))
                })
                .await?
                .clone();
        }
        Ok(service)
    }

    /// The password of the benchmark's admin account, `bench`.
    fn password(&self) -> String {
        format!("bench {:x}", self.setup.nonce)
    }

    async fn stop(&mut self, service: RunningService) -> anyhow::Result<()> {
        self.peak_rss = self.peak_rss.max(service.memory()?.peak_mib);
        service.stop().await
    }

    /// Produces `count` readings over an hour of their own, the hour before
    /// the previous backlog's: in time order within it, as a stream's
    /// records arrive, and never piling more readings into an hour.
    async fn produce_backlog(&mut self, count: usize) -> anyhow::Result<()> {
        self.backlogs += 1;
        let start = self.began - 3600 * self.backlogs;
        let rows = readings_spaced(count, start, count.div_ceil(3600).max(1));
        for chunk in rows.chunks(20_000) {
            self.publisher.publish(chunk).await?;
        }
        Ok(())
    }
}

/// How one backlog was ingested.
struct Ingested {
    took: Duration,
    service_cpu: f64,
    postgres_cpu: f64,
}

/// Waits until the service has stored `records` Kafka records, timed from
/// the first one it received (as the counting consumer is timed).
async fn ingest(service: &RunningService, records: usize) -> anyhow::Result<Ingested> {
    let pid_file = std::env::var("PULSEBOARD_BENCH_PG_PID_FILE").ok();
    let postgres_cpu = || match &pid_file {
        Some(file) => process::postgres_cpu_seconds(file),
        None => Ok(f64::NAN),
    };
    let launched = Instant::now();
    while service.kafka_counts().await?.0 == 0 {
        anyhow::ensure!(
            launched.elapsed() < Duration::from_secs(120),
            "the service received nothing in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (started, cpu, pg_cpu) = (Instant::now(), service.cpu_seconds()?, postgres_cpu()?);
    while (service.kafka_counts().await?.1 as usize) < records {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "ingest did not finish in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Ingested {
        took: started.elapsed(),
        service_cpu: service.cpu_seconds()? - cpu,
        postgres_cpu: postgres_cpu()? - pg_cpu,
    })
}

/// Asks for a chart as the chart editor's preview does; returns how long
/// the answer took and the chart.
async fn preview(
    connection: &mut Connection,
    definition: &ChartDefinition,
    width: u32,
) -> anyhow::Result<(Duration, ChartView)> {
    let body = serde_json::json!({
        "definition": definition,
        "options": ViewOptions { width, ..ViewOptions::default() },
    });
    let started = Instant::now();
    let reply = connection
        .request(
            "POST",
            api::PreviewChart::PATH,
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await?;
    let took = started.elapsed();
    anyhow::ensure!(
        reply.status == 200,
        "preview: {} {}",
        reply.status,
        reply.text()
    );
    match serde_json::from_slice(&reply.body)? {
        api::Preview::Drawn(view) => Ok((took, view)),
        api::Preview::Invalid(errors) => anyhow::bail!("invalid chart: {errors:?}"),
    }
}

/// Server times of `samples` fresh (uncached) draws of a chart, in ms.
async fn draw_times(
    connection: &mut Connection,
    definition: &ChartDefinition,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (took, view) = preview(connection, definition, fresh_width()).await?;
        anyhow::ensure!(view.points > 0, "{}: no points drawn", definition.name);
        times.push(took.as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// Draws taken together, in ms: this many of the service's, then this many
/// of `psql`'s, and again, so that both sides see the same machine. Run one
/// phase after the other, a slow minute of a shared machine lands on one
/// side alone.
const BLOCK: usize = 10;

/// Connections in the service's pool (`PULSEBOARD_DB_MAX_CONNECTIONS`, 10 by
/// default), which hands them out in turn. A chart's first draw on each
/// prepares its statement there, and a connection's first statement loads
/// the catalog into its Postgres backend: together about 14 ms more than a
/// later draw of the window chart. As with `psql`'s `PREPARE`, those draws
/// are not timed.
const POOLED_CONNECTIONS: usize = 10;

/// Draws a chart once on each pooled connection, untimed.
async fn warm_up(connection: &mut Connection, definition: &ChartDefinition) -> anyhow::Result<()> {
    for _ in 0..POOLED_CONNECTIONS {
        preview(connection, definition, fresh_width()).await?;
    }
    Ok(())
}

/// `samples` server times of a chart (whose draws are warmed up) and as
/// many `psql` times of its statement, taken in alternating blocks.
async fn chart_beside_psql(
    connection: &mut Connection,
    db_url: &str,
    definition: &ChartDefinition,
    samples: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, PerRun)> {
    let mut psql = Psql::start(db_url, definition).await?;
    let (mut drawn, mut ran) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut backend = Scheduled::default();
    while drawn.len() < samples {
        let block = BLOCK.min(samples - drawn.len());
        drawn.extend(draw_times(connection, definition, block).await?);
        let (times, spent) = psql.times(block).await?;
        ran.extend(times);
        backend.add(spent);
    }
    psql.finish().await?;
    let per_run = backend.per_run(ran.len());
    Ok((drawn, ran, per_run))
}

/// How a process spent its time while it had work, as the kernel counts
/// it: on a core, and runnable but waiting for one (`/proc/PID/schedstat`).
/// The bench's Postgres runs on this machine, so its processes are there.
#[derive(Clone, Copy, Default)]
struct Scheduled {
    running_ns: u64,
    waiting_ns: u64,
}

impl Scheduled {
    fn of(pid: u32) -> anyhow::Result<Scheduled> {
        Scheduled::read(&format!("/proc/{pid}/schedstat"))
    }

    fn read(path: &str) -> anyhow::Result<Scheduled> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(running_ns)), Some(Ok(waiting_ns))) => Ok(Scheduled {
                running_ns,
                waiting_ns,
            }),
            _ => anyhow::bail!("{path}: unexpected contents {text:?}"),
        }
    }

    fn since(self, before: Scheduled) -> Scheduled {
        Scheduled {
            running_ns: self.running_ns - before.running_ns,
            waiting_ns: self.waiting_ns - before.waiting_ns,
        }
    }

    fn add(&mut self, more: Scheduled) {
        self.running_ns += more.running_ns;
        self.waiting_ns += more.waiting_ns;
    }

    fn per_run(self, runs: usize) -> PerRun {
        let ms = |ns: u64| ns as f64 / 1e6 / runs.max(1) as f64;
        PerRun {
            running_ms: ms(self.running_ns),
            waiting_ms: ms(self.waiting_ns),
        }
    }
}

/// A `psql` backend's time per run of the statement: on a core, and
/// waiting for one.
struct PerRun {
    running_ms: f64,
    waiting_ms: f64,
}

/// The service's own account of the charts it drew, from `/metrics`: time
/// spent in queries and in rendering, and how many of each.
#[derive(Clone, Copy)]
struct ChartParts {
    query_seconds: f64,
    queries: f64,
    render_seconds: f64,
    renders: f64,
}

impl ChartParts {
    async fn read(service: &RunningService) -> anyhow::Result<ChartParts> {
        let text = service.metrics().await?;
        let sum = "pulseboard_chart_part_duration_seconds_sum";
        let count = "pulseboard_chart_part_duration_seconds_count";
        let (query, render) = ("part=\"query\"", "part=\"render\"");
        Ok(ChartParts {
            query_seconds: sum_of(&text, sum, query),
            queries: sum_of(&text, count, query),
            render_seconds: sum_of(&text, sum, render),
            renders: sum_of(&text, count, render),
        })
    }

    /// Mean ms per query and per rendering since `before`.
    fn means_since(self, before: ChartParts) -> anyhow::Result<(f64, f64)> {
        let mean = |seconds: f64, count: f64| {
            anyhow::ensure!(
                count > 0.0,
                "no chart drawn between two readings of /metrics"
            );
            Ok(seconds / count * 1000.0)
        };
        Ok((
            mean(
                self.query_seconds - before.query_seconds,
                self.queries - before.queries,
            )?,
            mean(
                self.render_seconds - before.render_seconds,
                self.renders - before.renders,
            )?,
        ))
    }
}

/// A `psql` session with a chart's own statement prepared, with the same
/// parameter types as the service's driver sends, running it on demand.
struct Psql {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    out: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    execute: String,
    /// The Postgres process serving the session.
    backend: u32,
}

impl Psql {
    async fn start(db_url: &str, definition: &ChartDefinition) -> anyhow::Result<Psql> {
        use tokio::io::AsyncBufReadExt;
        let psql = std::env::var("PULSEBOARD_BENCH_PSQL").unwrap_or_else(|_| "psql".into());
        let query = app::chart::query::build(
            definition,
            &app::chart::dataset::builtin(),
            app::chart::service::now_ms(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let (prepare, execute) = query.prepared("chart");
        // Rows go to /dev/null; `\timing` lines to stdout; errors, which
        // stop psql, to the bench's own stderr.
        let mut child = tokio::process::Command::new(&psql)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-o",
                "/dev/null",
                "-d",
                db_url,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {psql}"))?;
        let stdin = child.stdin.take().context("psql stdin")?;
        let out = tokio::io::BufReader::new(child.stdout.take().context("psql stdout")?).lines();
        let mut session = Psql {
            child,
            stdin,
            out,
            execute: format!("{execute};\n"),
            backend: 0,
        };
        session
            .send("SELECT pg_backend_pid() AS backend \\gset\n\\echo backend :backend\n")
            .await?;
        session.backend = session
            .next_line()
            .await?
            .strip_prefix("backend ")
            .and_then(|pid| pid.parse().ok())
            .context("psql did not say its backend's process id")?;
        // Untimed, as the service's first draw on each connection: the
        // PREPARE and a first run, which plans with cold caches.
        session
            .send(&format!("\\timing on\n{prepare};\n{execute};\n"))
            .await?;
        session.read_times(2).await?;
        Ok(session)
    }

    async fn next_line(&mut self) -> anyhow::Result<String> {
        self.out
            .next_line()
            .await?
            .context("psql stopped (its error is above)")
    }

    async fn send(&mut self, script: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(script.as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    /// The next `count` `\timing` figures, in ms.
    async fn read_times(&mut self, count: usize) -> anyhow::Result<Vec<f64>> {
        let mut times = Vec::with_capacity(count);
        while times.len() < count {
            let line = self.next_line().await?;
            if let Some(ms) = line
                .strip_prefix("Time: ")
                .and_then(|t| t.split(' ').next()?.parse().ok())
            {
                times.push(ms);
            }
        }
        Ok(times)
    }

    /// `samples` runs of the statement: their `\timing` figures in ms,
    /// and the backend's time over them. Between blocks the backend waits
    /// on `psql`, so its counts over a block are those of the block's runs.
    async fn times(&mut self, samples: usize) -> anyhow::Result<(Vec<f64>, Scheduled)> {
        let before = Scheduled::of(self.backend)?;
        self.send(&self.execute.repeat(samples)).await?;
        let times = self.read_times(samples).await?;
        Ok((times, Scheduled::of(self.backend)?.since(before)))
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        let status = self.child.wait().await?;
        anyhow::ensure!(status.success(), "psql failed: {status}");
        Ok(())
    }
}

pub fn p95(values: Vec<f64>) -> f64 {
    percentile(values, 0.95)
}

/// The nearest-rank percentile `q` (0 to 1) of `values`.
pub fn percentile(mut values: Vec<f64>, q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * q).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Loads the raw readings by binary COPY, a million at a time, spaced
/// evenly over `span`.
async fn load_raw(pool: &PgPool, count: usize, span: (i64, i64)) -> anyhow::Result<()> {
    let per_second = count.div_ceil((span.1 - span.0) as usize);
    let mut waves = server::simulator::seed_waves();
    let mut rng = rand::rng();
    let mut done = 0;
    while done < count {
        let part = (count - done).min(1_000_000);
        let mut rows = BinaryRows::with_capacity(part);
        for i in done..done + part {
            let ts = span.0 + (i / per_second) as i64;
            let r = waves[i % 6].next_reading(ts, &mut rng);
            rows.row(3)
                .text(&r.guid)
                .int8(r.ts)
                .numeric2((r.temp * 100.0).round() as i64);
        }
        crate::copy_into(
            pool,
            "COPY message (guid, ts, temp) FROM STDIN (FORMAT binary)",
            rows.finish(),
            part,
        )
        .await?;
        done += part;
    }
    // The summaries ingest keeps beside the rows: charts read them.
    server::store::summarize_stored_readings(pool, span.0, span.1).await?;
    sqlx::query("VACUUM ANALYZE message").execute(pool).await?;
    sqlx::query("VACUUM ANALYZE sensor_stats_minutely, sensor_stats_10s, sensor_latency_batches")
        .execute(pool)
        .await?;
    Ok(())
}

/// The first number a table chart shows.
async fn shown_number(
    connection: &mut Connection,
    chart: &ChartDefinition,
    width: u32,
) -> anyhow::Result<f64> {
    let (_, view) = preview(connection, chart, width).await?;
    match view
        .table
        .as_ref()
        .and_then(|t| t.rows.first()?.first().cloned())
    {
        Some(Cell::Number(x)) => Ok(x),
        other => anyhow::bail!("{}: no number shown ({other:?})", chart.name),
    }
}

/// Record to chart through the dashboard API: posts one reading at a time
/// to Kafka and asks for a chart of that sensor's message count every
/// `POLL`, as a dashboard refreshing that often would; the ms until the
/// count includes it.
async fn event_to_visible(
    bench: &Bench<'_>,
    service: &RunningService,
    chart: &ChartDefinition,
    guid: &str,
) -> anyhow::Result<Vec<f64>> {
    let mut connection = service.connect().await?;
    let width = fresh_width();
    let mut delays = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let before = shown_number(&mut connection, chart, fresh_width()).await?;
        let posted = Instant::now();
        let ts = app::chart::service::now_ms() / 1000;
        bench
            .publisher
            .publish(&[Reading::new(guid, ts, 70.0)])
            .await?;
        loop {
            let asked = Instant::now();
            if shown_number(&mut connection, chart, width).await? > before {
                delays.push(posted.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            anyhow::ensure!(
                posted.elapsed() < Duration::from_secs(30),
                "a posted reading did not show within 30 s"
            );
            tokio::time::sleep(POLL.saturating_sub(asked.elapsed())).await;
        }
    }
    Ok(delays)
}

/// Requests per second that `connections` keep-alive clients get from
/// `GET path` in `seconds`, each answer checked.
async fn requests_per_second(
    addr: std::net::SocketAddr,
    session: Option<&str>,
    path: &'static str,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let session = session.map(String::from);
        clients.spawn(async move {
            let mut connection = Connection::open(addr).await?;
            if let Some(cookie) = &session {
                connection = connection.signed_in(cookie);
            }
            let mut count = 0u64;
            while Instant::now() < until {
                let reply = connection.request("GET", path, &[], b"").await?;
                anyhow::ensure!(reply.status == 200, "GET {path}: {}", reply.status);
                count += 1;
            }
            anyhow::Ok(count)
        });
    }
    let started = Instant::now();
    let mut total = 0;
    while let Some(done) = clients.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// An axum hello-world on this machine: the ceiling for any page.
/// Its requests per second, measured as the page's are.
async fn hello_world_requests_per_second() -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let rate = requests_per_second(addr, None, "/", 4, 5).await;
    server.abort();
    rate
}

/// `count` viewers of the default sensors dashboard, each asking for every
/// one of its charts once a second, as the page does, until `done`.
async fn viewers(
    addr: std::net::SocketAddr,
    session: String,
    count: usize,
    chart_ids: Arc<Vec<i64>>,
    done: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (ids, done, answered) = (chart_ids.clone(), done.clone(), answered.clone());
        let session = session.clone();
        clients.spawn(async move {
            let mut connection = Connection::open(addr).await?.signed_in(&session);
            while !done.load(Ordering::Relaxed) {
                let tick = Instant::now();
                for id in ids.iter() {
                    let body = serde_json::json!({ "id": id, "options": ViewOptions::default() });
                    let reply = connection
                        .request(
                            "POST",
                            api::ViewChart::PATH,
                            &[
                                ("Content-Type", "application/json"),
                                ("Accept", "application/json"),
                            ],
                            body.to_string().as_bytes(),
                        )
                        .await?;
                    anyhow::ensure!(reply.status == 200, "view_chart: {}", reply.text());
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    Ok(())
}

/// The live-mode browser test (headless Chromium through the running
/// service): its median and p95 from record posted to shown, in ms.
async fn browser_live(
    addr: std::net::SocketAddr,
    password: &str,
    ingest_key: &str,
) -> anyhow::Result<(f64, f64)> {
    let out = tokio::process::Command::new("npx")
        .args([
            "playwright",
            "test",
            "-g",
            "live mode shows a posted record",
        ])
        .current_dir("end2end")
        .env("PULSEBOARD_BASE_URL", format!("http://{addr}"))
        .env("PULSEBOARD_E2E_ADMIN_USER", "bench")
        .env("PULSEBOARD_E2E_ADMIN_PASSWORD", password)
        .env("PULSEBOARD_E2E_INGEST_KEY", ingest_key)
        .output()
        .await
        .context("running the browser test (npx playwright)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "the browser test failed:\n{text}");
    let figure = |name: &str| -> anyhow::Result<f64> {
        let after = text
            .split(&format!("{name} "))
            .nth(1)
            .with_context(|| format!("no {name} in the browser test's output:\n{text}"))?;
        Ok(after.split(' ').next().unwrap_or("").parse()?)
    };
    Ok((figure("median")?, figure("p95")?))
}

pub async fn measure(
    setup: &Setup<'_>,
    options: &Options,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let wanted = |keys: &[&str]| keys.iter().any(|k| options.measures(k));
    if !wanted(&KEYS) && !wanted(&SOAK_KEYS) {
        return Ok(());
    }
    let name = format!("bench_service_{:x}", setup.nonce);
    let pool = fresh_database(setup.admin, setup.admin_url, &name).await?;
    let db_url = database_url(setup.admin_url, &name);
    let topic = format!("bench.service.{:x}", setup.nonce);
    let publisher = ReadingPublisher::new(&server::config::KafkaConfig {
        bootstrap_servers: setup.bootstrap.to_string(),
        readings_topic: topic.clone(),
        ..Default::default()
    })?;
    let now = app::chart::service::now_ms() / 1000;
    // The raw readings are older than every backlog (an hour each, going
    // back from now), so the window chart reads exactly the raw rows.
    let raw_span = (now - 48 * 3600, now - 44 * 3600);
    // The first backlog's hour.
    let recent = (now - 3600, now);
    std::fs::create_dir_all("target/bench")?;
    let mut bench = Bench {
        setup,
        pool,
        db_url,
        topic,
        publisher,
        began: now,
        backlogs: 0,
        log: "target/bench/service.log".into(),
        peak_rss: 0.0,
        session: tokio::sync::OnceCell::new(),
    };
    let probe_guid = server::simulator::SEED_SENSORS[0].guid;
    let charts = Charts::new(raw_span, recent, probe_guid);
    let records = options.records;

    eprintln!("loading {} raw readings by COPY", options.raw_readings);
    load_raw(&bench.pool, options.raw_readings, raw_span).await?;

    for run in 1..=options.runs {
        eprintln!("service run {run}: idle ingest, charts, event to visible, pages");
        bench.produce_backlog(records).await?;
        let service = bench.start().await?;
        let ingested = ingest(&service, records).await?;
        figures.add("service_ingest", records, ingested.took);
        let per_million = 1e6 / records as f64;
        figures.add_value("service_cpu", ingested.service_cpu * per_million);
        figures.add_value("postgres_cpu", ingested.postgres_cpu * per_million);

        if wanted(&[
            "window_chart",
            "psql_window",
            "window_chart_ingesting",
            "window_query",
            "window_render",
            "psql_window_ingesting",
            "psql_window_running",
            "psql_window_waiting",
        ]) {
            let mut connection = service.connect().await?;
            warm_up(&mut connection, &charts.window).await?;
            let before = ChartParts::read(&service).await?;
            let (drawn, ran, backend) = chart_beside_psql(
                &mut connection,
                &bench.db_url,
                &charts.window,
                WINDOW_SAMPLES,
            )
            .await?;
            let (query, render) = ChartParts::read(&service).await?.means_since(before)?;
            figures.add_value("window_query", query);
            figures.add_value("window_render", render);
            figures.add_value("window_chart", p95(drawn));
            figures.add_value("psql_window", p95(ran));
            figures.add_value("psql_window_running", backend.running_ms);
            figures.add_value("psql_window_waiting", backend.waiting_ms);
        }
        if wanted(&["window_scan", "psql_window_scan"]) {
            // Each draw reads 10M readings: the first on a connection is
            // no slower than the rest, so one draw warms up enough.
            let mut connection = service.connect().await?;
            preview(&mut connection, &charts.window_scan, fresh_width()).await?;
            let (drawn, ran, _) = chart_beside_psql(
                &mut connection,
                &bench.db_url,
                &charts.window_scan,
                SCAN_SAMPLES,
            )
            .await?;
            figures.add_value("window_scan", p95(drawn));
            figures.add_value("psql_window_scan", p95(ran));
        }
        for (key, base, chart) in [
            ("rollup_chart", "psql_rollup", &charts.rollup),
            ("totals_chart", "psql_totals", &charts.totals),
        ] {
            if wanted(&[key, base]) {
                let mut connection = service.connect().await?;
                warm_up(&mut connection, chart).await?;
                let (drawn, ran, _) =
                    chart_beside_psql(&mut connection, &bench.db_url, chart, ROLLUP_SAMPLES)
                        .await?;
                figures.add_value(key, p95(drawn));
                figures.add_value(base, p95(ran));
            }
        }
        if wanted(&["visible_api", "visible_budget"]) {
            let delays = event_to_visible(&bench, &service, &charts.probe, probe_guid).await?;
            figures.add_value("visible_api", p95(delays));
            let budget = FlushConfig::DEFAULT.interval + POLL;
            figures.add_value("visible_budget", budget.as_secs_f64() * 1000.0);
        }
        if wanted(&["ssr", "ssr_login", "hello"]) {
            figures.add_value(
                "ssr",
                requests_per_second(service.addr, Some(&service.session), "/d/sensors", 4, 5)
                    .await?,
            );
            // The smallest page, a form without data: what any page costs.
            figures.add_value(
                "ssr_login",
                requests_per_second(service.addr, None, "/login", 4, 5).await?,
            );
            figures.add_value("hello", hello_world_requests_per_second().await?);
        }
        if wanted(&["visible_browser"]) && run == 1 {
            // A failed browser run is reported, and the other figures kept.
            let key = app::accounts::keys::create(&bench.pool, "bench browser", "bench").await?;
            let ingest_key = format!("{}:{}", key.access_key_id, key.secret);
            match browser_live(service.addr, &bench.password(), &ingest_key).await {
                Ok((median, p95)) => {
                    figures.add_value("visible_browser", p95);
                    figures.add_value("visible_browser_median", median);
                }
                Err(error) => figures.failed("visible_browser", format!("{error:#}")),
            }
        }
        bench.stop(service).await?;

        for (key, count) in VIEWER_LOADS {
            if !wanted(&[key]) {
                continue;
            }
            eprintln!("service run {run}: ingest with {count} dashboards refreshing every second");
            bench.produce_backlog(records).await?;
            let service = bench.start().await?;
            let dashboard = app::dashboard::store::get(&bench.pool, "sensors").await?;
            let ids = Arc::new(dashboard.chart_refs());
            let (done, answered) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicU64::new(0)),
            );
            let load = tokio::spawn(viewers(
                service.addr,
                service.session.clone(),
                count,
                ids,
                done.clone(),
                answered.clone(),
            ));
            let ingested = ingest(&service, records).await;
            done.store(true, Ordering::Relaxed);
            load.await??;
            figures.add(key, records, ingested?.took);
            eprintln!("  {} charts answered", answered.load(Ordering::Relaxed));
            bench.stop(service).await?;
        }

        if wanted(&[
            "window_chart_ingesting",
            "ingest_charting",
            "window_query_ingesting",
            "window_render_ingesting",
            "psql_window_ingesting",
            "psql_window_running_ingesting",
            "psql_window_waiting_ingesting",
        ]) {
            eprintln!("service run {run}: the window chart while ingesting");
            // Enough backlog to draw the chart several times while it lasts.
            let backlog = records * 3;
            bench.produce_backlog(backlog).await?;
            let service = bench.start().await?;
            let ingesting = AtomicBool::new(true);
            let (mut times, mut ran) = (Vec::new(), Vec::new());
            let mut backend = Scheduled::default();
            // The service's draws and `psql`'s runs of the same statement
            // take turns as when idle: what ingest costs Postgres itself.
            let sample = async {
                let mut connection = service.connect().await?;
                // As when idle, the pooled connections' first draws are not
                // timed.
                warm_up(&mut connection, &charts.window).await?;
                let mut psql = Psql::start(&bench.db_url, &charts.window).await?;
                let before = ChartParts::read(&service).await?;
                while ingesting.load(Ordering::Relaxed) {
                    let drawn = draw_times(&mut connection, &charts.window, BLOCK).await?;
                    let (block, spent) = psql.times(BLOCK).await?;
                    // Only blocks that ended before ingest did count.
                    if ingesting.load(Ordering::Relaxed) {
                        times.extend(drawn);
                        ran.extend(block);
                        backend.add(spent);
                    }
                }
                psql.finish().await?;
                anyhow::Ok(before)
            };
            let wait = async {
                let result = ingest(&service, backlog).await;
                ingesting.store(false, Ordering::Relaxed);
                result
            };
            let (ingested, sampled) = tokio::join!(wait, sample);
            let ingested = ingested?;
            let before = sampled?;
            anyhow::ensure!(!times.is_empty(), "no chart finished while ingesting");
            let (query, render) = ChartParts::read(&service).await?.means_since(before)?;
            figures.add_value("window_query_ingesting", query);
            figures.add_value("window_render_ingesting", render);
            eprintln!("  {} window charts drawn while ingesting", times.len());
            figures.add_value("window_chart_ingesting", p95(times));
            let backend = backend.per_run(ran.len());
            figures.add_value("psql_window_ingesting", p95(ran));
            figures.add_value("psql_window_running_ingesting", backend.running_ms);
            figures.add_value("psql_window_waiting_ingesting", backend.waiting_ms);
            // What drawing a chart back to back costs ingest.
            figures.add("ingest_charting", backlog, ingested.took);
            bench.stop(service).await?;
        }
    }
    figures.add_value("peak_rss", bench.peak_rss);

    if wanted(&SOAK_KEYS) {
        soak(&mut bench, options, figures).await?;
    }
    bench.pool.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(setup.admin)
        .await?;
    Ok(())
}

/// Continuous ingest for `--soak-minutes`, then a Postgres outage of
/// `--outage-seconds` under the same ingest: resident memory at each point,
/// and every reading produced counted in Postgres afterwards.
async fn soak(
    bench: &mut Bench<'_>,
    options: &Options,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let service = bench.start().await?;
    let soak_start = app::chart::service::now_ms() / 1000;
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    // Stored so far, as last read from the service: the producer keeps at
    // most MAX_LAG readings ahead of it, so the service ingests at its full
    // rate while Kafka's log stays bounded (unbounded, the soak filled the
    // disk).
    let stored_seen = Arc::new(AtomicU64::new(0));
    let producer = {
        let (stop, produced, stored_seen) = (stop.clone(), produced.clone(), stored_seen.clone());
        let publisher = ReadingPublisher::new(&server::config::KafkaConfig {
            bootstrap_servers: bench.setup.bootstrap.to_string(),
            readings_topic: bench.topic.clone(),
            ..Default::default()
        })?;
        tokio::spawn(async move {
            let mut waves = server::simulator::seed_waves();
            while !stop.load(Ordering::Relaxed) {
                let ahead = produced
                    .load(Ordering::Relaxed)
                    .saturating_sub(stored_seen.load(Ordering::Relaxed));
                if ahead > MAX_LAG {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let ts = app::chart::service::now_ms() / 1000;
                let chunk: Vec<Reading> = {
                    let mut rng = rand::rng();
                    (0..10_000)
                        .map(|i| waves[i % 6].next_reading(ts, &mut rng))
                        .collect()
                };
                publisher.publish(&chunk).await?;
                produced.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    };
    let minutes = options.soak_minutes;
    eprintln!("soak: {minutes} minutes of continuous ingest");
    let started = Instant::now();
    let mut at_one_minute = None;
    let sample_rss = |service: &RunningService| service.memory().map(|m| m.rss_mib);
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stored_seen.store(service.kafka_counts().await?.1, Ordering::Relaxed);
        if at_one_minute.is_none() && started.elapsed() >= Duration::from_secs(60) {
            at_one_minute = Some(sample_rss(&service)?);
            eprintln!("  after 1 minute: {:.0} MiB", at_one_minute.unwrap_or(0.0));
        }
    }
    let at_end = sample_rss(&service)?;
    let (received, stored) = service.kafka_counts().await?;
    eprintln!(
        "  after {minutes} minutes: {at_end:.0} MiB; {} produced, {received} received, {stored} stored",
        produced.load(Ordering::Relaxed)
    );
    figures.add_value("rss_1min", at_one_minute.unwrap_or(f64::NAN));
    figures.add_value("rss_soak", at_end);
    figures.add_value(
        "soak_events_per_s",
        stored as f64 / started.elapsed().as_secs_f64(),
    );

    let outage = options.outage_seconds;
    let (stop_pg, start_pg) = (
        std::env::var("PULSEBOARD_BENCH_PG_STOP").ok(),
        std::env::var("PULSEBOARD_BENCH_PG_START").ok(),
    );
    if let (Some(stop_pg), Some(start_pg)) = (stop_pg, start_pg) {
        let before = sample_rss(&service)?;
        eprintln!("outage: Postgres stopped for {outage} s under ingest (before: {before:.0} MiB)");
        shell(&stop_pg).await?;
        let down = Instant::now();
        let mut most = before;
        while down.elapsed() < Duration::from_secs(outage) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            stored_seen.store(service.kafka_counts().await?.1, Ordering::Relaxed);
            most = most.max(sample_rss(&service)?);
        }
        shell(&start_pg).await?;
        eprintln!("  most during the outage: {most:.0} MiB; Postgres is back");
        figures.add_value("rss_before_outage", before);
        figures.add_value("rss_outage", most);
    } else {
        eprintln!(
            "outage skipped: PULSEBOARD_BENCH_PG_STOP/START are not set (./scripts/bench sets them)"
        );
    }

    stop.store(true, Ordering::Relaxed);
    producer.await??;
    let produced = produced.load(Ordering::Relaxed) as i64;
    // Everything produced must arrive; the service catches up first.
    let deadline = Instant::now() + Duration::from_secs(900);
    let stored_rows = loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM message WHERE ts >= $1")
            .bind(soak_start)
            .fetch_one(&bench.pool)
            .await
            .unwrap_or(-1);
        if stored >= produced || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    eprintln!("  {produced} readings produced during soak and outage, {stored_rows} stored");
    figures.add_value("soak_lost", (produced - stored_rows) as f64);
    bench.stop(service).await?;
    Ok(())
}

async fn shell(command: &str) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("bash")
        .args(["-c", command])
        .status()
        .await?;
    anyhow::ensure!(status.success(), "{command} failed with {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_time_on_a_core_is_counted_and_split_per_run() {
        let path = "/proc/thread-self/schedstat";
        let before = Scheduled::read(path).unwrap();
        let busy = Instant::now();
        let mut spins = 0u64;
        while busy.elapsed() < Duration::from_millis(30) {
            spins = std::hint::black_box(spins + 1);
        }
        let spent = Scheduled::read(path).unwrap().since(before);
        // 30 ms busy: on a core for most of it, unless the machine was
        // too busy to let it run, which then shows as waiting.
        let both = spent.running_ns + spent.waiting_ns;
        assert!(both >= 25_000_000, "{both} ns counted for 30 ms busy");
        assert!(spent.running_ns > 0);

        let per_run = Scheduled {
            running_ns: 30_000_000,
            waiting_ns: 6_000_000,
        }
        .per_run(3);
        assert_eq!((per_run.running_ms, per_run.waiting_ms), (10.0, 2.0));
    }
}
