//! `/metrics` in the Prometheus text format: records in and out per source,
//! dead letters, flush durations, the time charts take to draw, Kafka
//! consumer lag, and end-to-end latency.
//!
//! Counters live in one process-wide registry, as Prometheus clients usually
//! keep them: every ingest path counts into it without carrying a handle.

use crate::state::AppState;
use app::duration_histogram::DurationHistogram;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Where records enter Pulseboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pipeline,
    Kafka,
    Firehose,
    Ndjson,
}

impl Source {
    const ALL: [Source; 4] = [
        Source::Pipeline,
        Source::Kafka,
        Source::Firehose,
        Source::Ndjson,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Source::Pipeline => "pipeline",
            Source::Kafka => "kafka",
            Source::Firehose => "firehose",
            Source::Ndjson => "ndjson",
        }
    }
}

/// The limits that refuse connections and requests (see [`crate::connections`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Connections,
    RequestTime,
    IngestRate,
}

impl Limit {
    const ALL: [Limit; 3] = [Limit::Connections, Limit::RequestTime, Limit::IngestRate];

    fn label(self) -> &'static str {
        match self {
            Limit::Connections => "connections",
            Limit::RequestTime => "request_time",
            Limit::IngestRate => "ingest_rate",
        }
    }
}

#[derive(Default)]
struct SourceCounters {
    received: AtomicU64,
    stored: AtomicU64,
    dead_letters: AtomicU64,
    flushes: DurationHistogram,
}

#[derive(Default)]
pub struct Metrics {
    sources: [SourceCounters; 4],
    /// Messages behind the end of each partition, from the consumer's statistics.
    kafka_lag: Mutex<BTreeMap<(String, i32), i64>>,
    /// Connections and requests refused, per limit, in [`Limit::ALL`] order.
    refused: [AtomicU64; Limit::ALL.len()],
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn source(&self, source: Source) -> &SourceCounters {
        &self.sources[Source::ALL
            .iter()
            .position(|s| *s == source)
            .expect("every source is listed")]
    }

    pub fn received(&self, source: Source, records: usize) {
        self.source(source)
            .received
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Records received from `source` so far.
    pub fn received_total(&self, source: Source) -> u64 {
        self.source(source).received.load(Ordering::Relaxed)
    }

    /// A committed flush: how many rows and dead letters it stored, and how long it took.
    pub fn flushed(&self, source: Source, stored: usize, dead_letters: usize, took: Duration) {
        let counters = self.source(source);
        counters.stored.fetch_add(stored as u64, Ordering::Relaxed);
        counters
            .dead_letters
            .fetch_add(dead_letters as u64, Ordering::Relaxed);
        counters.flushes.observe(took);
    }

    /// A connection or request refused by `limit`.
    pub fn refused(&self, limit: Limit) {
        let index = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        self.refused[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_kafka_lag(&self, topic: &str, partition: i32, lag: i64) {
        if let Ok(mut lags) = self.kafka_lag.lock() {
            lags.insert((topic.to_string(), partition), lag);
        }
    }

    pub fn kafka_lag(&self, topic: &str) -> BTreeMap<i32, i64> {
        self.kafka_lag
            .lock()
            .map(|lags| {
                lags.iter()
                    .filter(|((t, _), _)| t == topic)
                    .map(|((_, p), lag)| (*p, *lag))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        let counter =
            |out: &mut String, name: &str, help: &str, read: fn(&SourceCounters) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for source in Source::ALL {
                    let value = read(self.source(source));
                    let _ = writeln!(out, "{name}{{source=\"{}\"}} {value}", source.label());
                }
            };
        counter(
            out,
            "pulseboard_records_received_total",
            "Records received.",
            |c| c.received.load(Ordering::Relaxed),
        );
        counter(
            out,
            "pulseboard_records_stored_total",
            "Records committed to Postgres.",
            |c| c.stored.load(Ordering::Relaxed),
        );
        counter(
            out,
            "pulseboard_dead_letters_total",
            "Records kept as dead letters.",
            |c| c.dead_letters.load(Ordering::Relaxed),
        );

        let name = "pulseboard_flush_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to write one batch to Postgres.\n# TYPE {name} histogram"
        );
        for source in Source::ALL {
            let labels = format!("source=\"{}\"", source.label());
            self.source(source).flushes.render(out, name, &labels);
        }

        let name = "pulseboard_chart_part_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to draw a chart the cache did not hold, by part: \
             its queries in Postgres, or rendering it.\n# TYPE {name} histogram"
        );
        let parts = app::chart::service::part_times();
        parts.query.render(out, name, "part=\"query\"");
        parts.render.render(out, name, "part=\"render\"");

        let name = "pulseboard_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections and requests refused by a limit.\n# TYPE {name} counter"
        );
        for (limit, count) in Limit::ALL.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "{name}{{limit=\"{}\"}} {}",
                limit.label(),
                count.load(Ordering::Relaxed)
            );
        }

        let name = "pulseboard_kafka_consumer_lag";
        let _ = writeln!(
            out,
            "# HELP {name} Messages in the partition not yet stored.\n# TYPE {name} gauge"
        );
        if let Ok(lags) = self.kafka_lag.lock() {
            for ((topic, partition), lag) in lags.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\",partition=\"{partition}\"}} {lag}",
                    escape(topic)
                );
            }
        }
    }
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

type LatencyRow = (String, i64, i64, i64, i64, i64, i64, i64);

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    global().render(&mut out);
    // Latency is kept in Postgres with the data; read it at scrape time.
    let latency: Result<Vec<LatencyRow>, sqlx::Error> = sqlx::query_as(
        "SELECT l.stream, l.msg_count::int8, s.sum_ms::int8, l.min_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
           FROM stream_latency l
           JOIN (SELECT stream, sum(sum_ms) AS sum_ms FROM latency_stats GROUP BY stream) s USING (stream)
          ORDER BY l.stream",
    )
    .fetch_all(&state.pool)
    .await;
    let name = "pulseboard_end_to_end_latency_milliseconds";
    let _ = writeln!(
        out,
        "# HELP {name} Stored time minus event time.\n# TYPE {name} summary"
    );
    match latency {
        Ok(rows) => {
            for (stream, count, sum, min, p50, p95, p99, max) in rows {
                let stream = escape(&stream);
                for (quantile, value) in [
                    ("0", min),
                    ("0.5", p50),
                    ("0.95", p95),
                    ("0.99", p99),
                    ("1", max),
                ] {
                    let _ = writeln!(
                        out,
                        "{name}{{stream=\"{stream}\",quantile=\"{quantile}\"}} {value}"
                    );
                }
                let _ = writeln!(out, "{name}_sum{{stream=\"{stream}\"}} {sum}");
                let _ = writeln!(out, "{name}_count{{stream=\"{stream}\"}} {count}");
            }
        }
        Err(error) => tracing::warn!(%error, "latency unavailable for /metrics"),
    }
    per_stream_counts(&state.pool, &mut out).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Records stored, dead letters and late events per stream, as kept in
/// Postgres with the data (so they count every instance's work and survive
/// restarts). Every record received ends as stored or a dead letter once its
/// flush commits; a late event is stored and also kept apart.
async fn per_stream_counts(pool: &sqlx::PgPool, out: &mut String) {
    let figures = [
        (
            "pulseboard_stream_records_stored_total",
            "Records stored, per stream.",
            "SELECT stream, sum(records)::int8 FROM stream_activity GROUP BY stream ORDER BY stream",
        ),
        (
            "pulseboard_stream_dead_letters_total",
            "Records kept as dead letters, per stream they were meant for.",
            "SELECT stream, count(*) FROM dead_letters WHERE stream IS NOT NULL GROUP BY stream ORDER BY stream",
        ),
        (
            "pulseboard_stream_late_events_total",
            "Late events kept in late_events, per stream: one per window definition that refused an event.",
            "SELECT stream, count(*) FROM late_events GROUP BY stream ORDER BY stream",
        ),
    ];
    for (name, help, sql) in figures {
        let rows: Result<Vec<(String, i64)>, sqlx::Error> =
            sqlx::query_as(sql).fetch_all(pool).await;
        match rows {
            Ok(rows) => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (stream, count) in rows {
                    let _ = writeln!(out, "{name}{{stream=\"{}\"}} {count}", escape(&stream));
                }
            }
            Err(error) => tracing::warn!(%error, "{name} unavailable for /metrics"),
        }
    }
}
