//! Charts over every sensor reading that need only counts, sums, minimums
//! and maximums of the temperature, and the latest reading time, per sensor
//! and whole minute read the
//! per-minute statistics for the whole minutes of their range, and the
//! readings themselves only for the partial minutes at its two edges. The
//! answer is the same as from the readings alone; the work no longer grows
//! with the readings per minute.

use super::dataset::Dataset;
use super::definition::{Aggregate, ChartDefinition, ChartType};
use super::query::{Builder, Param};

/// The dataset this serves, and its columns the statistics keep per sensor.
const READINGS: &str = "sensor_msg_detail";
const SENSOR_COLUMNS: [&str; 4] = ["guid", "location", "lat", "long"];
const MEASURED: &str = "temp";
const TIME: &str = "recorded";

/// Whether `definition` can be answered from the per-minute statistics:
/// its metrics are counts, sums, averages, minimums or maximums of the
/// temperature, counts of readings or the latest reading's time; it groups
/// and filters only by sensor; its time buckets are whole minutes.
pub fn applies(definition: &ChartDefinition, dataset: &Dataset) -> bool {
    let metrics_fit = definition.metrics.iter().all(|metric| {
        match (metric.column.as_deref(), metric.aggregate) {
            (None, _) => true,
            (Some(MEASURED), aggregate) => aggregate != Aggregate::CountDistinct,
            (Some(TIME), aggregate) => matches!(aggregate, Aggregate::Count | Aggregate::Max),
            _ => false,
        }
    });
    let by_sensor = |column: &String| SENSOR_COLUMNS.contains(&column.as_str());
    dataset.name == READINGS
        && definition.chart_type != ChartType::Histogram
        && metrics_fit
        && definition.group_by.iter().all(by_sensor)
        && definition.filters.iter().all(|f| by_sensor(&f.column))
        && definition
            .time_grain
            .is_none_or(|grain| grain.seconds() % 60 == 0)
}

/// The metric's value over the rows of [`source`]: each row is a whole
/// minute of one sensor (`n` readings summing to `s`, lowest `lo`, highest
/// `hi`, the latest at `last`) or one reading (`n` = 1).
pub fn metric(column: Option<&str>, aggregate: Aggregate) -> &'static str {
    match (column, aggregate) {
        (None, _) | (Some(_), Aggregate::Count | Aggregate::CountDistinct) => "coalesce(sum(n), 0)",
        // As epoch milliseconds, as every time metric.
        (Some(TIME), _) => "date_part('epoch', max(last)) * 1000",
        (Some(_), Aggregate::Sum) => "sum(s)",
        (Some(_), Aggregate::Avg) => "sum(s) / nullif(sum(n), 0)",
        (Some(_), Aggregate::Min) => "min(lo)",
        (Some(_), Aggregate::Max) => "max(hi)",
    }
}

/// The `FROM` source: whole minutes from the statistics, readings for the
/// partial minutes at the edges of `bounds` (epoch ms, `to` excluded).
pub fn source(builder: &mut Builder, bounds: Option<(i64, i64)>) -> String {
    let minutes = "SELECT m.bucket_start AS recorded, i.guid, i.location, i.lat, i.long, \
                          m.msg_count AS n, m.temp_sum AS s, m.temp_min AS lo, m.temp_max AS hi, \
                          to_timestamp(m.ts_max) AS last \
                     FROM sensor_stats_minutely m JOIN sensor_installations i ON i.guid = m.guid";
    let Some((from, to)) = bounds else {
        return format!("({minutes}) AS p");
    };
    let readings = "SELECT recorded, guid, location, lat, long, 1, temp, temp, temp, recorded FROM sensor_msg_detail";
    let (from, to) = (builder.bind(Param::Int(from)), builder.bind(Param::Int(to)));
    let start = format!("to_timestamp({from}::float8 / 1000)");
    let end = format!("to_timestamp({to}::float8 / 1000)");
    // The first whole minute's start, and the end of the last whole minute.
    let first = format!("to_timestamp(ceil({from}::float8 / 60000) * 60)");
    let last = format!("to_timestamp(floor({to}::float8 / 60000) * 60)");
    format!(
        "({minutes} WHERE m.bucket_start >= {first} AND m.bucket_start < {last} \
          UNION ALL {readings} WHERE recorded >= {start} AND recorded < least({first}, {end}) \
          UNION ALL {readings} WHERE recorded >= greatest({last}, {first}) AND recorded < {end}) AS p"
    )
}
