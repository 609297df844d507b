//! What a dashboard's address can say, so a link opens it as it was seen:
//! `?range=15m&filter=guid:abc&refresh=10s&live=1&tab=2`.

use crate::chart::definition::{Filter, FilterOp, Relative, Scalar, TimeRange};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewParams {
    pub range: Option<TimeRange>,
    /// Equality filters picked on the page: (column, value).
    pub filters: Vec<(String, String)>,
    /// `Some(None)` turns refresh off.
    pub refresh: Option<Option<u32>>,
    pub live: Option<bool>,
    pub tab: Option<usize>,
}

pub const RELATIVE_CHOICES: [Relative; 7] = [
    Relative::FiveMinutes,
    Relative::FifteenMinutes,
    Relative::ThirtyMinutes,
    Relative::OneHour,
    Relative::SixHours,
    Relative::OneDay,
    Relative::SevenDays,
];

pub fn relative_label(relative: Relative) -> &'static str {
    match relative {
        Relative::FiveMinutes => "5m",
        Relative::FifteenMinutes => "15m",
        Relative::ThirtyMinutes => "30m",
        Relative::OneHour => "1h",
        Relative::SixHours => "6h",
        Relative::OneDay => "24h",
        Relative::SevenDays => "7d",
    }
}

/// A time range as written in a URL: `15m`, `all`, or `from..to` in epoch ms.
pub fn format_range(range: TimeRange) -> String {
    match range {
        TimeRange::All => "all".into(),
        TimeRange::Last(relative) => relative_label(relative).into(),
        TimeRange::Between { from_ms, to_ms } => format!("{from_ms}..{to_ms}"),
    }
}

pub fn parse_range(text: &str) -> Result<TimeRange, String> {
    if text == "all" {
        return Ok(TimeRange::All);
    }
    if let Some(relative) = RELATIVE_CHOICES
        .iter()
        .find(|r| relative_label(**r) == text)
    {
        return Ok(TimeRange::Last(*relative));
    }
    let bad = || format!("{text:?} is not a time range like 15m, all or FROM..TO");
    let (from, to) = text.split_once("..").ok_or_else(bad)?;
    let (from_ms, to_ms) = (
        from.parse().map_err(|_| bad())?,
        to.parse().map_err(|_| bad())?,
    );
    if from_ms >= to_ms {
        return Err(format!("{text:?}: from must be before to"));
    }
    Ok(TimeRange::Between { from_ms, to_ms })
}

impl ViewParams {
    /// Reads the parameters it knows from `pairs`; a value it cannot read is
    /// an error that names it.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut params = ViewParams::default();
        for (key, value) in pairs {
            match key {
                "range" => params.range = Some(parse_range(value)?),
                "filter" => {
                    let (column, value) = value
                        .split_once(':')
                        .ok_or_else(|| format!("filter {value:?} is not column:value"))?;
                    params.filters.push((column.into(), value.into()));
                }
                "refresh" => params.refresh = Some(super::definition::parse_interval(value)?),
                "live" => params.live = Some(matches!(value, "1" | "true" | "on")),
                "tab" => {
                    params.tab = Some(
                        value
                            .parse()
                            .map_err(|_| format!("tab {value:?} is not a number"))?,
                    )
                }
                _ => {}
            }
        }
        Ok(params)
    }

    /// The query string, with `?`, or empty.
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(range) = self.range {
            parts.push(format!("range={}", encode(&format_range(range))));
        }
        for (column, value) in &self.filters {
            parts.push(format!("filter={}", encode(&format!("{column}:{value}"))));
        }
        if let Some(refresh) = self.refresh {
            parts.push(format!(
                "refresh={}",
                super::definition::format_interval(refresh)
            ));
        }
        if let Some(live) = self.live {
            parts.push(format!("live={}", if live { 1 } else { 0 }));
        }
        if let Some(tab) = self.tab {
            parts.push(format!("tab={tab}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    pub fn chart_filters(&self) -> Vec<Filter> {
        self.filters
            .iter()
            .map(|(column, value)| Filter {
                column: column.clone(),
                op: FilterOp::Eq,
                values: vec![Scalar::Text(value.clone())],
            })
            .collect()
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permalink_reads_back_the_same() {
        let params = ViewParams {
            range: Some(TimeRange::Last(Relative::FifteenMinutes)),
            filters: vec![("guid".into(), "a b&c".into())],
            refresh: Some(Some(10)),
            live: Some(true),
            tab: Some(1),
        };
        let query = params.to_query();
        assert_eq!(
            query,
            "?range=15m&filter=guid:a%20b%26c&refresh=10s&live=1&tab=1"
        );
        let decoded = [
            ("range", "15m"),
            ("filter", "guid:a b&c"),
            ("refresh", "10s"),
            ("live", "1"),
            ("tab", "1"),
        ];
        assert_eq!(ViewParams::parse(decoded), Ok(params));
        assert!(ViewParams::parse([("range", "5x")]).is_err());
        assert_eq!(
            parse_range("1..2"),
            Ok(TimeRange::Between {
                from_ms: 1,
                to_ms: 2
            })
        );
    }
}
