//! The benchmark's table: each figure, the baseline measured beside it in
//! the same run, and the target the two must meet.

/// How a figure is judged.
#[derive(Clone, Copy)]
pub enum Target {
    /// figure / baseline at least this.
    RatioAtLeast(f64),
    /// figure / baseline at most this.
    RatioAtMost(f64),
    /// figure at most ratio × baseline + the second number (ms).
    RatioAtMostPlus(f64, f64),
    /// figure / baseline at most the ratio, and the figure at most the bound.
    RatioAtMostAndUnder(f64, f64),
    /// figure at most this; no baseline.
    AtMost(f64),
    /// Reported only.
    None,
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::RatioAtLeast(r) => format!("at least {r}"),
            Target::RatioAtMost(r) => format!("at most {r}"),
            Target::RatioAtMostPlus(r, plus) => format!("at most {r} (plus {plus} {unit})"),
            Target::RatioAtMostAndUnder(r, bound) => {
                format!("at most {r}, and at most {bound} {unit}")
            }
            Target::AtMost(bound) => format!("at most {bound} {unit}"),
            Target::None => "none (reported)".into(),
        }
    }

    fn met(self, value: f64, base: Option<f64>) -> Option<bool> {
        let ratio = base.map(|b| value / b);
        match (self, ratio, base) {
            (Target::RatioAtLeast(r), Some(q), _) => Some(q >= r),
            (Target::RatioAtMost(r), Some(q), _) => Some(q <= r),
            (Target::RatioAtMostPlus(r, plus), _, Some(b)) => Some(value <= r * b + plus),
            (Target::RatioAtMostAndUnder(r, bound), Some(q), _) => Some(q <= r && value <= bound),
            (Target::AtMost(bound), _, _) => Some(value <= bound),
            _ => None,
        }
    }
}

pub struct Row {
    pub figure: &'static str,
    pub key: &'static str,
    pub unit: &'static str,
    pub baseline: &'static str,
    pub base_key: Option<&'static str>,
    pub target: Target,
}

const fn row(
    figure: &'static str,
    key: &'static str,
    unit: &'static str,
    baseline: &'static str,
    base_key: Option<&'static str>,
    target: Target,
) -> Row {
    Row {
        figure,
        key,
        unit,
        baseline,
        base_key,
        target,
    }
}

const EPS: &str = "events/s";

pub const ROWS: [Row; 36] = [
    row(
        "Readings: Kafka to Postgres, raw rows and aggregates",
        "readings_kafka",
        EPS,
        "binary COPY of the same rows",
        Some("readings_copy"),
        Target::RatioAtLeast(0.5),
    ),
    row(
        "Readings: Kafka to Postgres, aggregates only",
        "readings_aggregates",
        EPS,
        "rdkafka consumer that only counts",
        Some("readings_consume"),
        Target::RatioAtLeast(0.5),
    ),
    row(
        "Readings: Firehose PutRecordBatch (4 connections)",
        "readings_firehose",
        EPS,
        "the readings Kafka path above",
        Some("readings_kafka"),
        Target::RatioAtLeast(0.8),
    ),
    row(
        "Readings: Firehose PutRecordBatch (16 connections)",
        "readings_firehose_16",
        EPS,
        "the readings Kafka path above",
        Some("readings_kafka"),
        Target::RatioAtLeast(0.8),
    ),
    row(
        "Readings: Firehose PutRecordBatch at a sustained rate (4 connections), p50",
        "firehose_sustained_p50",
        "ms",
        "the same requests one at a time, unloaded, p50",
        Some("firehose_unloaded_p50"),
        Target::None,
    ),
    row(
        "Readings: Firehose PutRecordBatch at a sustained rate (4 connections), p99",
        "firehose_sustained_p99",
        "ms",
        "the same requests one at a time, unloaded, p99",
        Some("firehose_unloaded_p99"),
        Target::None,
    ),
    row(
        "Readings: Firehose sustained run, failed requests plus records not stored",
        "firehose_sustained_errors",
        "errors",
        "none",
        None,
        Target::AtMost(0.0),
    ),
    row(
        "Purchases: Kafka to Postgres, enriched rows, totals and windows",
        "purchases_kafka",
        EPS,
        "binary COPY of the same enriched rows",
        Some("purchases_copy"),
        Target::RatioAtLeast(0.5),
    ),
    row(
        "Purchases: Kafka to Postgres, aggregates only",
        "purchases_aggregates",
        EPS,
        "rdkafka consumer that only counts",
        Some("purchases_consume"),
        Target::RatioAtLeast(0.5),
    ),
    row(
        "Service: readings from Kafka, idle",
        "service_ingest",
        EPS,
        "none",
        None,
        Target::None,
    ),
    row(
        "Window chart (per location and minute) over 10M readings, server p95",
        "window_chart",
        "ms",
        "psql running the same SQL, p95",
        Some("psql_window"),
        Target::RatioAtMostPlus(1.3, 5.0),
    ),
    row(
        "The same chart reading every one of the 10M readings, server p95",
        "window_scan",
        "ms",
        "psql running the same SQL, p95",
        Some("psql_window_scan"),
        Target::RatioAtMostPlus(1.3, 5.0),
    ),
    row(
        "Rollup chart (readings per sensor and minute), server p95",
        "rollup_chart",
        "ms",
        "psql on the rollup table, p95",
        Some("psql_rollup"),
        Target::RatioAtMostAndUnder(3.0, 20.0),
    ),
    row(
        "Totals chart (messages per sensor, all time), server p95",
        "totals_chart",
        "ms",
        "psql on the totals table, p95",
        Some("psql_totals"),
        Target::RatioAtMostAndUnder(3.0, 20.0),
    ),
    row(
        "Window chart p95 while ingesting at full rate",
        "window_chart_ingesting",
        "ms",
        "the same chart idle",
        Some("window_chart"),
        Target::RatioAtMost(1.5),
    ),
    row(
        "That chart while ingesting: its query in Postgres, mean per draw",
        "window_query_ingesting",
        "ms",
        "the same idle",
        Some("window_query"),
        Target::None,
    ),
    row(
        "That chart while ingesting: rendering it, mean per draw",
        "window_render_ingesting",
        "ms",
        "the same idle",
        Some("window_render"),
        Target::None,
    ),
    row(
        "psql running that chart's SQL while the service ingests, p95",
        "psql_window_ingesting",
        "ms",
        "the same idle",
        Some("psql_window"),
        Target::None,
    ),
    row(
        "That SQL in psql while ingesting: its Postgres process on a core, mean per run",
        "psql_window_running_ingesting",
        "ms",
        "the same idle",
        Some("psql_window_running"),
        Target::None,
    ),
    row(
        "That SQL in psql while ingesting: its Postgres process waiting for a core, mean per run",
        "psql_window_waiting_ingesting",
        "ms",
        "the same idle",
        Some("psql_window_waiting"),
        Target::None,
    ),
    row(
        "Ingest while that chart is drawn back to back",
        "ingest_charting",
        EPS,
        "the service's ingest idle",
        Some("service_ingest"),
        Target::None,
    ),
    row(
        "Ingest with 10 dashboards refreshing every second",
        "ingest_viewers",
        EPS,
        "the service's ingest idle",
        Some("service_ingest"),
        Target::RatioAtLeast(0.7),
    ),
    row(
        "Ingest with 50 dashboards refreshing every second",
        "ingest_viewers_50",
        EPS,
        "the service's ingest idle",
        Some("service_ingest"),
        Target::RatioAtLeast(0.7),
    ),
    row(
        "Event to visible through the dashboard API, p95",
        "visible_api",
        "ms",
        "flush interval plus poll interval",
        Some("visible_budget"),
        Target::RatioAtMost(1.2),
    ),
    row(
        "Event to visible in the browser, live mode, p95",
        "visible_browser",
        "ms",
        "none",
        None,
        Target::AtMost(1000.0),
    ),
    row(
        "Dashboard page SSR (/d/sensors)",
        "ssr",
        "req/s",
        "an axum hello-world on this machine",
        Some("hello"),
        Target::RatioAtLeast(0.05),
    ),
    row(
        "Sign-in page SSR (/login: a form, no data)",
        "ssr_login",
        "req/s",
        "an axum hello-world on this machine",
        Some("hello"),
        Target::None,
    ),
    row(
        "Wasm every page loads (shared module), raw",
        "wasm_shared",
        "KiB",
        "none",
        None,
        Target::None,
    ),
    row(
        "Wasm of the largest page (shared + its modules), raw",
        "wasm_raw",
        "KiB",
        "none",
        None,
        Target::AtMost(1024.0),
    ),
    row(
        "Wasm of the largest page, brotli (as browsers get it)",
        "wasm_brotli",
        "KiB",
        "none",
        None,
        Target::AtMost(300.0),
    ),
    row(
        "Wasm of the largest page, gzip (clients without brotli)",
        "wasm_gzip",
        "KiB",
        "none",
        None,
        Target::None,
    ),
    row(
        "CPU seconds per 1M readings, Kafka to Postgres (the service)",
        "service_cpu",
        "s",
        "none",
        None,
        Target::AtMost(5.0),
    ),
    row(
        "Peak resident memory of the service during the ingest runs",
        "peak_rss",
        "MiB",
        "none",
        None,
        Target::AtMost(256.0),
    ),
    row(
        "Resident memory after the soak at full ingest",
        "rss_soak",
        "MiB",
        "the same after 1 minute",
        Some("rss_1min"),
        Target::RatioAtMost(1.1),
    ),
    row(
        "Resident memory while Postgres is stopped under ingest",
        "rss_outage",
        "MiB",
        "before the outage",
        Some("rss_before_outage"),
        Target::RatioAtMost(1.5),
    ),
    row(
        "Readings lost over the soak and the outage",
        "soak_lost",
        "readings",
        "none",
        None,
        Target::AtMost(0.0),
    ),
];

/// One printed row, as written to the JSON file too.
pub fn line(row: &Row, value: f64, base: Option<f64>) -> (String, serde_json::Value) {
    let ratio = base.map(|b| value / b);
    let met = row.target.met(value, base);
    let number = |x: f64| {
        if x.abs() >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    let text = format!(
        "| {} | {} {} | {} | {} | {} | {} | {} |",
        row.figure,
        number(value),
        row.unit,
        row.baseline,
        base.map_or("".into(), |b| format!("{} {}", number(b), row.unit)),
        ratio.map_or("".into(), |q| format!("{q:.2}")),
        row.target.describe(row.unit),
        match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        }
    );
    let json = serde_json::json!({
        "figure": row.figure, "key": row.key, "unit": row.unit, "value": value,
        "baseline": row.baseline, "baseline_value": base, "ratio": ratio,
        "target": row.target.describe(row.unit), "met": met,
    });
    (text, json)
}

pub const HEADER: &str = "| figure | value | baseline | baseline value | ratio | target | met |\n|---|---|---|---|---|---|---|";
