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
#[derive(Debug, Clone, Copy, PartialEq)]
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
/// The sensor statistics, coarsest first: what ingest keeps with every
/// batch, and the ladder charts read them by.
pub const SENSOR_STEPS: [Steps; 2] = [MINUTES, TEN_SECONDS];
/// Latency counts per batch and minute of event time.
const LATENCY_MINUTES: Steps = Steps {
    table: "sensor_latency_batches",
    seconds: 60,
};

/// How a chart reads summaries instead of readings.
#[derive(Debug, Clone)]
pub(super) enum Rollup {
    /// Statistics per sensor and step, from the coarsest whose step divides
    /// the chart's buckets down to the finest; each metric's expression
    /// over them.
    Sensor {
        ladder: &'static [Steps],
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
        let coarsest = SENSOR_STEPS
            .iter()
            .position(|steps| grain.is_none_or(|g| g % steps.seconds == 0))?;
        let metrics = definition
            .metrics
            .iter()
            .map(|m| metric(m.column.as_deref(), m.aggregate))
            .collect::<Option<Vec<_>>>()?;
        Some(Rollup::Sensor {
            ladder: &SENSOR_STEPS[coarsest..],
            metrics,
        })
    }

    /// The `FROM` source over `bounds` (epoch ms, `to` excluded): the
    /// summary's whole steps, finer summaries' whole steps at the edges, and
    /// readings only for the seconds left over.
    pub(super) fn source(&self, builder: &mut Builder, bounds: Option<(i64, i64)>) -> String {
        match self {
            Rollup::Sensor { ladder, .. } => {
                let summary = |steps: Steps| {
                    format!(
                        "SELECT m.bucket_start AS recorded, i.guid, i.location, i.lat, i.long, \
                                m.msg_count AS n, m.temp_sum AS s, m.temp_min AS lo, m.temp_max AS hi, \
                                to_timestamp(m.ts_max) AS last \
                           FROM {} m JOIN sensor_installations i ON i.guid = m.guid",
                        steps.table
                    )
                };
                // Named as the summary's, which may not come first. Through
                // the (guid, ts) index, once per installed sensor.
                let readings = |from: &str, to: &str| {
                    format!(
                        "SELECT recorded, guid, location, lat, long, \
                                1 AS n, temp AS s, temp AS lo, temp AS hi, recorded AS last \
                           FROM {READINGS} WHERE ts >= {from} AND ts < {to}"
                    )
                };
                from_summaries(builder, bounds, ladder, summary, readings)
            }
            Rollup::Latency => {
                // Each second's latency is the stored instant minus that
                // second; as the view computes it, exact microseconds to
                // float milliseconds.
                let summary = |steps: Steps| {
                    format!(
                        "SELECT m.bucket_start AS recorded, \
                                ((m.stored_at_us - (extract(epoch FROM m.bucket_start)::int8 + c.second) * 1000000)::numeric / 1000)::float8 AS latency_ms, \
                                c.n AS n \
                           FROM {} m, unnest(m.seconds, m.counts) AS c(second, n)",
                        steps.table
                    )
                };
                // Every sensor's readings, not only installed ones: to reach
                // the (guid, ts) index, the sensors that have any in the
                // range come from the 10-second statistics, whose step
                // starts less than 10 s before the reading.
                let readings = |from: &str, to: &str| {
                    format!(
                        "SELECT recorded, latency_ms, 1 AS n FROM {LATENCIES} \
                          WHERE guid IN (SELECT guid FROM {} \
                                          WHERE bucket_start > to_timestamp({from} - {}) \
                                            AND bucket_start < to_timestamp({to})) \
                            AND ts >= {from} AND ts < {to}",
                        TEN_SECONDS.table, TEN_SECONDS.seconds
                    )
                };
                from_summaries(builder, bounds, &[LATENCY_MINUTES], summary, readings)
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

/// The rows over `bounds` (epoch ms, `to` excluded; all time when None):
/// `summary(steps)` for the whole steps of the ladder's first (coarsest)
/// summary, of the next for the whole steps left at the edges, and so on;
/// `readings(from, to)` for the seconds no summary covers, `from` and `to`
/// whole epoch seconds of event time, `to` excluded.
fn from_summaries(
    builder: &mut Builder,
    bounds: Option<(i64, i64)>,
    ladder: &[Steps],
    summary: impl Fn(Steps) -> String,
    readings: impl Fn(&str, &str) -> String,
) -> String {
    let Some((from_ms, to_ms)) = bounds else {
        return format!("({}) AS p", summary(ladder[0]));
    };
    // Event times are whole seconds: ts * 1000 >= from_ms holds from the
    // first whole second at or after from_ms.
    let seconds = |ms: i64| ceil_div(ms, 1000);
    let parts: Vec<String> = segments(seconds(from_ms), seconds(to_ms), ladder)
        .into_iter()
        .map(|segment| {
            let from = builder.bind(Param::Int(segment.from));
            let to = builder.bind(Param::Int(segment.to));
            match segment.steps {
                Some(steps) => format!(
                    "{} WHERE m.bucket_start >= to_timestamp({from}) AND m.bucket_start < to_timestamp({to})",
                    summary(steps)
                ),
                None => readings(&from, &to),
            }
        })
        .collect();
    format!("({}) AS p", parts.join(" UNION ALL "))
}

/// `a / b` rounded up, `b` positive; for every `a`, `i64::MIN` too.
fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// Event seconds `from <= ts < to`, read from a summary's rows starting in
/// that range (whole steps), or from the readings (`steps` None).
#[derive(Debug, PartialEq)]
struct Segment {
    steps: Option<Steps>,
    from: i64,
    to: i64,
}

/// `[from, to)` cut into the whole steps of the ladder's first summary,
/// then those of the next at the two edges, and so on, and readings for
/// what is left; empty pieces left out, but never everything.
fn segments(from: i64, to: i64, ladder: &[Steps]) -> Vec<Segment> {
    let mut out = Vec::new();
    cut(from, to, ladder, &mut out);
    if out.is_empty() {
        out.push(Segment {
            steps: None,
            from,
            to,
        });
    }
    out
}

fn cut(from: i64, to: i64, ladder: &[Steps], out: &mut Vec<Segment>) {
    if from >= to {
        return;
    }
    let Some((&steps, finer)) = ladder.split_first() else {
        out.push(Segment {
            steps: None,
            from,
            to,
        });
        return;
    };
    let step = steps.seconds;
    let (first, last) = (ceil_div(from, step) * step, to.div_euclid(step) * step);
    if first >= last {
        return cut(from, to, finer, out);
    }
    cut(from, first, finer, out);
    out.push(Segment {
        steps: Some(steps),
        from: first,
        to: last,
    });
    cut(last, to, finer, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(steps: Steps, from: i64, to: i64) -> Segment {
        Segment {
            steps: Some(steps),
            from,
            to,
        }
    }

    fn readings(from: i64, to: i64) -> Segment {
        Segment {
            steps: None,
            from,
            to,
        }
    }

    #[test]
    fn a_range_is_whole_minutes_then_whole_ten_seconds_then_readings() {
        // 00:00:31 to 00:03:11 (exclusive).
        assert_eq!(
            segments(31, 191, &SENSOR_STEPS),
            [
                readings(31, 40),
                summary(TEN_SECONDS, 40, 60),
                summary(MINUTES, 60, 180),
                summary(TEN_SECONDS, 180, 190),
                readings(190, 191),
            ]
        );
        // Aligned: the minutes alone.
        assert_eq!(
            segments(60, 180, &SENSOR_STEPS),
            [summary(MINUTES, 60, 180)]
        );
        // Inside one minute: its whole 10 seconds.
        assert_eq!(
            segments(61, 95, &SENSOR_STEPS),
            [
                readings(61, 70),
                summary(TEN_SECONDS, 70, 90),
                readings(90, 95)
            ]
        );
        // Inside 10 seconds, or nothing at all: readings.
        assert_eq!(segments(61, 63, &SENSOR_STEPS), [readings(61, 63)]);
        assert_eq!(segments(63, 63, &SENSOR_STEPS), [readings(63, 63)]);
        assert_eq!(ceil_div(-1, 1000), 0);
        assert_eq!(ceil_div(i64::MIN, 1000), i64::MIN / 1000);
        assert_eq!(ceil_div(1001, 1000), 2);
        // Before 1970 too.
        assert_eq!(segments(-90, -29, &[MINUTES]), [readings(-90, -29)]);
        assert_eq!(
            segments(-125, -5, &[MINUTES]),
            [
                readings(-125, -120),
                summary(MINUTES, -120, -60),
                readings(-60, -5)
            ]
        );
    }
}
