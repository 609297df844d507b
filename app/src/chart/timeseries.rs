//! Line and area charts: a line per series over a UTC time axis, with a
//! legend and, for areas, the fill under each line. Hovering anywhere over
//! the plot marks the nearest instant with a vertical line and shows every
//! series' value at it, as Superset and QuickSight do: a strip per instant
//! whose tooltip reads `time` and then `series: value unit` a line each.

use super::definition::ChartType;
use super::plot::{self, Chart, Drawn, Margins, Overlay, Root, Ticked};
use super::render::{
    Columns, Interner, Look, RenderError, RenderInput, Rendered, Result, SERIES_STROKE_WIDTH,
    extent, group_text, instant, left_margin, legend_entries, number, series_label, sole_metric,
    value_ticks,
};
use super::svg::{self, LABEL_SIZE, TimeFormat};
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Room under the plot for the time labels.
const BOTTOM: f64 = 26.0;

/// One line: `(epoch ms, value)` points.
pub(crate) struct Line {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

pub(crate) fn render(input: &RenderInput, size: (u32, u32)) -> Result<Rendered> {
    let columns = Columns::of(input);
    let definition = input.definition;
    let area = definition.chart_type == ChartType::Area;
    let kind = if area { "area" } else { "line" };
    let look = Look::of(definition, kind, sole_metric(&columns));
    let Some(time) = columns.time else {
        if input.rows.rows.is_empty() {
            return draw(&look, Vec::new(), area, None, size);
        }
        return Err(RenderError::Shape(
            "a line or area chart needs its time column first".into(),
        ));
    };
    let mut names = Interner::default();
    let mut lines: Vec<Line> = Vec::new();
    for row in &input.rows.rows {
        let Some(t) = instant(row.get(time)) else {
            continue;
        };
        let groups: Vec<String> = columns
            .groups
            .iter()
            .map(|g| group_text(row.get(g.index)))
            .collect();
        for metric in &columns.metrics {
            let Some(v) = number(row.get(metric.index)) else {
                continue;
            };
            let label = series_label(&groups, &metric.name, columns.metrics.len());
            let index = names.get(label.clone());
            if index == lines.len() {
                lines.push(Line {
                    label,
                    points: Vec::new(),
                });
            }
            lines[index].points.push((t, v));
        }
    }
    let grain = definition.time_grain.map(|g| g.seconds() * 1000);
    draw(&look, lines, area, grain, size)
}

/// Draws `lines` over a UTC time axis; with `area`, filled down to zero.
pub(crate) fn draw(
    look: &Look,
    mut lines: Vec<Line>,
    area: bool,
    grain_ms: Option<i64>,
    size: (u32, u32),
) -> Result<Rendered> {
    for line in &mut lines {
        line.points.retain(|p| p.1.is_finite());
        line.points.sort_by_key(|p| p.0);
    }
    let points: usize = lines.iter().map(|l| l.points.len()).sum();
    let mut out = svg::open(size, look.kind, look.name);
    let width = f64::from(size.0);
    let labels: Vec<String> = lines.iter().map(|l| l.label.clone()).collect();
    let entries = legend_entries(&labels, &look.palette);
    let top =
        svg::TITLE_HEIGHT + svg::legend(&mut out, &entries, 12.0, svg::TITLE_HEIGHT, width - 24.0);

    let values = extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let height_guess = f64::from(size.1) - top - 40.0;
    let ticks = value_ticks(values, look, area, height_guess);
    let title = look.value_title.as_deref();
    let margins = Margins {
        top,
        left: left_margin(&ticks, title),
        bottom: BOTTOM,
        note: 0.0,
    }
    .fit(size);
    let bounds = margins.plot(size);

    let times = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (t0, t1) = (times.clone().min().unwrap_or(0), times.max().unwrap_or(0));
    let span = if t0 == t1 {
        let pad = grain_ms.unwrap_or(60_000).max(2) / 2;
        (t0.saturating_sub(pad), t1.saturating_add(pad))
    } else {
        (t0, t1)
    };
    // Labels are centred on their instant: one that would run off the
    // picture is left out.
    let time_ticks = svg::time_ticks(span.0, span.1, (bounds.w / 90.0).max(2.0) as usize)
        .into_iter()
        .filter(|(t, label)| {
            let x = bounds.x + (*t - span.0) as f64 / (span.1 - span.0) as f64 * bounds.w;
            let half = svg::text_width(label, LABEL_SIZE) / 2.0;
            x - half >= 2.0 && x + half <= width - 2.0
        })
        .collect();
    let axes = Axes {
        margins,
        span,
        time_ticks,
        ticks,
        title,
    };

    // Dots are drawn only when sparse.
    let longest = lines.iter().map(|l| l.points.len()).max().unwrap_or(0);
    let style = Style {
        area,
        dot: if (longest as f64) <= bounds.w / 10.0 {
            3
        } else {
            0
        },
        format: TimeFormat::for_range(t0, t1, grain_ms),
        baseline: 0f64.clamp(axes.ticks.lo, axes.ticks.hi),
    };
    let mut overlay = Overlay::default();
    let mut dots = String::new();
    let plot = plot::draw(size, |root| {
        let mut chart = frame(root, &axes, &mut overlay, points > 0)?;
        if points == 0 {
            return plot::no_data(root, plot::plot_rect(&chart));
        }
        let mut columns = PixelColumns::default();
        for (index, line) in lines.iter().enumerate() {
            draw_line(
                &mut chart,
                &mut columns,
                &mut dots,
                line,
                index,
                look,
                &style,
            )?;
        }
        hover_strips(
            &mut overlay,
            plot::plot_rect(&chart),
            columns,
            &lines,
            look,
            &style,
        );
        for &t in &look.thresholds {
            let value = svg::with_unit(svg::exact(t), look.unit);
            let ends = [(span.0, t), (span.1, t)];
            plot::threshold(&mut chart, root, &mut overlay, ends, &value)?;
        }
        Ok(())
    })?;
    // plotters fills areas, the only polygons of this plot, without a class.
    if area {
        out.push_str(&plot.replace("<polygon ", r#"<polygon class="area" "#));
    } else {
        out.push_str(&plot);
    }
    out.push_str(&dots);
    overlay.finish(&mut out);
    Ok(Rendered {
        svg: svg::close(out),
        series: lines.iter().filter(|l| !l.points.is_empty()).count(),
        points,
    })
}

/// The time axis (epoch ms) and the value axis.
type TimeChart<'a, 'b> = Chart<'a, 'b, Ticked<RangedCoordi64>, Ticked<RangedCoordf64>>;

/// Both axes, worked out before drawing.
struct Axes<'a> {
    margins: Margins,
    /// The instants across the plot, epoch ms.
    span: (i64, i64),
    /// Labelled instants.
    time_ticks: Vec<(i64, String)>,
    ticks: svg::Ticks,
    /// Of the value axis.
    title: Option<&'a str>,
}

/// How the lines are drawn.
struct Style {
    area: bool,
    /// Radius of the dots on the points; 0 for none.
    dot: u32,
    format: TimeFormat,
    /// Where areas fill down to.
    baseline: f64,
}

/// The chart's coordinates and its mesh: axes, value gridlines, tick labels
/// (when `labelled`) and the value axis title.
fn frame<'a, 'b>(
    root: &'a Root<'b>,
    axes: &Axes,
    overlay: &mut Overlay,
    labelled: bool,
) -> Drawn<TimeChart<'a, 'b>> {
    let (x_keys, y_keys) = if labelled {
        (
            axes.time_ticks.iter().map(|t| t.0).collect(),
            axes.ticks.values.clone(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let x = plot::ticked(axes.span.0..axes.span.1, x_keys);
    let y = plot::ticked(axes.ticks.lo..axes.ticks.hi, y_keys);
    let mut chart = plot::chart(root, axes.margins, x, y)?;
    let title = plot::left_title(axes.title, plot::plot_rect(&chart), overlay);
    let x_label = |t: &i64| {
        axes.time_ticks
            .iter()
            .find(|(tick, _)| tick == t)
            .map_or_else(String::new, |(_, label)| label.clone())
    };
    let y_label = |v: &f64| svg::tick_label(*v, axes.ticks.step);
    let mut mesh = chart.configure_mesh();
    plot::style_mesh(&mut mesh);
    mesh.disable_x_mesh()
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label);
    if let Some(title) = title {
        mesh.y_desc(title);
    }
    mesh.draw()?;
    Ok(chart)
}

/// The points drawn at each pixel column of the plot: `(epoch ms, series
/// index, value)`.
type PixelColumns = BTreeMap<i32, Vec<(i64, usize, f64)>>;

/// Instants listed at most in one strip's tooltip; more share a pixel column
/// only when a range holds more instants than the plot has pixels across.
const INSTANTS_PER_TIP: usize = 8;

/// One series: its area, its line (the only strokes of
/// `SERIES_STROKE_WIDTH`), and its dots (into `dots`, over every line).
/// Its points join `columns`, for the hover strips.
fn draw_line(
    chart: &mut TimeChart,
    columns: &mut PixelColumns,
    dots: &mut String,
    line: &Line,
    index: usize,
    look: &Look,
    style: &Style,
) -> Drawn {
    let (Some(first), Some(last)) = (line.points.first(), line.points.last()) else {
        return Ok(());
    };
    let hex = look.palette.get(index);
    let color = plot::rgb(hex);
    if style.area {
        let mut outline = line.points.clone();
        outline.extend([(last.0, style.baseline), (first.0, style.baseline)]);
        chart.draw_series([Polygon::new(outline, color.mix(0.22).filled())])?;
    }
    let stroke = color.filled().stroke_width(SERIES_STROKE_WIDTH);
    let coords = line.points.iter().copied();
    chart.draw_series(LineSeries::new(coords, stroke))?;
    // Dots are written here rather than by plotters, which spends a dozen
    // attributes on each.
    if style.dot > 0 {
        let _ = write!(dots, r#"<g class="dots" fill="{hex}">"#);
    }
    for &(t, v) in &line.points {
        let at = chart.backend_coord(&(t, v));
        if style.dot > 0 {
            let _ = write!(
                dots,
                r#"<circle cx="{}" cy="{}" r="{}"/>"#,
                at.0, at.1, style.dot
            );
        }
        columns.entry(at.0).or_default().push((t, index, v));
    }
    if style.dot > 0 {
        dots.push_str("</g>");
    }
    Ok(())
}

/// A strip over the plot for each pixel column holding points, reaching
/// halfway to its neighbours, whose tooltip lists the instants there and
/// each series' value at them. One target per instant rather than per
/// point keeps a dense chart's answer small, and the pointer need not find
/// a point.
fn hover_strips(
    overlay: &mut Overlay,
    plot: svg::Rect,
    columns: PixelColumns,
    lines: &[Line],
    look: &Look,
    style: &Style,
) {
    let xs: Vec<f64> = columns.keys().map(|&x| f64::from(x)).collect();
    let mut tip = String::new();
    for (i, mut points) in columns.into_values().enumerate() {
        let left = if i == 0 {
            plot.x
        } else {
            (xs[i - 1] + xs[i]) / 2.0
        };
        let right = xs
            .get(i + 1)
            .map_or(plot.right(), |next| (xs[i] + next) / 2.0);
        points.sort_by_key(|&(t, series, _)| (t, series));
        tip.clear();
        let mut instants = 0;
        let mut shown = None;
        for (at, (t, series, v)) in points.iter().enumerate() {
            if shown != Some(*t) {
                instants += 1;
                if instants > INSTANTS_PER_TIP {
                    let more = points[at..].chunk_by(|a, b| a.0 == b.0).count();
                    let _ = write!(tip, "\n… and {more} more instants in this pixel column");
                    break;
                }
                if shown.is_some() {
                    tip.push('\n');
                }
                style.format.write(&mut tip, *t);
                shown = Some(*t);
            }
            tip.push('\n');
            tip.push_str(&lines[*series].label);
            tip.push_str(": ");
            tip.push_str(&svg::with_unit(svg::exact(*v), look.unit));
        }
        let strip = svg::Rect {
            x: left,
            y: plot.y,
            w: (right - left).max(1.0),
            h: plot.h,
        };
        overlay.instant(strip, xs[i], &tip);
    }
}
