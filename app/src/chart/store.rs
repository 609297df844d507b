//! Saved charts in Postgres: create, edit, duplicate, delete, revision
//! history with restore, and export and import as JSON files.

use super::dataset::Dataset;
use super::definition::{ChartDefinition, FieldError, MAX_NAME};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// A chart as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChart {
    pub id: i64,
    pub revision: i32,
    pub definition: ChartDefinition,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the chart is not valid")]
    Invalid(Vec<FieldError>),
    #[error("no chart {0}")]
    NotFound(i64),
    #[error("not a chart file: {0}")]
    BadFile(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The file a chart exports to, and imports from.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartFile {
    /// The file format's version.
    pulseboard_chart: u32,
    chart: ChartDefinition,
}

const FILE_VERSION: u32 = 1;

fn checked(definition: &ChartDefinition, datasets: &[Dataset]) -> Result<String, StoreError> {
    let errors = definition.validate(datasets);
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    serde_json::to_string(definition).map_err(|e| StoreError::BadFile(e.to_string()))
}

fn parse(json: &str) -> Result<ChartDefinition, StoreError> {
    // Stored definitions were valid when saved; a dataset may have gone since,
    // which running the chart reports.
    serde_json::from_str(json).map_err(|e| StoreError::BadFile(e.to_string()))
}

/// Adds a revision to the chart's history.
async fn keep_revision(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    revision: i32,
    json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chart_revisions (chart_id, revision, definition) VALUES ($1, $2, $3::jsonb)",
    )
    .bind(id)
    .bind(revision)
    .bind(json)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn create(
    pool: &PgPool,
    definition: &ChartDefinition,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    let mut tx = pool.begin().await?;
    let chart = insert(&mut tx, definition, datasets).await?;
    tx.commit().await?;
    Ok(chart)
}

/// Creates a chart inside a larger transaction (a dashboard's import).
pub async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    definition: &ChartDefinition,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    let json = checked(definition, datasets)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO charts (name, definition, revision) VALUES ($1, $2::jsonb, 1) RETURNING id",
    )
    .bind(&definition.name)
    .bind(&json)
    .fetch_one(&mut **tx)
    .await?;
    keep_revision(tx, id, 1, &json).await?;
    Ok(StoredChart {
        id,
        revision: 1,
        definition: definition.clone(),
    })
}

/// Saves `definition` as the chart's next revision.
pub async fn update(
    pool: &PgPool,
    id: i64,
    definition: &ChartDefinition,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    let json = checked(definition, datasets)?;
    let mut tx = pool.begin().await?;
    let revision: Option<i32> = sqlx::query_scalar(
        "UPDATE charts SET name = $2, definition = $3::jsonb, revision = revision + 1, updated_at = now()
          WHERE id = $1 RETURNING revision",
    )
    .bind(id)
    .bind(&definition.name)
    .bind(&json)
    .fetch_optional(&mut *tx)
    .await?;
    let revision = revision.ok_or(StoreError::NotFound(id))?;
    keep_revision(&mut tx, id, revision, &json).await?;
    tx.commit().await?;
    Ok(StoredChart {
        id,
        revision,
        definition: definition.clone(),
    })
}

pub async fn get(pool: &PgPool, id: i64) -> Result<StoredChart, StoreError> {
    let row: Option<(i32, String)> =
        sqlx::query_as("SELECT revision, definition::text FROM charts WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let (revision, json) = row.ok_or(StoreError::NotFound(id))?;
    Ok(StoredChart {
        id,
        revision,
        definition: parse(&json)?,
    })
}

/// Every chart, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<StoredChart>, StoreError> {
    let rows: Vec<(i64, i32, String)> =
        sqlx::query_as("SELECT id, revision, definition::text FROM charts ORDER BY name, id")
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(id, revision, json)| {
            Ok(StoredChart {
                id,
                revision,
                definition: parse(&json)?,
            })
        })
        .collect()
}

/// A new chart with the same definition, named as a copy.
pub async fn duplicate(
    pool: &PgPool,
    id: i64,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    let original = get(pool, id).await?;
    let mut definition = original.definition;
    definition.name = format!("Copy of {}", definition.name)
        .chars()
        .take(MAX_NAME)
        .collect();
    create(pool, &definition, datasets).await
}

/// Deletes the chart and its history. Says whether it existed.
pub async fn delete(pool: &PgPool, id: i64) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM charts WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The chart's revisions, newest first: number and when it was saved
/// (epoch milliseconds).
pub async fn revisions(pool: &PgPool, id: i64) -> Result<Vec<(i32, i64)>, StoreError> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT revision, (extract(epoch FROM saved_at) * 1000)::int8
           FROM chart_revisions WHERE chart_id = $1 ORDER BY revision DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound(id));
    }
    Ok(rows)
}

/// Saves revision `revision`'s definition as the chart's next revision.
pub async fn restore(
    pool: &PgPool,
    id: i64,
    revision: i32,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    let json: Option<String> = sqlx::query_scalar(
        "SELECT definition::text FROM chart_revisions WHERE chart_id = $1 AND revision = $2",
    )
    .bind(id)
    .bind(revision)
    .fetch_optional(pool)
    .await?;
    let definition = parse(&json.ok_or(StoreError::NotFound(id))?)?;
    update(pool, id, &definition, datasets).await
}

/// The chart as a file to keep in git or import elsewhere.
pub async fn export(pool: &PgPool, id: i64) -> Result<String, StoreError> {
    let chart = get(pool, id).await?;
    to_file(&chart.definition)
}

pub fn to_file(definition: &ChartDefinition) -> Result<String, StoreError> {
    let file = ChartFile {
        pulseboard_chart: FILE_VERSION,
        chart: definition.clone(),
    };
    let mut text =
        serde_json::to_string_pretty(&file).map_err(|e| StoreError::BadFile(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Reads a file made by [`export`] into a new chart.
pub async fn import(
    pool: &PgPool,
    file: &str,
    datasets: &[Dataset],
) -> Result<StoredChart, StoreError> {
    create(pool, &read_file(file)?, datasets).await
}

/// The chart in a file made by [`export`].
pub fn read_file(text: &str) -> Result<ChartDefinition, StoreError> {
    let file: ChartFile =
        serde_json::from_str(text).map_err(|e| StoreError::BadFile(e.to_string()))?;
    if file.pulseboard_chart != FILE_VERSION {
        return Err(StoreError::BadFile(format!(
            "format version {} is not {FILE_VERSION}",
            file.pulseboard_chart
        )));
    }
    Ok(file.chart)
}
