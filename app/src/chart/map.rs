//! The map chart: a marker per row at its latitude and longitude, in Web
//! Mercator fitted to the markers. Colour shows the first metric (blue to
//! red), area the second, and a marker whose last reading (a time metric)
//! is older than the chart's staleness limit is greyed out. Map tiles, when
//! a tile template is configured, sit under the markers; without one the
//! picture references nothing outside itself.
//!
//! Each marker is a `<g class="marker">` carrying `data-filter-column`,
//! `data-filter-value` (its first dimension) and `data-value` (its colour
//! metric), so the page can filter the dashboard by a click.

use super::Cell;
use super::dataset::ColumnKind;
use super::render::{
    Columns, GroupColumn, MetricColumn, RenderInput, Rendered, group_text, instant, number,
};
use super::svg::{self, Font, Px, Rect};
use std::f64::consts::PI;
use std::fmt::Write;

/// Side of a map tile, and of the whole world at zoom 0, in pixels.
const TILE: f64 = 256.0;
/// Web Mercator stops here: the world becomes a square.
const MAX_LATITUDE: f64 = 85.051_128_78;
const EARTH_CIRCUMFERENCE_M: f64 = 40_075_016.686;
/// Closest zoom: markers at one spot are shown at street level.
const MAX_ZOOM: f64 = 16.0;
const DEFAULT_STALE_SECONDS: u32 = 120;
/// More markers than this crowd the map: no labels (the tooltips still
/// name them) and thin rims.
const MAX_LABELLED: usize = 100;
const NO_VALUE_FILL: &str = "#9aa5b1";

/// A position on the zoom-0 world square, 0..256 each way.
fn project(latitude: f64, longitude: f64) -> (f64, f64) {
    let phi = latitude.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
    let x = (longitude + 180.0) / 360.0 * TILE;
    let y = (1.0 - (phi.tan() + 1.0 / phi.cos()).ln() / PI) / 2.0 * TILE;
    (x, y)
}

/// The latitude of a world-square `y`.
fn latitude_of(y: f64) -> f64 {
    (PI * (1.0 - 2.0 * y / TILE)).sinh().atan().to_degrees()
}

/// Blue for the smallest value, through purple, to red for the largest.
/// Red rises strictly along the scale, so colours sort as values do.
fn heat(t: f64) -> (u8, u8, u8) {
    const STOPS: [(f64, [f64; 3]); 3] = [
        (0.0, [20.0, 90.0, 220.0]),
        (0.5, [140.0, 60.0, 170.0]),
        (1.0, [235.0, 35.0, 35.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (a, b) = if t <= 0.5 {
        (STOPS[0], STOPS[1])
    } else {
        (STOPS[1], STOPS[2])
    };
    let f = (t - a.0) / (b.0 - a.0);
    let channel = |i: usize| (a.1[i] + (b.1[i] - a.1[i]) * f).round() as u8;
    (channel(0), channel(1), channel(2))
}

struct Marker {
    /// World-square position.
    world: (f64, f64),
    first: Option<String>,
    label: Option<String>,
    color_value: Option<f64>,
    size_value: Option<f64>,
    last_ms: Option<i64>,
}

/// The columns a map reads: position, names, and its metrics by role.
struct Roles<'c> {
    latitude: &'c GroupColumn,
    longitude: &'c GroupColumn,
    /// The first dimension (a sensor's GUID): what a click filters by.
    first: Option<&'c GroupColumn>,
    /// The second dimension (a location), else the first: the marker's label.
    label: Option<&'c GroupColumn>,
    color: Option<&'c MetricColumn>,
    size: Option<&'c MetricColumn>,
    last_reading: Option<&'c MetricColumn>,
}

impl<'c> Roles<'c> {
    fn of(columns: &'c Columns) -> Option<Roles<'c>> {
        let kind = |k: ColumnKind| columns.groups.iter().find(|g| g.kind == k);
        let dimensions: Vec<&GroupColumn> = columns
            .groups
            .iter()
            .filter(|g| g.kind == ColumnKind::Dimension)
            .collect();
        let metrics = &columns.metrics;
        // Metrics after the first: a time is the last reading, else a size.
        let size = metrics.get(1).filter(|m| !m.time);
        let last_reading = metrics.iter().skip(1).take(2).find(|m| m.time);
        Some(Roles {
            latitude: kind(ColumnKind::Latitude)?,
            longitude: kind(ColumnKind::Longitude)?,
            first: dimensions.first().copied(),
            label: dimensions.get(1).or(dimensions.first()).copied(),
            color: metrics.first(),
            size,
            last_reading,
        })
    }
}

/// How markers are placed: world square to screen.
struct View {
    area: Rect,
    center: (f64, f64),
    /// Pixels per world-square unit (2^zoom).
    scale: f64,
}

impl View {
    fn fit(area: Rect, markers: &[Marker]) -> View {
        let xs = markers.iter().map(|m| m.world.0);
        let ys = markers.iter().map(|m| m.world.1);
        let (x0, x1) = (
            xs.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
        );
        let (y0, y1) = (
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
        let padding = 36.0;
        let fit_x = (area.w - 2.0 * padding).max(10.0) / (x1 - x0);
        let fit_y = (area.h - 2.0 * padding).max(10.0) / (y1 - y0);
        let scale = fit_x.min(fit_y).min(2f64.powf(MAX_ZOOM));
        View {
            area,
            center: ((x0 + x1) / 2.0, (y0 + y1) / 2.0),
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                2f64.powf(MAX_ZOOM)
            },
        }
    }

    fn screen(&self, world: (f64, f64)) -> (f64, f64) {
        (
            self.area.x + self.area.w / 2.0 + (world.0 - self.center.0) * self.scale,
            self.area.y + self.area.h / 2.0 + (world.1 - self.center.1) * self.scale,
        )
    }

    fn world(&self, screen: (f64, f64)) -> (f64, f64) {
        (
            self.center.0 + (screen.0 - self.area.x - self.area.w / 2.0) / self.scale,
            self.center.1 + (screen.1 - self.area.y - self.area.h / 2.0) / self.scale,
        )
    }

    /// Metres on the ground per pixel at the middle of the map.
    fn metres_per_pixel(&self) -> f64 {
        let latitude = latitude_of(self.center.1).to_radians();
        EARTH_CIRCUMFERENCE_M * latitude.cos() / (TILE * self.scale)
    }
}

pub(crate) fn render(input: &RenderInput, size: (u32, u32)) -> Rendered {
    let definition = input.definition;
    let columns = Columns::of(input);
    let roles = Roles::of(&columns);
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let mut out = svg::open(size, "map", &definition.name);
    let area = Rect {
        x: 12.0,
        y: svg::TITLE_HEIGHT,
        w: w - 24.0,
        h: (h - svg::TITLE_HEIGHT - 44.0).max(10.0),
    };
    let _ = write!(
        out,
        r##"<rect class="map-background" x="{}" y="{}" width="{}" height="{}" fill="#eef2f5" stroke="#d5dbe1"/>"##,
        Px(area.x),
        Px(area.y),
        Px(area.w),
        Px(area.h)
    );
    let empty = |mut out: String| {
        svg::no_data(&mut out, area);
        Rendered {
            svg: svg::close(out),
            series: 0,
            points: 0,
        }
    };
    let Some(roles) = roles else {
        return empty(out);
    };
    let (markers, unplaced) = markers(input, &roles);
    if markers.is_empty() {
        return empty(out);
    }
    let view = View::fit(area, &markers);
    if let Some(template) = input.tile_url {
        tiles(&mut out, &view, template);
    }
    let colors: Vec<f64> = markers.iter().filter_map(|m| m.color_value).collect();
    let color_range = (
        colors.iter().copied().fold(f64::INFINITY, f64::min),
        colors.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let largest = markers
        .iter()
        .filter_map(|m| m.size_value)
        .filter(|v| *v > 0.0)
        .fold(0.0, f64::max);
    let max_radius = (w.min(h) / 18.0).clamp(8.0, 22.0);
    let radius = |m: &Marker| match (roles.size, m.size_value) {
        // Area in proportion to the value, within readable sizes.
        (Some(_), Some(v)) if v > 0.0 && largest > 0.0 => {
            (max_radius * (v / largest).sqrt()).clamp(3.0, max_radius)
        }
        (Some(_), _) => 3.0,
        (None, _) => 7.0,
    };
    let stale_ms = i64::from(
        definition
            .visual
            .stale_after_seconds
            .unwrap_or(DEFAULT_STALE_SECONDS),
    ) * 1000;
    let unit = definition.visual.unit.as_deref();
    // Large markers first, so small ones stay on top and clickable.
    let mut order: Vec<(usize, f64)> = markers
        .iter()
        .enumerate()
        .map(|(i, m)| (i, radius(m)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let crowded = markers.len() > MAX_LABELLED;
    out.push_str(r#"<g class="markers">"#);
    for (index, r) in order {
        let marker = &markers[index];
        let stale = roles.last_reading.is_some()
            && marker
                .last_ms
                .is_none_or(|t| input.now_ms.saturating_sub(t) > stale_ms);
        let t = match marker.color_value {
            Some(v) if color_range.1 > color_range.0 => {
                (v - color_range.0) / (color_range.1 - color_range.0)
            }
            _ => 0.5,
        };
        let fill = match marker.color_value {
            Some(_) => svg::hex(heat(t)),
            None => NO_VALUE_FILL.into(),
        };
        let (x, y) = view.screen(marker.world);
        let tip = tooltip(marker, &roles, unit, stale);
        draw_marker(
            &mut out,
            marker,
            &roles,
            (x, y, r),
            &fill,
            stale,
            &tip,
            crowded,
        );
    }
    out.push_str("</g>");

    let footer = area.bottom() + 8.0;
    if let Some(color) = roles.color
        && !colors.is_empty()
    {
        color_legend(&mut out, 12.0, footer, color, unit, color_range);
    }
    scale_bar(&mut out, &view, w - 12.0, footer);
    if input.tile_url.is_some() {
        let font = Font::new(9.0).anchor("end").fill(svg::MUTED);
        let y = area.bottom() - 4.0;
        svg::text(
            &mut out,
            area.right() - 4.0,
            y,
            font,
            "attribution",
            0.0,
            "© OpenStreetMap contributors",
        );
    }
    if unplaced > 0 {
        let font = Font::new(10.0).fill(svg::MUTED);
        let note = format!("{} rows without a position", svg::fixed(unplaced as f64, 0));
        svg::text(
            &mut out,
            area.x + 4.0,
            area.y + 14.0,
            font,
            "note",
            0.0,
            &note,
        );
    }
    Rendered {
        svg: svg::close(out),
        series: 1,
        points: markers.len(),
    }
}

/// The rows that have a position, as markers; and how many had none.
fn markers(input: &RenderInput, roles: &Roles) -> (Vec<Marker>, usize) {
    let mut markers = Vec::new();
    let mut unplaced = 0;
    for row in &input.rows.rows {
        let latitude = number(row.get(roles.latitude.index)).filter(|v| v.abs() <= 90.0);
        let longitude = number(row.get(roles.longitude.index)).filter(|v| v.abs() <= 180.0);
        let (Some(latitude), Some(longitude)) = (latitude, longitude) else {
            unplaced += 1;
            continue;
        };
        // A missing name is left out rather than shown as a made-up value.
        let name = |g: Option<&GroupColumn>| match row.get(g?.index)? {
            Cell::Null => None,
            cell => Some(group_text(Some(cell))),
        };
        let value = |m: Option<&MetricColumn>| m.and_then(|m| number(row.get(m.index)));
        markers.push(Marker {
            world: project(latitude, longitude),
            first: name(roles.first),
            label: name(roles.label),
            color_value: value(roles.color),
            size_value: value(roles.size),
            last_ms: roles.last_reading.and_then(|m| instant(row.get(m.index))),
        });
    }
    (markers, unplaced)
}

/// A metric's value as people read it: a time metric as a UTC instant.
fn metric_text(column: &MetricColumn, v: f64, unit: Option<&str>) -> String {
    if column.time {
        svg::utc_datetime(v as i64)
    } else {
        svg::with_unit(svg::exact(v), unit)
    }
}

/// One line per fact: first dimension, label, colour and size metrics, last
/// reading time.
fn tooltip(marker: &Marker, roles: &Roles, unit: Option<&str>, stale: bool) -> String {
    let mut lines = Vec::new();
    if let (Some(column), Some(value)) = (roles.first, &marker.first) {
        lines.push(format!("{}: {value}", column.name));
    }
    if let (Some(column), Some(value)) = (roles.label, &marker.label)
        && roles.label.map(|c| &c.name) != roles.first.map(|c| &c.name)
    {
        lines.push(format!("{}: {value}", column.name));
    }
    let shown = |column: &MetricColumn, v: Option<f64>, unit| match v {
        Some(v) => metric_text(column, v, unit),
        None => "no value".into(),
    };
    if let Some(column) = roles.color {
        let value = shown(column, marker.color_value, unit);
        lines.push(format!("{}: {value}", column.name));
    }
    if let Some(column) = roles.size {
        let value = shown(column, marker.size_value, None);
        lines.push(format!("{}: {value}", column.name));
    }
    if roles.last_reading.is_some() {
        let when = marker.last_ms.map_or("none".into(), svg::utc_datetime);
        let note = if stale { " (stale)" } else { "" };
        lines.push(format!("last reading: {when}{note}"));
    }
    lines.join("\n")
}

#[allow(clippy::too_many_arguments)]
fn draw_marker(
    out: &mut String,
    marker: &Marker,
    roles: &Roles,
    (x, y, r): (f64, f64, f64),
    fill: &str,
    stale: bool,
    tip: &str,
    crowded: bool,
) {
    let class = if stale { "marker stale" } else { "marker" };
    let _ = write!(out, r#"<g class="{class}""#);
    if let (Some(column), Some(value)) = (roles.first, &marker.first) {
        let _ = write!(
            out,
            r#" data-filter-column="{}" data-filter-value="{}""#,
            svg::escape(&column.name),
            svg::escape(value)
        );
    }
    let value = marker.color_value.map(svg::plain).unwrap_or_default();
    let _ = write!(out, r#" data-value="{value}">{}"#, svg::title(tip));
    let outline = match (stale, crowded) {
        (true, _) => {
            r##"stroke="#808080" stroke-width="1.5" stroke-dasharray="3 2" opacity="0.45""##
        }
        (false, false) => r##"stroke="#ffffff" stroke-width="1.5" fill-opacity="0.9""##,
        // Thick white rims would hide crowded markers' colours.
        (false, true) => r##"stroke="#ffffff" stroke-width="0.5" fill-opacity="0.9""##,
    };
    let _ = write!(
        out,
        r#"<circle cx="{}" cy="{}" r="{}" fill="{fill}" {outline}/>"#,
        Px(x),
        Px(y),
        Px(r)
    );
    if !crowded && let Some(label) = &marker.label {
        let (shown, _) = svg::fit(label, 140.0, 10.5);
        let font = Font::new(10.5).halo();
        svg::text(out, x + r + 3.0, y + 3.5, font, "marker-label", 0.0, &shown);
    }
    out.push_str("</g>");
}

/// Tiles under the markers, at the zoom nearest the map's scale, clipped
/// to the map area by a nested viewport.
fn tiles(out: &mut String, view: &View, template: &str) {
    let zoom = view.scale.log2().round().clamp(0.0, 19.0);
    let count = 2f64.powf(zoom);
    let side = TILE / count * view.scale;
    let area = view.area;
    let (left, top) = view.world((area.x, area.y));
    let (right, bottom) = view.world((area.right(), area.bottom()));
    let tile_of = |v: f64| (v / TILE * count).floor();
    let (tx0, tx1) = (tile_of(left), tile_of(right));
    let (ty0, ty1) = (tile_of(top).max(0.0), tile_of(bottom).min(count - 1.0));
    if (tx1 - tx0 + 1.0) * (ty1 - ty0 + 1.0) > 400.0 {
        return;
    }
    let _ = write!(
        out,
        r#"<svg class="tiles" x="{}" y="{}" width="{}" height="{}" overflow="hidden">"#,
        Px(area.x),
        Px(area.y),
        Px(area.w),
        Px(area.h)
    );
    let mut ty = ty0;
    while ty <= ty1 {
        let mut tx = tx0;
        while tx <= tx1 {
            let (x, y) = view.screen((tx * TILE / count, ty * TILE / count));
            // Columns past the antimeridian repeat the world.
            let wrapped = tx.rem_euclid(count);
            let href = template
                .replace("{z}", &format!("{zoom}"))
                .replace("{x}", &format!("{wrapped}"))
                .replace("{y}", &format!("{ty}"))
                .replace("{s}", "a");
            let _ = write!(
                out,
                r#"<image href="{}" x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none"/>"#,
                svg::escape(&href),
                Px(x - area.x),
                Px(y - area.y),
                Px(side + 0.5),
                Px(side + 0.5)
            );
            tx += 1.0;
        }
        ty += 1.0;
    }
    out.push_str("</svg>");
}

/// A horizontal blue-to-red bar with the colour metric's range.
fn color_legend(
    out: &mut String,
    x: f64,
    y: f64,
    column: &MetricColumn,
    unit: Option<&str>,
    (lo, hi): (f64, f64),
) {
    let name = &column.name;
    const STEPS: usize = 32;
    const WIDTH: f64 = 160.0;
    out.push_str(r#"<g class="color-legend">"#);
    let title = match unit {
        Some(unit) if !unit.trim().is_empty() => format!("{name} ({unit})"),
        _ => name.to_string(),
    };
    svg::text(
        out,
        x,
        y + 10.0,
        Font::new(10.0).fill(svg::MUTED),
        "legend-title",
        0.0,
        &title,
    );
    for i in 0..STEPS {
        let t = i as f64 / (STEPS - 1) as f64;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="8" fill="{}"/>"#,
            Px(x + WIDTH * i as f64 / STEPS as f64),
            Px(y + 14.0),
            Px(WIDTH / STEPS as f64 + 0.8),
            svg::hex(heat(t))
        );
    }
    let font = Font::new(10.0).fill(svg::MUTED);
    // The legend's ends are read at a glance: a few digits, not every one.
    let end = |v: f64| {
        if column.time {
            metric_text(column, v, None)
        } else {
            svg::fixed(v, 1)
        }
    };
    let (low, high) = (end(lo), end(hi));
    svg::text(out, x, y + 33.0, font, "legend-min", 0.0, &low);
    svg::text(
        out,
        x + WIDTH,
        y + 33.0,
        font.anchor("end"),
        "legend-max",
        0.0,
        &high,
    );
    out.push_str("</g>");
}

/// A bar of a round distance, at most 110 px, ending at `right`.
fn scale_bar(out: &mut String, view: &View, right: f64, y: f64) {
    let per_pixel = view.metres_per_pixel();
    let most = 110.0 * per_pixel;
    let magnitude = 10f64.powf(most.log10().floor());
    let metres = [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&m| m <= most)
        .unwrap_or(magnitude);
    let length = metres / per_pixel;
    if !(length.is_finite() && length > 0.0) {
        return;
    }
    let left = right - length;
    let label = format!("{} km", svg::exact(metres / 1000.0));
    let _ = write!(
        out,
        r#"<g class="scale-bar"><path d="M{} {}V{}H{}V{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
        Px(left),
        Px(y + 14.0),
        Px(y + 20.0),
        Px(right),
        Px(y + 14.0),
        svg::INK
    );
    let font = Font::new(10.0).anchor("middle").fill(svg::INK);
    svg::text(
        out,
        left + length / 2.0,
        y + 32.0,
        font,
        "scale-label",
        0.0,
        &label,
    );
    out.push_str("</g>");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::ChartRows;
    use super::super::definition::Visual;
    use super::super::render::tests::{
        assert_well_formed, attr, dataset, elements, number_attr, rows, text,
    };
    use super::super::render::{RenderInput, render_svg};
    use super::*;

    const NOW: i64 = 1_764_158_400_000;

    fn sensors_map(visual: Visual) -> super::super::definition::ChartDefinition {
        let mut d = super::super::render::tests::sensors_map();
        d.visual = visual;
        d
    }

    /// The columns of a sensor map's rows, in the order its query gives them.
    pub(crate) const SENSOR_MAP_COLUMNS: [&str; 7] = [
        "guid",
        "location",
        "lat",
        "long",
        "avg_temp",
        "count",
        "max_recorded",
    ];

    /// `(guid, location, lat, long, avg temp, count, seconds since the last reading)`.
    fn sensor_rows(sensors: &[(&str, &str, f64, f64, f64, f64, i64)]) -> ChartRows {
        rows(
            &SENSOR_MAP_COLUMNS,
            sensors
                .iter()
                .map(|&(guid, location, lat, long, temp, count, age)| {
                    vec![
                        text(guid),
                        text(location),
                        Cell::Number(lat),
                        Cell::Number(long),
                        Cell::Number(temp),
                        Cell::Number(count),
                        Cell::Time(NOW - age * 1000),
                    ]
                })
                .collect(),
        )
    }

    fn draw(visual: Visual, data: &ChartRows, tile_url: Option<&str>) -> Rendered {
        let definition = sensors_map(visual);
        let dataset = dataset("sensor_msg_detail");
        render_svg(&RenderInput {
            definition: &definition,
            dataset: &dataset,
            rows: data,
            kpi: None,
            now_ms: NOW,
            size: (800, 500),
            tile_url,
        })
        .expect("renders")
    }

    fn six_sensors() -> ChartRows {
        sensor_rows(&[
            ("a1", "Research Lab #2203", 40.71, -74.00, 71.25, 120.0, 5),
            ("b2", "Zone 2 Assembly", 40.73, -73.99, 64.0, 30.0, 10),
            ("c3", "Cold Room", 40.70, -74.02, 38.5, 60.0, 600),
            ("d4", "Boiler", 40.72, -74.01, 99.9, 10.0, 1),
            ("e5", "Office", 40.74, -73.98, 70.0, 90.0, 50),
            ("f6", "Roof", 40.69, -73.97, 55.5, 5.0, 119),
        ])
    }

    fn red(fill: &str) -> u8 {
        svg::parse_hex(fill).expect("#rrggbb fill").0
    }

    #[test]
    fn one_marker_per_row_carries_its_filter_and_value() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        let markers = elements(&chart.svg, "g", "marker");
        assert_eq!((markers.len(), chart.points), (6, 6));
        let lab = markers
            .iter()
            .find(|m| attr(m, "data-filter-value") == Some("a1"))
            .expect("marker a1");
        assert_eq!(attr(lab, "data-filter-column"), Some("guid"));
        assert_eq!(attr(lab, "data-value"), Some("71.25"));
        assert!(
            lab.contains(">Research Lab #2203</text>"),
            "labelled by location: {lab}"
        );
        assert_well_formed(&chart.svg);
    }

    #[test]
    fn marker_colours_go_from_blue_to_red_in_value_order() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        let mut markers: Vec<(f64, u8)> = elements(&chart.svg, "g", "marker")
            .iter()
            .map(|m| {
                let circle = m.split("<circle ").nth(1).expect("circle");
                (
                    number_attr(m, "data-value"),
                    red(attr(circle, "fill").expect("fill")),
                )
            })
            .collect();
        markers.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(markers.windows(2).all(|p| p[0].1 < p[1].1), "{markers:?}");
        let (coldest, hottest) = (heat(0.0), heat(1.0));
        assert!(
            coldest.2 > coldest.0 && hottest.0 > hottest.2,
            "blue to red"
        );
        let steps: Vec<u8> = (0..=1000).map(|i| heat(f64::from(i) / 1000.0).0).collect();
        assert!(steps.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn marker_area_follows_the_size_metric() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        let radius = |guid: &str| {
            let marker = elements(&chart.svg, "g", "marker")
                .into_iter()
                .find(|m| attr(m, "data-filter-value") == Some(guid))
                .expect("marker");
            number_attr(marker.split("<circle ").nth(1).expect("circle"), "r")
        };
        // 120 against 30 readings: four times the area, twice the radius.
        assert!((radius("a1") / radius("b2") - 2.0).abs() < 0.01);
    }

    #[test]
    fn markers_without_a_recent_reading_are_stale() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        let stale = elements(&chart.svg, "g", "stale");
        assert_eq!(stale.len(), 1, "only the cold room is past 120 s");
        assert_eq!(attr(stale[0], "data-filter-value"), Some("c3"));
        assert!(stale[0].contains(r#"stroke-dasharray="3 2""#));
        assert!(stale[0].contains("(stale)</title>"));
        let visual = Visual {
            stale_after_seconds: Some(30),
            ..Visual::default()
        };
        let chart = draw(visual, &six_sensors(), None);
        assert_eq!(elements(&chart.svg, "g", "stale").len(), 3);
    }

    #[test]
    fn the_tooltip_names_every_fact_of_a_marker() {
        let visual = Visual {
            unit: Some("°F".into()),
            ..Visual::default()
        };
        let chart = draw(visual, &six_sensors(), None);
        let expected = "<title>guid: a1\nlocation: Research Lab #2203\navg_temp: 71.25 °F\ncount: 120\n\
                        last reading: 2025-11-26 11:59:55 UTC</title>";
        assert!(chart.svg.contains(expected), "{}", chart.svg);
    }

    #[test]
    fn a_scale_bar_and_a_colour_legend_are_drawn() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        let scale = elements(&chart.svg, "text", "scale-label");
        assert_eq!(scale.len(), 1);
        assert!(scale[0].contains(" km<"), "{}", scale[0]);
        assert!(chart.svg.contains(">38.5</text>") && chart.svg.contains(">99.9</text>"));
    }

    #[test]
    fn the_fit_keeps_every_marker_inside_the_map() {
        let chart = draw(Visual::default(), &six_sensors(), None);
        for marker in elements(&chart.svg, "g", "marker") {
            let circle = marker.split("<circle ").nth(1).expect("circle");
            let (x, y) = (number_attr(circle, "cx"), number_attr(circle, "cy"));
            assert!(
                (12.0..=788.0).contains(&x) && (30.0..=456.0).contains(&y),
                "{x},{y}"
            );
        }
    }

    #[test]
    fn tiles_are_drawn_only_when_configured() {
        let without = draw(Visual::default(), &six_sensors(), None);
        assert!(!without.svg.contains("<image"));
        assert!(!without.svg.contains("href"), "no network reference");
        let with = draw(
            Visual::default(),
            &six_sensors(),
            Some("https://tiles.example/{z}/{x}/{y}.png?key=a&b"),
        );
        let images: Vec<&str> = with.svg.split("<image ").skip(1).collect();
        assert!(!images.is_empty());
        let href = attr(images[0], "href").expect("href");
        assert!(href.starts_with("https://tiles.example/"), "{href}");
        assert!(href.ends_with(".png?key=a&amp;b"), "{href}");
        assert!(!href.contains('{'));
        assert_well_formed(&with.svg);
    }

    #[test]
    fn one_sensor_or_rows_without_positions_still_draw() {
        let one = sensor_rows(&[("a1", "Lab", 51.5, -0.12, 70.0, 1.0, 0)]);
        let chart = draw(Visual::default(), &one, None);
        assert_eq!(chart.points, 1);
        let circle = chart.svg.split("<circle ").nth(1).expect("marker");
        assert!((number_attr(circle, "cx") - 400.0).abs() < 1.0, "centred");
        let mut nowhere = sensor_rows(&[("a1", "Lab", 0.0, 0.0, 70.0, 1.0, 0)]);
        nowhere.rows[0][2] = Cell::Null;
        let chart = draw(Visual::default(), &nowhere, None);
        assert!(chart.svg.contains(svg::NO_DATA));
    }

    #[test]
    fn web_mercator_puts_the_equator_and_greenwich_in_the_middle() {
        let (x, y) = project(0.0, 0.0);
        assert!((x - 128.0).abs() < 1e-9 && (y - 128.0).abs() < 1e-9);
        assert!((latitude_of(project(51.5, 0.0).1) - 51.5).abs() < 1e-9);
        assert!(project(89.0, 0.0).1.abs() < 1e-6, "clamped to the square");
    }
}
