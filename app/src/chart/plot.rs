//! The plot of the cartesian charts (lines, areas, bars, histograms), drawn
//! with plotters: frame, axes, tick labels, gridlines, axis titles, the
//! marks and threshold lines.
//!
//! plotters writes a whole SVG document and no `<title>`, so only the body
//! of its document is kept, under the chart's own root (which carries the
//! chart's title and legend). An [`Overlay`] of transparent hit targets,
//! placed with the chart's own coordinate mapping, follows it: hovering a
//! mark (or, on a line chart, an instant) shows its exact value.

use super::render::{RenderError, Result, ensure_font};
use super::svg::{self, LABEL_SIZE, Rect};
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::{Debug, Write};
use std::ops::Range;

/// The whole picture, in pixels (plotters' backend coordinates).
pub(crate) type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// A chart plotters draws into, with its coordinate system.
pub(crate) type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;
pub(crate) type Drawn<T = ()> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// The family `ensure_font` registers the label font under.
pub(crate) const FAMILY: &str = "sans-serif";
/// plotters writes a text's size divided by this as its `font-size`.
const FONT_SCALE: f64 = 1.24;
/// The plot keeps this far from the picture's right edge, so the last
/// tick label has room.
const RIGHT: f64 = 18.0;
/// Between the legend (or title) and the plot.
const GAP_ABOVE: f64 = 8.0;
/// Keeps the rotated axis title off the picture's left edge.
const LEFT_EDGE: f64 = 4.0;
/// Tick marks; labels sit twice this far from their axis.
pub(crate) const TICK: f64 = 4.0;
/// Threshold lines, thinner than the series lines so those stay the only
/// strokes of `SERIES_STROKE_WIDTH`.
const THRESHOLD_WIDTH: u32 = 1;

/// A `#rrggbb` colour for plotters.
pub(crate) fn rgb(hex: &str) -> RGBColor {
    let (r, g, b) = svg::parse_hex(hex).unwrap_or((0, 0, 0));
    RGBColor(r, g, b)
}

/// A plotters text style whose SVG `font-size` is `size`.
pub(crate) fn font(size: f64, color: &str) -> TextStyle<'static> {
    (FAMILY, size * FONT_SCALE).into_font().color(&rgb(color))
}

/// Text for plotters. It escapes markup itself but passes control
/// characters on, and most of those make the document unreadable as XML.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// An axis whose ticks are given (round values, round instants, category
/// middles) rather than chosen by plotters; it maps values as plotters'
/// own axis `R` does, and its labels come from the mesh's formatters.
pub(crate) struct Ticked<R: Ranged> {
    inner: R,
    ticks: Vec<R::ValueType>,
}

/// An axis over `range` with `ticks` (none leaves the axis unlabelled).
pub(crate) fn ticked<A: AsRangedCoord>(range: A, ticks: Vec<A::Value>) -> Ticked<A::CoordDescType> {
    Ticked {
        inner: range.into(),
        ticks,
    }
}

impl<R: Ranged> Ranged for Ticked<R>
where
    R::ValueType: Clone + Debug,
{
    type FormatOption = DefaultFormatting;
    type ValueType = R::ValueType;

    fn map(&self, value: &R::ValueType, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    /// The ticks as the mesh's bold lines and labels; no light lines.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<R::ValueType> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<R::ValueType> {
        self.inner.range()
    }
}

/// Room around the plot, in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Margins {
    /// Above: the chart's title and legend.
    pub top: f64,
    /// Left: tick or category labels and the axis title.
    pub left: f64,
    /// Under: tick or category labels and the axis title.
    pub bottom: f64,
    /// Under those: a note on what was left out.
    pub note: f64,
}

impl Margins {
    /// Shrunk where a small picture has no room for them, so the plot
    /// keeps at least 10 px each way.
    pub fn fit(self, size: (u32, u32)) -> Margins {
        let (w, h) = (f64::from(size.0), f64::from(size.1));
        let left = self.left.min(w - RIGHT - 10.0 - LEFT_EDGE).max(0.0);
        let room = (h - GAP_ABOVE - 10.0).max(0.0);
        let note = self.note.min(room);
        let bottom = self.bottom.min(room - note);
        let top = self.top.min(room - note - bottom);
        Margins {
            top,
            left,
            bottom,
            note,
        }
    }

    /// Where the plot will be.
    pub fn plot(&self, size: (u32, u32)) -> Rect {
        let (w, h) = (f64::from(size.0), f64::from(size.1));
        let x = LEFT_EDGE + self.left;
        let y = self.top + GAP_ABOVE;
        Rect {
            x,
            y,
            w: w - x - RIGHT,
            h: h - y - self.bottom - self.note,
        }
    }
}

/// Draws with plotters onto a picture of `size`, then returns the body of
/// what it wrote as one group.
pub(crate) fn draw(size: (u32, u32), paint: impl FnOnce(&Root) -> Drawn) -> Result<String> {
    ensure_font()?;
    let mut document = String::with_capacity(64 * 1024);
    {
        let root = SVGBackend::with_string(&mut document, size).into_drawing_area();
        paint(&root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    // The document is the root `<svg …>`, one element a line, `</svg>`.
    let body = document
        .split_once(">\n")
        .map_or("", |(_, rest)| rest)
        .trim_end()
        .trim_end_matches("</svg>");
    // Line breaks part its tags and wrap text; markup in text is escaped,
    // so a `>` or `<` beside a line break is always plotters' own.
    let mut plot = String::with_capacity(body.len() + 24);
    plot.push_str(r#"<g class="plot">"#);
    let bytes = body.as_bytes();
    let mut kept = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let between_tags =
            b == b'\n' && ((at > 0 && bytes[at - 1] == b'>') || bytes.get(at + 1) == Some(&b'<'));
        if between_tags {
            plot.push_str(&body[kept..at]);
            kept = at + 1;
        }
    }
    plot.push_str(&body[kept..]);
    plot.push_str("</g>");
    Ok(plot)
}

fn draw_error(error: DrawingAreaErrorKind<std::io::Error>) -> RenderError {
    RenderError::Draw(error.to_string())
}

/// Builds the chart's coordinates inside `margins`.
pub(crate) fn chart<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &'a Root<'b>,
    margins: Margins,
    x: X,
    y: Y,
) -> Drawn<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>> {
    let px = |v: f64| v.round().max(0.0) as u32;
    ChartBuilder::on(root)
        .margin_top(px(margins.top + GAP_ABOVE))
        .margin_left(px(LEFT_EDGE))
        .margin_right(px(RIGHT))
        .margin_bottom(px(margins.note))
        .x_label_area_size(px(margins.bottom))
        .y_label_area_size(px(margins.left))
        .build_cartesian_2d(x, y)
}

/// The looks every plot shares: grey axes, labels and titles, light
/// gridlines, short tick marks.
pub(crate) fn style_mesh<X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &mut MeshStyle<'_, '_, X, Y, DB>,
) {
    mesh.axis_style(rgb(svg::AXIS))
        .bold_line_style(rgb(svg::GRID))
        .label_style(font(LABEL_SIZE, svg::MUTED))
        .axis_desc_style(font(LABEL_SIZE, svg::MUTED))
        .set_all_tick_mark_size(TICK as i32);
}

/// The plot's rectangle as plotters laid it out.
pub(crate) fn plot_rect<X: Ranged, Y: Ranged>(chart: &Chart<X, Y>) -> Rect {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    Rect {
        x: f64::from(xs.start),
        y: f64::from(ys.start),
        w: f64::from(xs.end - xs.start),
        h: f64::from(ys.end - ys.start),
    }
}

/// The title of the axis left of `plot`, cut to the plot's height.
pub(crate) fn left_title(title: Option<&str>, plot: Rect, overlay: &mut Overlay) -> Option<String> {
    fitted(title, plot.h, overlay, |length| Rect {
        x: 0.0,
        y: plot.y + (plot.h - length) / 2.0,
        w: 16.0,
        h: length,
    })
}

/// The title of the axis under `plot`, at the bottom of the `room` there,
/// cut to the plot's width.
pub(crate) fn bottom_title(
    title: Option<&str>,
    plot: Rect,
    room: f64,
    overlay: &mut Overlay,
) -> Option<String> {
    fitted(title, plot.w, overlay, |length| Rect {
        x: plot.x + (plot.w - length) / 2.0,
        y: plot.bottom() + room - 16.0,
        w: length,
        h: 16.0,
    })
}

/// An axis title cut to `length`; when cut, its full text becomes the
/// tooltip of where it is written (`place`, given the cut text's length).
fn fitted(
    title: Option<&str>,
    length: f64,
    overlay: &mut Overlay,
    place: impl FnOnce(f64) -> Rect,
) -> Option<String> {
    let title = title?;
    let (shown, cut) = svg::fit(title, length, LABEL_SIZE);
    if cut {
        overlay.tip(place(svg::text_width(&shown, LABEL_SIZE)), title);
    }
    Some(printable(&shown))
}

/// The note an empty chart shows in the middle of its plot.
pub(crate) fn no_data(root: &Root, plot: Rect) -> Drawn {
    let style = font(13.0, svg::MUTED).pos(Pos::new(HPos::Center, VPos::Center));
    let middle = (
        (plot.x + plot.w / 2.0) as i32,
        (plot.y + plot.h / 2.0) as i32,
    );
    root.draw(&Text::new(svg::NO_DATA, middle, style))
}

/// A dashed threshold line between two points of the plot, its value
/// beside it, and a hover target that names it.
pub(crate) fn threshold<X, Y>(
    chart: &mut Chart<X, Y>,
    root: &Root,
    overlay: &mut Overlay,
    ends: [(X::ValueType, Y::ValueType); 2],
    value: &str,
) -> Drawn
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let style = rgb(svg::THRESHOLD).stroke_width(THRESHOLD_WIDTH);
    let (a, b) = (chart.backend_coord(&ends[0]), chart.backend_coord(&ends[1]));
    chart.draw_series(DashedLineSeries::new(ends, 6, 4, style))?;
    let label = font(10.0, svg::THRESHOLD);
    if a.1 == b.1 {
        // Across the plot: the value sits above the line's right end.
        let at = (a.0.max(b.0) - 2, a.1 - 3);
        let style = label.pos(Pos::new(HPos::Right, VPos::Bottom));
        root.draw(&Text::new(printable(value), at, style))?;
    } else {
        // Up the plot: the value sits right of the line's top.
        let at = (a.0 + 3, a.1.min(b.1) + 2);
        let style = label.pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(printable(value), at, style))?;
    }
    overlay.threshold(a, b, &format!("Threshold: {value}"));
    Ok(())
}

/// Transparent hit targets over the drawn marks, each with a `<title>`
/// the browser shows on hover.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    out: String,
}

impl Overlay {
    /// A `rect.instant`: a strip of the plot whose tooltip lists the values
    /// at the instants under it, then a `line.crosshair` at `x`, unstroked:
    /// the page's CSS strokes the one after the strip under the pointer.
    pub fn instant(&mut self, area: Rect, x: f64, tip: &str) {
        let _ = write!(
            self.out,
            r##"<rect class="instant" x="{}" y="{}" width="{}" height="{}" fill="#ffffff" fill-opacity="0"><title>"##,
            svg::Px(area.x),
            svg::Px(area.y),
            svg::Px(area.w),
            svg::Px(area.h),
        );
        crate::text::escape_into(&mut self.out, tip);
        let _ = write!(
            self.out,
            r#"</title></rect><line class="crosshair" x1="{x}" y1="{}" x2="{x}" y2="{}"/>"#,
            svg::Px(area.y),
            svg::Px(area.bottom()),
            x = svg::Px(x),
        );
    }

    /// A `rect.bar` over a bar between two corners; bar charts name its
    /// category and series, histograms do not.
    pub fn bar(
        &mut self,
        corners: [(i32, i32); 2],
        names: Option<(&str, &str)>,
        color: &str,
        tip: &str,
    ) {
        let [a, b] = corners;
        self.out.push_str(r#"<rect class="bar""#);
        if let Some((category, series)) = names {
            let _ = write!(
                self.out,
                r#" data-category="{}" data-series="{}""#,
                svg::escape(category),
                svg::escape(series)
            );
        }
        let _ = write!(
            self.out,
            r#" x="{}" y="{}" width="{}" height="{}" fill="{color}" fill-opacity="0">{}</rect>"#,
            a.0.min(b.0),
            a.1.min(b.1),
            (a.0 - b.0).abs(),
            (a.1 - b.1).abs(),
            svg::title(tip)
        );
    }

    /// A wide transparent `line.threshold` along a threshold.
    fn threshold(&mut self, a: (i32, i32), b: (i32, i32), tip: &str) {
        let _ = write!(
            self.out,
            r#"<line class="threshold" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-opacity="0" stroke-width="8">{}</line>"#,
            a.0,
            a.1,
            b.0,
            b.1,
            svg::THRESHOLD,
            svg::title(tip)
        );
    }

    /// A `rect.label-tip` over a label that was cut, with its full text.
    pub fn tip(&mut self, area: Rect, full: &str) {
        let _ = write!(
            self.out,
            r##"<rect class="label-tip" x="{}" y="{}" width="{}" height="{}" fill="#ffffff" fill-opacity="0">{}</rect>"##,
            svg::Px(area.x),
            svg::Px(area.y),
            svg::Px(area.w),
            svg::Px(area.h),
            svg::title(full)
        );
    }

    /// The targets as one group, drawn last so they are on top.
    pub fn finish(self, out: &mut String) {
        out.push_str(r#"<g class="hover">"#);
        out.push_str(&self.out);
        out.push_str("</g>");
    }
}
