//! Streams of your own: a definition without a built-in pipeline gets, with
//! no code, a raw table `stream_<name>` with a typed column per field, a
//! rollup table `rollup_<name>_<rollup>` per rollup, updated from in-memory
//! deltas in the same transaction as the rows, and a view
//! `rollup_<name>_<rollup>_view` that reads each declared measure by name.
//!
//! An event-time window is kept the same way, in `window_<name>_<window>`:
//! its buckets are the windows an event is admitted to by the watermark, and
//! its rows turn final once the watermark passes their end. The watermark is
//! kept in Postgres beside the rows, so a restart or another instance carries
//! on from it; events too late for every window go to `late_events`.
//!
//! Tables are created, and new fields added as columns, at start.

mod batch;
mod datasets;
mod join;
pub mod record;

pub use batch::CustomBatch;
pub use datasets::datasets;
pub use join::JoinPlan;
pub use record::{HTTP_SOURCE, Row, Value, decode};

use crate::consumer::Subscription;
use crate::definitions::{
    Aggregate, Field, FieldType, Measure, Role, StreamDefinition, TimeFormat, WindowKind,
};
use crate::operators::window::WindowSpec;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// A custom stream, planned from its definition: tables, columns and statements.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomStream {
    pub name: String,
    pub fields: Vec<Field>,
    /// Index of the event-time field, and how its value reads.
    pub event_time: (usize, TimeFormat),
    /// Index of the field whose value keys the latency figures, if any.
    pub latency_key: Option<usize>,
    pub kafka_topics: Vec<String>,
    pub http_names: Vec<String>,
    /// Whether records are kept in the raw table, or only in the rollups.
    pub raw_rows: bool,
    pub table: String,
    pub rollups: Vec<RollupPlan>,
    /// This stream's joins, each with the statement that queues records for it.
    pub joins: Vec<(JoinPlan, String)>,
    /// Joins of other streams that read this one: a flush of this stream may
    /// bring the match their waiting records need.
    pub joined_by: Vec<JoinPlan>,
    insert_sql: String,
}

/// One rollup or window: its table, the buckets it keeps and what it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupPlan {
    pub name: String,
    pub table: String,
    /// `(label, width in ms)`; width 0 is all time. A window has one: its name and size.
    pub grains: Vec<(String, i64)>,
    /// For a window: which windows an event belongs to, and when they close.
    pub window: Option<WindowSpec>,
    /// Indices of the group-by fields.
    pub group_by: Vec<usize>,
    /// Indices of the fields measured (count, sum, min and max are kept for each).
    pub metrics: Vec<usize>,
    upsert_sql: String,
    /// The view's columns, read from a row `r` of the table.
    columns_sql: String,
    view_sql: String,
    /// A window's `<table>_top` view: the best groups of each window.
    top_view_sql: Option<String>,
    /// Kafka topics each changed row is produced to, as its view reads it.
    pub topics: Vec<String>,
    /// With topics: the upsert, and a window's finalize, returning
    /// `(key, JSON row)` for every row they changed.
    output_sql: Option<OutputSql>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputSql {
    pub upsert: String,
    pub finalize: String,
}

/// Pulseboard's own tables that a stream's table name could collide with.
const RESERVED_TABLES: [&str; 1] = ["stream_activity"];

/// The prefix of every custom stream's raw table.
pub const TABLE_PREFIX: &str = "stream_";

fn sql_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "text",
        FieldType::Integer => "bigint",
        FieldType::Float => "double precision",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamp with time zone",
    }
}

/// The array type a column's values are bound as (timestamps as epoch microseconds).
fn bind_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "text[]",
        FieldType::Integer | FieldType::Timestamp => "int8[]",
        FieldType::Float => "float8[]",
        FieldType::Boolean => "bool[]",
    }
}

/// The expression that turns an unnested bound value `r.<column>` into the column's value.
fn from_bound(kind: FieldType, column: &str) -> String {
    match kind {
        FieldType::Timestamp => format!("to_timestamp(r.{column} / 1000000.0)"),
        _ => format!("r.{column}"),
    }
}

fn quoted(name: &str) -> String {
    // Names are checked identifiers; quoting keeps keywords such as "order" usable.
    format!("\"{name}\"")
}

/// The measure columns kept for a metric.
fn measure_columns(field: &str) -> [String; 4] {
    ["count", "sum", "min", "max"].map(|m| format!("{field}_{m}"))
}

/// The columns every rollup and window table or view has besides its
/// dimensions and measures: a group-by field may not take these names.
const BOOKKEEPING_COLUMNS: [&str; 10] = [
    "grain",
    "bucket_start",
    "bucket_end",
    "window_start",
    "window_end",
    "records",
    "count",
    "rank",
    "is_final",
    "updated_at",
];

/// The name a measure reads by in a rollup's or window's view: `count`, `avg_<field>`, …
fn measure_name(measure: &Measure) -> String {
    let function = match measure.function {
        Aggregate::Count => return "count".into(),
        Aggregate::Sum => "sum",
        Aggregate::Avg => "avg",
        Aggregate::Min => "min",
        Aggregate::Max => "max",
        Aggregate::Median => "median",
        Aggregate::P90 => "p90",
        Aggregate::P95 => "p95",
        Aggregate::P99 => "p99",
    };
    format!(
        "{function}_{}",
        measure.field.as_deref().unwrap_or_default()
    )
}

/// What a rollup and a window have in common: grouping and measures.
struct Shape<'a> {
    kind: &'static str,
    name: &'a str,
    group_by: &'a [String],
    measures: &'a [Measure],
}

impl Shape<'_> {
    fn plan(
        &self,
        definition: &StreamDefinition,
        raw_table: &str,
        grains: Vec<(String, i64)>,
        window: Option<WindowSpec>,
        top: Option<(usize, String)>,
    ) -> anyhow::Result<RollupPlan> {
        let (stream, kind, name) = (&definition.name, self.kind, self.name);
        let fields = &definition.fields;
        let index = |field: &str| {
            fields.iter().position(|f| f.name == field).ok_or_else(|| {
                anyhow::anyhow!("stream {stream:?}: {kind} {name:?}: no field {field:?}")
            })
        };
        let group_by = self
            .group_by
            .iter()
            .map(|g| index(g))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut metrics: Vec<usize> = Vec::new();
        for measure in self.measures {
            if let Some(field) = &measure.field {
                let i = index(field)?;
                if !metrics.contains(&i) {
                    metrics.push(i);
                }
            }
        }
        let table = format!("{kind}_{stream}_{name}");
        anyhow::ensure!(
            table.len() + "_view".len() <= 63,
            "stream {stream:?}: {kind} {name:?}: the names are too long for Postgres ({table}_view is over 63 characters)"
        );
        let dims: BTreeSet<&str> = group_by.iter().map(|&i| fields[i].name.as_str()).collect();
        for dim in &dims {
            anyhow::ensure!(
                !BOOKKEEPING_COLUMNS.contains(dim),
                "stream {stream:?}: {kind} {name:?}: the group-by field {dim:?} has the name of a column Pulseboard keeps; rename the field"
            );
        }
        for &m in &metrics {
            for column in measure_columns(&fields[m].name) {
                anyhow::ensure!(
                    !dims.contains(column.as_str()),
                    "stream {stream:?}: {kind} {name:?}: the measure column {column:?} clashes with a group-by field"
                );
            }
        }
        let mut plan = RollupPlan {
            name: name.to_string(),
            table,
            grains,
            window,
            group_by,
            metrics,
            upsert_sql: String::new(),
            columns_sql: String::new(),
            view_sql: String::new(),
            top_view_sql: None,
            topics: Vec::new(),
            output_sql: None,
        };
        plan.upsert_sql = plan.upsert_sql(fields);
        plan.columns_sql = plan.named_columns(fields, raw_table, self.measures);
        plan.view_sql = format!(
            "CREATE OR REPLACE VIEW {0}_view AS SELECT {1} FROM {0} r",
            plan.table, plan.columns_sql
        );
        plan.top_view_sql = top.map(|(n, by)| plan.top_view_sql(n, &by));
        Ok(plan)
    }
}

impl CustomStream {
    /// Plans a stream from its checked definition, alone: it may join only itself.
    pub fn plan(definition: &StreamDefinition) -> anyhow::Result<Self> {
        Self::plan_among(definition, std::slice::from_ref(definition))
    }

    /// Plans a stream whose joins read streams among `definitions`.
    fn plan_among(
        definition: &StreamDefinition,
        definitions: &[StreamDefinition],
    ) -> anyhow::Result<Self> {
        let fields = definition.fields.clone();
        let index = |name: &str| {
            fields
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| anyhow::anyhow!("stream {:?}: no field {name:?}", definition.name))
        };
        let table = format!("{TABLE_PREFIX}{}", definition.name);
        anyhow::ensure!(
            !RESERVED_TABLES.contains(&table.as_str()),
            "stream {:?}: its table {table} would be one Pulseboard keeps for itself; choose another name",
            definition.name
        );
        let mut rollups = Vec::new();
        for rollup in &definition.rollups {
            let grains = if rollup.grains.is_empty() {
                vec![("all".to_string(), 0)]
            } else {
                rollup
                    .grains
                    .iter()
                    .map(|g| {
                        let width = crate::definitions::duration(g).map_err(anyhow::Error::msg)?;
                        anyhow::ensure!(
                            width.as_millis() > 0,
                            "stream {:?}: rollup {:?}: grain {g:?} is zero",
                            definition.name,
                            rollup.name
                        );
                        Ok((g.clone(), i64::try_from(width.as_millis())?))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let shape = Shape {
                kind: "rollup",
                name: &rollup.name,
                group_by: &rollup.group_by,
                measures: &rollup.measures,
            };
            rollups.push(shape.plan(definition, &table, grains, None, None)?);
        }
        for window in &definition.windows {
            let shape = Shape {
                kind: "window",
                name: &window.name,
                group_by: &window.group_by,
                measures: &window.measures,
            };
            let context = |e: String| {
                anyhow::anyhow!(
                    "stream {:?}: window {:?}: {e}",
                    definition.name,
                    window.name
                )
            };
            let millis = |text: &str| -> anyhow::Result<i64> {
                let d = crate::definitions::duration(text).map_err(context)?;
                Ok(i64::try_from(d.as_millis())?)
            };
            let size = millis(&window.size)?;
            let slide = match (window.kind, &window.slide) {
                (WindowKind::Hopping, Some(slide)) => millis(slide)?,
                _ => size,
            };
            let spec = WindowSpec::new(
                size,
                slide,
                millis(&window.watermark)?,
                millis(&window.allowed_lateness)?,
            )
            .map_err(|e| context(e.to_string()))?;
            if let Some(m) = window.measures.iter().find(|m| {
                matches!(
                    m.function,
                    Aggregate::Median | Aggregate::P90 | Aggregate::P95 | Aggregate::P99
                )
            }) {
                return Err(context(format!(
                    "{} is not kept for windows (count, sum, avg, min and max are); \
                     a rollup keeps medians and percentiles",
                    measure_name(m)
                )));
            }
            let top = window.top.as_ref().map(|top| {
                let by = measure_name(&window.measures[top.by_measure]);
                (top.n, by)
            });
            let grains = vec![(window.name.clone(), size)];
            rollups.push(shape.plan(definition, &table, grains, Some(spec), top)?);
        }
        let joins = definition
            .joins
            .iter()
            .map(|join| JoinPlan::plan(definition, join, definitions))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let joined = |name: &str| joins.iter().any(|j| j.name == name);
        for output in definition.outputs.iter().filter(|o| !joined(&o.from)) {
            let mut named = rollups.iter_mut().filter(|p| p.name == output.from);
            let plan = named.next().ok_or_else(|| {
                anyhow::anyhow!(
                    "stream {:?}: output {:?}: no rollup, window or join named {:?}",
                    definition.name,
                    output.topic,
                    output.from
                )
            })?;
            plan.topics.push(output.topic.clone());
            anyhow::ensure!(
                named.next().is_none(),
                "stream {:?}: output {:?}: a rollup and a window are both named {:?}; rename one",
                definition.name,
                output.topic,
                output.from
            );
        }
        for plan in rollups.iter_mut().filter(|p| !p.topics.is_empty()) {
            plan.output_sql = Some(plan.output_sql(&fields));
        }
        let latency_key = fields
            .iter()
            .position(|f| f.role == Role::Dimension && f.kind == FieldType::String);
        let mut stream = CustomStream {
            name: definition.name.clone(),
            event_time: (
                index(&definition.event_time.field)?,
                definition.event_time.format,
            ),
            latency_key,
            kafka_topics: definition.sources.kafka_topics.clone(),
            http_names: definition.sources.http_names.clone(),
            raw_rows: definition.raw_rows,
            table,
            rollups,
            joins: Vec::new(),
            joined_by: Vec::new(),
            insert_sql: String::new(),
            fields,
        };
        stream.insert_sql = stream.insert_sql_into(&stream.table);
        stream.joins = joins
            .into_iter()
            .map(|join| {
                let queue = stream.insert_sql_into(&join.pending_table);
                (join, queue)
            })
            .collect();
        Ok(stream)
    }

    /// The windows' source of a record read from `topic`'s `partition`.
    pub fn source_of(&self, topic: &str, partition: i32) -> u32 {
        let topic = self
            .kafka_topics
            .iter()
            .position(|t| t == topic)
            .unwrap_or(0);
        1 + ((topic as u32) << 16 | (partition as u32 & 0xffff))
    }

    /// A source's name where its clock is kept: `http`, or `topic/partition`.
    pub fn source_key(&self, source: u32) -> String {
        if source == HTTP_SOURCE {
            return "http".into();
        }
        let id = source - 1;
        let topic = self
            .kafka_topics
            .get((id >> 16) as usize)
            .map_or("", String::as_str);
        format!("{topic}/{}", id & 0xffff)
    }

    /// The source kept under `key`, if it is one of this stream's.
    pub fn source_named(&self, key: &str) -> Option<u32> {
        if key == "http" {
            return Some(HTTP_SOURCE);
        }
        let (topic, partition) = key.rsplit_once('/')?;
        let partition: i32 = partition.parse().ok()?;
        self.kafka_topics
            .iter()
            .any(|t| t == topic)
            .then(|| self.source_of(topic, partition))
    }

    /// The Kafka topics the stream's rollups, windows and joins are produced to.
    pub fn output_topics(&self) -> impl Iterator<Item = &String> {
        let joins = self.joins.iter().flat_map(|(join, _)| &join.topics);
        self.rollups
            .iter()
            .flat_map(|plan| &plan.topics)
            .chain(joins)
    }

    /// A decoded row as a JSON object of its fields (times in UTC).
    pub fn to_json(&self, row: &Row) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .fields
            .iter()
            .zip(&row.values)
            .map(|(field, value)| {
                let json = match value {
                    Value::Null => serde_json::Value::Null,
                    Value::Text(t) => t.as_str().into(),
                    Value::Int(i) => (*i).into(),
                    Value::Float(x) => (*x).into(),
                    Value::Bool(b) => (*b).into(),
                    Value::Time(us) => crate::sales::format_timestamp(us.div_euclid(1000)).into(),
                };
                (field.name.clone(), json)
            })
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// Every stream in `definitions` without a built-in pipeline, planned.
    pub fn plan_all(definitions: &[StreamDefinition]) -> anyhow::Result<Vec<Self>> {
        let mut streams: Vec<Self> = definitions
            .iter()
            .filter(|d| d.pipeline.is_none())
            .map(|d| Self::plan_among(d, definitions))
            .collect::<anyhow::Result<_>>()?;
        let joins: Vec<JoinPlan> = streams
            .iter()
            .flat_map(|s| s.joins.iter().filter(|(j, _)| j.other != s.name))
            .map(|(join, _)| join.clone())
            .collect();
        for join in joins {
            if let Some(other) = streams.iter_mut().find(|s| s.name == join.other) {
                other.joined_by.push(join);
            }
        }
        // Stream "a" with rollup "b_c" and stream "a_b" with rollup "c" would share a table.
        let mut tables = BTreeSet::new();
        for stream in &streams {
            let joins = stream.joins.iter().map(|(join, _)| join.table.as_str());
            for table in stream.rollups.iter().map(|r| r.table.as_str()).chain(joins) {
                anyhow::ensure!(
                    tables.insert(table),
                    "two rollups, windows or joins would share the table {table}; rename one of them"
                );
            }
        }
        Ok(streams)
    }

    pub fn subscription(&self, group: &str) -> Subscription {
        Subscription {
            group: format!("{group}.{}", self.name),
            topics: self.kafka_topics.clone(),
        }
    }

    /// Inserts a batch's rows, bound as one array per column, into `table`.
    fn insert_sql_into(&self, table: &str) -> String {
        let mut columns: Vec<String> = self.fields.iter().map(|f| quoted(&f.name)).collect();
        columns.extend(["_event_time".into(), "_ingested_at".into()]);
        let mut types: Vec<String> = self
            .fields
            .iter()
            .map(|f| bind_type(f.kind).to_string())
            .collect();
        types.extend(["int8[]".into(), "int8[]".into()]);
        let aliases: Vec<String> = (0..types.len()).map(|i| format!("c{i}")).collect();
        let mut selects: Vec<String> = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| from_bound(f.kind, &aliases[i]))
            .collect();
        let n = self.fields.len();
        selects.push(format!("to_timestamp(r.c{n} / 1000.0)"));
        selects.push(format!("to_timestamp(r.c{} / 1000000.0)", n + 1));
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS r({})",
            table,
            columns.join(", "),
            selects.join(", "),
            params(&types),
            aliases.join(", ")
        )
    }

    /// Creates the stream's tables and views, or brings them up to the
    /// definition (new fields become columns; a changed type is an error).
    pub async fn prepare(&self, pool: &PgPool) -> anyhow::Result<()> {
        let mut tx = pool.begin().await?;
        // One instance at a time: concurrent CREATE TABLE IF NOT EXISTS can collide.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pulseboard custom stream tables'))")
            .execute(&mut *tx)
            .await?;
        let columns: Vec<Column> = self
            .fields
            .iter()
            .map(|f| Column::of(&f.name, f, f.required))
            .collect();
        create_or_extend(
            &mut tx,
            &self.name,
            &self.table,
            &columns,
            "_event_time timestamptz NOT NULL, _ingested_at timestamptz NOT NULL, \
             _stored_at timestamptz NOT NULL DEFAULT now()",
        )
        .await?;
        sqlx::query(&format!(
            "CREATE INDEX IF NOT EXISTS {0}_event_time ON {0} USING brin (_event_time)",
            self.table
        ))
        .execute(&mut *tx)
        .await?;
        for rollup in &self.rollups {
            rollup.prepare(&mut tx, &self.fields).await?;
        }
        for (join, _) in &self.joins {
            join.prepare(&mut tx, self).await?;
        }
        for join in self
            .joins
            .iter()
            .map(|(j, _)| j)
            .filter(|j| j.other == self.name)
        {
            sqlx::query(&join.latest_index_sql())
                .execute(&mut *tx)
                .await?;
        }
        for join in &self.joined_by {
            sqlx::query(&join.latest_index_sql())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A typed column of a table that follows a definition's fields.
pub(crate) struct Column {
    pub name: String,
    pub kind: FieldType,
    pub required: bool,
}

impl Column {
    /// The column `name` holding `field`'s values; NULL allowed unless `required`.
    pub fn of(name: &str, field: &Field, required: bool) -> Self {
        Column {
            name: name.to_string(),
            kind: field.kind,
            required,
        }
    }
}

/// Creates `table` with `columns` and then the `bookkeeping` columns, or
/// brings it up to them: a new column is added (rows stored before it have no
/// value), a changed type is an error naming the column.
pub(crate) async fn create_or_extend(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    stream: &str,
    table: &str,
    columns: &[Column],
    bookkeeping: &str,
) -> anyhow::Result<()> {
    let declared: Vec<String> = columns
        .iter()
        .map(|c| {
            let not_null = if c.required { " NOT NULL" } else { "" };
            format!("{} {}{not_null}", quoted(&c.name), sql_type(c.kind))
        })
        .collect();
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {table} ({}, {bookkeeping})",
        declared.join(", ")
    ))
    .execute(&mut **tx)
    .await?;
    let existing: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    for column in columns {
        match existing.iter().find(|(name, _)| *name == column.name) {
            Some((_, kind)) if kind != sql_type(column.kind) => anyhow::bail!(
                "stream {stream:?}: column {:?} of {table} is {kind}, but the definition makes it {:?} ({}); \
                 rename the field or migrate the table",
                column.name,
                column.kind,
                sql_type(column.kind)
            ),
            Some(_) => {}
            None => {
                sqlx::query(&format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}",
                    quoted(&column.name),
                    sql_type(column.kind)
                ))
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

impl CustomStream {
    /// Empties the stream's raw table and rollups, and its shared figures.
    pub async fn reset(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        let mut tables = vec![self.table.clone()];
        tables.extend(self.rollups.iter().map(|r| r.table.clone()));
        for (join, _) in &self.joins {
            tables.extend([join.table.clone(), join.pending_table.clone()]);
        }
        sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
            .execute(&mut *tx)
            .await?;
        crate::replay::forget_streams(&mut tx, &[self.name.as_str()]).await?;
        tx.commit().await
    }
}

/// `$1::text[], $2::int8[], …` for `unnest`.
fn params(types: &[String]) -> String {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RollupPlan {
    fn dimension_columns<'a>(&self, fields: &'a [Field]) -> Vec<&'a Field> {
        self.group_by.iter().map(|&i| &fields[i]).collect()
    }

    fn upsert_sql(&self, fields: &[Field]) -> String {
        let dims = self.dimension_columns(fields);
        let mut columns = vec![
            "grain".to_string(),
            "bucket_start".into(),
            "bucket_end".into(),
        ];
        let mut types = vec!["text[]".to_string(), "int8[]".into(), "int8[]".into()];
        let mut selects = vec![
            "r.c0".to_string(),
            // All time has no bucket bounds.
            "coalesce(to_timestamp(r.c1 / 1000.0), '-infinity')".into(),
            "coalesce(to_timestamp(r.c2 / 1000.0), 'infinity')".into(),
        ];
        for d in &dims {
            columns.push(quoted(&d.name));
            types.push(bind_type(d.kind).into());
            selects.push(from_bound(d.kind, &format!("c{}", selects.len())));
        }
        columns.push("records".into());
        types.push("int8[]".into());
        selects.push(format!("r.c{}", selects.len()));
        let mut updates = vec!["records = t.records + excluded.records".to_string()];
        for &m in &self.metrics {
            let [count, sum, min, max] = measure_columns(&fields[m].name);
            for (column, kind) in [
                (&count, "int8[]"),
                (&sum, "float8[]"),
                (&min, "float8[]"),
                (&max, "float8[]"),
            ] {
                columns.push(quoted(column));
                types.push(kind.into());
                selects.push(format!("r.c{}", selects.len()));
            }
            updates.push(format!("{0} = t.{0} + excluded.{0}", quoted(&count)));
            updates.push(format!(
                "{0} = CASE WHEN t.{0} IS NULL THEN excluded.{0} WHEN excluded.{0} IS NULL THEN t.{0} ELSE t.{0} + excluded.{0} END",
                quoted(&sum)
            ));
            updates.push(format!("{0} = least(t.{0}, excluded.{0})", quoted(&min)));
            updates.push(format!("{0} = greatest(t.{0}, excluded.{0})", quoted(&max)));
        }
        let aliases: Vec<String> = (0..types.len()).map(|i| format!("c{i}")).collect();
        format!(
            "INSERT INTO {table} AS t ({columns}) SELECT {selects} FROM unnest({params}) AS r({aliases}) \
             ON CONFLICT (grain, bucket_start{dims}) DO UPDATE SET {updates}, updated_at = now()",
            table = self.table,
            columns = columns.join(", "),
            selects = selects.join(", "),
            params = params(&types),
            aliases = aliases.join(", "),
            dims = dims
                .iter()
                .map(|d| format!(", {}", quoted(&d.name)))
                .collect::<String>(),
            updates = updates.join(", "),
        )
    }

    /// Statements that also say what they changed, as the view reads each
    /// row, keyed by the row's bucket (grain and start, or window start) and
    /// group-by values, as a JSON array.
    fn output_sql(&self, fields: &[Field]) -> OutputSql {
        let dims = self.dimension_columns(fields);
        let mut key: Vec<String> = if self.window.is_some() {
            vec!["r.bucket_start".into()]
        } else {
            vec!["r.grain".into(), "r.bucket_start".into()]
        };
        key.extend(dims.iter().map(|d| format!("r.{}", quoted(&d.name))));
        let key = format!("json_build_array({})::text", key.join(", "));
        let returning = |statement: &str| {
            format!(
                "WITH changed AS ({statement} RETURNING *) SELECT {key}, row_to_json(v)::text \
                 FROM changed r CROSS JOIN LATERAL (SELECT {}) v",
                self.columns_sql
            )
        };
        OutputSql {
            upsert: returning(&self.upsert_sql),
            finalize: returning(&self.finalize_sql()),
        }
    }

    /// The view's columns, naming each declared measure: `count`, `avg_<field>`,
    /// `median_<field>`, … Sums, extremes and averages come from the rollup
    /// table; median and percentiles are read from the raw rows of the bucket
    /// (exact, `percentile_disc`: always a value that occurred).
    fn named_columns(&self, fields: &[Field], raw_table: &str, measures: &[Measure]) -> String {
        let dims = self.dimension_columns(fields);
        let mut selects = if self.window.is_some() {
            vec![
                "r.bucket_start AS window_start".to_string(),
                "r.bucket_end AS window_end".into(),
                "r.is_final".into(),
            ]
        } else {
            vec![
                "r.grain".to_string(),
                "r.bucket_start".into(),
                "r.bucket_end".into(),
            ]
        };
        selects.extend(dims.iter().map(|d| format!("r.{}", quoted(&d.name))));
        let same_group: String = dims
            .iter()
            .map(|d| format!(" AND s.{0} IS NOT DISTINCT FROM r.{0}", quoted(&d.name)))
            .collect();
        for measure in measures {
            let Some(field) = &measure.field else {
                selects.push("r.records AS count".into());
                continue;
            };
            let [count, sum, min, max] =
                measure_columns(field).map(|c| format!("r.{}", quoted(&c)));
            let percentile = |p: f64| {
                format!(
                    "(SELECT percentile_disc({p}) WITHIN GROUP (ORDER BY s.{f}) FROM {raw_table} s \
                     WHERE s._event_time >= r.bucket_start AND s._event_time < r.bucket_end{same_group})",
                    f = quoted(field)
                )
            };
            let expression = match measure.function {
                Aggregate::Count => continue,
                Aggregate::Sum => sum,
                Aggregate::Avg => format!("{sum} / nullif({count}, 0)"),
                Aggregate::Min => min,
                Aggregate::Max => max,
                Aggregate::Median => percentile(0.5),
                Aggregate::P90 => percentile(0.9),
                Aggregate::P95 => percentile(0.95),
                Aggregate::P99 => percentile(0.99),
            };
            selects.push(format!(
                "{expression} AS {}",
                quoted(&measure_name(measure))
            ));
        }
        // When the row last changed: orders copies of it, as in output topics.
        selects.push("r.updated_at".into());
        selects.join(", ")
    }

    /// The `n` groups of each window with the largest `by` measure (ties share a rank).
    fn top_view_sql(&self, n: usize, by: &str) -> String {
        format!(
            "CREATE OR REPLACE VIEW {0}_top AS SELECT * FROM (SELECT v.*, rank() OVER \
             (PARTITION BY v.window_start ORDER BY v.{1} DESC NULLS LAST) AS rank FROM {0}_view v) ranked \
             WHERE rank <= {n}",
            self.table,
            quoted(by)
        )
    }

    /// Marks the rows of windows the watermark (`$1`, epoch ms) has passed as final.
    pub(crate) fn finalize_sql(&self) -> String {
        format!(
            "UPDATE {} SET is_final = true, updated_at = now() \
             WHERE NOT is_final AND bucket_end <= to_timestamp($1 / 1000.0)",
            self.table
        )
    }

    async fn prepare(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        fields: &[Field],
    ) -> anyhow::Result<()> {
        let dims = self.dimension_columns(fields);
        let mut columns = vec![
            "grain text NOT NULL".to_string(),
            "bucket_start timestamptz NOT NULL".into(),
            "bucket_end timestamptz NOT NULL".into(),
        ];
        columns.extend(
            dims.iter()
                .map(|d| format!("{} {}", quoted(&d.name), sql_type(d.kind))),
        );
        columns.push("records bigint NOT NULL".into());
        for &m in &self.metrics {
            let [count, sum, min, max] = measure_columns(&fields[m].name);
            columns.push(format!("{} bigint NOT NULL", quoted(&count)));
            for c in [sum, min, max] {
                columns.push(format!("{} double precision", quoted(&c)));
            }
        }
        if self.window.is_some() {
            // False while the watermark has not passed bucket_end: the row may still change.
            columns.push("is_final boolean NOT NULL DEFAULT false".into());
        }
        columns.push("updated_at timestamptz NOT NULL DEFAULT now()".into());
        let mut key = vec!["grain".to_string(), "bucket_start".into()];
        key.extend(dims.iter().map(|d| quoted(&d.name)));
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, UNIQUE NULLS NOT DISTINCT ({}))",
            self.table,
            columns.join(", "),
            key.join(", ")
        ))
        .execute(&mut **tx)
        .await?;
        // A changed rollup needs a new name: its stored figures were for the old one.
        let existing: BTreeSet<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(&self.table)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
        let wanted: BTreeSet<String> = columns
            .iter()
            .map(|c| {
                c.split(' ')
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        anyhow::ensure!(
            existing == wanted,
            "rollup table {} holds other columns ({}) than its definition asks for ({}); \
             give the changed rollup a new name",
            self.table,
            existing.iter().cloned().collect::<Vec<_>>().join(", "),
            wanted.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for view in ["top", "view"] {
            sqlx::query(&format!("DROP VIEW IF EXISTS {}_{view}", self.table))
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(&self.view_sql).execute(&mut **tx).await?;
        if let Some(top) = &self.top_view_sql {
            sqlx::query(top).execute(&mut **tx).await?;
        }
        if self.window.is_some() {
            // Finalizing looks only at rows not final yet.
            sqlx::query(&format!(
                "CREATE INDEX IF NOT EXISTS {0}_open ON {0} (bucket_end) WHERE NOT is_final",
                self.table
            ))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> anyhow::Result<CustomStream> {
        let parsed = crate::definitions::parse_all(&[("t.toml".into(), text.into())])
            .map_err(anyhow::Error::new)?
            .remove(0);
        CustomStream::plan(&parsed)
    }

    use crate::definitions::tests::MINIMAL as ORDERS;

    #[test]
    fn a_definition_plans_its_tables() {
        let stream = plan(ORDERS).expect("planned");
        assert_eq!(stream.table, "stream_orders");
        assert_eq!(stream.rollups[0].table, "rollup_orders_per_store");
        assert_eq!(
            stream.rollups[0].grains,
            [("1m".to_string(), 60_000), ("1h".to_string(), 3_600_000)]
        );
        assert_eq!(stream.latency_key, Some(1));
        assert!(stream.rollups[0].view_sql.contains("AS \"sum_amount\""));
    }

    #[test]
    fn windows_and_joins_are_planned_and_what_they_cannot_do_is_refused_clearly() {
        let windowed = |measures: &str| {
            format!(
                "{ORDERS}\n[[windows]]\nname = \"w\"\nkind = \"hopping\"\nsize = \"2m\"\nslide = \"1m\"\nwatermark = \"1m\"\nmeasures = [{measures}]\n"
            )
        };
        let stream = plan(&windowed(
            r#"{ fn = "count" }, { fn = "max", field = "amount" }"#,
        ))
        .expect("windows are planned");
        let window = &stream.rollups[1];
        assert_eq!(window.table, "window_orders_w");
        assert_eq!(window.grains, [("w".to_string(), 120_000)]);
        assert_eq!(window.window.map(|w| w.slide_ms()), Some(60_000));
        assert!(window.view_sql.contains("AS \"max_amount\""));

        let error = plan(&windowed(r#"{ fn = "median", field = "amount" }"#))
            .expect_err("medians refused")
            .to_string();
        assert!(
            error.contains("median_amount is not kept for windows"),
            "{error}"
        );

        // A stream's own record would always be its match.
        let joined = format!(
            "{ORDERS}\n[[joins]]\nname = \"j\"\nstream = \"orders\"\non = \"store\"\nwait = \"1s\"\n"
        );
        let error = match plan(&joined) {
            Ok(_) => String::new(),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("cannot join itself"), "{error}");

        let clashing = ORDERS
            .replace(
                r#"{ name = "store", type = "string", role = "dimension" },"#,
                r#"{ name = "store", type = "string", role = "dimension" }, { name = "amount_sum", type = "string", role = "dimension" },"#,
            )
            .replace(r#"group_by = ["store"]"#, r#"group_by = ["store", "amount_sum"]"#);
        let error = plan(&clashing).expect_err("clash refused").to_string();
        assert!(error.contains("clashes"), "{error}");
    }
}
