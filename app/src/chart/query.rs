//! The query builder: a validated chart definition becomes one SQL statement
//! over its dataset. Table and column names come only from the dataset
//! catalog; every value a user typed is a bound parameter.

use super::dataset::{ColumnKind, Dataset};
use super::definition::{
    Aggregate, ChartDefinition, ChartType, FieldError, Filter, FilterOp, MAX_LIMIT, Scalar,
};
use super::rollup::Rollup;
use super::{Cell, ChartRows};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};

/// A value bound to the statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Texts(Vec<String>),
    Number(f64),
    Numbers(Vec<f64>),
    Int(i64),
}

/// How to read an output column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    /// Epoch milliseconds.
    Time,
    Text,
    Number,
}

/// One statement and its parameters, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartQuery {
    pub sql: String,
    params: Vec<Param>,
    columns: Vec<(String, Output)>,
}

/// A name from the catalog, quoted. The catalog's names are plain, but
/// quoting keeps even a surprising one an identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) struct Builder {
    params: Vec<Param>,
}

impl Builder {
    /// Binds `param`, returning its placeholder.
    pub(super) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }
}

/// Whether a chart that summaries of the readings can answer reads them (see
/// [`super::rollup`]) or every row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rollups {
    Use,
    Skip,
}

/// Checks `definition` against `datasets` and builds its statement as of
/// `now_ms` (for relative time ranges).
pub fn build(
    definition: &ChartDefinition,
    datasets: &[Dataset],
    now_ms: i64,
) -> Result<ChartQuery, Vec<FieldError>> {
    build_with(definition, datasets, now_ms, Rollups::Use)
}

/// [`build`], choosing whether to read rollups where they answer the chart.
pub fn build_with(
    definition: &ChartDefinition,
    datasets: &[Dataset],
    now_ms: i64,
    rollups: Rollups,
) -> Result<ChartQuery, Vec<FieldError>> {
    let errors = definition.validate(datasets);
    if !errors.is_empty() {
        return Err(errors);
    }
    let dataset = datasets
        .iter()
        .find(|d| d.name == definition.dataset)
        .expect("validated");
    let mut builder = Builder { params: Vec::new() };
    let rollup = (rollups == Rollups::Use)
        .then(|| Rollup::of(definition, dataset))
        .flatten();
    // A summary source applies the time range itself.
    let source = rollup
        .as_ref()
        .map(|r| r.source(&mut builder, definition.time_range.bounds(now_ms)));
    let conditions = where_clause(definition, dataset, &mut builder, now_ms, source.is_none());
    let query = if definition.chart_type == ChartType::Histogram {
        histogram(definition, dataset, &mut builder, &conditions, source)
    } else {
        let metrics = match rollup {
            Some(Rollup::Sensor { metrics, .. }) => Some(metrics),
            _ => None,
        };
        aggregate(
            definition,
            dataset,
            &mut builder,
            &conditions,
            source.zip(metrics),
        )
    };
    Ok(query)
}

fn where_clause(
    definition: &ChartDefinition,
    dataset: &Dataset,
    builder: &mut Builder,
    now_ms: i64,
    with_time_range: bool,
) -> String {
    let mut conditions = Vec::new();
    let bounds = definition
        .time_range
        .bounds(now_ms)
        .filter(|_| with_time_range);
    if let (Some(time), Some((from, to))) = (dataset.time_column(), bounds) {
        let column = ident(&time.name);
        let from = builder.bind(Param::Int(from));
        let to = builder.bind(Param::Int(to));
        conditions.push(format!(
            "{column} >= to_timestamp({from}::float8 / 1000) AND {column} < to_timestamp({to}::float8 / 1000)"
        ));
    }
    for filter in &definition.filters {
        let kind = dataset.column(&filter.column).expect("validated").kind;
        conditions.push(filter_sql(filter, kind, builder));
    }
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

fn filter_sql(filter: &Filter, kind: ColumnKind, builder: &mut Builder) -> String {
    let column = ident(&filter.column);
    let text = |value: &Scalar| match value {
        Scalar::Text(t) => t.clone(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Number(x) => x.to_string(),
    };
    let number = |value: &Scalar| match value {
        Scalar::Number(x) => *x,
        _ => f64::NAN,
    };
    // Each kind compares as text, as a number, or as epoch milliseconds.
    let (left, one, many) = match kind {
        ColumnKind::Dimension => (
            format!("{column}::text"),
            Param::Text(text(&filter.values[0])),
            Param::Texts(filter.values.iter().map(text).collect()),
        ),
        ColumnKind::Time => (
            format!("(date_part('epoch', {column}) * 1000)::float8"),
            Param::Number(number(&filter.values[0])),
            Param::Numbers(filter.values.iter().map(number).collect()),
        ),
        _ => (
            format!("{column}::float8"),
            Param::Number(number(&filter.values[0])),
            Param::Numbers(filter.values.iter().map(number).collect()),
        ),
    };
    let op = match filter.op {
        FilterOp::In => return format!("{left} = ANY({})", builder.bind(many)),
        FilterOp::Contains => return format!("strpos({left}, {}) > 0", builder.bind(one)),
        FilterOp::Eq => "=",
        FilterOp::Ne => "<>",
        FilterOp::Lt => "<",
        FilterOp::Le => "<=",
        FilterOp::Gt => ">",
        FilterOp::Ge => ">=",
    };
    format!("{left} {op} {}", builder.bind(one))
}

fn aggregate(
    definition: &ChartDefinition,
    dataset: &Dataset,
    builder: &mut Builder,
    conditions: &str,
    summary: Option<(String, Vec<&'static str>)>,
) -> ChartQuery {
    let mut select = Vec::new();
    let mut columns = Vec::new();
    if let (Some(grain), Some(time)) = (definition.time_grain, dataset.time_column()) {
        // date_part, not extract: extract gives numeric, and numeric
        // arithmetic on every row made bucketing 10M rows a third slower.
        select.push(format!(
            "(floor(date_part('epoch', {}) / {}) * {} * 1000)::int8 AS \"time\"",
            ident(&time.name),
            grain.seconds(),
            grain.seconds()
        ));
        columns.push(("time".to_string(), Output::Time));
    }
    for name in &definition.group_by {
        let kind = dataset.column(name).expect("validated").kind;
        let (cast, output) = match kind {
            ColumnKind::Latitude | ColumnKind::Longitude => ("float8", Output::Number),
            _ => ("text", Output::Text),
        };
        select.push(format!("{}::{cast} AS {}", ident(name), ident(name)));
        columns.push((name.clone(), output));
    }
    let groups = select.len();
    // With a summary, each metric has its expression over the summary's rows.
    let (source, summary_metrics) = match summary {
        Some((source, metrics)) => (source, Some(metrics)),
        None => (ident(&dataset.name), None),
    };
    for (i, metric) in definition.metrics.iter().enumerate() {
        let value = match (&summary_metrics, &metric.column, metric.aggregate) {
            (Some(expressions), _, _) => expressions[i].to_string(),
            (None, None, _) => "count(*)".to_string(),
            (None, Some(c), Aggregate::Count) => format!("count({})", ident(c)),
            (None, Some(c), Aggregate::CountDistinct) => format!("count(DISTINCT {})", ident(c)),
            (None, Some(c), aggregate) => {
                let time = dataset.column(c).map(|c| c.kind) == Some(ColumnKind::Time);
                let inner = format!("{}({})", aggregate.sql(), ident(c));
                if time {
                    format!("date_part('epoch', {inner}) * 1000")
                } else {
                    inner
                }
            }
        };
        let name = metric.output_name();
        select.push(format!("({value})::float8 AS {}", ident(&name)));
        columns.push((name, Output::Number));
    }
    let mut sql = format!("SELECT {} FROM {source}{conditions}", select.join(", "));
    let positions: Vec<String> = (1..=groups).map(|i| i.to_string()).collect();
    let positions = positions.join(", ");
    if groups > 0 {
        sql.push_str(&format!(" GROUP BY {positions}"));
    }
    let order = match &definition.sort {
        Some(sort) => {
            let direction = if sort.descending { "DESC" } else { "ASC" };
            // The time column, a group-by column or a metric: all outputs.
            format!("{} {direction} NULLS LAST", ident(&sort.by))
        }
        None if columns.first().is_some_and(|(_, o)| *o == Output::Time) => "\"time\"".into(),
        None => match definition.chart_type {
            ChartType::Bar | ChartType::StackedBar | ChartType::HorizontalBar => {
                format!("{} DESC NULLS LAST", ident(&columns[groups].0))
            }
            _ => "1".into(),
        },
    };
    sql.push_str(&format!(" ORDER BY {order}"));
    if groups > 0 {
        // Ties under the chosen order come back in the same order every time.
        sql.push_str(&format!(", {positions}"));
    }
    let limit = builder.bind(Param::Int(i64::from(definition.limit.unwrap_or(MAX_LIMIT))));
    sql.push_str(&format!(" LIMIT {limit}"));
    ChartQuery {
        sql,
        params: std::mem::take(&mut builder.params),
        columns,
    }
}

/// Equal-width buckets between the smallest and largest value in range.
/// A summary source's rows each stand for `n` readings of one value.
fn histogram(
    definition: &ChartDefinition,
    dataset: &Dataset,
    builder: &mut Builder,
    conditions: &str,
    summary: Option<String>,
) -> ChartQuery {
    let column = definition.metrics[0].column.as_deref().expect("validated");
    let bins = builder.bind(Param::Int(i64::from(
        definition.visual.bins.expect("validated"),
    )));
    let filter = if conditions.is_empty() {
        format!(" WHERE {} IS NOT NULL", ident(column))
    } else {
        format!("{conditions} AND {} IS NOT NULL", ident(column))
    };
    // `r` is materialized: inlined, the planner may re-run its aggregate
    // over `v` for every row of `v` when it misjudges v's size.
    let sql = format!(
        "WITH v AS (SELECT {c}::float8 AS x, {weight} AS n FROM {t}{filter}), \
              r AS MATERIALIZED (SELECT min(x) AS lo, max(x) AS hi FROM v) \
         SELECT r.lo + (b - 1) * (r.hi - r.lo) / {bins}::int AS bucket_start, \
                r.lo + b * (r.hi - r.lo) / {bins}::int AS bucket_end, \
                sum(n)::float8 AS count \
           FROM v, r, LATERAL (SELECT CASE WHEN r.hi = r.lo THEN 1 \
                   ELSE least(width_bucket(x, r.lo, r.hi, {bins}::int), {bins}::int) END AS b) w \
          GROUP BY b, r.lo, r.hi ORDER BY b",
        c = ident(column),
        weight = if summary.is_some() { "n" } else { "1" },
        t = summary.unwrap_or_else(|| ident(&dataset.name)),
    );
    ChartQuery {
        sql,
        params: std::mem::take(&mut builder.params),
        columns: vec![
            ("bucket_start".into(), Output::Number),
            ("bucket_end".into(), Output::Number),
            ("count".into(), Output::Number),
        ],
    }
}

fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    params: &'q [Param],
) -> Query<'q, Postgres, PgArguments> {
    for param in params {
        query = match param {
            Param::Text(t) => query.bind(t.as_str()),
            Param::Texts(t) => query.bind(t.as_slice()),
            Param::Number(x) => query.bind(*x),
            Param::Numbers(x) => query.bind(x.as_slice()),
            Param::Int(i) => query.bind(*i),
        };
    }
    query
}

impl Param {
    /// The parameter's type as sqlx sends it.
    fn sql_type(&self) -> &'static str {
        match self {
            Param::Text(_) => "text",
            Param::Texts(_) => "text[]",
            Param::Number(_) => "float8",
            Param::Numbers(_) => "float8[]",
            Param::Int(_) => "int8",
        }
    }

    /// The parameter as an SQL literal of its type.
    fn literal(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let array = |items: Vec<String>| quote(&format!("{{{}}}", items.join(",")));
        match self {
            Param::Text(t) => quote(t),
            Param::Texts(ts) => array(
                ts.iter()
                    .map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
                    .collect(),
            ),
            Param::Number(x) => format!("{x:?}"),
            Param::Numbers(xs) => array(xs.iter().map(|x| format!("{x:?}")).collect()),
            Param::Int(i) => i.to_string(),
        }
    }
}

impl ChartQuery {
    /// The statement as `PREPARE name(types) AS …` and the `EXECUTE` that
    /// runs it with this query's parameters as literals: the same statement,
    /// with the same parameter types, for a plain SQL client such as `psql`.
    pub fn prepared(&self, name: &str) -> (String, String) {
        let types: Vec<_> = self.params.iter().map(Param::sql_type).collect();
        let values: Vec<_> = self.params.iter().map(Param::literal).collect();
        let list = |items: Vec<String>| {
            if items.is_empty() {
                String::new()
            } else {
                format!("({})", items.join(", "))
            }
        };
        (
            format!(
                "PREPARE {name}{} AS {}",
                list(types.into_iter().map(String::from).collect()),
                self.sql
            ),
            format!("EXECUTE {name}{}", list(values)),
        )
    }

    /// Runs the statement and reads its rows.
    pub async fn run(&self, pool: &PgPool) -> Result<ChartRows, sqlx::Error> {
        let rows = bind_all(sqlx::query(&self.sql), &self.params)
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(self.columns.len());
            for (i, (_, output)) in self.columns.iter().enumerate() {
                cells.push(match output {
                    Output::Time => row
                        .try_get::<Option<i64>, _>(i)?
                        .map_or(Cell::Null, Cell::Time),
                    Output::Text => row
                        .try_get::<Option<String>, _>(i)?
                        .map_or(Cell::Null, Cell::Text),
                    Output::Number => row
                        .try_get::<Option<f64>, _>(i)?
                        .map_or(Cell::Null, Cell::Number),
                });
            }
            out.push(cells);
        }
        Ok(ChartRows {
            columns: self.columns.iter().map(|(name, _)| name.clone()).collect(),
            rows: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::dataset::builtin;

    fn temperatures() -> ChartDefinition {
        ChartDefinition {
            name: "Temperature".into(),
            ..ChartDefinition::starter()
        }
    }

    #[test]
    fn hostile_values_are_bound_never_written_into_the_statement() {
        let hostile = "x'); DROP TABLE charts; --";
        let mut definition = temperatures();
        definition.filters.push(Filter {
            column: "location".into(),
            op: FilterOp::Contains,
            values: vec![Scalar::Text(hostile.into())],
        });
        // As read from the readings: the range bound in ms, first.
        let query =
            build_with(&definition, &builtin(), 1_700_000_000_000, Rollups::Skip).expect("valid");
        assert!(!query.sql.contains("DROP"), "{}", query.sql);
        assert!(query.params.contains(&Param::Text(hostile.into())));
        assert_eq!(
            query.params[..2],
            [
                Param::Int(1_700_000_000_000 - 1_800_000),
                Param::Int(1_700_000_000_000)
            ]
        );
    }

    #[test]
    fn an_invalid_definition_builds_nothing() {
        let mut definition = temperatures();
        definition.group_by = vec!["location\"; DELETE FROM charts; --".into()];
        let errors = build(&definition, &builtin(), 0).expect_err("unknown column");
        assert_eq!(errors[0].field, "group_by[0]");
    }

    #[test]
    fn a_time_series_buckets_by_its_grain_and_orders_by_time() {
        let query = build(&temperatures(), &builtin(), 0).expect("valid");
        assert!(query.sql.contains("/ 60) * 60 * 1000"), "{}", query.sql);
        assert!(
            query
                .sql
                .contains("GROUP BY 1, 2 ORDER BY \"time\", 1, 2 LIMIT"),
            "{}",
            query.sql
        );
        let names: Vec<&str> = query.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["time", "location", "avg_temp"]);
    }

    #[test]
    fn the_prepared_form_keeps_the_statement_and_quotes_every_value() {
        let mut definition = temperatures();
        definition.filters.push(Filter {
            column: "location".into(),
            op: FilterOp::In,
            values: vec![
                Scalar::Text("O'Hare \"north\"".into()),
                Scalar::Text("back\\slash".into()),
            ],
        });
        let query =
            build_with(&definition, &builtin(), 1_700_000_000_000, Rollups::Skip).expect("valid");
        let (prepare, execute) = query.prepared("chart");
        assert_eq!(
            prepare,
            format!("PREPARE chart(int8, int8, text[], int8) AS {}", query.sql)
        );
        let from = 1_700_000_000_000i64 - 1_800_000;
        let expected = format!(
            r#"EXECUTE chart({from}, 1700000000000, '{{"O''Hare \"north\"","back\\slash"}}', "#
        );
        assert!(execute.starts_with(&expected), "{execute}");
    }
}
