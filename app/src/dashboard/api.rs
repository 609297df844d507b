//! Server functions for dashboards.

use super::definition::Dashboard;
#[cfg(feature = "ssr")]
use super::definition::Tab;
use crate::chart::view::ChartSummary;
use crate::error::{AppError, Result};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// A dashboard with what its page needs besides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardPage {
    pub dashboard: Dashboard,
    /// The server's shortest refresh interval, in seconds.
    pub minimum_refresh: u32,
    /// Every saved chart, for placing one on the dashboard.
    pub charts: Vec<ChartSummary>,
}

/// (slug, name) of every dashboard.
#[server]
pub async fn list_dashboards() -> Result<Vec<(String, String)>, AppError> {
    let service = crate::chart::api::service()?;
    Ok(super::store::list(&service.pool)
        .await?
        .into_iter()
        .map(|s| (s.slug, s.name))
        .collect())
}

#[server]
pub async fn get_dashboard(slug: String) -> Result<DashboardPage, AppError> {
    let service = crate::chart::api::service()?;
    let dashboard = super::store::get(&service.pool, &slug).await?;
    let charts = crate::chart::api::list_charts().await?;
    Ok(DashboardPage {
        dashboard,
        minimum_refresh: service.settings.minimum_refresh,
        charts,
    })
}

/// Saves the dashboard found at `slug`, which may get a new slug.
#[server(input = Json)]
pub async fn save_dashboard(slug: String, dashboard: Dashboard) -> Result<(), AppError> {
    let service = crate::chart::api::service()?;
    super::store::save(
        &service.pool,
        &slug,
        &dashboard,
        service.settings.minimum_refresh,
    )
    .await?;
    Ok(())
}

/// Puts saved chart `chart` below everything on the first tab of the
/// dashboard at `slug`.
#[server]
pub async fn add_chart_to_dashboard(slug: String, chart: i64) -> Result<(), AppError> {
    let service = crate::chart::api::service()?;
    super::store::add_chart(
        &service.pool,
        &slug,
        chart,
        service.settings.minimum_refresh,
    )
    .await?;
    Ok(())
}

/// An empty dashboard with one tab.
#[server]
pub async fn create_dashboard(name: String, slug: String) -> Result<(), AppError> {
    let service = crate::chart::api::service()?;
    let dashboard = Dashboard {
        name,
        slug,
        time_range: None,
        refresh_seconds: None,
        live: false,
        tabs: vec![Tab {
            name: "Overview".into(),
            elements: Vec::new(),
        }],
    };
    super::store::create(&service.pool, &dashboard, service.settings.minimum_refresh).await?;
    Ok(())
}

#[server]
pub async fn delete_dashboard(slug: String) -> Result<(), AppError> {
    let service = crate::chart::api::service()?;
    if super::store::delete(&service.pool, &slug).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("dashboard {slug:?}")))
    }
}

/// Imports a dashboard file (see `store::export`); returns the new slug.
#[server(input = Json)]
pub async fn import_dashboard(file: String) -> Result<String, AppError> {
    let service = crate::chart::api::service()?;
    let dashboard = super::store::import(
        &service.pool,
        &file,
        &service.datasets,
        service.settings.minimum_refresh,
        super::store::OnConflict::Refuse,
        None,
    )
    .await?;
    Ok(dashboard.slug)
}
