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
                // Through the (guid, ts) index, once per installed sensor.
                let readings = |from: &str, to: &str| {
                    format!(
                        "SELECT recorded, guid, location, lat, long, 1, temp, temp, temp, recorded \
                           FROM {READINGS} WHERE ts >= {from} AND ts < {to}"
                    )
                };
                whole_and_edges(builder, bounds, *steps, &summary, readings)
            }
            Rollup::Latency => {
                // As the view computes it: exact microseconds to float milliseconds.
                let summary = "SELECT m.bucket_start AS recorded, \
                                      (m.latency_us::numeric / 1000)::float8 AS latency_ms, \
                                      m.msg_count AS n \
                                 FROM sensor_latency_minutely m";
                // Every sensor's readings, not only installed ones: to reach
                // the (guid, ts) index, the sensors that have any in the
                // range come from the 10-second statistics, whose step
                // starts less than 10 s before the reading.
                let readings = |from: &str, to: &str| {
                    format!(
                        "SELECT recorded, latency_ms, 1 FROM {LATENCIES} \
                          WHERE guid IN (SELECT guid FROM {} \
                                          WHERE bucket_start > to_timestamp({from} - {}) \
                                            AND bucket_start < to_timestamp({to})) \
                            AND ts >= {from} AND ts < {to}",
                        TEN_SECONDS.table, TEN_SECONDS.seconds
                    )
                };
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

/// `summary`'s rows for the whole steps within `bounds`, and the rows
/// `readings(from, to)` gives for the partial steps at its edges, where
/// `from` and `to` are whole epoch seconds of event time, `to` excluded.
fn whole_and_edges(
    builder: &mut Builder,
    bounds: Option<(i64, i64)>,
    steps: Steps,
    summary: &str,
    readings: impl Fn(&str, &str) -> String,
) -> String {
    let Some((from_ms, to_ms)) = bounds else {
        return format!("({summary}) AS p");
    };
    let edges = Edges::of(from_ms, to_ms, steps.seconds);
    let mut bind = |seconds: i64| builder.bind(Param::Int(seconds));
    let (from, first, last, to) = (
        bind(edges.from),
        bind(edges.first),
        bind(edges.last),
        bind(edges.to),
    );
    let (head_end, tail_start) = (
        bind(edges.first.min(edges.to)),
        bind(edges.last.max(edges.first)),
    );
    format!(
        "({summary} WHERE m.bucket_start >= to_timestamp({first}) AND m.bucket_start < to_timestamp({last}) \
          UNION ALL {} UNION ALL {}) AS p",
        readings(&from, &head_end),
        readings(&tail_start, &to),
    )
}

/// A range of epoch milliseconds in whole seconds of event time, and the
/// whole steps within it: readings at `from <= ts < to`, summary rows
/// starting at `first <= bucket < last`.
#[derive(Debug, PartialEq)]
struct Edges {
    from: i64,
    first: i64,
    last: i64,
    to: i64,
}

impl Edges {
    fn of(from_ms: i64, to_ms: i64, step: i64) -> Edges {
        // Event times are whole seconds: ts * 1000 >= from_ms holds from
        // the first whole second at or after from_ms.
        let ceil = |ms: i64, unit: i64| -(-ms).div_euclid(unit);
        Edges {
            from: ceil(from_ms, 1000),
            first: ceil(from_ms, step * 1000) * step,
            last: to_ms.div_euclid(step * 1000) * step,
            to: ceil(to_ms, 1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Edges;

    #[test]
    fn edges_are_whole_seconds_and_whole_steps_within_the_range() {
        let edges = |from, to| Edges::of(from, to, 60);
        // 00:00:30.5 to 00:03:10.2: readings of 00:00:31 to 00:03:10
        // inclusive; the minutes 00:01 and 00:02 whole.
        assert_eq!(
            edges(30_500, 190_200),
            Edges {
                from: 31,
                first: 60,
                last: 180,
                to: 191
            }
        );
        // Aligned on both ends: no partial second or step.
        assert_eq!(
            edges(60_000, 180_000),
            Edges {
                from: 60,
                first: 60,
                last: 180,
                to: 180
            }
        );
        // Inside one minute: no whole step (last before first).
        assert_eq!(
            edges(61_000, 62_500),
            Edges {
                from: 61,
                first: 120,
                last: 60,
                to: 63
            }
        );
        // Before 1970 too.
        assert_eq!(
            edges(-90_500, -29_999),
            Edges {
                from: -90,
                first: -60,
                last: -60,
                to: -29
            }
        );
    }
}
