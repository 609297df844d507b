//! Server-side chart rendering. Every chart type but tables becomes one
//! self-contained SVG: scalable through its `viewBox`, exact values in
//! `<title>` tooltips, every text that comes from data escaped. Lines,
//! areas, bars and histograms are plotted with plotters (see `plot`); KPIs
//! and maps have their own modules. `svg_to_png` rasterizes any of them for
//! exports.

use super::dataset::{ColumnKind, Dataset};
use super::definition::{ChartDefinition, ChartType};
use super::svg::{self, LABEL_SIZE, Palette, SEP};
use super::{Cell, ChartRows, bars, histogram, kpi, map, plot, timeseries};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// One line of a time-series chart: `(epoch seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no font available for chart labels: {0}")]
    Font(String),
    #[error("{0:?} charts are shown as HTML, not drawn")]
    Unsupported(ChartType),
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("the rows do not fit the chart: {0}")]
    Shape(String),
    #[error("rasterizing the chart failed: {0}")]
    Png(String),
}

pub type Result<T, E = RenderError> = std::result::Result<T, E>;

/// What a KPI shows; the caller runs the current period, the previous
/// period of equal length, and the sparkline's buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kpi {
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// `(epoch ms, value)`.
    pub sparkline: Vec<(i64, f64)>,
}

/// Everything one chart is drawn from.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    pub definition: &'a ChartDefinition,
    /// Tells which group-by columns are positions or dimensions, and which
    /// metric columns are times.
    pub dataset: &'a Dataset,
    pub rows: &'a ChartRows,
    /// `Some` for KPIs.
    pub kpi: Option<&'a Kpi>,
    /// Epoch ms, for map staleness.
    pub now_ms: i64,
    /// Pixels; kept within 120×80 to 4096×4096.
    pub size: (u32, u32),
    /// Maps only: a tile template such as `https://tiles.example/{z}/{x}/{y}.png`.
    pub tile_url: Option<&'a str>,
}

/// A drawn chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub svg: String,
    /// Lines, bar series, 1 for a map's markers or a KPI; 0 when empty.
    pub series: usize,
    /// Points, bars, buckets or markers drawn.
    pub points: usize,
}

/// Draws any chart type but tables (those are HTML in the page).
pub fn render_svg(input: &RenderInput) -> Result<Rendered> {
    let size = svg::clamp_size(input.size);
    match input.definition.chart_type {
        ChartType::Line | ChartType::Area => timeseries::render(input, size),
        ChartType::Bar | ChartType::StackedBar | ChartType::HorizontalBar => {
            bars::render(input, size)
        }
        ChartType::Histogram => histogram::render(input, size),
        ChartType::Kpi => Ok(kpi::render(input, size)),
        ChartType::Map => Ok(map::render(input, size)),
        ChartType::Table => Err(RenderError::Unsupported(ChartType::Table)),
    }
}

// ------------------------------------------------------------------ rows

/// A group-by column of the rows.
#[derive(Debug, Clone)]
pub(crate) struct GroupColumn {
    pub name: String,
    pub index: usize,
    pub kind: ColumnKind,
}

/// A metric column of the rows.
#[derive(Debug, Clone)]
pub(crate) struct MetricColumn {
    pub name: String,
    pub index: usize,
    /// Holds epoch ms (`max_recorded`), not a quantity.
    pub time: bool,
}

/// Where each part of an aggregate chart's rows is, found by name so a
/// column the query left out is simply absent.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    pub time: Option<usize>,
    pub groups: Vec<GroupColumn>,
    pub metrics: Vec<MetricColumn>,
}

impl Columns {
    pub fn of(input: &RenderInput) -> Columns {
        let columns = &input.rows.columns;
        let position = |name: &str| columns.iter().position(|c| c == name);
        let time = input
            .definition
            .time_grain
            .and_then(|_| position("time"))
            .filter(|&i| i == 0);
        let groups = input
            .definition
            .group_by
            .iter()
            .filter_map(|name| {
                let index = position(name).filter(|&i| Some(i) != time)?;
                let kind = input
                    .dataset
                    .column(name)
                    .map_or(ColumnKind::Dimension, |c| c.kind);
                Some(GroupColumn {
                    name: name.clone(),
                    index,
                    kind,
                })
            })
            .collect();
        let metrics = input
            .definition
            .metrics
            .iter()
            .filter_map(|metric| {
                let name = metric.output_name();
                let index = position(&name)?;
                let time = metric
                    .column
                    .as_deref()
                    .and_then(|c| input.dataset.column(c))
                    .is_some_and(|c| c.kind == ColumnKind::Time);
                Some(MetricColumn { name, index, time })
            })
            .collect();
        Columns {
            time,
            groups,
            metrics,
        }
    }
}

/// What a group shows when its value is missing.
pub(crate) const EMPTY_GROUP: &str = "(empty)";

/// A finite number in a cell (times as epoch ms).
pub(crate) fn number(cell: Option<&Cell>) -> Option<f64> {
    match cell? {
        Cell::Number(x) if x.is_finite() => Some(*x),
        Cell::Time(ms) => Some(*ms as f64),
        _ => None,
    }
}

/// An instant in a cell, as epoch ms.
pub(crate) fn instant(cell: Option<&Cell>) -> Option<i64> {
    match cell? {
        Cell::Time(ms) => Some(*ms),
        Cell::Number(x) if x.is_finite() && x.abs() < 9e15 => Some(x.round() as i64),
        _ => None,
    }
}

/// A cell as a group's name.
pub(crate) fn group_text(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell::Text(t)) => t.clone(),
        Some(Cell::Number(x)) => svg::exact(*x),
        Some(Cell::Time(ms)) => svg::utc_datetime(*ms),
        Some(Cell::Null) | None => EMPTY_GROUP.into(),
    }
}

/// The label of one series: its group values, and the metric's name when a
/// chart shows several metrics (or no groups).
pub(crate) fn series_label(groups: &[String], metric: &str, metrics: usize) -> String {
    match (groups.is_empty(), metrics > 1) {
        (true, _) => metric.to_string(),
        (false, false) => groups.join(SEP),
        (false, true) => format!("{}{SEP}{metric}", groups.join(SEP)),
    }
}

/// Indexes of distinct keys in first-seen order.
#[derive(Default)]
pub(crate) struct Interner {
    pub keys: Vec<String>,
    index: HashMap<String, usize>,
}

impl Interner {
    pub fn get(&mut self, key: String) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.keys.push(key.clone());
        self.index.insert(key, self.keys.len() - 1);
        self.keys.len() - 1
    }
}

// ------------------------------------------------------------------ looks

/// What a chart's definition says about how it looks.
pub(crate) struct Look<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    /// Title of the value axis, with the unit.
    pub value_title: Option<String>,
    pub unit: Option<&'a str>,
    pub thresholds: Vec<f64>,
    pub palette: Palette,
}

impl<'a> Look<'a> {
    pub fn of(
        definition: &'a ChartDefinition,
        kind: &'static str,
        fallback: Option<&str>,
    ) -> Look<'a> {
        let visual = &definition.visual;
        let unit = visual.unit.as_deref().filter(|u| !u.trim().is_empty());
        Look {
            name: &definition.name,
            kind,
            value_title: axis_title(visual.y_label.as_deref().or(fallback), unit),
            unit,
            thresholds: visual
                .thresholds
                .iter()
                .copied()
                .filter(|t| t.is_finite())
                .collect(),
            palette: Palette::new(&visual.colors),
        }
    }
}

/// `label (unit)`, the unit alone, or the label alone.
pub(crate) fn axis_title(label: Option<&str>, unit: Option<&str>) -> Option<String> {
    let label = label.map(str::trim).filter(|l| !l.is_empty());
    match (label, unit) {
        (Some(label), Some(unit)) if !label.contains(unit) => Some(format!("{label} ({unit})")),
        (Some(label), _) => Some(label.to_string()),
        (None, unit) => unit.map(str::to_string),
    }
}

/// The one metric's name, when a chart has exactly one.
pub(crate) fn sole_metric(columns: &Columns) -> Option<&str> {
    match columns.metrics.as_slice() {
        [only] => Some(&only.name),
        _ => None,
    }
}

/// `<min, max>` of finite values, `None` when there are none.
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Ticks for the values, the thresholds and (for bars and areas) zero.
pub(crate) fn value_ticks(
    values: Option<(f64, f64)>,
    look: &Look,
    zero: bool,
    length: f64,
) -> svg::Ticks {
    let (mut lo, mut hi) = values.unwrap_or((0.0, 1.0));
    for &t in &look.thresholds {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let target = (length / 45.0).clamp(2.0, 8.0) as usize;
    svg::nice_ticks(lo, hi, target)
}

pub(crate) fn widest(labels: impl IntoIterator<Item = String>) -> f64 {
    labels
        .into_iter()
        .map(|l| svg::text_width(&l, LABEL_SIZE))
        .fold(0.0, f64::max)
}

/// Room left of the plot for value tick labels (right-aligned two tick
/// lengths from the axis) and the axis title.
pub(crate) fn left_margin(ticks: &svg::Ticks, title: Option<&str>) -> f64 {
    let labels = ticks.values.iter().map(|&v| svg::tick_label(v, ticks.step));
    widest(labels) + 2.0 * plot::TICK + if title.is_some() { 20.0 } else { 4.0 }
}

pub(crate) fn legend_entries(labels: &[String], palette: &Palette) -> Vec<(String, String)> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), palette.get(i).to_string()))
        .collect()
}

// ------------------------------------------------------------------ fonts

/// Fonts searched when `PULSEBOARD_CHART_FONT` is not set (Debian's fonts-dejavu-core).
const DEFAULT_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Series lines are the only strokes this wide, so a page (and its tests) can find them.
pub const SERIES_STROKE_WIDTH: u32 = 2;

type FontDatabase = Arc<resvg::usvg::fontdb::Database>;

/// The label font, loaded once per process: registered with plotters
/// (which measures and names text with it) and put in the font database of
/// PNG exports (with its bold face beside it, when there is one), where it
/// also answers for `sans-serif`. Returns that database and the font's
/// family name.
fn font_database() -> Result<(FontDatabase, String)> {
    static DATABASE: OnceLock<Result<(FontDatabase, String), String>> = OnceLock::new();
    DATABASE
        .get_or_init(|| {
            let configured = std::env::var("PULSEBOARD_CHART_FONT").ok();
            let candidates: Vec<&str> = match configured.as_deref() {
                Some(path) => vec![path],
                None => DEFAULT_FONT_PATHS.to_vec(),
            };
            let (path, bytes) = candidates
                .iter()
                .find_map(|path| std::fs::read(path).ok().map(|bytes| (*path, bytes)))
                .ok_or_else(|| {
                    format!(
                        "none of {candidates:?} is readable; install fonts-dejavu-core \
                         or set PULSEBOARD_CHART_FONT to a TTF file"
                    )
                })?;
            // plotters keeps its fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(plot::FAMILY, plotters::style::FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a usable font"))?;
            let mut database = resvg::usvg::fontdb::Database::new();
            database.load_font_source(resvg::usvg::fontdb::Source::Binary(Arc::new(bytes)));
            let family = database
                .faces()
                .next()
                .and_then(|face| face.families.first())
                .map(|(name, _)| name.clone())
                .ok_or_else(|| format!("{path} is not a usable font"))?;
            // Titles and the KPI number are bold; without the face they
            // fall back to the regular one.
            if let Some(bold) = path
                .strip_suffix(".ttf")
                .map(|stem| format!("{stem}-Bold.ttf"))
                && let Ok(bytes) = std::fs::read(bold)
            {
                database.load_font_data(bytes);
            }
            database.set_sans_serif_family(family.clone());
            Ok((Arc::new(database), family))
        })
        .clone()
        .map_err(RenderError::Font)
}

/// Loads the label font once per process, so a missing font stops the
/// server at start rather than failing charts (plotters cannot lay out
/// text without it) or blanking PNG labels later.
pub fn ensure_font() -> Result<()> {
    font_database().map(|_| ())
}

// -------------------------------------------------------------------- png

/// Rasterizes an SVG to a PNG of its own size on white, labels in the chart
/// font. Images (map tiles) are left out: nothing is fetched.
pub fn svg_to_png(svg_text: &str) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let (fontdb, family) = font_database()?;
    let mut options = usvg::Options {
        fontdb,
        font_family: family,
        ..usvg::Options::default()
    };
    options.image_href_resolver = usvg::ImageHrefResolver {
        resolve_data: Box::new(|_, _, _| None),
        resolve_string: Box::new(|_, _| None),
    };
    let tree =
        usvg::Tree::from_str(svg_text, &options).map_err(|e| RenderError::Png(e.to_string()))?;
    let size = tree.size().to_int_size();
    let (w, h) = (size.width(), size.height());
    if u64::from(w) * u64::from(h) > 4096 * 4096 {
        return Err(RenderError::Png(format!("{w}×{h} is too large")));
    }
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| RenderError::Png(format!("cannot allocate {w}×{h}")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| RenderError::Png(e.to_string()))
}

// ------------------------------------------------------ temperature chart

/// Draws a multi-series line chart with a legend and a time axis in UTC.
pub fn line_chart_svg(
    title: &str,
    y_label: &str,
    series: &[Series],
    size: (u32, u32),
) -> Result<String> {
    let look = Look {
        name: title,
        kind: "line",
        value_title: axis_title(Some(y_label), None),
        unit: None,
        thresholds: Vec::new(),
        palette: Palette::new(&[]),
    };
    let lines = series
        .iter()
        .map(|s| timeseries::Line {
            label: s.label.clone(),
            points: s
                .points
                .iter()
                .map(|&(t, v)| (t.saturating_mul(1000), v))
                .collect(),
        })
        .collect();
    let chart = timeseries::draw(&look, lines, false, None, svg::clamp_size(size))?;
    Ok(chart.svg)
}

/// `HH:MM:SS` in UTC for an epoch second.
pub fn clock_time(epoch_seconds: i64) -> String {
    svg::utc_clock(epoch_seconds.saturating_mul(1000))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chart::dataset::builtin;
    use crate::chart::definition::{Aggregate, Metric, TimeGrain, TimeRange, Visual};

    pub fn metric(aggregate: Aggregate, column: Option<&str>) -> Metric {
        Metric {
            aggregate,
            column: column.map(str::to_string),
        }
    }

    pub fn definition(
        chart_type: ChartType,
        dataset: &str,
        metrics: Vec<Metric>,
        group_by: &[&str],
        time_grain: Option<TimeGrain>,
    ) -> ChartDefinition {
        ChartDefinition {
            name: "Test chart".into(),
            dataset: dataset.into(),
            chart_type,
            metrics,
            group_by: group_by.iter().map(|g| g.to_string()).collect(),
            time_grain,
            time_range: TimeRange::default(),
            filters: vec![],
            sort: None,
            limit: None,
            visual: Visual::default(),
            refresh_seconds: None,
        }
    }

    /// The sensor map as the Sensors dashboard draws it.
    pub fn sensors_map() -> ChartDefinition {
        definition(
            ChartType::Map,
            "sensor_msg_detail",
            vec![
                metric(Aggregate::Avg, Some("temp")),
                metric(Aggregate::Count, None),
                metric(Aggregate::Max, Some("recorded")),
            ],
            &["guid", "location", "lat", "long"],
            None,
        )
    }

    pub fn dataset(name: &str) -> Dataset {
        builtin()
            .into_iter()
            .find(|d| d.name == name)
            .expect("builtin dataset")
    }

    pub fn rows(columns: &[&str], rows: Vec<Vec<Cell>>) -> ChartRows {
        ChartRows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    pub fn text(t: &str) -> Cell {
        Cell::Text(t.into())
    }

    pub fn render(definition: &ChartDefinition, rows: &ChartRows) -> Rendered {
        let dataset = dataset(&definition.dataset);
        render_svg(&RenderInput {
            definition,
            dataset: &dataset,
            rows,
            kpi: None,
            now_ms: 0,
            size: (640, 360),
            tile_url: None,
        })
        .expect("renders")
    }

    /// The opening tags of `element`s whose class list has `class`, each with
    /// what follows up to the next tag of that element.
    pub fn elements<'s>(svg: &'s str, element: &str, class: &str) -> Vec<&'s str> {
        let open = format!("<{element} ");
        svg.split(&open)
            .skip(1)
            .filter(|e| attr(e, "class").is_some_and(|c| c.split(' ').any(|part| part == class)))
            .collect()
    }

    /// The value of `name="..."` in an element's text.
    pub fn attr<'s>(element: &'s str, name: &str) -> Option<&'s str> {
        let tag_end = element.find('>').unwrap_or(element.len());
        let tag = &element[..tag_end];
        let key = format!(" {name}=\"");
        let start = if tag.starts_with(&key[1..]) {
            key.len() - 1
        } else {
            tag.find(&key)? + key.len()
        };
        let len = tag[start..].find('"')?;
        Some(&tag[start..start + len])
    }

    pub fn number_attr(element: &str, name: &str) -> f64 {
        attr(element, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {element}"))
    }

    /// Parses as XML, as the PNG export and the browser's XML mode do.
    pub fn assert_well_formed(svg: &str) {
        if let Err(error) = resvg::usvg::roxmltree::Document::parse(svg) {
            panic!("{error}: {svg}");
        }
    }

    /// The series lines: the only polylines of `SERIES_STROKE_WIDTH`.
    pub fn line_elements(svg: &str) -> Vec<&str> {
        let width = SERIES_STROKE_WIDTH.to_string();
        svg.split("<polyline ")
            .skip(1)
            .filter(|e| attr(e, "stroke-width") == Some(width.as_str()))
            .collect()
    }

    /// The `(x, y)` vertices of a `<polyline>`.
    pub fn vertices(polyline: &str) -> Vec<(f64, f64)> {
        attr(polyline, "points")
            .unwrap_or_default()
            .split_whitespace()
            .map(|xy| {
                let (x, y) = xy.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    /// The content of every `<text>`, in document order.
    pub fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|e| Some(&e[e.find('>')? + 1..e.find("</text>")?]))
            .collect()
    }

    /// The opening tag of the `<text>` that reads `content`.
    pub fn text_element<'s>(svg: &'s str, content: &str) -> &'s str {
        svg.split("<text ")
            .skip(1)
            .find(|e| e.contains(&format!(">{content}</text>")))
            .unwrap_or_else(|| panic!("no text {content:?} in {svg}"))
    }

    const T0: i64 = 1_764_158_400_000; // 2025-11-26 12:00:00 UTC

    fn temperatures() -> (ChartDefinition, ChartRows) {
        let mut definition = definition(
            ChartType::Line,
            "sensor_msg_detail",
            vec![metric(Aggregate::Avg, Some("temp"))],
            &["location"],
            Some(TimeGrain::Minute),
        );
        definition.visual.unit = Some("°F".into());
        let mut data = Vec::new();
        for minute in 0..3 {
            let t = Cell::Time(T0 + minute * 60_000);
            data.push(vec![
                t.clone(),
                text("Lab #2203"),
                Cell::Number(70.0 + minute as f64 * 1.25),
            ]);
            data.push(vec![t, text("Zone 2"), Cell::Number(80.5)]);
        }
        (definition, rows(&["time", "location", "avg_temp"], data))
    }

    #[test]
    fn a_line_chart_draws_one_line_per_group_with_a_legend() {
        let (definition, data) = temperatures();
        let chart = render(&definition, &data);
        assert_eq!((chart.series, chart.points), (2, 6));
        assert_eq!(line_elements(&chart.svg).len(), 2);
        assert_eq!(elements(&chart.svg, "g", "legend-item").len(), 2);
        assert_eq!(
            elements(&chart.svg, "rect", "instant").len(),
            3,
            "one per minute"
        );
        assert!(texts(&chart.svg).contains(&"Lab #2203"), "in the legend");
        assert!(chart.svg.contains("avg_temp (°F)"), "value axis title");
        assert_well_formed(&chart.svg);
    }

    #[test]
    fn an_instant_s_tooltip_carries_its_time_and_every_series_exact_value() {
        let (definition, mut data) = temperatures();
        // Zone 2 has no reading in the last minute.
        data.rows.pop();
        let chart = render(&definition, &data);
        let tips: Vec<&str> = elements(&chart.svg, "rect", "instant")
            .into_iter()
            .map(|strip| {
                &strip[strip.find("<title>").expect("a tooltip") + 7
                    ..strip.find("</title>").expect("closed")]
            })
            .collect();
        assert_eq!(
            tips,
            [
                "12:00:00 UTC\nLab #2203: 70 °F\nZone 2: 80.5 °F",
                "12:01:00 UTC\nLab #2203: 71.25 °F\nZone 2: 80.5 °F",
                "12:02:00 UTC\nLab #2203: 72.5 °F",
            ],
            "{}",
            chart.svg
        );
    }

    #[test]
    fn sparse_lines_have_a_dot_on_each_point_and_dense_ones_none() {
        let (definition, data) = temperatures();
        let svg = render(&definition, &data).svg;
        let groups = elements(&svg, "g", "dots");
        assert_eq!(groups.len(), 2, "one group of dots per series");
        assert_eq!(attr(groups[0], "fill"), Some("#1f77b4"), "in its colour");
        let centre = |e: &str| (number_attr(e, "cx"), number_attr(e, "cy"));
        let dots: Vec<_> = svg
            .split(r#"<g class="dots""#)
            .skip(1)
            .flat_map(|group| {
                group[..group.find("</g>").expect("closed")]
                    .split("<circle ")
                    .skip(1)
            })
            .map(centre)
            .collect();
        let vertices: Vec<(f64, f64)> = line_elements(&svg)
            .iter()
            .flat_map(|l| vertices(l))
            .collect();
        assert_eq!(dots, vertices, "a dot on each point of each line");

        let dense: Vec<Vec<Cell>> = (0..500)
            .map(|m| {
                vec![
                    Cell::Time(T0 + m * 60_000),
                    text("Lab #2203"),
                    Cell::Number(70.0),
                ]
            })
            .collect();
        let svg = render(&definition, &rows(&["time", "location", "avg_temp"], dense)).svg;
        assert!(elements(&svg, "g", "dots").is_empty());
        assert_eq!(
            elements(&svg, "rect", "instant").len(),
            500,
            "each still hoverable"
        );
    }

    #[test]
    fn hover_targets_sit_on_the_drawn_marks() {
        let (definition, data) = temperatures();
        let chart = render(&definition, &data);
        let lines = line_elements(&chart.svg);
        let xs: Vec<f64> = vertices(lines[0]).into_iter().map(|(x, _)| x).collect();
        let strips = elements(&chart.svg, "rect", "instant");
        assert_eq!(strips.len(), xs.len());
        // The first and last instants sit on the plot's edges, where the
        // strips start and end.
        let mut edge = xs[0];
        for (strip, x) in strips.iter().zip(&xs) {
            let (left, width) = (number_attr(strip, "x"), number_attr(strip, "width"));
            assert_eq!(left, edge, "strips meet, without gaps or overlaps");
            assert!(left <= *x && *x <= left + width, "{x} is inside {strip}");
            edge = left + width;
        }
        let last = xs[xs.len() - 1];
        assert!(
            (last..=last + 1.0).contains(&edge),
            "the last ends past its pixel: {edge}"
        );
        let crosshairs: Vec<f64> = elements(&chart.svg, "line", "crosshair")
            .iter()
            .map(|line| number_attr(line, "x1"))
            .collect();
        assert_eq!(crosshairs, xs, "each strip marks its instant");

        let dense: Vec<Vec<Cell>> = (0..10_000)
            .map(|s| vec![Cell::Time(T0 + s * 1_000), text("Lab"), Cell::Number(70.0)])
            .collect();
        let svg = render(&definition, &rows(&["time", "location", "avg_temp"], dense)).svg;
        let strips = elements(&svg, "rect", "instant");
        assert!(
            strips.len() < 1_000,
            "a strip per pixel column: {}",
            strips.len()
        );
        assert!(
            strips[0].contains("… and "),
            "a column's instants past eight are counted"
        );
        let listed: usize = strips
            .iter()
            .map(|strip| {
                let shown = strip.matches("\nLab: 70").count();
                let more = strip.split("… and ").nth(1).map_or(0, |rest| {
                    rest.split(' ').next().expect("n").parse().expect("a count")
                });
                shown + more
            })
            .sum();
        assert_eq!(listed, 10_000, "every instant is shown or counted");

        let definition = sales(ChartType::StackedBar, &["product_name", "product_size"]);
        let svg = render(&definition, &sales_by_product_and_size()).svg;
        let (start, end) = (
            svg.find(r#"<g class="plot">"#),
            svg.find(r#"<g class="hover">"#),
        );
        let plot = &svg[start.expect("plot")..end.expect("hover targets")];
        let corners = |rect: &str| ["x", "y", "width", "height"].map(|a| number_attr(rect, a));
        let drawn: Vec<[f64; 4]> = plot.split("<rect ").skip(1).map(corners).collect();
        let bars = elements(&svg, "rect", "bar");
        assert_eq!(bars.len(), 6);
        for bar in bars {
            assert_eq!(attr(bar, "fill-opacity"), Some("0"), "only a target");
            assert!(
                drawn.contains(&corners(bar)),
                "{bar} is not over a drawn bar"
            );
        }
    }

    #[test]
    fn several_metrics_name_the_metric_in_each_series() {
        let (mut definition, _) = temperatures();
        definition
            .metrics
            .push(metric(Aggregate::Max, Some("temp")));
        let data = rows(
            &["time", "location", "avg_temp", "max_temp"],
            vec![vec![
                Cell::Time(T0),
                text("Lab"),
                Cell::Number(1.0),
                Cell::Number(2.0),
            ]],
        );
        let chart = render(&definition, &data);
        assert_eq!(chart.series, 2);
        assert!(
            chart
                .svg
                .contains("Lab · avg_temp: 1 °F\nLab · max_temp: 2 °F</title>"),
            "{}",
            chart.svg
        );
    }

    #[test]
    fn an_area_chart_fills_under_each_line() {
        let (mut definition, data) = temperatures();
        definition.chart_type = ChartType::Area;
        let chart = render(&definition, &data);
        assert_eq!(elements(&chart.svg, "polygon", "area").len(), 2);
        assert_eq!(line_elements(&chart.svg).len(), 2);
    }

    #[test]
    fn custom_colours_replace_the_palette_in_order() {
        let (mut definition, data) = temperatures();
        definition.visual.colors = vec!["#123456".into()];
        let chart = render(&definition, &data);
        let lines = line_elements(&chart.svg);
        let stroke = |line| attr(line, "stroke").map(str::to_ascii_lowercase);
        assert_eq!(stroke(lines[0]).as_deref(), Some("#123456"));
        assert_eq!(stroke(lines[1]).as_deref(), Some("#ff7f0e"));
    }

    fn sales(chart_type: ChartType, group_by: &[&str]) -> ChartDefinition {
        definition(
            chart_type,
            "purchases_enriched",
            vec![metric(Aggregate::Sum, Some("total_purchase"))],
            group_by,
            None,
        )
    }

    fn sales_by_product_and_size() -> ChartRows {
        let mut data = Vec::new();
        for (product, base) in [("Espresso", 30.0), ("Latte", 20.0), ("Mocha", 10.0)] {
            data.push(vec![text(product), text("Small"), Cell::Number(base)]);
            data.push(vec![text(product), text("Large"), Cell::Number(base + 5.0)]);
        }
        rows(
            &["product_name", "product_size", "sum_total_purchase"],
            data,
        )
    }

    #[test]
    fn grouped_bars_draw_a_bar_per_category_and_series() {
        let definition = sales(ChartType::Bar, &["product_name", "product_size"]);
        let chart = render(&definition, &sales_by_product_and_size());
        let bars = elements(&chart.svg, "rect", "bar");
        assert_eq!((bars.len(), chart.series, chart.points), (6, 2, 6));
        assert_eq!(elements(&chart.svg, "g", "legend-item").len(), 2);
        let products = ["Espresso", "Latte", "Mocha"];
        let labels = texts(&chart.svg);
        assert_eq!(labels.iter().filter(|t| products.contains(t)).count(), 3);
        assert!(chart.svg.contains("<title>Latte · Large · 25</title>"));
        // Side by side: the two bars of one category do not overlap.
        let espresso: Vec<&&str> = bars
            .iter()
            .filter(|b| attr(b, "data-category") == Some("Espresso"))
            .collect();
        let end = number_attr(espresso[0], "x") + number_attr(espresso[0], "width");
        assert!(end <= number_attr(espresso[1], "x"));
    }

    #[test]
    fn one_series_has_no_legend() {
        let definition = sales(ChartType::Bar, &["product_name"]);
        let data = rows(
            &["product_name", "sum_total_purchase"],
            vec![vec![text("Espresso"), Cell::Number(1234.5)]],
        );
        let chart = render(&definition, &data);
        assert_eq!(elements(&chart.svg, "g", "legend").len(), 0);
        assert!(chart.svg.contains("<title>Espresso · 1,234.5</title>"));
    }

    #[test]
    fn stacked_bars_sit_on_each_other() {
        let definition = sales(ChartType::StackedBar, &["product_name", "product_size"]);
        let chart = render(&definition, &sales_by_product_and_size());
        let bars = elements(&chart.svg, "rect", "bar");
        let latte: Vec<&&str> = bars
            .iter()
            .filter(|b| attr(b, "data-category") == Some("Latte"))
            .collect();
        let (lower, upper) = (latte[0], latte[1]);
        assert_eq!(number_attr(lower, "x"), number_attr(upper, "x"));
        let top_of_lower = number_attr(lower, "y");
        let bottom_of_upper = number_attr(upper, "y") + number_attr(upper, "height");
        assert!((top_of_lower - bottom_of_upper).abs() < 0.02);
        assert!(
            chart
                .svg
                .contains("<title>Latte · Large · 25 · total 45</title>")
        );
    }

    #[test]
    fn horizontal_bars_grow_right_from_one_baseline() {
        let definition = sales(ChartType::HorizontalBar, &["product_name"]);
        let data = rows(
            &["product_name", "sum_total_purchase"],
            vec![
                vec![text("Espresso"), Cell::Number(40.0)],
                vec![text("Latte"), Cell::Number(20.0)],
            ],
        );
        let chart = render(&definition, &data);
        let bars = elements(&chart.svg, "rect", "bar");
        assert_eq!(bars.len(), 2);
        assert_eq!(number_attr(bars[0], "x"), number_attr(bars[1], "x"));
        let ratio = number_attr(bars[0], "width") / number_attr(bars[1], "width");
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
        assert!(
            number_attr(bars[0], "y") < number_attr(bars[1], "y"),
            "first on top"
        );
        let label = text_element(&chart.svg, "Espresso");
        assert!(number_attr(label, "x") <= number_attr(bars[0], "x"));
    }

    #[test]
    fn thresholds_are_dashed_lines_along_the_value_axis() {
        let mut definition = sales(ChartType::Bar, &["product_name"]);
        definition.visual.thresholds = vec![25.0, f64::NAN];
        let data = rows(
            &["product_name", "sum_total_purchase"],
            vec![vec![text("Espresso"), Cell::Number(40.0)]],
        );
        let chart = render(&definition, &data);
        let lines = elements(&chart.svg, "line", "threshold");
        assert_eq!(lines.len(), 1);
        let y = number_attr(lines[0], "y1");
        assert_eq!(y, number_attr(lines[0], "y2"), "horizontal");
        assert!(lines[0].contains("<title>Threshold: 25</title>"));
        let drawn = dashes(&chart.svg);
        assert!(drawn.len() > 10, "dashed: {drawn:?}");
        assert!(drawn.iter().all(|d| d.iter().all(|p| p.1 == y)), "on it");
        definition.chart_type = ChartType::HorizontalBar;
        let chart = render(&definition, &data);
        let line = elements(&chart.svg, "line", "threshold")[0];
        let x = number_attr(line, "x1");
        assert_eq!(x, number_attr(line, "x2"), "vertical");
        assert!(
            dashes(&chart.svg)
                .iter()
                .all(|d| d.iter().all(|p| p.0 == x))
        );
    }

    /// The points of each dash of the threshold lines.
    fn dashes(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline ")
            .skip(1)
            .filter(|e| attr(e, "stroke").is_some_and(|s| s.eq_ignore_ascii_case(svg::THRESHOLD)))
            .map(|e| {
                attr(e, "points")
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.split_once(','))
                    .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn long_category_names_are_cut_with_the_full_name_as_tooltip() {
        let definition = sales(ChartType::Bar, &["product_name"]);
        let long = "Triple shot caramel hazelnut oat milk macchiato, extra large";
        let data = rows(
            &["product_name", "sum_total_purchase"],
            (0..12)
                .map(|i| vec![text(&format!("{long} {i}")), Cell::Number(i as f64)])
                .collect(),
        );
        let chart = render(&definition, &data);
        let labels: Vec<&str> = texts(&chart.svg)
            .into_iter()
            .filter(|t| t.starts_with("Triple"))
            .collect();
        assert!(!labels.is_empty());
        assert!(labels.iter().all(|l| l.ends_with('…')), "{labels:?}");
        let tips = elements(&chart.svg, "rect", "label-tip");
        assert!(
            tips.iter()
                .any(|t| t.contains(&format!("<title>{long} 3</title>")))
        );
    }

    #[test]
    fn bars_over_time_take_the_buckets_as_categories() {
        let definition = definition(
            ChartType::Bar,
            "purchases_enriched",
            vec![metric(Aggregate::Count, None)],
            &[],
            Some(TimeGrain::Hour),
        );
        let data = rows(
            &["time", "count"],
            vec![
                vec![Cell::Time(T0 + 3_600_000), Cell::Number(7.0)],
                vec![Cell::Time(T0), Cell::Number(5.0)],
            ],
        );
        let chart = render(&definition, &data);
        let bars = elements(&chart.svg, "rect", "bar");
        assert_eq!(attr(bars[0], "data-category"), Some("13:00:00 UTC"));
        assert!(chart.svg.contains("<title>12:00:00 UTC · 5</title>"));
        let labels: Vec<&str> = texts(&chart.svg)
            .into_iter()
            .filter(|t| t.ends_with("UTC"))
            .collect();
        assert_eq!(labels, ["12:00:00 UTC", "13:00:00 UTC"], "in time order");
    }

    #[test]
    fn a_histogram_draws_each_bucket_over_its_range() {
        let mut definition = definition(
            ChartType::Histogram,
            "sensor_msg_detail",
            vec![metric(Aggregate::Avg, Some("temp"))],
            &[],
            None,
        );
        definition.visual.unit = Some("°F".into());
        definition.visual.thresholds = vec![75.0];
        let data = rows(
            &["bucket_start", "bucket_end", "count"],
            vec![
                vec![Cell::Number(60.0), Cell::Number(70.0), Cell::Number(3.0)],
                vec![Cell::Number(70.0), Cell::Number(80.0), Cell::Number(12.0)],
            ],
        );
        let chart = render(&definition, &data);
        let bars = elements(&chart.svg, "rect", "bar");
        assert_eq!((bars.len(), chart.points), (2, 2));
        let first_end = number_attr(bars[0], "x") + number_attr(bars[0], "width");
        assert!(
            (first_end - number_attr(bars[1], "x")).abs() < 0.02,
            "adjacent"
        );
        assert!(number_attr(bars[1], "height") > 3.9 * number_attr(bars[0], "height"));
        assert!(chart.svg.contains(">temp (°F)<"), "x axis title");
        assert!(chart.svg.contains("<title>70 – 80 °F: 12</title>"));
        let line = elements(&chart.svg, "line", "threshold")[0];
        assert_eq!(number_attr(line, "x1"), number_attr(line, "x2"));
    }

    /// One definition per drawn chart type, with rows of its shape.
    fn every_type(
        hostile: &str,
        rows_each: usize,
        value: impl Fn(usize) -> Cell,
    ) -> Vec<(ChartDefinition, ChartRows)> {
        let mut charts = Vec::new();
        for chart_type in [ChartType::Line, ChartType::Area] {
            let mut d = definition(
                chart_type,
                "sensor_msg_detail",
                vec![metric(Aggregate::Avg, Some("temp"))],
                &["location"],
                Some(TimeGrain::Second),
            );
            d.name = hostile.into();
            let data = (0..rows_each)
                .map(|i| vec![Cell::Time(T0 + i as i64 * 1000), text(hostile), value(i)])
                .collect();
            charts.push((d, rows(&["time", "location", "avg_temp"], data)));
        }
        for chart_type in [
            ChartType::Bar,
            ChartType::StackedBar,
            ChartType::HorizontalBar,
        ] {
            let mut d = sales(chart_type, &["product_name", "product_size"]);
            d.name = hostile.into();
            let data = (0..rows_each)
                .map(|i| vec![text(&format!("{hostile}{i}")), text(hostile), value(i)])
                .collect();
            charts.push((
                d,
                rows(
                    &["product_name", "product_size", "sum_total_purchase"],
                    data,
                ),
            ));
        }
        let mut d = definition(
            ChartType::Histogram,
            "sensor_msg_detail",
            vec![metric(Aggregate::Avg, Some("temp"))],
            &[],
            None,
        );
        d.name = hostile.into();
        let data = (0..rows_each)
            .map(|i| {
                vec![
                    Cell::Number(i as f64),
                    Cell::Number(i as f64 + 1.0),
                    value(i),
                ]
            })
            .collect();
        charts.push((d, rows(&["bucket_start", "bucket_end", "count"], data)));
        let mut d = sensors_map();
        d.name = hostile.into();
        let data = (0..rows_each)
            .map(|i| {
                vec![
                    text(&format!("{hostile}{i}")),
                    text(hostile),
                    Cell::Number(40.0 + (i % 100) as f64 * 0.01),
                    Cell::Number(-74.0 - (i / 100) as f64 * 0.01),
                    value(i),
                    value(i),
                    Cell::Time(T0),
                ]
            })
            .collect();
        charts.push((d, rows(&crate::chart::map::tests::SENSOR_MAP_COLUMNS, data)));
        let mut d = definition(
            ChartType::Kpi,
            "purchases_enriched",
            vec![metric(Aggregate::Sum, Some("total_purchase"))],
            &[],
            None,
        );
        d.name = hostile.into();
        let data = (0..rows_each.min(1)).map(|i| vec![value(i)]).collect();
        charts.push((d, rows(&["sum_total_purchase"], data)));
        charts
    }

    #[test]
    fn text_from_data_is_escaped_in_every_chart_type() {
        let names = [
            "<script>alert(1)</script>",
            r#""><img src=x onerror=alert(1)>"#,
            // Control characters are not allowed in XML at all.
            "bell\u{7} & 'quote'\u{1b}",
        ];
        for hostile in names {
            for (definition, data) in every_type(hostile, 3, |i| Cell::Number(i as f64)) {
                let svg = render(&definition, &data).svg;
                let kind = definition.chart_type;
                assert!(!svg.contains("<script"), "{kind:?}: {svg}");
                assert!(!svg.contains("<img"), "{kind:?}: {svg}");
                assert!(
                    svg.contains(&svg::escape(hostile)),
                    "{kind:?} shows it as text"
                );
                assert_well_formed(&svg);
            }
        }
    }

    #[test]
    fn every_chart_type_scales_by_its_view_box() {
        for (definition, data) in every_type("Chart", 3, |i| Cell::Number(i as f64)) {
            let svg = render(&definition, &data).svg;
            assert!(svg.starts_with("<svg "), "{svg}");
            let root = &svg[..svg.find('>').expect("root tag")];
            assert!(
                root.contains(r#"viewBox="0 0 640 360""#),
                "{:?}: {root}",
                definition.chart_type
            );
        }
    }

    #[test]
    fn empty_results_draw_the_frame_and_say_so() {
        for (definition, data) in every_type("Empty", 0, |_| Cell::Null) {
            let chart = render(&definition, &data);
            assert!(
                chart.svg.contains(svg::NO_DATA),
                "{:?}",
                definition.chart_type
            );
            assert_eq!(chart.points, 0, "{:?}", definition.chart_type);
            assert_well_formed(&chart.svg);
        }
    }

    #[test]
    fn odd_values_never_break_a_chart() {
        type Case = (&'static str, usize, fn(usize) -> Cell);
        let cases: [Case; 5] = [
            ("NaN and infinities", 5, |i| {
                Cell::Number([f64::NAN, f64::INFINITY, 1.0, f64::NEG_INFINITY, 2.0][i])
            }),
            ("nulls", 4, |_| Cell::Null),
            ("a single point", 1, |_| Cell::Number(3.0)),
            ("identical values", 6, |_| Cell::Number(-2.5)),
            ("10,000 rows", 10_000, |i| {
                Cell::Number((i % 97) as f64 * 1e6)
            }),
        ];
        for (case, count, value) in cases {
            for (definition, data) in every_type("Odd", count, value) {
                let chart = render(&definition, &data);
                assert_well_formed(&chart.svg);
                assert!(
                    !chart.svg.contains("NaN"),
                    "{case} {:?}",
                    definition.chart_type
                );
            }
        }
    }

    #[test]
    fn tables_are_not_drawn() {
        let definition = sales(ChartType::Table, &["product_name"]);
        let dataset = dataset("purchases_enriched");
        let data = rows(&["product_name", "sum_total_purchase"], vec![]);
        let result = render_svg(&RenderInput {
            definition: &definition,
            dataset: &dataset,
            rows: &data,
            kpi: None,
            now_ms: 0,
            size: (640, 360),
            tile_url: None,
        });
        assert!(matches!(
            result,
            Err(RenderError::Unsupported(ChartType::Table))
        ));
    }

    fn png_size(png: &[u8]) -> (u32, u32) {
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(png).expect("decodes");
        (pixmap.width(), pixmap.height())
    }

    #[test]
    fn png_export_is_a_picture_of_the_requested_size() {
        let (definition, data) = temperatures();
        let chart = render(&definition, &data);
        let png = svg_to_png(&chart.svg).expect("rasterizes");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(png_size(&png), (640, 360));
    }

    #[test]
    fn png_export_draws_text() {
        let dark_pixels = |svg: &str| {
            let png = svg_to_png(svg).expect("rasterizes");
            let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("decodes");
            pixmap.pixels().iter().filter(|p| p.red() < 128).count()
        };
        let page = |body: &str| {
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" viewBox="0 0 200 40" font-family="{}">{body}</svg>"#,
                svg::FONT_FAMILY
            )
        };
        assert_eq!(dark_pixels(&page("")), 0);
        let with_text =
            page(r##"<text x="4" y="28" font-size="20" fill="#000">Pulseboard ▲ °F</text>"##);
        assert!(dark_pixels(&with_text) > 100);
        let generic =
            page(r#"<text x="4" y="28" font-size="20" font-family="sans-serif">Pulseboard</text>"#);
        assert!(dark_pixels(&generic) > 100);
    }

    fn series(label: &str, points: &[(i64, f64)]) -> Series {
        Series {
            label: label.to_string(),
            points: points.to_vec(),
        }
    }

    fn series_lines(svg: &str) -> usize {
        svg.matches(&format!(r#"stroke-width="{SERIES_STROKE_WIDTH}" points="#))
            .count()
    }

    #[test]
    fn the_temperature_chart_draws_one_polyline_and_legend_entry_per_series() {
        let lines = [
            series(
                "Research Lab #2203",
                &[(1_000, 70.0), (1_001, 71.5), (1_002, 69.0)],
            ),
            series("Research Lab #2209", &[(1_000, 80.0), (1_002, 82.25)]),
        ];
        let svg = line_chart_svg("Temperature", "°F", &lines, (640, 320)).expect("renders");
        assert_eq!(series_lines(&svg), 2, "{svg}");
        assert!(svg.contains("Research Lab #2203"));
        assert!(svg.contains("Research Lab #2209"));
        assert!(svg.contains(
            "<title>00:16:42 UTC\nResearch Lab #2203: 69\nResearch Lab #2209: 82.25</title>"
        ));
    }

    #[test]
    fn an_empty_temperature_chart_still_renders_its_frame() {
        let svg = line_chart_svg("Temperature", "°F", &[], (640, 320)).expect("renders");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<text"), "title and note drawn");
        assert!(svg.contains(svg::NO_DATA));
        assert_eq!(series_lines(&svg), 0);
    }

    #[test]
    fn clock_time_is_utc_time_of_day() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(1_583_292_719), "03:31:59");
        assert_eq!(clock_time(-1), "23:59:59");
    }
}
