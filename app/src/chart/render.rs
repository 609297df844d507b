//! Line charts rendered to SVG with plotters.

use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

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
    #[error("drawing failed: {0}")]
    Draw(String),
}

pub type Result<T, E = RenderError> = std::result::Result<T, E>;

/// Fonts searched when `PULSEBOARD_CHART_FONT` is not set (Debian's fonts-dejavu-core).
const DEFAULT_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const FONT_FAMILY: &str = "sans-serif";

/// Series lines are the only strokes this wide, so a page (and its tests) can find them.
pub const SERIES_STROKE_WIDTH: u32 = 2;

/// Colours that stay distinct for up to ten series on a white background.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Loads the label font once per process; plotters cannot measure text without one.
pub fn ensure_font() -> Result<()> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
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
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a usable font"))
        })
        .clone()
        .map_err(RenderError::Font)
}

/// Draws a multi-series line chart with a legend and a time axis in UTC.
pub fn line_chart_svg(
    title: &str,
    y_label: &str,
    series: &[Series],
    size: (u32, u32),
) -> Result<String> {
    ensure_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_lines(&root, title, y_label, series).map_err(|e| RenderError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| RenderError::Draw(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (x_range, y_range) = bounds(series);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(52)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|ts| clock_time(*ts))
        .y_desc(y_label)
        .label_style((FONT_FAMILY, 12))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    for (index, line) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(SERIES_STROKE_WIDTH),
            ))?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(3)));
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.75))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT_FAMILY, 12))
            .draw()?;
    }
    Ok(())
}

/// The axis ranges that fit every point, padded so lines do not touch the frame.
fn bounds(series: &[Series]) -> (std::ops::Range<i64>, std::ops::Range<f64>) {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max) = (i64::MAX, i64::MIN);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        return (0..60, 0.0..100.0);
    }
    if x_min == x_max {
        x_max = x_min + 1;
    }
    let pad = ((y_max - y_min) * 0.05).max(1.0);
    (x_min..x_max, (y_min - pad)..(y_max + pad))
}

/// `HH:MM:SS` in UTC for an epoch second.
pub fn clock_time(epoch_seconds: i64) -> String {
    let seconds_of_day = epoch_seconds.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        (seconds_of_day / 60) % 60,
        seconds_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series_lines(svg: &str) -> usize {
        svg.matches(&format!(r#"stroke-width="{SERIES_STROKE_WIDTH}" points="#))
            .count()
    }

    fn series(label: &str, points: &[(i64, f64)]) -> Series {
        Series {
            label: label.to_string(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn draws_one_polyline_and_legend_entry_per_series() {
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
    }

    #[test]
    fn empty_chart_still_renders_axes() {
        let svg = line_chart_svg("Temperature", "°F", &[], (640, 320)).expect("renders");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<text"), "axis labels drawn");
        assert_eq!(series_lines(&svg), 0);
    }

    #[test]
    fn clock_time_is_utc_time_of_day() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(1_583_292_719), "03:31:59");
        assert_eq!(clock_time(-1), "23:59:59");
    }

    #[test]
    fn bounds_pad_the_value_range() {
        let (x, y) = bounds(&[series("a", &[(10, 50.0), (20, 60.0)])]);
        assert_eq!(x, 10..20);
        assert!(y.start < 50.0 && y.end > 60.0);
    }
}
