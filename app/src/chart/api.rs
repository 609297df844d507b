//! Server functions for charts: the editor's and the dashboards' calls.

use super::definition::{ChartDefinition, FieldError};
use super::view::{ChartSummary, ChartView, ViewOptions};
use crate::error::{AppError, Result};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub fn service() -> Result<super::service::ChartService> {
    use_context::<super::service::ChartService>().ok_or_else(|| {
        tracing::error!("no chart service in the request context");
        AppError::DatabaseUnavailable
    })
}

/// A saved chart with its place in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedChart {
    pub id: i64,
    pub revision: i32,
    pub definition: ChartDefinition,
}

#[cfg(feature = "ssr")]
impl From<super::store::StoredChart> for SavedChart {
    fn from(chart: super::store::StoredChart) -> Self {
        SavedChart {
            id: chart.id,
            revision: chart.revision,
            definition: chart.definition,
        }
    }
}

/// The datasets charts may read: the built-in ones and every custom stream's.
#[server(output = crate::codec::JsonText)]
pub async fn list_datasets() -> Result<Vec<super::dataset::Dataset>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    Ok(service()?.datasets.to_vec())
}

#[server(output = crate::codec::JsonText)]
pub async fn list_charts() -> Result<Vec<ChartSummary>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    summaries(&service()?, |_| true).await
}

/// The saved charts whose ids `keep` accepts, for lists.
#[cfg(feature = "ssr")]
pub async fn summaries(
    service: &super::service::ChartService,
    keep: impl Fn(i64) -> bool,
) -> Result<Vec<ChartSummary>, AppError> {
    let charts = super::store::list(&service.pool).await?;
    let streams = |dataset: &str| {
        service
            .datasets
            .iter()
            .find(|d| d.name == dataset)
            .map(|d| d.streams.clone())
            .unwrap_or_default()
    };
    Ok(charts
        .into_iter()
        .filter(|c| keep(c.id))
        .map(|c| ChartSummary {
            streams: streams(&c.definition.dataset),
            id: c.id,
            name: c.definition.name,
            chart_type: c.definition.chart_type,
            dataset: c.definition.dataset,
            revision: c.revision,
            refresh_seconds: c.definition.refresh_seconds,
        })
        .collect())
}

#[server(output = crate::codec::JsonText)]
pub async fn get_chart(id: i64) -> Result<SavedChart, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let service = service()?;
    Ok(super::store::get(&service.pool, id).await?.into())
}

/// Creates the chart (no `id`) or saves its next revision.
#[server(input = Json, output = crate::codec::JsonText)]
pub async fn save_chart(
    id: Option<i64>,
    definition: ChartDefinition,
) -> Result<SavedChart, AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = service()?;
    let saved = match id {
        None => super::store::create(&service.pool, &definition, &service.datasets).await?,
        Some(id) => super::store::update(&service.pool, id, &definition, &service.datasets).await?,
    };
    Ok(saved.into())
}

/// Imports a chart file (see `store::export`); returns the new chart.
#[server(input = Json, output = crate::codec::JsonText)]
pub async fn import_chart(file: String) -> Result<SavedChart, AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = service()?;
    Ok(
        super::store::import(&service.pool, &file, &service.datasets)
            .await?
            .into(),
    )
}

#[server(output = crate::codec::JsonText)]
pub async fn duplicate_chart(id: i64) -> Result<SavedChart, AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = service()?;
    Ok(
        super::store::duplicate(&service.pool, id, &service.datasets)
            .await?
            .into(),
    )
}

#[server(output = crate::codec::JsonText)]
pub async fn delete_chart(id: i64) -> Result<(), AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = service()?;
    if super::store::delete(&service.pool, id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("chart {id}")))
    }
}

/// Revision numbers with when each was saved (epoch ms), newest first.
#[server(output = crate::codec::JsonText)]
pub async fn chart_revisions(id: i64) -> Result<Vec<(i32, i64)>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let service = service()?;
    Ok(super::store::revisions(&service.pool, id).await?)
}

#[server(output = crate::codec::JsonText)]
pub async fn restore_chart(id: i64, revision: i32) -> Result<SavedChart, AppError> {
    crate::accounts::require(crate::accounts::Role::Editor)?;
    let service = service()?;
    Ok(
        super::store::restore(&service.pool, id, revision, &service.datasets)
            .await?
            .into(),
    )
}

/// What the editor shows while a definition is being written: the chart,
/// or every field that is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Preview {
    Drawn(ChartView),
    Invalid(Vec<FieldError>),
}

#[server(input = Json, output = crate::codec::JsonText)]
pub async fn preview_chart(
    definition: ChartDefinition,
    options: ViewOptions,
) -> Result<Preview, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let service = service()?;
    match service.view(&definition, &options).await {
        Ok(view) => Ok(Preview::Drawn((*view).clone())),
        Err(AppError::Invalid(errors)) => Ok(Preview::Invalid(errors)),
        Err(error) => Err(error),
    }
}

/// A saved chart drawn as a dashboard shows it.
#[server(input = Json, output = crate::codec::JsonText)]
pub async fn view_chart(id: i64, options: ViewOptions) -> Result<ChartView, AppError> {
    let service = service()?;
    // Anyone may see the charts of a public dashboard.
    if crate::accounts::current().is_none()
        && !crate::dashboard::store::chart_is_public(&service.pool, id).await?
    {
        crate::accounts::require(crate::accounts::Role::Viewer)?;
    }
    let definition = service.saved(id).await?;
    Ok((*service.view(&definition, &options).await?).clone())
}
