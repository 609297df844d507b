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
#[server]
pub async fn list_datasets() -> Result<Vec<super::dataset::Dataset>, AppError> {
    Ok(service()?.datasets.to_vec())
}

#[server]
pub async fn list_charts() -> Result<Vec<ChartSummary>, AppError> {
    let service = service()?;
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

#[server]
pub async fn get_chart(id: i64) -> Result<SavedChart, AppError> {
    let service = service()?;
    Ok(super::store::get(&service.pool, id).await?.into())
}

/// Creates the chart (no `id`) or saves its next revision.
#[server(input = Json)]
pub async fn save_chart(
    id: Option<i64>,
    definition: ChartDefinition,
) -> Result<SavedChart, AppError> {
    let service = service()?;
    let saved = match id {
        None => super::store::create(&service.pool, &definition, &service.datasets).await?,
        Some(id) => super::store::update(&service.pool, id, &definition, &service.datasets).await?,
    };
    Ok(saved.into())
}

/// Imports a chart file (see `store::export`); returns the new chart.
#[server(input = Json)]
pub async fn import_chart(file: String) -> Result<SavedChart, AppError> {
    let service = service()?;
    Ok(
        super::store::import(&service.pool, &file, &service.datasets)
            .await?
            .into(),
    )
}

#[server]
pub async fn duplicate_chart(id: i64) -> Result<SavedChart, AppError> {
    let service = service()?;
    Ok(
        super::store::duplicate(&service.pool, id, &service.datasets)
            .await?
            .into(),
    )
}

#[server]
pub async fn delete_chart(id: i64) -> Result<(), AppError> {
    let service = service()?;
    if super::store::delete(&service.pool, id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("chart {id}")))
    }
}

/// Revision numbers with when each was saved (epoch ms), newest first.
#[server]
pub async fn chart_revisions(id: i64) -> Result<Vec<(i32, i64)>, AppError> {
    let service = service()?;
    Ok(super::store::revisions(&service.pool, id).await?)
}

#[server]
pub async fn restore_chart(id: i64, revision: i32) -> Result<SavedChart, AppError> {
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

#[server(input = Json)]
pub async fn preview_chart(
    definition: ChartDefinition,
    options: ViewOptions,
) -> Result<Preview, AppError> {
    let service = service()?;
    match service.view(&definition, &options).await {
        Ok(view) => Ok(Preview::Drawn((*view).clone())),
        Err(AppError::Invalid(errors)) => Ok(Preview::Invalid(errors)),
        Err(error) => Err(error),
    }
}

/// A saved chart drawn as a dashboard shows it.
#[server(input = Json)]
pub async fn view_chart(id: i64, options: ViewOptions) -> Result<ChartView, AppError> {
    let service = service()?;
    let definition = service.saved(id).await?;
    Ok((*service.view(&definition, &options).await?).clone())
}
