//! A dashboard's definition: tabs of elements on a 12-column grid, a time
//! range for all its charts, and how often it refreshes. Kept as JSON in
//! Postgres and in dashboard files; checked before it is saved.

use crate::chart::definition::{FieldError, MAX_NAME, TimeRange};
use serde::{Deserialize, Serialize};

pub const GRID_COLUMNS: u32 = 12;
pub const MAX_ROWS: u32 = 200;
pub const MAX_HEIGHT: u32 = 24;
pub const MAX_TABS: usize = 20;
pub const MAX_ELEMENTS: usize = 100;
pub const MAX_TEXT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub name: String,
    /// The dashboard's address: `/d/{slug}`.
    pub slug: String,
    /// Applies to every chart; `None` keeps each chart's own range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Seconds between refreshes; `None` is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_seconds: Option<u32>,
    /// Charts update when their streams store new data.
    #[serde(default)]
    pub live: bool,
    pub tabs: Vec<Tab>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tab {
    pub name: String,
    pub elements: Vec<Element>,
}

/// One thing on the grid: its place (column, row), size in columns and rows,
/// and what it shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Element {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    /// A saved chart: its id in Postgres, or its position in a dashboard
    /// file's `charts`.
    Chart(i64),
    Header(String),
    Markdown(String),
    Divider,
}

impl Tab {
    /// Puts `content` below everything on the tab, at the left edge: charts
    /// half the grid wide, other elements the full width.
    pub fn append(&mut self, content: Content, h: u32) {
        let bottom = self.elements.iter().map(|e| e.y + e.h).max().unwrap_or(0);
        let w = if matches!(content, Content::Chart(_)) {
            GRID_COLUMNS / 2
        } else {
            GRID_COLUMNS
        };
        self.elements.push(Element {
            x: 0,
            y: bottom,
            w,
            h,
            content,
        });
    }
}

impl Dashboard {
    /// A dashboard with one empty tab and no settings of its own.
    pub fn empty(name: String, slug: String) -> Self {
        Dashboard {
            name,
            slug,
            time_range: None,
            refresh_seconds: None,
            live: false,
            tabs: vec![Tab {
                name: "Overview".into(),
                elements: Vec::new(),
            }],
        }
    }

    /// The charts it shows, in order of first appearance.
    pub fn chart_refs(&self) -> Vec<i64> {
        let mut refs = Vec::new();
        for element in self.tabs.iter().flat_map(|t| &t.elements) {
            if let Content::Chart(id) = element.content
                && !refs.contains(&id)
            {
                refs.push(id);
            }
        }
        refs
    }

    /// Every problem with the dashboard; empty when it can be saved.
    /// `minimum_refresh` is the server's lowest allowed interval.
    pub fn validate(&self, minimum_refresh: u32) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut wrong = |field: String, message: String| errors.push(FieldError { field, message });
        let name = self.name.trim();
        if name.is_empty() {
            wrong("name".into(), "a dashboard needs a name".into());
        } else if self.name.chars().count() > MAX_NAME || self.name.chars().any(char::is_control) {
            wrong(
                "name".into(),
                format!("at most {MAX_NAME} characters, no control characters"),
            );
        }
        if let Some(problem) = slug_problem(&self.slug) {
            wrong("slug".into(), problem);
        }
        if let Some(TimeRange::Between { from_ms, to_ms }) = self.time_range
            && from_ms >= to_ms
        {
            wrong("time_range".into(), "from must be before to".into());
        }
        if let Some(seconds) = self.refresh_seconds
            && seconds < minimum_refresh
        {
            wrong(
                "refresh_seconds".into(),
                format!("at least {minimum_refresh} s on this server"),
            );
        }
        if self.tabs.is_empty() || self.tabs.len() > MAX_TABS {
            wrong("tabs".into(), format!("1 to {MAX_TABS} tabs"));
        }
        let elements: usize = self.tabs.iter().map(|t| t.elements.len()).sum();
        if elements > MAX_ELEMENTS {
            wrong("tabs".into(), format!("at most {MAX_ELEMENTS} elements"));
        }
        for (t, tab) in self.tabs.iter().enumerate() {
            if tab.name.trim().is_empty() || tab.name.chars().count() > 100 {
                wrong(format!("tabs[{t}].name"), "1 to 100 characters".into());
            }
            for (e, element) in tab.elements.iter().enumerate() {
                let field = format!("tabs[{t}].elements[{e}]");
                if element.w == 0 || element.x.saturating_add(element.w) > GRID_COLUMNS {
                    wrong(
                        field.clone(),
                        format!("must fit in the {GRID_COLUMNS} columns"),
                    );
                }
                if element.h == 0
                    || element.h > MAX_HEIGHT
                    || element.y.saturating_add(element.h) > MAX_ROWS
                {
                    wrong(
                        field.clone(),
                        format!("1 to {MAX_HEIGHT} rows high, within {MAX_ROWS} rows"),
                    );
                }
                match &element.content {
                    Content::Header(text) | Content::Markdown(text)
                        if text.chars().count() > MAX_TEXT =>
                    {
                        wrong(field, format!("at most {MAX_TEXT} characters of text"));
                    }
                    _ => {}
                }
            }
        }
        errors
    }
}

/// Why `slug` cannot name a dashboard, if it cannot.
pub fn slug_problem(slug: &str) -> Option<String> {
    let fine = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    (!fine).then(|| "1 to 64 of a-z, 0-9 and -, not starting with -".to_string())
}

/// The refresh choices a dashboard offers, in seconds (`None` is off).
pub const REFRESH_CHOICES: [Option<u32>; 9] = [
    None,
    Some(5),
    Some(10),
    Some(30),
    Some(60),
    Some(300),
    Some(900),
    Some(3_600),
    Some(1),
];

/// Reads an interval as written in a URL: `off`, `5s`, `1m`, `1h` or plain
/// seconds. `Ok(None)` is off.
pub fn parse_interval(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        _ => return Err(format!("{text:?} is not an interval like 10s, 5m or 1h")),
    };
    let count: u32 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an interval like 10s, 5m or 1h"))?;
    match count.checked_mul(scale) {
        Some(0) | None => Err(format!("{text:?} must be between 1 s and a day")),
        Some(seconds) if seconds > 86_400 => Err(format!("{text:?} must be at most a day")),
        Some(seconds) => Ok(Some(seconds)),
    }
}

/// Writes an interval the way `parse_interval` reads it.
pub fn format_interval(seconds: Option<u32>) -> String {
    match seconds {
        None => "off".into(),
        Some(s) if s % 3_600 == 0 => format!("{}h", s / 3_600),
        Some(s) if s % 60 == 0 => format!("{}m", s / 60),
        Some(s) => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard() -> Dashboard {
        Dashboard {
            name: "Sensors".into(),
            slug: "sensors".into(),
            time_range: None,
            refresh_seconds: Some(5),
            live: false,
            tabs: vec![Tab {
                name: "Overview".into(),
                elements: vec![
                    Element {
                        x: 0,
                        y: 0,
                        w: 12,
                        h: 1,
                        content: Content::Header("IoT".into()),
                    },
                    Element {
                        x: 6,
                        y: 1,
                        w: 6,
                        h: 4,
                        content: Content::Chart(7),
                    },
                ],
            }],
        }
    }

    #[test]
    fn intervals_read_and_write_alike() {
        for (text, seconds) in [
            ("off", None),
            ("5s", Some(5)),
            ("10s", Some(10)),
            ("1m", Some(60)),
            ("15m", Some(900)),
            ("1h", Some(3_600)),
        ] {
            assert_eq!(parse_interval(text), Ok(seconds));
            assert_eq!(format_interval(seconds), text);
        }
        assert_eq!(parse_interval("90"), Ok(Some(90)));
        for bad in ["", "0s", "5x", "-1s", "2d", "99999h"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sound_dashboard_has_no_errors_and_wrong_fields_are_named() {
        assert_eq!(dashboard().validate(1), []);
        let mut wide = dashboard();
        wide.tabs[0].elements[1].w = 7;
        assert_eq!(wide.validate(1)[0].field, "tabs[0].elements[1]");
        let mut far = dashboard();
        far.tabs[0].elements[1].x = u32::MAX;
        far.tabs[0].elements[1].y = u32::MAX;
        assert_eq!(far.validate(1).len(), 2, "refused, not overflowed");
        let mut fast = dashboard();
        fast.refresh_seconds = Some(1);
        assert_eq!(fast.validate(5)[0].field, "refresh_seconds");
        let mut slug = dashboard();
        slug.slug = "../etc".into();
        assert_eq!(slug.validate(1)[0].field, "slug");
    }
}
