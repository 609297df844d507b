//! Dashboards: their definition (shared with the browser) and their store.

pub mod api;
pub mod definition;
pub mod markdown;
pub mod params;
#[cfg(feature = "ssr")]
pub mod store;
