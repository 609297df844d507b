//! Histograms: a bar over each bucket's range of the measured value, as
//! tall as its count; each bar's tooltip reads `start – end unit: count`.

use super::plot::{self, Margins, Overlay};
use super::render::{
    Look, RenderInput, Rendered, Result, axis_title, extent, left_margin, number, value_ticks,
};
use super::svg;
use plotters::prelude::*;

/// Room under the plot for the tick labels and the axis title.
const BOTTOM: f64 = 44.0;

pub(crate) fn render(input: &RenderInput, size: (u32, u32)) -> Result<Rendered> {
    let definition = input.definition;
    let column = |name: &str| input.rows.columns.iter().position(|c| c == name);
    let buckets: Vec<(f64, f64, f64)> = match (
        column("bucket_start"),
        column("bucket_end"),
        column("count"),
    ) {
        (Some(start), Some(end), Some(count)) => input
            .rows
            .rows
            .iter()
            .filter_map(|row| {
                let (a, b) = (number(row.get(start))?, number(row.get(end))?);
                Some((a.min(b), a.max(b), number(row.get(count))?))
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut look = Look::of(definition, "histogram", Some("count"));
    let metric = definition.metrics.first();
    let measured = metric.map(|m| m.column.clone().unwrap_or_else(|| m.output_name()));
    let x_title = axis_title(measured.as_deref(), look.unit);
    // Thresholds are levels of the measured value, so they mark the x axis.
    let thresholds = std::mem::take(&mut look.thresholds);

    let mut out = svg::open(size, "histogram", look.name);
    let title = look.value_title.as_deref();
    let ticks = value_ticks(
        extent(buckets.iter().map(|b| b.2)),
        &look,
        true,
        f64::from(size.1) - 90.0,
    );
    let margins = Margins {
        top: svg::TITLE_HEIGHT,
        left: left_margin(&ticks, title),
        bottom: BOTTOM,
        note: 0.0,
    }
    .fit(size);
    let bounds = margins.plot(size);
    let edges = buckets.iter().flat_map(|b| [b.0, b.1]);
    let (lo, hi) = extent(edges.chain(thresholds.iter().copied())).unwrap_or((0.0, 1.0));
    // One value everywhere makes zero-width buckets: give them a width.
    let pad = if hi > lo {
        0.0
    } else {
        lo.abs().max(1.0) * 0.05
    };
    let (d0, d1) = (lo - pad, hi + pad);
    let x_ticks = svg::nice_ticks(d0, d1, (bounds.w / 80.0).max(2.0) as usize);

    let empty = buckets.is_empty();
    let mut overlay = Overlay::default();
    let plot = plot::draw(size, |root| {
        // An empty chart keeps its frame but has no values to label.
        let keys = |all: Vec<f64>| if empty { Vec::new() } else { all };
        let inside = x_ticks
            .values
            .iter()
            .copied()
            .filter(|v| (d0..=d1).contains(v));
        let x = plot::ticked(d0..d1, keys(inside.collect()));
        let y = plot::ticked(ticks.lo..ticks.hi, keys(ticks.values.clone()));
        let mut chart = plot::chart(root, margins, x, y)?;
        let rect = plot::plot_rect(&chart);
        let y_title = plot::left_title(title, rect, &mut overlay);
        let x_title = plot::bottom_title(x_title.as_deref(), rect, margins.bottom, &mut overlay);
        let x_label = |v: &f64| svg::tick_label(*v, x_ticks.step);
        let y_label = |v: &f64| svg::tick_label(*v, ticks.step);
        let mut mesh = chart.configure_mesh();
        plot::style_mesh(&mut mesh);
        mesh.disable_x_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label);
        if let Some(title) = y_title {
            mesh.y_desc(title);
        }
        if let Some(title) = x_title {
            mesh.x_desc(title);
        }
        mesh.draw()?;
        if empty {
            return plot::no_data(root, rect);
        }

        let color = look.palette.get(0);
        let per_pixel = (d1 - d0) / rect.w.max(1.0);
        let zero = 0f64.clamp(ticks.lo, ticks.hi);
        for &(start, end, count) in &buckets {
            let width = (end - start) / per_pixel;
            // Narrow buckets are drawn 2 px wide, so none vanishes.
            let (x0, x1) = if width < 2.0 {
                let middle = (start + end) / 2.0;
                (middle - per_pixel, middle + per_pixel)
            } else {
                (start, end)
            };
            let corners = [(x0, zero), (x1, count.clamp(ticks.lo, ticks.hi))];
            chart.draw_series([Rectangle::new(corners, plot::rgb(color).filled())])?;
            // A white edge parts wide buckets; narrow ones would vanish under it.
            if width > 4.0 {
                chart.draw_series([Rectangle::new(corners, WHITE.stroke_width(1))])?;
            }
            let range = format!("{} – {}", svg::exact(start), svg::exact(end));
            let tip = format!(
                "{}: {}",
                svg::with_unit(range, look.unit),
                svg::exact(count)
            );
            let pixels = corners.map(|corner| chart.backend_coord(&corner));
            overlay.bar(pixels, None, color, &tip);
        }
        for &t in &thresholds {
            let value = svg::with_unit(svg::exact(t), look.unit);
            let ends = [(t, ticks.hi), (t, ticks.lo)];
            plot::threshold(&mut chart, root, &mut overlay, ends, &value)?;
        }
        Ok(())
    })?;
    out.push_str(&plot);
    overlay.finish(&mut out);
    let series = usize::from(!empty);
    Ok(Rendered {
        svg: svg::close(out),
        series,
        points: buckets.len(),
    })
}
