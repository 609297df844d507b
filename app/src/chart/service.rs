//! Charts on demand: a saved or edited definition, shown with a page's
//! options, is queried, drawn and cached here. Server functions and the
//! download endpoints all come through this one place.

use super::cache::QueryCache;
use super::dataset::Dataset;
use super::definition::{ChartDefinition, ChartType, TimeGrain, TimeRange};
use super::query;
use super::render::{self, Kpi, RenderInput};
use super::view::{ChartView, ViewOptions, iso_time};
use super::{Cell, ChartRows};
use crate::announced::Announced;
use crate::duration_histogram::DurationHistogram;
use crate::error::{AppError, Result};
use sqlx::PgPool;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Settings an operator chooses.
#[derive(Debug, Clone)]
pub struct ChartSettings {
    /// The shortest refresh interval a dashboard may use, in seconds; also
    /// how long a drawn chart is reused.
    pub minimum_refresh: u32,
    /// A map tile template (`…/{z}/{x}/{y}.png`); no tiles when unset.
    pub tile_url: Option<String>,
}

impl Default for ChartSettings {
    fn default() -> Self {
        ChartSettings {
            minimum_refresh: 1,
            tile_url: None,
        }
    }
}

#[derive(Clone)]
pub struct ChartService {
    pub pool: PgPool,
    pub datasets: Arc<Vec<Dataset>>,
    pub settings: Arc<ChartSettings>,
    pub cache: Arc<QueryCache>,
    /// Saved definitions by chart id, kept as long as drawn charts are, so
    /// viewers of a dashboard do not each look up its charts.
    definitions: Arc<Announced<i64, ChartDefinition>>,
    max_age: Duration,
}

/// Saved definitions kept at most.
const MAX_DEFINITIONS: usize = 10_000;

/// Largest tile a page may ask for, in pixels.
const MAX_SIDE: u32 = 4_000;

impl ChartService {
    pub fn new(pool: PgPool, datasets: Vec<Dataset>, settings: ChartSettings) -> Self {
        let max_age = Duration::from_secs(u64::from(settings.minimum_refresh.max(1)));
        ChartService {
            pool,
            datasets: Arc::new(datasets),
            settings: Arc::new(settings),
            cache: Arc::new(QueryCache::new(max_age)),
            definitions: Arc::new(Announced::new(max_age, MAX_DEFINITIONS, |_| 1)),
            max_age,
        }
    }

    /// How long a drawn chart or saved definition is used at most.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// A chart was saved or deleted somewhere: read definitions anew.
    pub fn definitions_changed(&self) {
        self.definitions.changed();
    }

    /// A saved chart's definition; an edit shows within the cache's age, or
    /// as soon as it is announced ([`Self::definitions_changed`]).
    pub async fn saved(&self, id: i64) -> Result<ChartDefinition> {
        if let Some(definition) = self.definitions.get(&id) {
            return Ok(definition);
        }
        let generation = self.definitions.generation();
        let definition = super::store::get(&self.pool, id).await?.definition;
        self.definitions.keep(id, definition.clone(), generation);
        Ok(definition)
    }

    fn dataset(&self, name: &str) -> Result<&Dataset> {
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| AppError::NotFound(format!("dataset {name:?}")))
    }

    /// The definition as the page shows it: the page's range, and the page's
    /// filters on columns its dataset has.
    pub fn effective(
        &self,
        definition: &ChartDefinition,
        options: &ViewOptions,
    ) -> Result<(ChartDefinition, Vec<super::definition::Filter>)> {
        let dataset = self.dataset(&definition.dataset)?;
        let mut shown = definition.clone();
        if let Some(range) = options.time_range {
            shown.time_range = range;
        }
        let applied: Vec<_> = options
            .filters
            .iter()
            .filter(|f| dataset.column(&f.column).is_some())
            .cloned()
            .collect();
        shown.filters.extend(applied.iter().cloned());
        Ok((shown, applied))
    }

    /// The chart drawn, from the cache when another viewer just asked.
    pub async fn view(
        &self,
        definition: &ChartDefinition,
        options: &ViewOptions,
    ) -> Result<Arc<ChartView>> {
        if !(1..=MAX_SIDE).contains(&options.width) || !(1..=MAX_SIDE).contains(&options.height) {
            return Err(AppError::BadRequest(format!(
                "a chart is 1 to {MAX_SIDE} pixels wide and high"
            )));
        }
        let (shown, applied) = self.effective(definition, options)?;
        let errors = shown.validate(&self.datasets);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let key = serde_json::to_string(&(&shown, options.width, options.height))
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let streams = self.dataset(&shown.dataset)?.streams.clone();
        self.cache
            .get_or_compute(key, &streams, async {
                self.draw(&shown, applied, options).await.map(Arc::new)
            })
            .await
    }

    async fn draw(
        &self,
        shown: &ChartDefinition,
        filtered_by: Vec<super::definition::Filter>,
        options: &ViewOptions,
    ) -> Result<ChartView> {
        let now_ms = now_ms();
        let dataset = self.dataset(&shown.dataset)?.clone();
        let rows = self.rows_at(shown, now_ms).await?;
        let kpi = match shown.chart_type {
            ChartType::Kpi => Some(self.kpi(shown, &rows, now_ms).await?),
            _ => None,
        };
        let data_as_of_ms = newest_time(&rows).unwrap_or(now_ms);
        let mut view = ChartView {
            name: shown.name.clone(),
            chart_type: shown.chart_type,
            dataset: shown.dataset.clone(),
            svg: None,
            table: None,
            series: 0,
            points: rows.rows.len(),
            data_as_of_ms,
            filtered_by,
        };
        if shown.chart_type == ChartType::Table {
            view.table = Some(rows);
            return Ok(view);
        }
        let definition = shown.clone();
        let tile_url = self.settings.tile_url.clone();
        let size = (options.width, options.height);
        let started = Instant::now();
        let drawn = off_runtime(&shown.name, move || {
            render::render_svg(&RenderInput {
                definition: &definition,
                dataset: &dataset,
                rows: &rows,
                kpi: kpi.as_ref(),
                now_ms,
                size,
                tile_url: tile_url.as_deref(),
            })
        })
        .await?;
        part_times().render.observe(started.elapsed());
        view.svg = Some(drawn.svg);
        view.series = drawn.series;
        view.points = drawn.points;
        Ok(view)
    }

    /// The chart's rows as of now (what a CSV download holds).
    pub async fn rows(&self, shown: &ChartDefinition) -> Result<ChartRows> {
        self.rows_at(shown, now_ms()).await
    }

    async fn rows_at(&self, shown: &ChartDefinition, now_ms: i64) -> Result<ChartRows> {
        let query = query::build(shown, &self.datasets, now_ms).map_err(AppError::Invalid)?;
        let started = Instant::now();
        let rows = query.run(&self.pool).await?;
        part_times().query.observe(started.elapsed());
        Ok(rows)
    }

    /// A KPI's number, the same over the previous period of equal length,
    /// and its sparkline.
    async fn kpi(&self, shown: &ChartDefinition, rows: &ChartRows, now_ms: i64) -> Result<Kpi> {
        let metric = |rows: &ChartRows| match rows.rows.first().and_then(|r| r.last()) {
            Some(Cell::Number(x)) => Some(*x),
            _ => None,
        };
        let mut whole = shown.clone();
        whole.time_grain = None;
        whole.sort = None;
        let value = if shown.time_grain.is_none() {
            metric(rows)
        } else {
            metric(&self.rows_at(&whole, now_ms).await?)
        };
        let bounds = shown.time_range.bounds(now_ms);
        let previous = match bounds {
            Some((from, to)) if self.dataset(&shown.dataset)?.time_column().is_some() => {
                let mut before = whole.clone();
                before.time_range = TimeRange::Between {
                    from_ms: from - (to - from),
                    to_ms: from,
                };
                metric(&self.rows_at(&before, now_ms).await?)
            }
            _ => None,
        };
        let sparkline = if self.dataset(&shown.dataset)?.time_column().is_none() {
            Vec::new()
        } else {
            let mut series = whole;
            series.time_grain = Some(shown.time_grain.unwrap_or_else(|| grain_for(bounds)));
            series.limit = None;
            self.rows_at(&series, now_ms)
                .await?
                .rows
                .iter()
                .filter_map(|row| match (row.first(), row.last()) {
                    (Some(Cell::Time(t)), Some(Cell::Number(x))) => Some((*t, *x)),
                    _ => None,
                })
                .collect()
        };
        Ok(Kpi {
            value,
            previous,
            sparkline,
        })
    }

    /// The chart as SVG and PNG files, drawn fresh.
    pub async fn svg(&self, definition: &ChartDefinition, options: &ViewOptions) -> Result<String> {
        let view = self.view(definition, options).await?;
        view.svg
            .clone()
            .ok_or_else(|| AppError::BadRequest("a table has no picture; download its CSV".into()))
    }

    pub async fn png(
        &self,
        definition: &ChartDefinition,
        options: &ViewOptions,
    ) -> Result<Vec<u8>> {
        let svg = self.svg(definition, options).await?;
        off_runtime(&definition.name, move || render::svg_to_png(&svg)).await
    }
}

/// How long drawing charts took since the service started, part by part,
/// for `/metrics`: where a slow chart spends its time.
#[derive(Default)]
pub struct PartTimes {
    /// Each query in Postgres: taking a pooled connection, the statement,
    /// receiving and decoding its rows.
    pub query: DurationHistogram,
    /// Turning the rows into a picture, on a blocking thread.
    pub render: DurationHistogram,
}

pub fn part_times() -> &'static PartTimes {
    static TIMES: LazyLock<PartTimes> = LazyLock::new(PartTimes::default);
    &TIMES
}

/// Draws on a blocking thread, since drawing is CPU work that would stall
/// the async runtime; a failure is logged with the chart's name and shown
/// to the page as a chart that could not be drawn.
pub async fn off_runtime<T, E>(
    chart: &str,
    draw: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(draw).await {
        Ok(Ok(drawn)) => Ok(drawn),
        Ok(Err(error)) => {
            tracing::error!(%error, chart, "chart rendering failed");
            Err(AppError::ChartFailed)
        }
        Err(error) => {
            tracing::error!(%error, chart, "chart task failed");
            Err(AppError::ChartFailed)
        }
    }
}

/// The finest grain that keeps the range within sixty points.
fn grain_for(bounds: Option<(i64, i64)>) -> TimeGrain {
    let span_s = bounds.map_or(86_400, |(from, to)| (to - from) / 1000);
    TimeGrain::ALL
        .into_iter()
        .find(|g| span_s / g.seconds() <= 60)
        .unwrap_or(TimeGrain::Day)
}

fn newest_time(rows: &ChartRows) -> Option<i64> {
    rows.rows
        .iter()
        .flatten()
        .filter_map(|cell| match cell {
            Cell::Time(t) => Some(*t),
            _ => None,
        })
        .max()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The rows as CSV (RFC 4180): a header of column names, then one line per
/// row; times as ISO 8601 UTC.
pub fn csv(rows: &ChartRows) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>| {
        let quoted: Vec<String> = cells.iter().map(|c| quote(c)).collect();
        quoted.join(",") + "\r\n"
    };
    out.push_str(&line(rows.columns.clone()));
    for row in &rows.rows {
        out.push_str(&line(row.iter().map(cell_text).collect()));
    }
    out
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Time(ms) => iso_time(*ms),
        Cell::Text(t) => t.clone(),
        Cell::Number(x) => x.to_string(),
    }
}

fn quote(text: &str) -> String {
    // A leading = + - @ would make a spreadsheet evaluate the cell.
    let formula = text.starts_with(['=', '+', '@'])
        || (text.starts_with('-') && text.parse::<f64>().is_err());
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let rows = ChartRows {
            columns: vec!["time".into(), "location".into(), "avg_temp".into()],
            rows: vec![
                vec![
                    Cell::Time(1_583_292_719_000),
                    Cell::Text("Lab, \"east\"".into()),
                    Cell::Number(71.25),
                ],
                vec![Cell::Null, Cell::Text("=cmd()".into()), Cell::Number(-3.5)],
            ],
        };
        assert_eq!(
            csv(&rows),
            "time,location,avg_temp\r\n\
             2020-03-04T03:31:59.000Z,\"Lab, \"\"east\"\"\",71.25\r\n\
             ,'=cmd(),-3.5\r\n"
        );
    }

    #[test]
    fn a_sparkline_has_at_most_sixty_points() {
        assert_eq!(grain_for(Some((0, 300_000))), TimeGrain::TenSeconds);
        assert_eq!(grain_for(Some((0, 3_600_000))), TimeGrain::Minute);
        assert_eq!(grain_for(Some((0, 86_400_000))), TimeGrain::Hour);
        assert_eq!(grain_for(None), TimeGrain::Hour);
    }
}
