//! A chart as a page shows it: drawn on the server, with what the page says
//! about it. Shared by the server functions and the browser.

use super::ChartRows;
use super::definition::{ChartType, Filter, TimeRange};
use crate::number::all_digits;
use serde::{Deserialize, Serialize};

/// How a dashboard shows a chart: its own time range or the dashboard's,
/// filters picked on the page, and the tile's size in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewOptions {
    pub time_range: Option<TimeRange>,
    pub filters: Vec<Filter>,
    pub width: u32,
    pub height: u32,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            time_range: None,
            filters: Vec::new(),
            width: 640,
            height: 320,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartView {
    pub name: String,
    pub chart_type: ChartType,
    pub dataset: String,
    /// The drawing, for every type but tables.
    pub svg: Option<String>,
    /// The rows, for tables.
    pub table: Option<ChartRows>,
    pub series: usize,
    pub points: usize,
    /// The newest time among the rows; when the rows have no time, when
    /// they were read.
    pub data_as_of_ms: i64,
    /// The page's filters this chart applied (its dataset has the column).
    pub filtered_by: Vec<Filter>,
}

/// A saved chart in lists and pickers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSummary {
    pub id: i64,
    pub name: String,
    pub chart_type: ChartType,
    pub dataset: String,
    pub revision: i32,
    /// The chart's own refresh interval, in seconds.
    pub refresh_seconds: Option<u32>,
    /// The streams whose new data changes it (for live mode).
    pub streams: Vec<String>,
}

/// `HH:MM:SS UTC` of an epoch millisecond.
pub fn clock(ms: i64) -> String {
    let seconds = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of an epoch millisecond.
pub fn iso_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Reads `YYYY-MM-DD HH:MM` (or with `T`, seconds, or a `Z`) as UTC.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let hour = time.next()?.parse::<i64>().ok()?;
    let minute = time.next()?.parse::<i64>().ok()?;
    let second_ms = match time.next() {
        Some(second) => milliseconds(second)?,
        None => 0,
    };
    if time.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
    {
        return None;
    }
    // Civil date to days since 1970-01-01 (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + (hour * 3_600 + minute * 60) * 1000 + second_ms)
}

/// `SS` or `SS.fff` as milliseconds; digits past the millisecond are dropped.
/// Whole numbers only: a float parser would add to the browser's bundle.
fn milliseconds(second: &str) -> Option<i64> {
    let (whole, fraction) = second.split_once('.').unwrap_or((second, ""));
    if whole.is_empty() || whole.len() > 2 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    if whole >= 60 {
        return None;
    }
    let fraction = fraction.bytes().chain(std::iter::repeat(b'0')).take(3);
    Some(whole * 1000 + fraction.fold(0, |ms, digit| ms * 10 + i64::from(digit - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_and_read_back_in_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 951_782_400_000, 1_583_292_719_000, -86_400_000] {
            assert_eq!(parse_utc(&iso_time(ms)), Some(ms));
        }
        assert_eq!(parse_utc("2020-03-04 03:31"), Some(1_583_292_660_000));
        assert_eq!(parse_utc("2020-03-04T03:31:59.5Z"), Some(1_583_292_719_500));
        assert_eq!(
            parse_utc("2020-03-04 03:31:07.0429"),
            Some(1_583_292_667_042)
        );
        assert_eq!(parse_utc("2020-13-04 03:31"), None);
        for bad in [
            "2020-03-04 24:00",
            "2020-03-04 03:60",
            "2020-03-04 03:31:60",
            "2020-03-04 03:31:5x",
            "2020-03-04 03.5:31",
            "2020-03-04 03:31:07:01",
            "2020-03-04 03:31:.5",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(clock(1_583_292_719_000), "03:31:59 UTC");
    }
}
