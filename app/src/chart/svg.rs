//! Shared pieces of the chart SVG: escaping, number and time formats, nice
//! ticks, text width estimates, the palette, and the frame every chart
//! starts from (root element, title, legend, "no data" note).

use std::fmt::{self, Write};

/// DejaVu first: the PNG export has it, and text widths are estimated for it.
pub const FONT_FAMILY: &str = "DejaVu Sans, Verdana, sans-serif";
pub const INK: &str = "#1f2933";
pub const MUTED: &str = "#616e7c";
pub const GRID: &str = "#e4e7eb";
pub const AXIS: &str = "#9aa5b1";
pub const THRESHOLD: &str = "#b42318";
pub const NO_DATA: &str = "No data in this time range";
/// Separates the parts of a series label and of a tooltip.
pub const SEP: &str = " · ";

/// Colours that stay distinct for up to ten series on a white background.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Smallest and largest drawing, in pixels: tiny boxes cannot hold a frame
/// and huge ones would exhaust memory when rasterized.
const MIN_SIZE: (u32, u32) = (120, 80);
const MAX_SIDE: u32 = 4096;

/// `size` brought into the range a chart can be drawn at.
pub fn clamp_size(size: (u32, u32)) -> (u32, u32) {
    (
        size.0.clamp(MIN_SIZE.0, MAX_SIDE),
        size.1.clamp(MIN_SIZE.1, MAX_SIDE),
    )
}

pub use crate::text::escape;

/// A coordinate: at most two decimals, no trailing zeros, 0 for non-finite.
#[derive(Clone, Copy)]
pub struct Px(pub f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() {
            (self.0 * 100.0).round() / 100.0
        } else {
            0.0
        };
        // `-0` and float noise print as plain numbers.
        let v = if v == 0.0 { 0.0 } else { v };
        write!(f, "{v}")
    }
}

/// A `<title>` element: the browser shows it as the tooltip of its parent.
pub fn title(text: &str) -> String {
    format!("<title>{}</title>", escape(text))
}

// ---------------------------------------------------------------- numbers

/// Inserts thousands separators into a plain decimal such as `-12345.5`.
fn group_digits(plain: String) -> String {
    let (sign, rest) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (int, frac) = match rest.find('.') {
        Some(dot) => rest.split_at(dot),
        None => (rest, ""),
    };
    if int.len() <= 3 {
        return plain;
    }
    let mut out = String::with_capacity(plain.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(frac);
    out
}

fn trim_zeros(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".into() } else { s }
}

/// `v` with `decimals` places at most, trailing zeros dropped, grouped.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    if v.abs() >= 1e15 {
        return format!("{v:e}");
    }
    group_digits(trim_zeros(format!("{v:.decimals$}")))
}

fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "∞".into()
    } else {
        "-∞".into()
    }
}

/// The value as stored, for tooltips: every digit up to six decimals.
pub fn exact(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    if v != 0.0 && (v.abs() >= 1e15 || v.abs() < 1e-6) {
        return format!("{v:e}");
    }
    // Below 1e9 a double is finer than a millionth, so rounding it to six
    // decimals gives its shortest form whenever that has six or fewer.
    if v.abs() < 1e9 {
        return fixed(v, 6);
    }
    let shortest = format!("{v}");
    let decimals = shortest.find('.').map_or(0, |dot| shortest.len() - dot - 1);
    if decimals > 6 {
        fixed(v, 6)
    } else {
        group_digits(trim_zeros(shortest))
    }
}

/// A value for machine readers (data attributes): plain, no grouping.
pub fn plain(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// `text` followed by the unit, if any.
pub fn with_unit(text: String, unit: Option<&str>) -> String {
    match unit.map(str::trim).filter(|u| !u.is_empty()) {
        Some(unit) => format!("{text} {unit}"),
        None => text,
    }
}

/// An axis label: as many decimals as the tick step needs; millions and up
/// shortened (`2.5M`) so labels stay narrow.
pub fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
    let decimals = |step: f64| -> usize {
        if step > 0.0 && step.is_finite() {
            (-step.log10().floor()).clamp(0.0, 10.0) as usize
        } else {
            2
        }
    };
    for (scale, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M")] {
        if v.abs() >= scale && step.abs() >= scale / 10.0 && v.abs() < 1e15 {
            return format!("{}{suffix}", fixed(v / scale, decimals(step / scale)));
        }
    }
    fixed(v, decimals(step))
}

/// Evenly spaced round values covering a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub values: Vec<f64>,
}

/// Round ticks (steps of 1, 2 or 5 times a power of ten), about `target` of
/// them, whose first and last enclose `min` and `max`.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Ticks {
    let (mut min, mut max) = if min.is_finite() && max.is_finite() {
        (min.min(max), min.max(max))
    } else {
        (0.0, 1.0)
    };
    if min == max {
        let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        min -= pad;
        max += pad;
    }
    let span = max - min;
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n < 1.5 => magnitude,
        n if n < 3.0 => 2.0 * magnitude,
        n if n < 7.0 => 5.0 * magnitude,
        _ => 10.0 * magnitude,
    };
    let (lo, hi) = ((min / step).floor() * step, (max / step).ceil() * step);
    let count = ((hi - lo) / step).round();
    if !(step.is_finite() && step > 0.0 && lo.is_finite() && hi.is_finite() && count <= 1000.0) {
        // Spans beyond f64 (or below its resolution): the ends alone.
        return Ticks {
            lo: min,
            hi: max,
            step: (max / 2.0 - min / 2.0).abs(),
            values: vec![min, max],
        };
    }
    let values = (0..=count as usize).map(|i| lo + i as f64 * step).collect();
    Ticks {
        lo,
        hi,
        step,
        values,
    }
}

/// Maps a domain onto a pixel range; a zero-width domain maps to the middle.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Linear {
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 || !span.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

// ------------------------------------------------------------------- time

/// `(year, month, day, hour, minute, second)` in UTC for epoch milliseconds.
pub fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let second_of_day = ms.rem_euclid(86_400_000) / 1000;
    // Days since 1970-01-01 to a Gregorian date, counting 400-year eras
    // from 0000-03-01 so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (second_of_day / 3600) as u32,
        (second_of_day / 60 % 60) as u32,
        (second_of_day % 60) as u32,
    )
}

/// `HH:MM:SS`, UTC.
pub fn utc_clock(ms: i64) -> String {
    let mut clock = TimeFormat::Clock.format(ms);
    clock.truncate("HH:MM:SS".len());
    clock
}

/// `YYYY-MM-DD`, UTC.
pub fn utc_date(ms: i64) -> String {
    TimeFormat::Date.format(ms)
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_datetime(ms: i64) -> String {
    TimeFormat::DateTime.format(ms)
}

/// How a chart names its instants in tooltips: the clock alone when all of
/// them fall on one UTC day, with the date otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeFormat {
    Clock,
    DateTime,
    Date,
}

impl TimeFormat {
    pub fn for_range(first_ms: i64, last_ms: i64, grain_ms: Option<i64>) -> TimeFormat {
        if grain_ms.is_some_and(|g| g >= 86_400_000) {
            TimeFormat::Date
        } else if first_ms.div_euclid(86_400_000) == last_ms.div_euclid(86_400_000) {
            TimeFormat::Clock
        } else {
            TimeFormat::DateTime
        }
    }

    pub fn format(self, ms: i64) -> String {
        let mut out = String::with_capacity(23);
        self.write(&mut out, ms);
        out
    }

    /// [`TimeFormat::format`], appended to `out`.
    pub fn write(self, out: &mut String, ms: i64) {
        let (y, mo, d, h, m, s) = civil(ms);
        if self != TimeFormat::Clock {
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
        }
        if self == TimeFormat::DateTime {
            out.push(' ');
        }
        if self != TimeFormat::Date {
            let _ = write!(out, "{h:02}:{m:02}:{s:02} UTC");
        }
    }
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const TIME_STEPS: [i64; 24] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    90 * DAY,
    365 * DAY,
];

/// Round instants (whole minutes, hours, days in UTC) across `[t0, t1]`,
/// about `target` of them, each with its axis label.
pub fn time_ticks(t0: i64, t1: i64, target: usize) -> Vec<(i64, String)> {
    let span = t1.saturating_sub(t0).max(1);
    let wanted = span / target.max(1) as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|&s| s >= wanted)
        .unwrap_or(365 * DAY);
    let one_day = t0.div_euclid(DAY) == t1.div_euclid(DAY);
    let label = |t: i64| -> String {
        let (_, mo, d, h, m, s) = civil(t);
        if step >= DAY {
            utc_date(t)
        } else if step < MINUTE {
            format!("{h:02}:{m:02}:{s:02}")
        } else if one_day || (h, m) != (0, 0) {
            format!("{h:02}:{m:02}")
        } else {
            // Midnight on a multi-day axis says which day begins.
            format!("{mo:02}-{d:02}")
        }
    };
    let first = t0
        .div_euclid(step)
        .saturating_add(i64::from(t0.rem_euclid(step) != 0))
        * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= t1 && ticks.len() < 200 {
        ticks.push((t, label(t)));
        t = t.saturating_add(step);
    }
    ticks
}

// ------------------------------------------------------------------- text

/// Width of `text` in DejaVu Sans at `size` px, from rough per-character
/// advances; enough to lay out labels and decide where to cut them.
pub fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '!' | '|' | 'I' => 0.3,
            ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.4,
            'm' | 'w' | 'M' | 'W' | '@' | '%' => 0.92,
            'A'..='Z' | '#' | '&' | '…' => 0.74,
            '0'..='9' => 0.64,
            c if c.is_ascii() => 0.6,
            c if (c as u32) >= 0x2E80 => 1.0,
            _ => 0.75,
        })
        .sum();
    em * size
}

/// `text` cut with an ellipsis to fit `max_width`; whether it was cut.
pub fn fit(text: &str, max_width: f64, size: f64) -> (String, bool) {
    if text_width(text, size) <= max_width {
        return (text.to_string(), false);
    }
    let budget = max_width - text_width("…", size);
    let mut used = 0.0;
    let mut out = String::new();
    for c in text.chars() {
        let w = text_width(c.encode_utf8(&mut [0; 4]), size);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    (out, true)
}

/// How a text is placed: size, anchor, colour and optional extras.
#[derive(Clone, Copy)]
pub struct Font {
    pub size: f64,
    pub anchor: &'static str,
    pub fill: &'static str,
    pub weight: &'static str,
    /// A white outline that keeps the text readable over lines and bars.
    pub halo: bool,
}

impl Font {
    pub const fn new(size: f64) -> Font {
        Font {
            size,
            anchor: "start",
            fill: INK,
            weight: "normal",
            halo: false,
        }
    }

    pub const fn anchor(mut self, anchor: &'static str) -> Font {
        self.anchor = anchor;
        self
    }

    pub const fn fill(mut self, fill: &'static str) -> Font {
        self.fill = fill;
        self
    }

    pub const fn bold(mut self) -> Font {
        self.weight = "bold";
        self
    }

    pub const fn halo(mut self) -> Font {
        self.halo = true;
        self
    }
}

/// A `<text>` at `(x, y)` (baseline), rotated by `rotate` degrees about
/// that point; `class` names it for pages and tests.
pub fn text(out: &mut String, x: f64, y: f64, font: Font, class: &str, rotate: f64, content: &str) {
    let _ = write!(
        out,
        r#"<text class="{class}" x="{}" y="{}" font-size="{}" text-anchor="{}" fill="{}""#,
        Px(x),
        Px(y),
        Px(font.size),
        font.anchor,
        font.fill,
    );
    if font.weight != "normal" {
        let _ = write!(out, r#" font-weight="{}""#, font.weight);
    }
    if font.halo {
        out.push_str(
            r##" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke""##,
        );
    }
    if rotate != 0.0 {
        let _ = write!(
            out,
            r#" transform="rotate({} {} {})""#,
            Px(rotate),
            Px(x),
            Px(y)
        );
    }
    let _ = write!(out, ">{}</text>", escape(content));
}

/// A text cut to `max_width`; when cut, the full text is its tooltip.
#[allow(clippy::too_many_arguments)]
pub fn fitted_text(
    out: &mut String,
    x: f64,
    y: f64,
    font: Font,
    class: &str,
    rotate: f64,
    content: &str,
    max_width: f64,
) {
    let (shown, cut) = fit(content, max_width, font.size);
    if cut {
        out.push_str("<g>");
        out.push_str(&title(content));
    }
    text(out, x, y, font, class, rotate, &shown);
    if cut {
        out.push_str("</g>");
    }
}

// ----------------------------------------------------------------- colour

/// Series colours: the chart's own `visual.colors` in order, then the
/// defaults for the rest.
#[derive(Debug, Clone)]
pub struct Palette(Vec<String>);

impl Palette {
    pub fn new(custom: &[String]) -> Palette {
        let mut colors: Vec<String> = PALETTE.iter().map(|c| c.to_string()).collect();
        for (i, color) in custom.iter().enumerate() {
            // Only `#rrggbb` reaches the markup, whatever was stored.
            if parse_hex(color).is_none() {
                continue;
            }
            let color = color.to_ascii_lowercase();
            if i < colors.len() {
                colors[i] = color;
            } else {
                colors.push(color);
            }
        }
        Palette(colors)
    }

    pub fn get(&self, index: usize) -> &str {
        &self.0[index % self.0.len()]
    }
}

/// `(r, g, b)` of a `#rrggbb` colour.
pub fn parse_hex(color: &str) -> Option<(u8, u8, u8)> {
    let hex = color.strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((channel(0)?, channel(2)?, channel(4)?))
}

pub fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

// ------------------------------------------------------------------ frame

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

pub const TITLE_SIZE: f64 = 15.0;
pub const LABEL_SIZE: f64 = 11.0;
/// Space above the plot taken by the title.
pub const TITLE_HEIGHT: f64 = 30.0;

/// Opens the root `<svg>` (with a `viewBox`, so CSS can scale it) on a
/// white background and writes the chart's name as its title.
pub fn open(size: (u32, u32), kind: &str, name: &str) -> String {
    let (w, h) = size;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" class="pb-chart pb-{kind}" role="img" aria-label="{}" font-family="{FONT_FAMILY}">"#,
        escape(name)
    );
    let _ = write!(out, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
    fitted_text(
        &mut out,
        12.0,
        21.0,
        Font::new(TITLE_SIZE).bold(),
        "chart-title",
        0.0,
        name,
        f64::from(w) - 24.0,
    );
    out
}

pub fn close(mut out: String) -> String {
    out.push_str("</svg>");
    out
}

/// The note an empty chart shows in the middle of its plot.
pub fn no_data(out: &mut String, area: Rect) {
    text(
        out,
        area.x + area.w / 2.0,
        area.y + area.h / 2.0,
        Font::new(13.0).anchor("middle").fill(MUTED),
        "no-data",
        0.0,
        NO_DATA,
    );
}

/// A small grey note in the bottom right corner (what was left out).
pub fn corner_note(out: &mut String, size: (u32, u32), note: &str) {
    text(
        out,
        f64::from(size.0) - 8.0,
        f64::from(size.1) - 6.0,
        Font::new(10.0).anchor("end").fill(MUTED),
        "note",
        0.0,
        note,
    );
}

const SWATCH: f64 = 11.0;
const LEGEND_ROW: f64 = 17.0;
const LEGEND_MAX_ROWS: usize = 3;

/// Lays out `(label, colour)` entries in rows from `(x, y)` across `width`,
/// at most three rows, the rest summed up as "+N more". Returns the height
/// used.
pub fn legend(out: &mut String, entries: &[(String, String)], x: f64, y: f64, width: f64) -> f64 {
    if entries.is_empty() {
        return 0.0;
    }
    let font = Font::new(LABEL_SIZE);
    let max_label = (width - SWATCH - 6.0).clamp(20.0, 280.0);
    let mut row = 0;
    let mut cursor = x;
    out.push_str(r#"<g class="legend">"#);
    for (index, (label, color)) in entries.iter().enumerate() {
        let (shown, cut) = fit(label, max_label, LABEL_SIZE);
        let item = SWATCH + 5.0 + text_width(&shown, LABEL_SIZE) + 14.0;
        // The last row keeps room for "+N more" while entries remain.
        let more_follow = row + 1 == LEGEND_MAX_ROWS && index + 1 < entries.len();
        let reserve = if more_follow { 70.0 } else { 0.0 };
        if cursor > x && cursor + item > x + width - reserve {
            row += 1;
            cursor = x;
        }
        if row == LEGEND_MAX_ROWS {
            let more = format!("+{} more", entries.len() - index);
            let top = y + (LEGEND_MAX_ROWS - 1) as f64 * LEGEND_ROW;
            let end = x + width;
            text(
                out,
                end,
                top + 10.0,
                font.anchor("end").fill(MUTED),
                "legend-more",
                0.0,
                &more,
            );
            row = LEGEND_MAX_ROWS - 1;
            break;
        }
        let top = y + row as f64 * LEGEND_ROW;
        out.push_str(r#"<g class="legend-item">"#);
        if cut {
            out.push_str(&title(label));
        }
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{SWATCH}" height="{SWATCH}" rx="2" fill="{color}"/>"#,
            Px(cursor),
            Px(top)
        );
        text(
            out,
            cursor + SWATCH + 5.0,
            top + 10.0,
            font,
            "legend-label",
            0.0,
            &shown,
        );
        out.push_str("</g>");
        cursor += item;
    }
    out.push_str("</g>");
    (row + 1) as f64 * LEGEND_ROW + 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_turns_markup_into_text() {
        assert_eq!(
            escape(r#""><img src=x onerror='a&b'>"#),
            "&quot;&gt;&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
        assert_eq!(escape("°F <\t>\u{FFFF}é"), "°F &lt;\t&gt;\u{FFFD}é");
        let mut out = String::from("<title>");
        crate::text::escape_into(&mut out, "R&D");
        assert_eq!(out, "<title>R&amp;D");
    }

    #[test]
    fn exact_keeps_every_stored_digit_up_to_six_decimals() {
        // The rule as stated: the value's shortest form when that has six
        // decimals or fewer, otherwise six decimals.
        let rule = |v: f64| {
            let shortest = format!("{v}");
            match shortest.find('.') {
                Some(dot) if shortest.len() - dot - 1 > 6 => fixed(v, 6),
                _ => group_digits(trim_zeros(shortest)),
            }
        };
        let mut random = crate::test_random();
        for _ in 0..20_000 {
            let magnitude = 10f64.powi((random() % 21) as i32 - 6);
            let sign = if random().is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            let raw = sign * magnitude * (random() >> 11) as f64 / (1u64 << 53) as f64;
            // Also values with few decimals, as sensors report them.
            let short = (raw * 100.0).round() / 100.0;
            for v in [raw, short] {
                if v != 0.0 && (v.abs() >= 1e15 || v.abs() < 1e-6) {
                    continue;
                }
                assert_eq!(exact(v), rule(v), "{v:?}");
            }
        }
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(exact(71.25), "71.25");
        assert_eq!(exact(1_234_567.5), "1,234,567.5");
        assert_eq!(exact(-1234.0), "-1,234");
        assert_eq!(exact(2.0 / 3.0), "0.666667");
        assert_eq!(exact(1e20), "1e20");
        assert_eq!(fixed(-0.0001, 2), "0");
        assert_eq!(tick_label(2_500_000.0, 500_000.0), "2.5M");
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(1500.0, 500.0), "1,500");
    }

    #[test]
    fn nice_ticks_enclose_the_range_in_round_steps() {
        let ticks = nice_ticks(3.2, 97.0, 5);
        assert_eq!((ticks.lo, ticks.hi, ticks.step), (0.0, 100.0, 20.0));
        assert_eq!(ticks.values.len(), 6);
        let same = nice_ticks(5.0, 5.0, 5);
        assert!(same.lo < 5.0 && same.hi > 5.0);
        let wild = nice_ticks(-1e308, 1e308, 5);
        assert_eq!(wild.values, [-1e308, 1e308]);
        let nan = nice_ticks(f64::NAN, 1.0, 5);
        assert!(nan.values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn civil_dates_are_utc() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_datetime(1_583_292_719_000), "2020-03-04 03:31:59 UTC");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_datetime(-1000), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc_date(-1000), "1969-12-31");
        assert_eq!(utc_clock(-1000), "23:59:59");
        assert_eq!(TimeFormat::Clock.format(-1000), "23:59:59 UTC");
    }

    #[test]
    fn time_ticks_fall_on_round_instants() {
        let ticks = time_ticks(1_000 * 60 * 60 * 12 + 7_000, 1_000 * 60 * 60 * 13, 6);
        assert!(
            ticks.iter().all(|(t, _)| t % (10 * MINUTE) == 0),
            "{ticks:?}"
        );
        assert_eq!(ticks[0].1, "12:10");
    }

    #[test]
    fn fit_cuts_long_text_with_an_ellipsis() {
        let (short, cut) = fit("Short", 100.0, 11.0);
        assert_eq!((short.as_str(), cut), ("Short", false));
        let (long, cut) = fit(&"Very long product name ".repeat(5), 80.0, 11.0);
        assert!(cut && long.ends_with('…') && text_width(&long, 11.0) <= 80.0);
    }

    #[test]
    fn a_long_legend_stops_at_three_rows_and_counts_the_rest() {
        let entries: Vec<(String, String)> = (0..50)
            .map(|i| (format!("Sensor {i}"), PALETTE[0].to_string()))
            .collect();
        let mut out = String::new();
        let height = legend(&mut out, &entries, 0.0, 0.0, 400.0);
        assert!(height <= 3.0 * LEGEND_ROW + 4.0);
        let shown = out.matches(r#"class="legend-item""#).count();
        assert!(out.contains(&format!(">+{} more<", 50 - shown)), "{out}");
    }

    #[test]
    fn palette_takes_valid_custom_colours_in_order() {
        let palette = Palette::new(&["#AA0000".into(), "red\"/>".into()]);
        assert_eq!(palette.get(0), "#aa0000");
        assert_eq!(palette.get(1), PALETTE[1]);
        assert_eq!(palette.get(10), "#aa0000");
    }
}
