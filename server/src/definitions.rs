//! Stream definitions: a TOML file per stream declares where its records come
//! from, their fields and roles, the event-time field, and the rollups,
//! windows, joins and outputs computed from them. Definitions are checked as a
//! whole at start, and every problem is reported with the file and the path
//! of the offending setting.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDefinition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A built-in pipeline that stores this stream in the seed's own tables;
    /// without one, the stream gets a table and rollups of its own.
    pub pipeline: Option<Pipeline>,
    #[serde(default)]
    pub format: RecordFormat,
    /// Keep every record in the stream's raw table; `false` keeps only the
    /// rollups (aggregates only), for streams too large to keep whole.
    #[serde(default = "yes")]
    pub raw_rows: bool,
    #[serde(default)]
    pub sources: Sources,
    pub event_time: EventTime,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub rollups: Vec<Rollup>,
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default)]
    pub joins: Vec<Join>,
    #[serde(default)]
    pub outputs: Vec<Output>,
}

/// The seed's pipelines, built in: each stores its streams in the tables the
/// seed's views and dashboards read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Pipeline {
    /// IoT readings into `message` and the sensor statistics.
    #[serde(rename = "sensors")]
    Sensors,
    /// The smoothie menu into `products`.
    #[serde(rename = "sales.products")]
    SalesProducts,
    /// Purchases, enriched and totalled, into `purchases_enriched` and friends.
    #[serde(rename = "sales.purchases")]
    SalesPurchases,
    /// Restocking events into `inventories`.
    #[serde(rename = "sales.inventories")]
    SalesInventories,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    #[default]
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// Kafka topics read by the stream's consumer group.
    #[serde(default)]
    pub kafka_topics: Vec<String>,
    /// Delivery-stream names accepted by the Firehose-compatible and NDJSON endpoints.
    #[serde(default)]
    pub http_names: Vec<String>,
    /// A built-in simulator feeding the stream.
    pub simulator: Option<Simulator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Simulator {
    Sensors,
    Sales,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    pub field: String,
    pub format: TimeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    EpochSeconds,
    EpochMillis,
    /// `2022-09-25T01:58:11Z` and offsets.
    Rfc3339,
    /// `2022-09-25 01:58:11.714838`, UTC, as the seed's sales generator writes.
    SqlTimestamp,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub role: Role,
    /// A record without this field is refused (as a dead letter).
    #[serde(default = "yes")]
    pub required: bool,
    /// Longest accepted string, in characters.
    pub max_length: Option<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Float,
    Boolean,
    Timestamp,
}

/// What a field means to charts and aggregates, as in a Pinot schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Time,
    Dimension,
    Metric,
    Latitude,
    Longitude,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    #[serde(rename = "fn")]
    pub function: Aggregate,
    /// The metric aggregated; absent for `count`.
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    P90,
    P95,
    P99,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollup {
    pub name: String,
    /// Time grains such as "1m" or "1h"; empty for running totals over all time.
    #[serde(default)]
    pub grains: Vec<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub measures: Vec<Measure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Tumbling,
    Hopping,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub name: String,
    pub kind: WindowKind,
    pub size: String,
    /// Hopping windows only: how far each window starts after the previous one.
    pub slide: Option<String>,
    pub watermark: String,
    #[serde(default = "zero")]
    pub allowed_lateness: String,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub measures: Vec<Measure>,
    pub top: Option<Top>,
}

fn zero() -> String {
    "0s".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Top {
    pub n: usize,
    /// Index into the window's measures that ranks the groups.
    pub by_measure: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    pub name: String,
    /// The stream whose latest record per key is joined in.
    pub stream: String,
    /// This stream's field matched against the other stream's field of the same name.
    pub on: String,
    /// How long a record may wait for its match before it is stored unmatched.
    pub wait: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub topic: String,
    /// The rollup, window or join whose results are produced to the topic.
    pub from: String,
}

/// Everything wrong with the definitions, one line per problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid stream definitions:\n{}", .problems.join("\n"))]
pub struct DefinitionError {
    pub problems: Vec<String>,
}

/// Reads every `*.toml` in `dir` and checks them together.
pub fn load_dir(dir: &Path) -> Result<Vec<StreamDefinition>, DefinitionError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DefinitionError {
        problems: vec![format!(
            "{}: cannot read the stream definitions folder: {e}",
            dir.display()
        )],
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path.display().to_string(), text)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    if !problems.is_empty() {
        return Err(DefinitionError { problems });
    }
    parse_all(&sources)
}

/// Parses and checks definitions given as `(file name, TOML text)`.
pub fn parse_all(sources: &[(String, String)]) -> Result<Vec<StreamDefinition>, DefinitionError> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (file, text) in sources {
        match toml::from_str::<StreamDefinition>(text) {
            Ok(definition) => parsed.push((file.as_str(), definition)),
            Err(e) => problems.push(format!("{file}: {}", e.message().trim())),
        }
    }
    let names: Vec<&str> = parsed.iter().map(|(_, d)| d.name.as_str()).collect();
    for (file, definition) in &parsed {
        check(definition, &names, &mut |path: &str, problem: String| {
            problems.push(format!("{file}: {path}: {problem}"));
        });
    }
    let mut seen = BTreeSet::new();
    for (file, definition) in &parsed {
        if !seen.insert(definition.name.as_str()) {
            problems.push(format!(
                "{file}: name: stream {:?} is defined twice",
                definition.name
            ));
        }
    }
    let mut claimed = BTreeSet::new();
    let mut pipelines = BTreeSet::new();
    for (file, definition) in &parsed {
        if let Some(pipeline) = definition.pipeline
            && !pipelines.insert(pipeline)
        {
            problems.push(format!(
                "{file}: pipeline: {pipeline:?} is already served by another stream"
            ));
        }
        for topic in &definition.sources.kafka_topics {
            if !claimed.insert(("kafka topic", topic.as_str())) {
                problems.push(format!(
                    "{file}: sources.kafka_topics: {topic:?} is read by another stream"
                ));
            }
        }
        for name in &definition.sources.http_names {
            if !claimed.insert(("HTTP name", name.as_str())) {
                problems.push(format!(
                    "{file}: sources.http_names: {name:?} is used by another stream"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(parsed.into_iter().map(|(_, d)| d).collect())
    } else {
        Err(DefinitionError { problems })
    }
}

/// Parses a duration written as "250ms", "10m" or "1h".
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as \"250ms\" or \"10m\": {e}"))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

fn check(d: &StreamDefinition, streams: &[&str], report: &mut impl FnMut(&str, String)) {
    // Names become parts of table names, so they must be plain identifiers.
    if !is_identifier(&d.name) {
        report(
            "name",
            format!(
                "{:?} must be lowercase letters, digits and _ (at most 48), starting with a letter",
                d.name
            ),
        );
    }
    if d.sources.kafka_topics.is_empty()
        && d.sources.http_names.is_empty()
        && d.sources.simulator.is_none()
    {
        report(
            "sources",
            "no source: name kafka_topics, http_names or a simulator".into(),
        );
    }
    if d.fields.is_empty() {
        report("fields", "a stream needs at least one field".into());
    }
    if !d.raw_rows {
        if d.pipeline.is_some() {
            report(
                "raw_rows",
                "the built-in pipelines keep their raw rows; remove raw_rows = false".into(),
            );
        }
        for (i, rollup) in d.rollups.iter().enumerate() {
            for (m, measure) in rollup.measures.iter().enumerate() {
                if matches!(
                    measure.function,
                    Aggregate::Median | Aggregate::P90 | Aggregate::P95 | Aggregate::P99
                ) {
                    report(
                        &format!("rollups[{i}].measures[{m}]"),
                        "medians and percentiles are read from the raw rows; keep raw_rows or drop the measure".into(),
                    );
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for (i, field) in d.fields.iter().enumerate() {
        if !is_identifier(&field.name) {
            report(
                &format!("fields[{i}].name"),
                format!("{:?} must be a lowercase identifier", field.name),
            );
        }
        if !names.insert(field.name.as_str()) {
            report(
                &format!("fields[{i}].name"),
                format!("{:?} is declared twice", field.name),
            );
        }
        let numeric = matches!(field.kind, FieldType::Integer | FieldType::Float);
        match field.role {
            Role::Metric | Role::Latitude | Role::Longitude if !numeric => report(
                &format!("fields[{i}].role"),
                format!(
                    "{:?} is a {:?} field; a {:?} must be a number",
                    field.name, field.kind, field.role
                ),
            ),
            _ => {}
        }
        if field.max_length.is_some() && field.kind != FieldType::String {
            report(
                &format!("fields[{i}].max_length"),
                "only string fields have a length".into(),
            );
        }
    }
    let field = |name: &str| d.fields.iter().find(|f| f.name == name);
    let known = || {
        d.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    match field(&d.event_time.field) {
        None => report(
            "event_time.field",
            format!(
                "unknown field {:?} (fields: {})",
                d.event_time.field,
                known()
            ),
        ),
        Some(f) => {
            let fits = match d.event_time.format {
                TimeFormat::EpochSeconds | TimeFormat::EpochMillis => f.kind == FieldType::Integer,
                TimeFormat::Rfc3339 | TimeFormat::SqlTimestamp => {
                    matches!(f.kind, FieldType::String | FieldType::Timestamp)
                }
            };
            if !fits {
                report(
                    "event_time.format",
                    format!(
                        "{:?} does not fit the {:?} field {:?}",
                        d.event_time.format, f.kind, f.name
                    ),
                );
            }
            if !f.required {
                report(
                    "event_time.field",
                    format!(
                        "{:?} must be required: every record needs an event time",
                        f.name
                    ),
                );
            }
        }
    }

    let mut outputs_from = BTreeSet::new();
    let check_group_by = |path: &str, group_by: &[String], report: &mut dyn FnMut(&str, String)| {
        for (i, name) in group_by.iter().enumerate() {
            match field(name) {
                None => report(
                    &format!("{path}.group_by[{i}]"),
                    format!("unknown field {name:?} (fields: {})", known()),
                ),
                Some(f) if f.role == Role::Metric => report(
                    &format!("{path}.group_by[{i}]"),
                    format!("{name:?} is a metric; group by dimensions"),
                ),
                Some(_) => {}
            }
        }
    };
    let check_measures = |path: &str,
                          measures: &[Measure],
                          report: &mut dyn FnMut(&str, String)| {
        if measures.is_empty() {
            report(
                &format!("{path}.measures"),
                "at least one measure is needed".into(),
            );
        }
        for (i, m) in measures.iter().enumerate() {
            let at = format!("{path}.measures[{i}]");
            match (&m.function, &m.field) {
                (Aggregate::Count, None) => {}
                (Aggregate::Count, Some(_)) => report(&at, "count takes no field".into()),
                (_, None) => report(
                    &at,
                    format!("{:?} needs a field", m.function).to_lowercase(),
                ),
                (_, Some(name)) => match field(name) {
                    None => report(&at, format!("unknown field {name:?} (fields: {})", known())),
                    Some(f) if !matches!(f.kind, FieldType::Integer | FieldType::Float) => {
                        report(&at, format!("{name:?} is not a number"))
                    }
                    Some(_) => {}
                },
            }
        }
    };

    for (i, rollup) in d.rollups.iter().enumerate() {
        let path = format!("rollups[{i}]");
        if !is_identifier(&rollup.name) {
            report(
                &format!("{path}.name"),
                format!("{:?} must be a lowercase identifier", rollup.name),
            );
        }
        outputs_from.insert(rollup.name.as_str());
        for (g, grain) in rollup.grains.iter().enumerate() {
            if let Err(e) = duration(grain) {
                report(&format!("{path}.grains[{g}]"), e);
            }
            if rollup.grains[..g].contains(grain) {
                report(
                    &format!("{path}.grains[{g}]"),
                    format!("{grain:?} is listed twice"),
                );
            }
        }
        check_group_by(&path, &rollup.group_by, report);
        check_measures(&path, &rollup.measures, report);
    }
    for (i, window) in d.windows.iter().enumerate() {
        let path = format!("windows[{i}]");
        if !is_identifier(&window.name) {
            report(
                &format!("{path}.name"),
                format!("{:?} must be a lowercase identifier", window.name),
            );
        }
        outputs_from.insert(window.name.as_str());
        let size = duration(&window.size)
            .map_err(|e| report(&format!("{path}.size"), e))
            .ok();
        for (setting, value) in [
            ("watermark", &window.watermark),
            ("allowed_lateness", &window.allowed_lateness),
        ] {
            if let Err(e) = duration(value) {
                report(&format!("{path}.{setting}"), e);
            }
        }
        match (window.kind, &window.slide) {
            (WindowKind::Tumbling, Some(_)) => report(
                &format!("{path}.slide"),
                "tumbling windows do not slide; use kind = \"hopping\"".into(),
            ),
            (WindowKind::Hopping, None) => report(
                &format!("{path}.slide"),
                "hopping windows need a slide".into(),
            ),
            (WindowKind::Hopping, Some(slide)) => match (duration(slide), size) {
                (Err(e), _) => report(&format!("{path}.slide"), e),
                (Ok(slide), Some(size)) if slide.is_zero() || slide > size => report(
                    &format!("{path}.slide"),
                    format!("must be more than 0 and at most the size ({})", window.size),
                ),
                _ => {}
            },
            (WindowKind::Tumbling, None) => {}
        }
        if size.is_some_and(|s| s.is_zero()) {
            report(&format!("{path}.size"), "must be longer than zero".into());
        }
        check_group_by(&path, &window.group_by, report);
        check_measures(&path, &window.measures, report);
        if let Some(top) = &window.top {
            if top.n == 0 {
                report(&format!("{path}.top.n"), "must be at least 1".into());
            }
            if top.by_measure >= window.measures.len() {
                report(
                    &format!("{path}.top.by_measure"),
                    format!("there are {} measures", window.measures.len()),
                );
            }
        }
    }
    for (i, join) in d.joins.iter().enumerate() {
        let path = format!("joins[{i}]");
        outputs_from.insert(join.name.as_str());
        if !streams.contains(&join.stream.as_str()) {
            report(
                &format!("{path}.stream"),
                format!(
                    "unknown stream {:?} (streams: {})",
                    join.stream,
                    streams.join(", ")
                ),
            );
        }
        if field(&join.on).is_none() {
            report(
                &format!("{path}.on"),
                format!("unknown field {:?} (fields: {})", join.on, known()),
            );
        }
        if let Err(e) = duration(&join.wait) {
            report(&format!("{path}.wait"), e);
        }
    }
    for (i, output) in d.outputs.iter().enumerate() {
        if !outputs_from.contains(output.from.as_str()) {
            let names: Vec<&str> = outputs_from.iter().copied().collect();
            report(
                &format!("outputs[{i}].from"),
                format!(
                    "no rollup, window or join named {:?} (have: {})",
                    output.from,
                    names.join(", ")
                ),
            );
        }
        if output.topic.trim().is_empty() {
            report(
                &format!("outputs[{i}].topic"),
                "a topic name is needed".into(),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../streams");

    fn parse(text: &str) -> Result<Vec<StreamDefinition>, DefinitionError> {
        parse_all(&[("test.toml".to_string(), text.to_string())])
    }

    /// A small valid definition, for tests of what is built from definitions.
    pub(crate) const MINIMAL: &str = r#"
        name = "orders"
        sources = { http_names = ["orders"] }
        event_time = { field = "at", format = "epoch_millis" }
        fields = [
            { name = "at", type = "integer", role = "time" },
            { name = "store", type = "string", role = "dimension" },
            { name = "amount", type = "float", role = "metric" },
        ]
        [[rollups]]
        name = "per_store"
        grains = ["1m", "1h"]
        group_by = ["store"]
        measures = [{ fn = "count" }, { fn = "sum", field = "amount" }]
    "#;

    #[test]
    fn the_shipped_definitions_are_valid() {
        let definitions = load_dir(Path::new(SHIPPED)).expect("shipped definitions load");
        let sensors = definitions
            .iter()
            .find(|d| d.name == "sensors")
            .expect("sensors is shipped");
        assert_eq!(
            sensors.sources.http_names,
            ["sensors", "redshift-delivery-stream"]
        );
        assert_eq!(
            sensors.event_time,
            EventTime {
                field: "ts".into(),
                format: TimeFormat::EpochSeconds
            }
        );
    }

    #[test]
    fn a_minimal_definition_parses_with_defaults() {
        let d = parse(MINIMAL).expect("valid").remove(0);
        assert_eq!(d.format, RecordFormat::Json);
        assert!(d.fields.iter().all(|f| f.required));
        assert_eq!(d.rollups[0].grains, ["1m", "1h"]);
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text).expect_err("invalid").problems
    }

    #[test]
    fn each_problem_names_the_file_and_the_setting() {
        let broken = MINIMAL
            .replace(r#"group_by = ["store"]"#, r#"group_by = ["shop"]"#)
            .replace(
                r#"{ fn = "sum", field = "amount" }"#,
                r#"{ fn = "sum", field = "store" }"#,
            )
            .replace(r#"grains = ["1m", "1h"]"#, r#"grains = ["1 fortnight"]"#);
        let found = problems(&broken);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("test.toml: rollups[0].grains[0]:"),
            "{found:?}"
        );
        assert!(
            found[1].contains(
                "rollups[0].group_by[0]: unknown field \"shop\" (fields: at, store, amount)"
            ),
            "{found:?}"
        );
        assert!(
            found[2].contains("rollups[0].measures[1]: \"store\" is not a number"),
            "{found:?}"
        );
    }

    #[test]
    fn syntax_and_unknown_settings_are_reported() {
        assert!(problems("name = ")[0].starts_with("test.toml: "));
        let typo = MINIMAL.replace("event_time =", "event_tme =");
        assert!(
            problems(&typo)[0].contains("event_tme"),
            "{:?}",
            problems(&typo)
        );
    }

    #[test]
    fn event_time_must_fit_its_field() {
        let wrong = MINIMAL.replace(r#"format = "epoch_millis""#, r#"format = "rfc3339""#);
        assert!(
            problems(&wrong)[0]
                .contains("event_time.format: Rfc3339 does not fit the Integer field \"at\"")
        );
        let missing = MINIMAL.replace(r#"field = "at""#, r#"field = "when""#);
        assert!(problems(&missing)[0].contains("event_time.field: unknown field \"when\""));
    }

    #[test]
    fn a_grain_listed_twice_is_refused() {
        let twice = MINIMAL.replace(r#"grains = ["1m", "1h"]"#, r#"grains = ["1m", "1m"]"#);
        let problems = problems(&twice);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("rollups[0].grains[1]"), "{problems:?}");
    }

    #[test]
    fn aggregates_only_streams_cannot_ask_for_medians() {
        let aggregates_only =
            MINIMAL.replace("name = \"orders\"", "name = \"orders\"\nraw_rows = false");
        assert!(!parse(&aggregates_only).expect("valid").remove(0).raw_rows);
        let with_median = aggregates_only.replace(
            r#"{ fn = "sum", field = "amount" }"#,
            r#"{ fn = "median", field = "amount" }"#,
        );
        let problems = problems(&with_median);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("rollups[0].measures[1]"),
            "{problems:?}"
        );
        assert!(problems[0].contains("raw rows"), "{problems:?}");
    }

    #[test]
    fn windows_are_checked() {
        let window = |kind: &str, slide: &str| {
            format!(
                "{MINIMAL}\n[[windows]]\nname = \"w\"\nkind = \"{kind}\"\nsize = \"10m\"\n{slide}\nwatermark = \"10m\"\nmeasures = [{{ fn = \"count\" }}]\n"
            )
        };
        parse(&window("hopping", "slide = \"5m\"")).expect("the seed's hopping window");
        parse(&window("tumbling", "")).expect("a tumbling window");
        assert!(
            problems(&window("hopping", ""))[0]
                .contains("windows[0].slide: hopping windows need a slide")
        );
        assert!(problems(&window("hopping", "slide = \"15m\""))[0].contains("at most the size"));
        assert!(problems(&window("tumbling", "slide = \"5m\""))[0].contains("do not slide"));
    }

    #[test]
    fn names_topics_and_joins_are_checked_across_files() {
        let twice = parse_all(&[
            ("a.toml".into(), MINIMAL.into()),
            ("b.toml".into(), MINIMAL.into()),
        ]);
        let found = twice.expect_err("duplicates").problems;
        assert!(
            found
                .iter()
                .any(|p| p == "b.toml: name: stream \"orders\" is defined twice"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("\"orders\" is used by another stream")),
            "{found:?}"
        );

        let join = format!(
            "{MINIMAL}\n[[joins]]\nname = \"j\"\nstream = \"stores\"\non = \"store\"\nwait = \"30s\"\n"
        );
        assert!(
            problems(&join)[0]
                .contains("joins[0].stream: unknown stream \"stores\" (streams: orders)")
        );
        let bad_name = MINIMAL.replace(r#"name = "orders""#, r#"name = "Orders; DROP TABLE x""#);
        assert!(
            problems(&bad_name)[0].contains("name: \"Orders; DROP TABLE x\" must be lowercase")
        );
    }

    #[test]
    fn outputs_name_what_they_publish() {
        let output =
            format!("{MINIMAL}\n[[outputs]]\ntopic = \"orders.totals\"\nfrom = \"per_shop\"\n");
        assert!(problems(&output)[0].contains(
            "outputs[0].from: no rollup, window or join named \"per_shop\" (have: per_store)"
        ));
    }
}
