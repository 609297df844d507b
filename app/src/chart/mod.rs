//! Charts: datasets and saved definitions (shared with the browser), the
//! query builder and the store (server only), and the renderer.

use serde::{Deserialize, Serialize};

pub mod api;
#[cfg(feature = "ssr")]
mod bars;
#[cfg(feature = "ssr")]
pub mod cache;
pub mod dataset;
pub mod definition;
#[cfg(feature = "ssr")]
mod histogram;
#[cfg(feature = "ssr")]
pub mod kpi;
#[cfg(feature = "ssr")]
pub mod map;
#[cfg(feature = "ssr")]
mod plot;
#[cfg(feature = "ssr")]
pub mod query;
#[cfg(feature = "ssr")]
pub mod render;
#[cfg(feature = "ssr")]
pub mod rollup;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod svg;
#[cfg(feature = "ssr")]
mod timeseries;
pub mod view;

/// One value of a chart's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cell {
    Null,
    /// Epoch milliseconds.
    Time(i64),
    Text(String),
    Number(f64),
}

/// What a chart's query returned: named columns and their rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// A chart ready to show: SVG markup plus what the page says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub svg: String,
    /// Number of series drawn (one per sensor for the temperature chart).
    pub series: usize,
    /// Number of data points across all series.
    pub points: usize,
    /// When the newest point was recorded, as `HH:MM:SS UTC`; `None` when empty.
    pub data_as_of: Option<String>,
}
