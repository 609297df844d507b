//! Charts drawn on the server: the DTO the page receives, and the renderer.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod render;

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
