//! Charts over the sensor readings that ingest keeps summaries for read
//! those summaries for the whole steps of their range, and the readings
//! themselves only for the partial steps at its two edges. The answer is the
//! same as from the readings alone; the work no longer grows with the
//! readings per step.
//!
//! - Counts, sums, averages, minimums and maximums of the temperature, and
//!   the latest reading's time, per sensor: statistics per minute and per
//!   10 seconds.
//! - The latency histogram: readings per minute and exact latency.

use super::dataset::Dataset;
use super::definition::{Aggregate, ChartDefinition, ChartType};
use super::query::{Builder, Param};

const READINGS: &str = "sensor_msg_detail";
const SENSOR_COLUMNS: [&str; 4] = ["guid", "location", "lat", "long"];
const MEASURED: &str = "temp";
const TIME: &str = "recorded";
const LATENCIES: &str = "sensor_latency";
const LATENCY: &str = "latency_ms";

/// A summary table and the seconds each of its rows covers.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub table: &'static str,
    pub seconds: i64,
}

/// Statistics per sensor and minute: kept for good, as rollups are.
pub const MINUTES: Steps = Steps {
    table: "sensor_stats_minutely",
    seconds: 60,
};
/// Statistics per sensor and 10 seconds: finer copies of the readings,
/// removed with them.
pub const TEN_SECONDS: Steps = Steps {
    table: "sensor_stats_10s",
    seconds: 10,
};
const LATENCY_MINUTES: Steps = Steps {
    table: "sensor_latency_minutely",
    seconds: 60,
};

/// How a chart reads summaries instead of readings.
#[derive(Debug, Clone)]
pub(super) enum Rollup {
    /// Statistics per sensor and step; each metric's expression over them.
    Sensor {
        steps: Steps,
        metrics: Vec<&'static str>,
    },
    /// A latency histogram: each row of the source weighs `n` readings.
    Latency,
}

impl Rollup {
    /// The rollup that answers `definition`, if one does: a chart over every
    /// reading whose metrics the statistics keep (see [`metric`]), grouped
    /// and filtered only by sensor, with time buckets a whole number of
    /// steps; or a latency histogram with no filter.
    pub(super) fn of(definition: &ChartDefinition, dataset: &Dataset) -> Option<Rollup> {
        let by_sensor = |column: &String| SENSOR_COLUMNS.contains(&column.as_str());
        let grain = definition.time_grain.map(|g| g.seconds());
        if dataset.name == LATENCIES {
            let latency = definition.metrics.first()?.column.as_deref() == Some(LATENCY);
            let plain = definition.filters.is_empty() && definition.group_by.is_empty();
            return (definition.chart_type == ChartType::Histogram && latency && plain)
                .then_some(Rollup::Latency);
        }
        if dataset.name != READINGS
            || definition.chart_type == ChartType::Histogram
            || !definition.group_by.iter().all(by_sensor)
            || !definition.filters.iter().all(|f| by_sensor(&f.column))
        {
            return None;
        }
        let steps = [MINUTES, TEN_SECONDS]
            .into_iter()
            .find(|steps| grain.is_none_or(|g| g % steps.seconds == 0))?;
        let metrics = definition
            .metrics
            .iter()
            .map(|m| metric(m.column.as_deref(), m.aggregate))
            .collect::<Option<Vec<_>>>()?;
        Some(Rollup::Sensor { steps, metrics })
    }

    /// The `FROM` source: whole steps from the summary, readings for the
    /// partial steps at the edges of `bounds` (epoch ms, `to` excluded).
    pub(super) fn source(&self, builder: &mut Builder, bounds: Option<(i64, i64)>) -> String {
        match self {
            Rollup::Sensor { steps, .. } => {
                let summary = format!(
                    "SELECT m.bucket_start AS recorded, i.guid, i.location, i.lat, i.long, \
                            m.msg_count AS n, m.temp_sum AS s, m.temp_min AS lo, m.temp_max AS hi, \
                            to_timestamp(m.ts_max) AS last \
                       FROM {} m JOIN sensor_installations i ON i.guid = m.guid",
                    steps.table
                );
                let readings = "SELECT recorded, guid, location, lat, long, 1, temp, temp, temp, recorded \
                                  FROM sensor_msg_detail";
                whole_and_edges(builder, bounds, *steps, &summary, readings)
            }
            Rollup::Latency => {
                // As the view computes it: exact microseconds to float milliseconds.
                let summary = "SELECT m.bucket_start AS recorded, \
                                      (m.latency_us::numeric / 1000)::float8 AS latency_ms, \
                                      m.msg_count AS n \
                                 FROM sensor_latency_minutely m";
                let readings = "SELECT recorded, latency_ms, 1 FROM sensor_latency";
                whole_and_edges(builder, bounds, LATENCY_MINUTES, summary, readings)
            }
        }
    }
}

/// The metric's value over the rows of a sensor source: each row is a whole
/// step of one sensor (`n` readings summing to `s`, lowest `lo`, highest
/// `hi`, the latest at `last`) or one reading (`n` = 1). None when the
/// statistics cannot give it (distinct counts, other columns).
fn metric(column: Option<&str>, aggregate: Aggregate) -> Option<&'static str> {
    Some(match (column, aggregate) {
        (_, Aggregate::CountDistinct) => return None,
        (None, _) | (Some(MEASURED | TIME), Aggregate::Count) => "coalesce(sum(n), 0)",
        // As epoch milliseconds, as every time metric.
        (Some(TIME), Aggregate::Max) => "date_part('epoch', max(last)) * 1000",
        (Some(MEASURED), Aggregate::Sum) => "sum(s)",
        (Some(MEASURED), Aggregate::Avg) => "sum(s) / nullif(sum(n), 0)",
        (Some(MEASURED), Aggregate::Min) => "min(lo)",
        (Some(MEASURED), Aggregate::Max) => "max(hi)",
        _ => return None,
    })
}

/// `summary`'s rows for the whole steps within `bounds`, and `readings`'
/// rows (filtered on `recorded`) for the partial steps at its edges.
fn whole_and_edges(
    builder: &mut Builder,
    bounds: Option<(i64, i64)>,
    steps: Steps,
    summary: &str,
    readings: &str,
) -> String {
    let Some((from, to)) = bounds else {
        return format!("({summary}) AS p");
    };
    let (from, to) = (builder.bind(Param::Int(from)), builder.bind(Param::Int(to)));
    let step = steps.seconds;
    let start = format!("to_timestamp({from}::float8 / 1000)");
    let end = format!("to_timestamp({to}::float8 / 1000)");
    // The first whole step's start, and the end of the last whole step.
    let first = format!(
        "to_timestamp(ceil({from}::float8 / {}) * {step})",
        step * 1000
    );
    let last = format!(
        "to_timestamp(floor({to}::float8 / {}) * {step})",
        step * 1000
    );
    format!(
        "({summary} WHERE m.bucket_start >= {first} AND m.bucket_start < {last} \
          UNION ALL {readings} WHERE recorded >= {start} AND recorded < least({first}, {end}) \
          UNION ALL {readings} WHERE recorded >= greatest({last}, {first}) AND recorded < {end}) AS p"
    )
}
