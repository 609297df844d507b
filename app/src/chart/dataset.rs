//! Datasets: the tables and views a chart may read, with typed columns.
//! Charts name datasets and columns; only names found here reach SQL.

use serde::{Deserialize, Serialize};

/// What a column holds, and so what a chart may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A timestamp: the x axis of a time series, bucketed by a grain.
    Time,
    /// Text or a flag to group and filter by.
    Dimension,
    /// A number to aggregate.
    Metric,
    Latitude,
    Longitude,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The name charts use; also the table or view it reads.
    pub name: String,
    pub description: String,
    /// The streams whose flushes change it: live dashboards refresh its
    /// charts when one of them stores new data.
    pub streams: Vec<String>,
    pub columns: Vec<Column>,
}

impl Dataset {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether new data in `stream` changes this dataset.
    pub fn fed_by(&self, stream: &str) -> bool {
        self.streams.iter().any(|s| s == stream)
    }

    /// The time column, if the dataset has one (the first, if several).
    pub fn time_column(&self) -> Option<&Column> {
        self.columns.iter().find(|c| c.kind == ColumnKind::Time)
    }
}

fn dataset(
    name: &str,
    description: &str,
    streams: &[&str],
    columns: &[(&str, ColumnKind)],
) -> Dataset {
    Dataset {
        name: name.into(),
        description: description.into(),
        streams: streams.iter().map(|s| (*s).into()).collect(),
        columns: columns
            .iter()
            .map(|(name, kind)| Column {
                name: (*name).into(),
                kind: *kind,
            })
            .collect(),
    }
}

/// The datasets every Pulseboard has: the sensor pipeline's and the sales
/// pipeline's tables and the seed's views.
pub fn builtin() -> Vec<Dataset> {
    use ColumnKind::*;
    const SENSORS: &str = "sensors";
    const PURCHASES: &str = "purchases";
    const ALL_STREAMS: &[&str] = &[SENSORS, PURCHASES, "products", "inventories"];
    vec![
        dataset(
            "sensor_msg_detail",
            "Every sensor reading with its sensor's installation",
            &[SENSORS],
            &[
                ("recorded", Time),
                ("temp", Metric),
                ("guid", Dimension),
                ("location", Dimension),
                ("lat", Latitude),
                ("long", Longitude),
            ],
        ),
        dataset(
            "sensor_stats",
            "All-time statistics per sensor",
            &[SENSORS],
            &[
                ("guid", Dimension),
                ("location", Dimension),
                ("msg_count", Metric),
                ("avg_temp", Metric),
                ("min_temp", Metric),
                ("max_temp", Metric),
                ("median_temp", Metric),
            ],
        ),
        dataset(
            "sensor_stats_minutely",
            "Per sensor and minute: count, sum, min and max of temperature",
            &[SENSORS],
            &[
                ("bucket_start", Time),
                ("guid", Dimension),
                ("msg_count", Metric),
                ("temp_sum", Metric),
                ("temp_min", Metric),
                ("temp_max", Metric),
            ],
        ),
        dataset(
            "sensor_avg_temp",
            "Average temperature and message count per sensor, with its place",
            &[SENSORS],
            &[
                ("guid", Dimension),
                ("location", Dimension),
                ("lat", Latitude),
                ("long", Longitude),
                ("avg_temp", Metric),
                ("msg_count", Metric),
            ],
        ),
        dataset(
            "sensor_msg_count",
            "Messages per sensor, with its place (the seed's view)",
            &[SENSORS],
            &[
                ("guid", Dimension),
                ("location", Dimension),
                ("lat", Latitude),
                ("long", Longitude),
                ("msg_count", Metric),
            ],
        ),
        dataset(
            "sensor_avg_temp_current",
            "Average temperature per sensor over the last 30 minutes (the seed's view)",
            &[SENSORS],
            &[
                ("guid", Dimension),
                ("location", Dimension),
                ("lat", Latitude),
                ("long", Longitude),
                ("avg_temp", Metric),
                ("msg_count", Metric),
            ],
        ),
        dataset(
            "sensor_stats_per_minute",
            "Per sensor and minute: count, average, extremes and median of temperature",
            &[SENSORS],
            &[
                ("bucket_start", Time),
                ("guid", Dimension),
                ("msg_count", Metric),
                ("avg_temp", Metric),
                ("min_temp", Metric),
                ("max_temp", Metric),
                ("median_temp", Metric),
            ],
        ),
        dataset(
            "sensor_latency",
            "Stored time minus event time of every sensor reading, in milliseconds",
            &[SENSORS],
            &[
                ("recorded", Time),
                ("guid", Dimension),
                ("latency_ms", Metric),
            ],
        ),
        dataset(
            "purchases_enriched",
            "Every purchase with its product",
            &[PURCHASES],
            &[
                ("transaction_time", Time),
                ("product_id", Dimension),
                ("product_category", Dimension),
                ("product_name", Dimension),
                ("product_size", Dimension),
                ("is_member", Dimension),
                ("add_supplements", Dimension),
                ("purchase_price", Metric),
                ("purchase_quantity", Metric),
                ("member_discount", Metric),
                ("supplement_price", Metric),
                ("total_purchase", Metric),
            ],
        ),
        dataset(
            "running_totals",
            "Transactions, quantities and sales per product since the start",
            &[PURCHASES],
            &[
                ("event_time", Time),
                ("product_id", Dimension),
                ("transactions", Metric),
                ("quantities", Metric),
                ("sales", Metric),
            ],
        ),
        dataset(
            "sales_windows",
            "Sales per product in 10-minute windows sliding every 5 minutes",
            &[PURCHASES],
            &[
                ("window_start", Time),
                ("product_id", Dimension),
                ("is_final", Dimension),
                ("transactions", Metric),
                ("quantities", Metric),
                ("sales", Metric),
            ],
        ),
        dataset(
            "sales_top_products",
            "The 10 best-selling products of each sliding window",
            &[PURCHASES],
            &[
                ("window_start", Time),
                ("product_id", Dimension),
                ("is_final", Dimension),
                ("rank", Metric),
                ("transactions", Metric),
                ("quantities", Metric),
                ("sales", Metric),
            ],
        ),
        dataset(
            "stream_key_latency",
            "Stored time minus event time per stream and key, in milliseconds",
            ALL_STREAMS,
            &[
                ("stream", Dimension),
                ("key", Dimension),
                ("msg_count", Metric),
                ("min_ms", Metric),
                ("avg_ms", Metric),
                ("p50_ms", Metric),
                ("p95_ms", Metric),
                ("p99_ms", Metric),
                ("max_ms", Metric),
            ],
        ),
        dataset(
            "stream_latency",
            "Stored time minus event time per stream, in milliseconds",
            ALL_STREAMS,
            &[
                ("stream", Dimension),
                ("msg_count", Metric),
                ("min_ms", Metric),
                ("avg_ms", Metric),
                ("p50_ms", Metric),
                ("p95_ms", Metric),
                ("p99_ms", Metric),
                ("max_ms", Metric),
            ],
        ),
    ]
}
