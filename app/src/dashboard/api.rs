//! Server functions for dashboards.

use super::definition::Dashboard;
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
    /// Every saved chart, for placing one on the dashboard; only the
    /// dashboard's own for a reader who is not signed in.
    pub charts: Vec<ChartSummary>,
    /// Whether the reader may change it.
    pub can_edit: bool,
}

/// (slug, name) of every dashboard.
#[server(output = crate::codec::JsonText)]
pub async fn list_dashboards() -> Result<Vec<(String, String)>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let service = crate::chart::api::service()?;
    Ok(super::store::list(&service.pool)
        .await?
        .into_iter()
        .map(|s| (s.slug, s.name))
        .collect())
}

#[server(output = crate::codec::JsonText)]
pub async fn get_dashboard(slug: String) -> Result<DashboardPage, AppError> {
    use crate::accounts::{Role, current, require};
    let service = crate::chart::api::service()?;
    let account = current();
    if account.is_none() && !super::store::is_public(&service.pool, &slug).await? {
        require(Role::Viewer)?;
    }
    let dashboard = super::store::get(&service.pool, &slug).await?;
    let shown = dashboard.chart_refs();
    let charts =
        crate::chart::api::summaries(&service, |id| account.is_some() || shown.contains(&id))
            .await?;
    Ok(DashboardPage {
        dashboard,
        minimum_refresh: service.settings.minimum_refresh,
        charts,
        can_edit: account.is_some_and(|a| a.may(Role::Editor)),
    })
}

/// Saves the dashboard found at `slug`, which may get a new slug.
#[server(input = Json, output = crate::codec::JsonText)]
pub async fn save_dashboard(slug: String, dashboard: Dashboard) -> Result<(), AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
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
#[server(output = crate::codec::JsonText)]
pub async fn add_chart_to_dashboard(slug: String, chart: i64) -> Result<(), AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
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
#[server(output = crate::codec::JsonText)]
pub async fn create_dashboard(name: String, slug: String) -> Result<(), AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = crate::chart::api::service()?;
    let dashboard = Dashboard::empty(name, slug);
    super::store::create(&service.pool, &dashboard, service.settings.minimum_refresh).await?;
    Ok(())
}

#[server(output = crate::codec::JsonText)]
pub async fn delete_dashboard(slug: String) -> Result<(), AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = crate::chart::api::service()?;
    if super::store::delete(&service.pool, &slug).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("dashboard {slug:?}")))
    }
}

/// Imports a dashboard file (see `store::export`); returns the new slug.
#[server(input = Json, output = crate::codec::JsonText)]
pub async fn import_dashboard(file: String) -> Result<String, AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
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
