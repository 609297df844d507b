//! The KPI card: one big number, its change against the previous period of
//! equal length, and a sparkline of the recent buckets.

use super::render::{Columns, RenderInput, Rendered, number};
use super::svg::{self, Font, Linear, Px, Rect, SEP, TimeFormat};
use std::fmt::Write;

const UP: &str = "#1a7f37";
const DOWN: &str = "#b42318";

pub(crate) fn render(input: &RenderInput, size: (u32, u32)) -> Rendered {
    let definition = input.definition;
    let unit = definition.visual.unit.as_deref();
    // Without the caller's KPI, the first metric of the first row will do.
    let from_rows = || {
        let columns = Columns::of(input);
        let metric = columns.metrics.first()?;
        number(input.rows.rows.first()?.get(metric.index))
    };
    let (value, previous, mut sparkline) = match input.kpi {
        Some(kpi) => (kpi.value, kpi.previous, kpi.sparkline.clone()),
        None => (from_rows(), None, Vec::new()),
    };
    let value = value.filter(|v| v.is_finite());
    let previous = previous.filter(|v| v.is_finite());
    sparkline.retain(|p| p.1.is_finite());
    sparkline.sort_by_key(|p| p.0);

    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let mut out = svg::open(size, "kpi", &definition.name);
    let body = Rect {
        x: 12.0,
        y: svg::TITLE_HEIGHT,
        w: w - 24.0,
        h: h - svg::TITLE_HEIGHT - 8.0,
    };
    if value.is_none() && sparkline.is_empty() {
        svg::no_data(&mut out, body);
        return Rendered {
            svg: svg::close(out),
            series: 0,
            points: 0,
        };
    }
    // The sparkline takes the lower third when there is room for it.
    let spark_height = if sparkline.is_empty() || h < 140.0 {
        0.0
    } else {
        body.h * 0.3
    };
    let number_area = body.h - spark_height;
    let shown = match value {
        Some(v) => svg::with_unit(big_number(v), unit),
        None => "—".into(),
    };
    // Bold glyphs run about 15% wider than the regular estimate.
    let fits = (body.w - 8.0) / (svg::text_width(&shown, 1.0) * 1.15).max(0.5);
    let size_px = (number_area * 0.45).min(72.0).min(fits).max(12.0);
    let baseline = body.y + number_area * 0.5 + size_px * 0.3;
    let exact = value.map(|v| svg::with_unit(svg::exact(v), unit));
    let _ = write!(
        out,
        r#"<g class="kpi-value">{}"#,
        svg::title(exact.as_deref().unwrap_or("no value"))
    );
    let big = Font::new(size_px).anchor("middle").bold();
    svg::text(&mut out, w / 2.0, baseline, big, "kpi-number", 0.0, &shown);
    out.push_str("</g>");

    let change = Change::between(value, previous);
    let _ = write!(
        out,
        r#"<g class="kpi-change {}">{}"#,
        change.class,
        svg::title(&change.detail(previous, unit))
    );
    let font = Font::new(13.0).anchor("middle").fill(change.color);
    let y = baseline + 22.0;
    svg::text(
        &mut out,
        w / 2.0,
        y,
        font,
        "kpi-change-text",
        0.0,
        &change.text,
    );
    out.push_str("</g>");

    if spark_height > 0.0 {
        let area = Rect {
            x: body.x,
            y: body.bottom() - spark_height + 6.0,
            w: body.w,
            h: spark_height - 6.0,
        };
        let palette = svg::Palette::new(&definition.visual.colors);
        draw_sparkline(&mut out, area, &sparkline, unit, palette.get(0));
    }
    Rendered {
        svg: svg::close(out),
        series: 1,
        points: sparkline.len().max(usize::from(value.is_some())),
    }
}

/// The big number: grouped thousands, fewer decimals as it grows.
fn big_number(v: f64) -> String {
    let decimals = match v.abs() {
        a if a >= 1000.0 => 0,
        a if a >= 100.0 => 1,
        _ => 2,
    };
    svg::fixed(v, decimals)
}

/// How the value moved since the previous period.
struct Change {
    text: String,
    class: &'static str,
    color: &'static str,
}

impl Change {
    fn between(value: Option<f64>, previous: Option<f64>) -> Change {
        let (Some(v), Some(p)) = (value, previous) else {
            return Change {
                text: "no previous data".into(),
                class: "none",
                color: svg::MUTED,
            };
        };
        let up = |text: String| Change {
            text,
            class: "up",
            color: UP,
        };
        let down = |text: String| Change {
            text,
            class: "down",
            color: DOWN,
        };
        if v == p {
            return Change {
                text: "no change vs previous period".into(),
                class: "flat",
                color: svg::MUTED,
            };
        }
        if p == 0.0 {
            return if v > 0.0 {
                up("▲ up from 0 in previous period".into())
            } else {
                down("▼ down from 0 in previous period".into())
            };
        }
        let percent = (v - p) / p.abs() * 100.0;
        let text = format!("{}% vs previous period", svg::fixed(percent.abs(), 1));
        if percent > 0.0 {
            up(format!("▲ {text}"))
        } else {
            down(format!("▼ {text}"))
        }
    }

    /// The tooltip: the previous value and the difference.
    fn detail(&self, previous: Option<f64>, unit: Option<&str>) -> String {
        match previous {
            Some(p) => format!(
                "{}{SEP}previous period: {}",
                self.text,
                svg::with_unit(svg::exact(p), unit)
            ),
            None => self.text.clone(),
        }
    }
}

/// A line of the recent buckets over a light area, each point hoverable.
fn draw_sparkline(
    out: &mut String,
    area: Rect,
    points: &[(i64, f64)],
    unit: Option<&str>,
    color: &str,
) {
    let (Some(&(t0, _)), Some(&(t1, _))) = (points.first(), points.last()) else {
        return;
    };
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let x = Linear {
        d0: t0 as f64,
        d1: t1 as f64,
        r0: area.x,
        r1: area.right(),
    };
    let y = Linear {
        d0: lo,
        d1: hi,
        r0: area.bottom() - 2.0,
        r1: area.y + 2.0,
    };
    let coords: Vec<String> = points
        .iter()
        .map(|&(t, v)| format!("{},{}", Px(x.map(t as f64)), Px(y.map(v))))
        .collect();
    let path = coords.join(" ");
    let _ = write!(
        out,
        r#"<g class="sparkline"><polygon fill="{color}" fill-opacity="0.12" stroke="none" points="{},{} {path} {},{}"/>"#,
        Px(x.map(t0 as f64)),
        Px(area.bottom()),
        Px(x.map(t1 as f64)),
        Px(area.bottom())
    );
    let _ = write!(
        out,
        r#"<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>"#
    );
    let format = TimeFormat::for_range(t0, t1, None);
    let opacity = if points.len() as f64 <= area.w / 8.0 {
        1
    } else {
        0
    };
    for &(t, v) in points {
        let tip = format!(
            "{}{SEP}{}",
            format.format(t),
            svg::with_unit(svg::exact(v), unit)
        );
        let _ = write!(
            out,
            r#"<circle class="point" cx="{}" cy="{}" r="2.5" fill="{color}" fill-opacity="{opacity}">{}</circle>"#,
            Px(x.map(t as f64)),
            Px(y.map(v)),
            svg::title(&tip)
        );
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::super::definition::{Aggregate, ChartType};
    use super::super::render::tests::{
        assert_well_formed, dataset, definition, elements, metric, rows,
    };
    use super::super::render::{Kpi, RenderInput, render_svg};
    use super::*;

    fn card(kpi: &Kpi) -> Rendered {
        let mut definition = definition(
            ChartType::Kpi,
            "purchases_enriched",
            vec![metric(Aggregate::Sum, Some("total_purchase"))],
            &[],
            None,
        );
        definition.visual.unit = Some("USD".into());
        let dataset = dataset("purchases_enriched");
        let data = rows(&["sum_total_purchase"], vec![]);
        render_svg(&RenderInput {
            definition: &definition,
            dataset: &dataset,
            rows: &data,
            kpi: Some(kpi),
            now_ms: 0,
            size: (320, 200),
            tile_url: None,
        })
        .expect("renders")
    }

    #[test]
    fn the_big_number_has_thousands_separators_and_the_unit() {
        let chart = card(&Kpi {
            value: Some(1_234_567.891),
            previous: Some(1_000_000.0),
            sparkline: vec![],
        });
        assert!(chart.svg.contains(">1,234,568 USD</text>"), "{}", chart.svg);
        assert!(chart.svg.contains("<title>1,234,567.891 USD</title>"));
        assert!(chart.svg.contains("▲ 23.5% vs previous period"));
        assert_well_formed(&chart.svg);
    }

    #[test]
    fn a_fall_and_a_missing_previous_period_are_said_plainly() {
        let down = card(&Kpi {
            value: Some(90.0),
            previous: Some(120.0),
            sparkline: vec![],
        });
        assert!(down.svg.contains("▼ 25% vs previous period"));
        assert_eq!(elements(&down.svg, "g", "down").len(), 1);
        let first = card(&Kpi {
            value: Some(90.0),
            previous: None,
            sparkline: vec![],
        });
        assert!(first.svg.contains("no previous data"));
    }

    #[test]
    fn the_sparkline_draws_each_bucket_with_its_value() {
        let t0 = 1_764_158_400_000;
        let chart = card(&Kpi {
            value: Some(12.0),
            previous: Some(12.0),
            sparkline: vec![(t0, 3.0), (t0 + 60_000, f64::NAN), (t0 + 120_000, 12.0)],
        });
        assert_eq!(elements(&chart.svg, "polyline", "line").len(), 1);
        assert_eq!(elements(&chart.svg, "circle", "point").len(), 2);
        assert!(chart.svg.contains("<title>12:02:00 UTC · 12 USD</title>"));
        assert!(chart.svg.contains("no change vs previous period"));
        assert_eq!(chart.points, 2);
    }

    #[test]
    fn no_value_says_there_is_no_data() {
        let chart = card(&Kpi::default());
        assert!(chart.svg.contains(svg::NO_DATA));
        assert_eq!((chart.series, chart.points), (0, 0));
    }
}
