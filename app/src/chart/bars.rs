//! Bar charts: grouped side by side, stacked, or horizontal. Categories
//! run along one axis and values along the other; each bar's hover target
//! names its category and series, and its tooltip reads
//! `category · series · value unit` (with the stack's total when stacked).

use super::definition::ChartType;
use super::plot::{self, Chart, Drawn, Margins, Overlay, Root, TICK};
use super::render::{
    Columns, Interner, Look, RenderInput, Rendered, Result, extent, group_text, instant,
    left_margin, legend_entries, number, series_label, sole_metric, value_ticks, widest,
};
use super::svg::{self, LABEL_SIZE, Rect, SEP, TimeFormat};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bars arranged as categories × series.
struct BarTable {
    /// Axis labels.
    categories: Vec<String>,
    series: Vec<String>,
    /// `(category, series, value)`.
    cells: Vec<(usize, usize, f64)>,
    /// Categories the plot had no room for.
    dropped: usize,
}

/// Categories are the time buckets when the chart has a time grain (the
/// group-by values then make the series, as in a time-series bar chart),
/// else the first group-by column, with the other group-by columns and
/// several metrics making the series.
fn bar_table(input: &RenderInput, columns: &Columns) -> BarTable {
    let by_time = columns.time.is_some();
    let (category_group, series_groups) = match (by_time, columns.groups.split_first()) {
        (false, Some((first, rest))) => (Some(first), rest),
        _ => (None, columns.groups.as_slice()),
    };
    let mut categories = Interner::default();
    let mut category_times: Vec<i64> = Vec::new();
    let mut series = Interner::default();
    let mut cells = Vec::new();
    for row in &input.rows.rows {
        let category = match (columns.time, category_group) {
            (Some(time), _) => match instant(row.get(time)) {
                Some(t) => {
                    let index = categories.get(t.to_string());
                    if index == category_times.len() {
                        category_times.push(t);
                    }
                    index
                }
                None => continue,
            },
            (None, Some(group)) => categories.get(group_text(row.get(group.index))),
            (None, None) => categories.get("All".into()),
        };
        let groups: Vec<String> = series_groups
            .iter()
            .map(|g| group_text(row.get(g.index)))
            .collect();
        for metric in &columns.metrics {
            if let Some(v) = number(row.get(metric.index)) {
                let label = series_label(&groups, &metric.name, columns.metrics.len());
                cells.push((category, series.get(label), v));
            }
        }
    }
    let mut labels = categories.keys;
    if by_time {
        // Buckets in time order, named the way tooltips name instants.
        let mut order: Vec<usize> = (0..category_times.len()).collect();
        order.sort_by_key(|&i| category_times[i]);
        let mut rank = vec![0; order.len()];
        for (position, &i) in order.iter().enumerate() {
            rank[i] = position;
        }
        let first = order.first().map_or(0, |&i| category_times[i]);
        let last = order.last().map_or(0, |&i| category_times[i]);
        let grain = input.definition.time_grain.map(|g| g.seconds() * 1000);
        let format = TimeFormat::for_range(first, last, grain);
        labels = order
            .iter()
            .map(|&i| format.format(category_times[i]))
            .collect();
        for cell in &mut cells {
            cell.0 = rank[cell.0];
        }
    }
    BarTable {
        categories: labels,
        series: series.keys,
        cells,
        dropped: 0,
    }
}

impl BarTable {
    /// Keeps `keep` categories: the latest buckets of a time axis, else the
    /// first (the query puts the largest first).
    fn keep(&mut self, keep: usize, latest: bool) {
        let total = self.categories.len();
        if total <= keep {
            return;
        }
        let skip = if latest { total - keep } else { 0 };
        self.categories = self.categories.drain(skip..skip + keep).collect();
        self.cells.retain(|c| c.0 >= skip && c.0 < skip + keep);
        for cell in &mut self.cells {
            cell.0 -= skip;
        }
        self.dropped = total - keep;
    }

    /// The extent of what bars reach: each value, or each stack's ends.
    fn reach(&self, stacked: bool) -> Option<(f64, f64)> {
        if !stacked {
            return extent(self.cells.iter().map(|c| c.2));
        }
        let mut ends = vec![(0.0, 0.0); self.categories.len()];
        for &(c, _, v) in &self.cells {
            if v >= 0.0 {
                ends[c].1 += v;
            } else {
                ends[c].0 += v;
            }
        }
        extent(ends.iter().flat_map(|&(neg, pos)| [neg, pos]))
    }
}

pub(crate) fn render(input: &RenderInput, size: (u32, u32)) -> Result<Rendered> {
    let definition = input.definition;
    let chart_type = definition.chart_type;
    let stacked = chart_type == ChartType::StackedBar;
    let upward = chart_type != ChartType::HorizontalBar;
    let kind = match chart_type {
        ChartType::StackedBar => "stacked-bar",
        ChartType::HorizontalBar => "horizontal-bar",
        _ => "bar",
    };
    let columns = Columns::of(input);
    let look = Look::of(definition, kind, sole_metric(&columns));
    let mut table = bar_table(input, &columns);
    let (w, h) = (f64::from(size.0), f64::from(size.1));

    let mut out = svg::open(size, kind, look.name);
    let mut top = svg::TITLE_HEIGHT;
    if table.series.len() > 1 {
        let entries = legend_entries(&table.series, &look.palette);
        top += svg::legend(&mut out, &entries, 12.0, top, w - 24.0);
    }
    let title = look.value_title.as_deref();
    let series = table.series.len().max(1);
    // A bar needs about 2 px, a category a little room around its bars.
    let band_needed = if stacked {
        3.0
    } else {
        2.0 * series as f64 + 1.0
    };
    let room = if upward { w - 80.0 } else { h - top - 50.0 };
    table.keep(
        (room / band_needed).max(1.0) as usize,
        columns.time.is_some(),
    );

    let category_widths = widest(table.categories.iter().cloned());
    let layout = Layout {
        upward,
        count: table.categories.len().max(1) as f64,
    };
    // The note on left-out categories takes a line at the bottom.
    let note = if table.dropped > 0 { 12.0 } else { 0.0 };
    let (margins, ticks, labels) = if upward {
        let ticks = value_ticks(table.reach(stacked), &look, true, h - top - 60.0);
        let left = left_margin(&ticks, title);
        let mut margins = Margins {
            top,
            left,
            bottom: 0.0,
            note,
        };
        let band = margins.fit(size).plot(size).w / layout.count;
        let labels = CategoryLabels::under(category_widths, band, h);
        margins.bottom = labels.room;
        (margins.fit(size), ticks, labels)
    } else {
        let left = (category_widths + 2.0 * TICK + 6.0).min(w * 0.35).max(40.0);
        let bottom = if title.is_some() { 40.0 } else { 24.0 };
        let margins = Margins {
            top,
            left,
            bottom,
            note,
        }
        .fit(size);
        let plot = margins.plot(size);
        let ticks = value_ticks(table.reach(stacked), &look, true, plot.w * 0.8);
        let max_width = margins.left - 2.0 * TICK - 4.0;
        let labels = CategoryLabels::beside(max_width, plot.h / layout.count);
        (margins, ticks, labels)
    };
    let plan = Plan {
        layout,
        margins,
        shown: table
            .categories
            .iter()
            .map(|c| svg::fit(c, labels.max_width, LABEL_SIZE))
            .collect(),
        labels,
        ticks,
        title,
    };

    let mut overlay = Overlay::default();
    let empty = table.cells.is_empty();
    let mut drawn = 0;
    let plot = plot::draw(size, |root| {
        let mut chart = frame(root, &plan, &mut overlay, empty)?;
        if empty {
            return plot::no_data(root, plot::plot_rect(&chart));
        }
        label_categories(&chart, root, &mut overlay, &plan, &table.categories)?;
        drawn = draw_bars(&mut chart, &mut overlay, &table, &look, &plan, stacked)?;
        for &t in &look.thresholds {
            let value = svg::with_unit(svg::exact(t), look.unit);
            let ends = [layout.place(0.0, t), layout.place(layout.count, t)];
            plot::threshold(&mut chart, root, &mut overlay, ends, &value)?;
        }
        Ok(())
    })?;
    out.push_str(&plot);
    overlay.finish(&mut out);
    if table.dropped > 0 {
        let shown = table.categories.len();
        let total = shown + table.dropped;
        let note = format!(
            "Showing {shown} of {} categories",
            svg::fixed(total as f64, 0)
        );
        svg::corner_note(&mut out, size, &note);
    }
    let series = if empty { 0 } else { table.series.len() };
    Ok(Rendered {
        svg: svg::close(out),
        series,
        points: drawn,
    })
}

/// Which way the bars go. Category `i` spans `i..i + 1` across the
/// categories, counted from the left, or from the top for horizontal bars.
#[derive(Debug, Clone, Copy)]
struct Layout {
    upward: bool,
    count: f64,
}

impl Layout {
    /// The category axis' coordinate `u` across the categories.
    fn across(&self, u: f64) -> f64 {
        if self.upward { u } else { self.count - u }
    }

    /// The chart's coordinates of value `v` at `u` across the categories.
    fn place(&self, u: f64, v: f64) -> (f64, f64) {
        if self.upward {
            (u, v)
        } else {
            (v, self.across(u))
        }
    }
}

/// What a bar chart is drawn to, worked out before drawing.
struct Plan<'a> {
    layout: Layout,
    margins: Margins,
    ticks: svg::Ticks,
    labels: CategoryLabels,
    /// Each category's label as written, and whether it was cut.
    shown: Vec<(String, bool)>,
    /// Of the value axis.
    title: Option<&'a str>,
}

/// The chart's coordinates, and its mesh: axes, value gridlines and tick
/// labels, category labels written across, the value axis title. An empty
/// chart keeps the axes and title only.
fn frame<'a, 'b>(
    root: &'a Root<'b>,
    plan: &Plan,
    overlay: &mut Overlay,
    empty: bool,
) -> Drawn<Chart<'a, 'b, Axis, Axis>> {
    let (layout, ticks) = (plan.layout, &plan.ticks);
    // An empty chart keeps its frame but has no values to label.
    let keys = |all: Vec<f64>| if empty { Vec::new() } else { all };
    let middles: Vec<f64> = if plan.labels.rotated {
        Vec::new()
    } else {
        (0..plan.shown.len())
            .step_by(plan.labels.every)
            .map(|i| layout.across(i as f64 + 0.5))
            .collect()
    };
    let categories = plot::ticked(0.0..layout.count, keys(middles));
    let values = plot::ticked(ticks.lo..ticks.hi, keys(ticks.values.clone()));
    let (x, y) = if layout.upward {
        (categories, values)
    } else {
        (values, categories)
    };
    let mut chart = plot::chart(root, plan.margins, x, y)?;
    let rect = plot::plot_rect(&chart);
    let title = if layout.upward {
        plot::left_title(plan.title, rect, overlay)
    } else {
        plot::bottom_title(plan.title, rect, plan.margins.bottom, overlay)
    };
    let value_label = |v: &f64| svg::tick_label(*v, ticks.step);
    let category_label = |c: &f64| {
        let i = (layout.across(*c) - 0.5).round();
        plan.shown
            .get(i as usize)
            .map_or_else(String::new, |(text, _)| plot::printable(text))
    };
    let (x_label, y_label): (Formatter, Formatter) = if layout.upward {
        (&category_label, &value_label)
    } else {
        (&value_label, &category_label)
    };
    let mut mesh = chart.configure_mesh();
    plot::style_mesh(&mut mesh);
    mesh.x_label_formatter(x_label).y_label_formatter(y_label);
    if layout.upward {
        mesh.disable_x_mesh();
        if let Some(title) = title {
            mesh.y_desc(title);
        }
    } else {
        mesh.disable_y_mesh();
        if let Some(title) = title {
            mesh.x_desc(title);
        }
    }
    mesh.draw()?;
    Ok(chart)
}

/// Writes the category labels the mesh cannot (upright ones) and gives each
/// cut label its full name as a tooltip.
fn label_categories(
    chart: &Chart<Axis, Axis>,
    root: &Root,
    overlay: &mut Overlay,
    plan: &Plan,
    categories: &[String],
) -> Drawn {
    let rect = plot::plot_rect(chart);
    let below = rect.bottom() + 2.0 * TICK;
    let labels = &plan.labels;
    for (i, (text, cut)) in plan.shown.iter().enumerate().step_by(labels.every) {
        let middle = chart.backend_coord(&plan.layout.place(i as f64 + 0.5, plan.ticks.lo));
        let (x, y) = (f64::from(middle.0), f64::from(middle.1));
        if labels.rotated {
            // Reading upwards, ending just under the axis.
            let style = plot::font(LABEL_SIZE, svg::MUTED)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            let at = (middle.0, below as i32);
            root.draw(&Text::new(plot::printable(text), at, style))?;
        }
        if !cut {
            continue;
        }
        let width = svg::text_width(text, LABEL_SIZE);
        let area = match (plan.layout.upward, labels.rotated) {
            (true, false) => Rect {
                x: x - width / 2.0,
                y: below,
                w: width,
                h: 14.0,
            },
            (true, true) => Rect {
                x: x - 7.0,
                y: below,
                w: 14.0,
                h: width,
            },
            (false, _) => Rect {
                x: rect.x - 2.0 * TICK - width,
                y: y - 7.0,
                w: width,
                h: 14.0,
            },
        };
        overlay.tip(area, &categories[i]);
    }
    Ok(())
}

/// A bar per value, and its hover target; returns how many were drawn.
fn draw_bars(
    chart: &mut Chart<Axis, Axis>,
    overlay: &mut Overlay,
    table: &BarTable,
    look: &Look,
    plan: &Plan,
    stacked: bool,
) -> Drawn<usize> {
    let (layout, lo, hi) = (plan.layout, plan.ticks.lo, plan.ticks.hi);
    let series = table.series.len().max(1);
    let inner = 0.8;
    let thickness = if stacked {
        inner
    } else {
        inner / series as f64
    };
    // A pixel between bars wide enough to spare it.
    let band_px = {
        let a = chart.backend_coord(&layout.place(0.0, lo));
        let b = chart.backend_coord(&layout.place(1.0, lo));
        f64::from((a.0 - b.0).abs().max((a.1 - b.1).abs()).max(1))
    };
    let gap = if thickness * band_px > 4.0 {
        1.0 / band_px
    } else {
        0.0
    };
    let mut stacks = vec![(0.0, 0.0); table.categories.len()];
    let mut totals = vec![0.0; table.categories.len()];
    for &(c, _, v) in &table.cells {
        totals[c] += v;
    }
    let mut bars = Vec::with_capacity(table.cells.len());
    for &(c, s, v) in &table.cells {
        let (from, to) = if stacked {
            let (neg, pos) = &mut stacks[c];
            let end = if v >= 0.0 { pos } else { neg };
            let from = *end;
            *end += v;
            (from, *end)
        } else {
            (0.0, v)
        };
        let (from, to) = (from.clamp(lo, hi), to.clamp(lo, hi));
        let offset = if stacked { 0.0 } else { thickness * s as f64 };
        let start = c as f64 + 0.1 + offset + gap / 2.0;
        let corners = [
            layout.place(start, from),
            layout.place(start + thickness - gap, to),
        ];
        let color = look.palette.get(s);
        bars.push(Rectangle::new(corners, plot::rgb(color).filled()));

        let category = &table.categories[c];
        let series_label = &table.series[s];
        let mut tip = vec![category.clone()];
        if table.series.len() > 1 {
            tip.push(series_label.clone());
        }
        tip.push(svg::with_unit(svg::exact(v), look.unit));
        if stacked && table.series.len() > 1 {
            tip.push(format!("total {}", svg::exact(totals[c])));
        }
        let pixels = corners.map(|corner| chart.backend_coord(&corner));
        let names = Some((category.as_str(), series_label.as_str()));
        overlay.bar(pixels, names, color, &tip.join(SEP));
    }
    let drawn = bars.len();
    chart.draw_series(bars)?;
    Ok(drawn)
}

/// Labels a tick of either axis.
type Formatter<'a> = &'a dyn Fn(&f64) -> String;

/// Both axes of a bar chart: positions across the categories, and values.
type Axis = plot::Ticked<plotters::coord::types::RangedCoordf64>;

/// How category names are placed along the category axis.
struct CategoryLabels {
    /// Longer labels are cut to this many pixels.
    max_width: f64,
    /// Upright under vertical bars, when they do not fit across.
    rotated: bool,
    /// Every how many categories a label is written.
    every: usize,
    /// Room they take under the plot.
    room: f64,
}

impl CategoryLabels {
    /// Labels under vertical bars: across when they fit their band,
    /// upright and cut otherwise.
    fn under(widest: f64, band: f64, height: f64) -> CategoryLabels {
        let gap = 2.0 * TICK;
        if widest <= band - 6.0 {
            return CategoryLabels {
                max_width: band - 6.0,
                rotated: false,
                every: 1,
                room: gap + 18.0,
            };
        }
        let max_width = widest.min(120.0).min(height * 0.3);
        CategoryLabels {
            max_width,
            rotated: true,
            // Upright lines of text need about 15 px between them to clear.
            every: (15.0 / band.max(0.1)).ceil().max(1.0) as usize,
            room: gap + max_width + 6.0,
        }
    }

    /// Labels left of horizontal bars.
    fn beside(max_width: f64, band: f64) -> CategoryLabels {
        CategoryLabels {
            max_width,
            rotated: false,
            every: (13.0 / band.max(0.1)).ceil().max(1.0) as usize,
            room: 0.0,
        }
    }
}
