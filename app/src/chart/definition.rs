//! A saved chart's definition: what it reads, how it aggregates, and how it
//! looks. Kept as JSON in Postgres and in exported files; checked against
//! the datasets before it is saved or run, naming the field that is wrong.

use super::dataset::{ColumnKind, Dataset};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartDefinition {
    pub name: String,
    pub dataset: String,
    #[serde(rename = "type")]
    pub chart_type: ChartType,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_grain: Option<TimeGrain>,
    #[serde(default)]
    pub time_range: TimeRange,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Sort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default)]
    pub visual: Visual,
    /// Overrides the dashboard's refresh interval for this chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartType {
    Line,
    Area,
    Bar,
    StackedBar,
    HorizontalBar,
    Kpi,
    Table,
    Histogram,
    Map,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub aggregate: Aggregate,
    /// Not needed for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Metric {
    /// The name of the metric's output column: `count`, `avg_temp`, ...
    pub fn output_name(&self) -> String {
        match &self.column {
            Some(column) => format!("{}_{column}", self.aggregate.sql()),
            None => self.aggregate.sql().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    pub fn sql(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::CountDistinct => "count_distinct",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeGrain {
    #[serde(rename = "1s")]
    Second,
    #[serde(rename = "10s")]
    TenSeconds,
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl TimeGrain {
    /// Every grain, finest first.
    pub const ALL: [TimeGrain; 7] = [
        TimeGrain::Second,
        TimeGrain::TenSeconds,
        TimeGrain::Minute,
        TimeGrain::FiveMinutes,
        TimeGrain::FifteenMinutes,
        TimeGrain::Hour,
        TimeGrain::Day,
    ];

    pub fn seconds(self) -> i64 {
        match self {
            TimeGrain::Second => 1,
            TimeGrain::TenSeconds => 10,
            TimeGrain::Minute => 60,
            TimeGrain::FiveMinutes => 300,
            TimeGrain::FifteenMinutes => 900,
            TimeGrain::Hour => 3_600,
            TimeGrain::Day => 86_400,
        }
    }
}

/// The time a chart covers: the last few minutes to days before now, a
/// fixed span in epoch milliseconds, or all of it (for totals kept since
/// the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeRange {
    All,
    Last(Relative),
    Between { from_ms: i64, to_ms: i64 },
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::Last(Relative::OneHour)
    }
}

impl TimeRange {
    /// `[from, to)` in epoch milliseconds, as of `now_ms`; `None` for all time.
    pub fn bounds(self, now_ms: i64) -> Option<(i64, i64)> {
        match self {
            TimeRange::All => None,
            TimeRange::Last(relative) => Some((now_ms - relative.seconds() * 1000, now_ms)),
            TimeRange::Between { from_ms, to_ms } => Some((from_ms, to_ms)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relative {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "30m")]
    ThirtyMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "6h")]
    SixHours,
    #[serde(rename = "24h")]
    OneDay,
    #[serde(rename = "7d")]
    SevenDays,
}

impl Relative {
    pub fn seconds(self) -> i64 {
        match self {
            Relative::FiveMinutes => 300,
            Relative::FifteenMinutes => 900,
            Relative::ThirtyMinutes => 1_800,
            Relative::OneHour => 3_600,
            Relative::SixHours => 21_600,
            Relative::OneDay => 86_400,
            Relative::SevenDays => 604_800,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub column: String,
    pub op: FilterOp,
    /// One value, or several for `in`. Numbers for metrics, epoch
    /// milliseconds for times, text or true/false for dimensions.
    pub values: Vec<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sort {
    /// A group-by column, a metric's output name, or `time`.
    pub by: String,
    #[serde(default)]
    pub descending: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visual {
    /// Series colours in order, as `#rrggbb`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub colors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Horizontal lines drawn across the chart (alert levels, targets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// Buckets of a histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<u32>,
    /// Map markers with no data for this long are drawn as stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_seconds: Option<u32>,
}

/// A field of a definition that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where, as a path: `metrics[1].column`.
    pub field: String,
    pub message: String,
}

pub const MAX_NAME: usize = 200;
pub const MAX_METRICS: usize = 10;
pub const MAX_GROUP_BY: usize = 4;
pub const MAX_FILTERS: usize = 20;
pub const MAX_LIMIT: u32 = 10_000;

impl ChartDefinition {
    /// What a new chart starts as: average temperature per sensor, by
    /// minute, over the last 30 minutes.
    pub fn starter() -> Self {
        ChartDefinition {
            name: "New chart".into(),
            dataset: "sensor_msg_detail".into(),
            chart_type: ChartType::Line,
            metrics: vec![Metric {
                aggregate: Aggregate::Avg,
                column: Some("temp".into()),
            }],
            group_by: vec!["location".into()],
            time_grain: Some(TimeGrain::Minute),
            time_range: TimeRange::Last(Relative::ThirtyMinutes),
            filters: Vec::new(),
            sort: None,
            limit: None,
            visual: Visual::default(),
            refresh_seconds: None,
        }
    }

    /// Every problem with the definition against `datasets`; empty when it
    /// can be saved and run.
    pub fn validate(&self, datasets: &[Dataset]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut wrong = |field: String, message: String| errors.push(FieldError { field, message });
        let name = self.name.trim();
        if name.is_empty() {
            wrong("name".into(), "a chart needs a name".into());
        } else if self.name.chars().count() > MAX_NAME {
            wrong("name".into(), format!("at most {MAX_NAME} characters"));
        } else if self.name.chars().any(char::is_control) {
            wrong("name".into(), "control characters are not allowed".into());
        }
        let Some(dataset) = datasets.iter().find(|d| d.name == self.dataset) else {
            wrong(
                "dataset".into(),
                format!("no dataset is named {:?}", self.dataset),
            );
            return errors;
        };
        let kind_of = |column: &str| dataset.column(column).map(|c| c.kind);

        if self.metrics.is_empty() {
            wrong("metrics".into(), "a chart needs at least one metric".into());
        } else if self.metrics.len() > MAX_METRICS {
            wrong("metrics".into(), format!("at most {MAX_METRICS} metrics"));
        }
        for (i, metric) in self.metrics.iter().enumerate() {
            let field = format!("metrics[{i}].column");
            match (&metric.column, metric.aggregate) {
                (None, Aggregate::Count) => {}
                (None, aggregate) => wrong(field, format!("{} needs a column", aggregate.sql())),
                (Some(column), aggregate) => match kind_of(column) {
                    None => wrong(
                        field,
                        format!("{:?} has no column {column:?}", dataset.name),
                    ),
                    Some(kind) => {
                        let numeric = matches!(
                            kind,
                            ColumnKind::Metric | ColumnKind::Latitude | ColumnKind::Longitude
                        );
                        let needs_number = matches!(aggregate, Aggregate::Sum | Aggregate::Avg);
                        let orderable = numeric || kind == ColumnKind::Time;
                        let needs_order = matches!(aggregate, Aggregate::Min | Aggregate::Max);
                        if (needs_number && !numeric) || (needs_order && !orderable) {
                            wrong(
                                field,
                                format!(
                                    "{} needs a numeric column; {column:?} is not",
                                    aggregate.sql()
                                ),
                            );
                        }
                    }
                },
            }
        }
        let names: Vec<String> = self.metrics.iter().map(Metric::output_name).collect();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                wrong(
                    format!("metrics[{i}]"),
                    format!("{name} is asked for twice"),
                );
            }
        }

        if self.group_by.len() > MAX_GROUP_BY {
            wrong("group_by".into(), format!("at most {MAX_GROUP_BY} columns"));
        }
        for (i, column) in self.group_by.iter().enumerate() {
            let field = format!("group_by[{i}]");
            match kind_of(column) {
                None => wrong(
                    field,
                    format!("{:?} has no column {column:?}", dataset.name),
                ),
                Some(ColumnKind::Metric) | Some(ColumnKind::Time) => wrong(
                    field,
                    format!(
                        "{column:?} is a measure or a time; group by dimensions (use time_grain for time)"
                    ),
                ),
                Some(_) if self.group_by[..i].contains(column) => {
                    wrong(field, format!("{column:?} is listed twice"))
                }
                Some(_) => {}
            }
        }

        let time = dataset.time_column();
        let over_time = matches!(self.chart_type, ChartType::Line | ChartType::Area);
        match (self.time_grain, time) {
            (Some(_), None) => wrong(
                "time_grain".into(),
                format!("{:?} has no time column", dataset.name),
            ),
            (None, _) if over_time => wrong(
                "time_grain".into(),
                "a line or area chart needs a time grain".into(),
            ),
            _ => {}
        }
        if let TimeRange::Between { from_ms, to_ms } = self.time_range
            && from_ms >= to_ms
        {
            wrong("time_range".into(), "from must be before to".into());
        }

        match self.chart_type {
            ChartType::Histogram => {
                let numeric = self.metrics.len() == 1
                    && self.metrics[0].column.as_deref().and_then(kind_of)
                        == Some(ColumnKind::Metric);
                if !numeric {
                    wrong(
                        "metrics".into(),
                        "a histogram takes exactly one metric, over a numeric column".into(),
                    );
                }
                match self.visual.bins {
                    Some(2..=200) => {}
                    _ => wrong(
                        "visual.bins".into(),
                        "a histogram needs 2 to 200 bins".into(),
                    ),
                }
            }
            ChartType::Map => {
                let has = |kind| self.group_by.iter().any(|c| kind_of(c) == Some(kind));
                if !has(ColumnKind::Latitude) || !has(ColumnKind::Longitude) {
                    wrong(
                        "group_by".into(),
                        "a map groups by a latitude and a longitude column".into(),
                    );
                }
            }
            ChartType::Kpi if !self.group_by.is_empty() => wrong(
                "group_by".into(),
                "a KPI shows one number: no group-by".into(),
            ),
            _ => {}
        }

        if self.filters.len() > MAX_FILTERS {
            wrong("filters".into(), format!("at most {MAX_FILTERS} filters"));
        }
        for (i, filter) in self.filters.iter().enumerate() {
            let field = format!("filters[{i}]");
            let Some(kind) = kind_of(&filter.column) else {
                wrong(
                    format!("{field}.column"),
                    format!("{:?} has no column {:?}", dataset.name, filter.column),
                );
                continue;
            };
            if let Some(problem) = filter_problem(filter, kind) {
                wrong(field, problem);
            }
        }

        if let Some(sort) = &self.sort {
            let known = sort.by == "time" && self.time_grain.is_some()
                || self.group_by.contains(&sort.by)
                || names.contains(&sort.by);
            if !known {
                wrong(
                    "sort.by".into(),
                    format!("{:?} is not a group-by column, a metric or time", sort.by),
                );
            }
        }
        if let Some(limit) = self.limit
            && (limit == 0 || limit > MAX_LIMIT)
        {
            wrong("limit".into(), format!("1 to {MAX_LIMIT} rows"));
        }
        for (i, color) in self.visual.colors.iter().enumerate() {
            let hex = color.len() == 7
                && color.starts_with('#')
                && color[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !hex {
                wrong(
                    format!("visual.colors[{i}]"),
                    format!("{color:?} is not #rrggbb"),
                );
            }
        }
        for (field, text) in [
            ("visual.y_label", &self.visual.y_label),
            ("visual.unit", &self.visual.unit),
        ] {
            if text.as_ref().is_some_and(|t| t.chars().count() > 50) {
                wrong(field.into(), "at most 50 characters".into());
            }
        }
        if self.visual.thresholds.iter().any(|t| !t.is_finite()) {
            wrong(
                "visual.thresholds".into(),
                "thresholds must be finite numbers".into(),
            );
        }
        if self.refresh_seconds == Some(0) {
            wrong("refresh_seconds".into(), "at least 1 second".into());
        }
        errors
    }
}

/// Why `filter` cannot apply to a column of `kind`, if it cannot.
fn filter_problem(filter: &Filter, kind: ColumnKind) -> Option<String> {
    let count = filter.values.len();
    match filter.op {
        FilterOp::In if count == 0 => return Some("in needs at least one value".into()),
        FilterOp::In if count > 1_000 => return Some("in takes at most 1,000 values".into()),
        FilterOp::In => {}
        _ if count != 1 => return Some(format!("{:?} takes exactly one value", filter.op)),
        _ => {}
    }
    let text = matches!(kind, ColumnKind::Dimension);
    if filter.op == FilterOp::Contains && !text {
        return Some("contains applies to text columns".into());
    }
    let ordered = matches!(
        filter.op,
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge
    );
    for value in &filter.values {
        let fits = match (kind, value) {
            (ColumnKind::Dimension, Scalar::Text(t)) => {
                t.chars().count() <= 1_000 && !t.contains('\0')
            }
            (ColumnKind::Dimension, Scalar::Bool(_)) => !ordered,
            (ColumnKind::Dimension, Scalar::Number(_)) => false,
            (_, Scalar::Number(x)) => x.is_finite(),
            _ => false,
        };
        if !fits {
            let expected = match kind {
                ColumnKind::Dimension if ordered => "text (up to 1,000 characters)",
                ColumnKind::Dimension => "text (up to 1,000 characters) or true/false",
                ColumnKind::Time => "epoch milliseconds",
                _ => "a number",
            };
            return Some(format!("{:?} takes {expected}", filter.column));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::dataset::builtin;

    fn sales_by_product() -> ChartDefinition {
        ChartDefinition {
            name: "Sales by product".into(),
            dataset: "purchases_enriched".into(),
            chart_type: ChartType::Bar,
            metrics: vec![Metric {
                aggregate: Aggregate::Sum,
                column: Some("total_purchase".into()),
            }],
            group_by: vec!["product_name".into()],
            time_grain: None,
            time_range: TimeRange::Last(Relative::OneDay),
            filters: vec![],
            sort: None,
            limit: Some(10),
            visual: Visual::default(),
            refresh_seconds: None,
        }
    }

    fn fields(definition: &ChartDefinition) -> Vec<String> {
        definition
            .validate(&builtin())
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_sound_definition_has_no_errors() {
        assert_eq!(sales_by_product().validate(&builtin()), []);
    }

    #[test]
    fn each_wrong_field_is_named() {
        type Change = fn(&mut ChartDefinition);
        let cases: [(Change, &str); 14] = [
            (|d| d.name = " ".into(), "name"),
            (|d| d.name = "a\u{7}".into(), "name"),
            (|d| d.metrics.clear(), "metrics"),
            (
                |d| d.metrics[0].column = Some("nope".into()),
                "metrics[0].column",
            ),
            (
                |d| d.metrics[0].column = Some("product_name".into()),
                "metrics[0].column",
            ),
            (|d| d.metrics[0].column = None, "metrics[0].column"),
            (
                |d| d.group_by = vec!["total_purchase".into()],
                "group_by[0]",
            ),
            (|d| d.chart_type = ChartType::Line, "time_grain"),
            (
                |d| {
                    d.time_range = TimeRange::Between {
                        from_ms: 5,
                        to_ms: 5,
                    }
                },
                "time_range",
            ),
            (
                |d| {
                    d.filters = vec![Filter {
                        column: "purchase_quantity".into(),
                        op: FilterOp::Gt,
                        values: vec![Scalar::Text("2".into())],
                    }]
                },
                "filters[0]",
            ),
            (
                |d| {
                    d.sort = Some(Sort {
                        by: "time".into(),
                        descending: true,
                    })
                },
                "sort.by",
            ),
            (|d| d.limit = Some(0), "limit"),
            (|d| d.visual.colors = vec!["red".into()], "visual.colors[0]"),
            (|d| d.chart_type = ChartType::Map, "group_by"),
        ];
        for (change, field) in cases {
            let mut definition = sales_by_product();
            change(&mut definition);
            assert_eq!(fields(&definition), [field], "{definition:?}");
        }
        let mut unknown = sales_by_product();
        unknown.dataset = "pg_authid".into();
        assert_eq!(fields(&unknown), ["dataset"]);
    }

    #[test]
    fn the_json_form_reads_back_the_same_and_refuses_unknown_keys() {
        let mut definition = sales_by_product();
        definition.filters.push(Filter {
            column: "is_member".into(),
            op: FilterOp::Eq,
            values: vec![Scalar::Bool(true)],
        });
        definition.visual.thresholds = vec![0.1, 1e300];
        let json = round_trip(&definition);
        assert!(json.contains("\"type\":\"bar\""), "{json}");
        assert!(json.contains("\"last\":\"24h\""), "{json}");
        definition.time_range = TimeRange::All;
        assert!(round_trip(&definition).contains("\"time_range\":\"all\""));
        let error =
            serde_json::from_str::<ChartDefinition>(&json.replace("\"limit\"", "\"limitt\""));
        assert!(error.is_err());
    }

    /// The definition as JSON, after checking that it reads back the same.
    fn round_trip(definition: &ChartDefinition) -> String {
        let json = serde_json::to_string(definition).expect("serializes");
        let back: ChartDefinition = serde_json::from_str(&json).expect("reads back");
        assert_eq!(&back, definition);
        json
    }
}
