//! Dashboards in Postgres, and dashboard files: one JSON file holds a
//! dashboard and every chart it shows, so a team can keep it in git.

use super::definition::{Content, Dashboard};
use crate::chart::dataset::Dataset;
use crate::chart::definition::{ChartDefinition, FieldError};
use crate::chart::store::{self as charts, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("the dashboard is not valid")]
    Invalid(Vec<FieldError>),
    #[error("no dashboard {0:?}")]
    NotFound(String),
    #[error("a dashboard at {0:?} exists already")]
    SlugTaken(String),
    #[error("not a dashboard file: {0}")]
    BadFile(String),
    #[error("chart {index} of the file: {error}")]
    Chart { index: usize, error: StoreError },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The file format: the dashboard, whose chart elements name positions in
/// `charts`, and the charts in order of first appearance.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardFile {
    pulseboard_dashboard: u32,
    dashboard: Dashboard,
    charts: Vec<ChartDefinition>,
}

const FILE_VERSION: u32 = 1;

/// A dashboard's slug and name, for lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub slug: String,
    pub name: String,
    /// Readable without signing in.
    pub public: bool,
}

pub async fn list(pool: &PgPool) -> Result<Vec<Summary>, DashboardError> {
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT slug, name, public FROM dashboards ORDER BY name, slug")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(slug, name, public)| Summary { slug, name, public })
        .collect())
}

/// Whether the dashboard at `slug` exists and is public.
pub async fn is_public(pool: &PgPool, slug: &str) -> Result<bool, DashboardError> {
    let public: Option<bool> = sqlx::query_scalar("SELECT public FROM dashboards WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await?;
    Ok(public == Some(true))
}

/// Whether saved chart `chart` is on a public dashboard, so that anyone may
/// see it drawn.
pub async fn chart_is_public(pool: &PgPool, chart: i64) -> Result<bool, DashboardError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (
           SELECT 1 FROM dashboards d,
                  jsonb_array_elements(d.definition -> 'tabs') tab,
                  jsonb_array_elements(tab -> 'elements') element
            WHERE d.public AND element -> 'content' -> 'chart' = to_jsonb($1::int8))",
    )
    .bind(chart)
    .fetch_one(pool)
    .await?)
}

/// Sets whether the dashboard is public; says whether it exists.
pub async fn set_public(pool: &PgPool, slug: &str, public: bool) -> Result<bool, DashboardError> {
    let changed = sqlx::query("UPDATE dashboards SET public = $2 WHERE slug = $1")
        .bind(slug)
        .bind(public)
        .execute(pool)
        .await?;
    Ok(changed.rows_affected() == 1)
}

pub async fn get(pool: &PgPool, slug: &str) -> Result<Dashboard, DashboardError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT definition::text FROM dashboards WHERE slug = $1")
            .bind(slug)
            .fetch_optional(pool)
            .await?;
    stored(json, slug)
}

/// The dashboard in a `definition` column read for `slug`.
fn stored(json: Option<String>, slug: &str) -> Result<Dashboard, DashboardError> {
    let json = json.ok_or_else(|| DashboardError::NotFound(slug.into()))?;
    serde_json::from_str(&json).map_err(|e| DashboardError::BadFile(e.to_string()))
}

/// Checks the dashboard, and that every chart it names exists.
async fn checked(
    executor: &mut sqlx::PgConnection,
    dashboard: &Dashboard,
    minimum_refresh: u32,
) -> Result<String, DashboardError> {
    let mut errors = dashboard.validate(minimum_refresh);
    let refs = dashboard.chart_refs();
    let found: Vec<i64> = sqlx::query_scalar("SELECT id FROM charts WHERE id = ANY($1)")
        .bind(&refs)
        .fetch_all(&mut *executor)
        .await?;
    for (t, tab) in dashboard.tabs.iter().enumerate() {
        for (e, element) in tab.elements.iter().enumerate() {
            if let Content::Chart(id) = element.content
                && !found.contains(&id)
            {
                errors.push(FieldError {
                    field: format!("tabs[{t}].elements[{e}]"),
                    message: format!("no chart {id}"),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(DashboardError::Invalid(errors));
    }
    serde_json::to_string(dashboard).map_err(|e| DashboardError::BadFile(e.to_string()))
}

fn taken(error: sqlx::Error, slug: &str) -> DashboardError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            DashboardError::SlugTaken(slug.into())
        }
        _ => DashboardError::Database(error),
    }
}

pub async fn create(
    pool: &PgPool,
    dashboard: &Dashboard,
    minimum_refresh: u32,
) -> Result<(), DashboardError> {
    let mut tx = pool.begin().await?;
    insert(&mut tx, dashboard, minimum_refresh, None).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    dashboard: &Dashboard,
    minimum_refresh: u32,
    source_hash: Option<&str>,
) -> Result<(), DashboardError> {
    let json = checked(tx, dashboard, minimum_refresh).await?;
    sqlx::query(
        "INSERT INTO dashboards (slug, name, definition, source_hash) VALUES ($1, $2, $3::jsonb, $4)",
    )
    .bind(&dashboard.slug)
    .bind(&dashboard.name)
    .bind(&json)
    .bind(source_hash)
    .execute(&mut **tx)
    .await
    .map_err(|e| taken(e, &dashboard.slug))?;
    Ok(())
}

/// Saves the dashboard found at `slug` (which it may rename).
pub async fn save(
    pool: &PgPool,
    slug: &str,
    dashboard: &Dashboard,
    minimum_refresh: u32,
) -> Result<(), DashboardError> {
    let mut tx = pool.begin().await?;
    let json = checked(&mut tx, dashboard, minimum_refresh).await?;
    let saved = sqlx::query(
        "UPDATE dashboards SET slug = $2, name = $3, definition = $4::jsonb, updated_at = now()
          WHERE slug = $1",
    )
    .bind(slug)
    .bind(&dashboard.slug)
    .bind(&dashboard.name)
    .bind(&json)
    .execute(&mut *tx)
    .await
    .map_err(|e| taken(e, &dashboard.slug))?;
    if saved.rows_affected() == 0 {
        return Err(DashboardError::NotFound(slug.into()));
    }
    tx.commit().await?;
    Ok(())
}

/// Puts saved chart `chart` below everything on the dashboard's first tab,
/// half the grid wide and four rows high. The row lock keeps two additions
/// at once from overwriting each other.
pub async fn add_chart(
    pool: &PgPool,
    slug: &str,
    chart: i64,
    minimum_refresh: u32,
) -> Result<(), DashboardError> {
    let mut tx = pool.begin().await?;
    let json: Option<String> =
        sqlx::query_scalar("SELECT definition::text FROM dashboards WHERE slug = $1 FOR UPDATE")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
    let mut dashboard = stored(json, slug)?;
    let Some(first) = dashboard.tabs.first_mut() else {
        return Err(DashboardError::BadFile(format!(
            "dashboard {slug:?} has no tab"
        )));
    };
    first.append(Content::Chart(chart), 4);
    let json = checked(&mut tx, &dashboard, minimum_refresh).await?;
    sqlx::query("UPDATE dashboards SET definition = $2::jsonb, updated_at = now() WHERE slug = $1")
        .bind(slug)
        .bind(&json)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the dashboard (its charts stay). Says whether it existed.
pub async fn delete(pool: &PgPool, slug: &str) -> Result<bool, DashboardError> {
    let deleted = sqlx::query("DELETE FROM dashboards WHERE slug = $1")
        .bind(slug)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The dashboard and its charts as one file.
pub async fn export(pool: &PgPool, slug: &str) -> Result<String, DashboardError> {
    let mut dashboard = get(pool, slug).await?;
    let refs = dashboard.chart_refs();
    let mut definitions = Vec::with_capacity(refs.len());
    for id in &refs {
        let chart = charts::get(pool, *id).await.map_err(|error| match error {
            StoreError::Database(e) => DashboardError::Database(e),
            error => DashboardError::Chart {
                index: definitions.len(),
                error,
            },
        })?;
        definitions.push(chart.definition);
    }
    renumber(&mut dashboard, |id| {
        refs.iter().position(|r| *r == id).map(|p| p as i64)
    });
    let file = DashboardFile {
        pulseboard_dashboard: FILE_VERSION,
        dashboard,
        charts: definitions,
    };
    let mut text =
        serde_json::to_string_pretty(&file).map_err(|e| DashboardError::BadFile(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Replaces every chart reference with `map(reference)`.
fn renumber(dashboard: &mut Dashboard, map: impl Fn(i64) -> Option<i64>) {
    for element in dashboard.tabs.iter_mut().flat_map(|t| &mut t.elements) {
        if let Content::Chart(id) = &mut element.content {
            *id = map(*id).unwrap_or(-1);
        }
    }
}

fn read_file(text: &str) -> Result<DashboardFile, DashboardError> {
    let file: DashboardFile =
        serde_json::from_str(text).map_err(|e| DashboardError::BadFile(e.to_string()))?;
    if file.pulseboard_dashboard != FILE_VERSION {
        return Err(DashboardError::BadFile(format!(
            "format version {} is not {FILE_VERSION}",
            file.pulseboard_dashboard
        )));
    }
    for id in file.dashboard.chart_refs() {
        if usize::try_from(id).map_or(true, |i| i >= file.charts.len()) {
            return Err(DashboardError::BadFile(format!(
                "an element shows chart {id}, but the file has {} charts",
                file.charts.len()
            )));
        }
    }
    Ok(file)
}

/// How a file's dashboard meets one already at its slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Refuse,
    Replace,
}

/// Creates the file's charts and dashboard in one transaction: all or nothing.
pub async fn import(
    pool: &PgPool,
    text: &str,
    datasets: &[Dataset],
    minimum_refresh: u32,
    on_conflict: OnConflict,
    source_hash: Option<&str>,
) -> Result<Dashboard, DashboardError> {
    let DashboardFile {
        mut dashboard,
        charts: definitions,
        ..
    } = read_file(text)?;
    let mut tx = pool.begin().await?;
    if on_conflict == OnConflict::Replace {
        sqlx::query("DELETE FROM dashboards WHERE slug = $1")
            .bind(&dashboard.slug)
            .execute(&mut *tx)
            .await?;
    }
    let mut ids = Vec::with_capacity(definitions.len());
    for (index, definition) in definitions.iter().enumerate() {
        let chart = charts::insert(&mut tx, definition, datasets)
            .await
            .map_err(|error| DashboardError::Chart { index, error })?;
        ids.push(chart.id);
    }
    renumber(&mut dashboard, |i| ids.get(i as usize).copied());
    insert(&mut tx, &dashboard, minimum_refresh, source_hash).await?;
    tx.commit().await?;
    Ok(dashboard)
}

/// What loading a dashboard file at start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// New, or the file changed since it was last loaded: (re)created.
    Created,
    /// The same file was loaded before; edits made since are kept.
    Unchanged,
}

/// Loads a dashboard file kept with the deployment. A file loads again only
/// when its content changed, so edits made in the browser survive restarts.
pub async fn load(
    pool: &PgPool,
    text: &str,
    datasets: &[Dataset],
    minimum_refresh: u32,
) -> Result<Loaded, DashboardError> {
    let hash = content_hash(text);
    let slug = read_file(text)?.dashboard.slug;
    let known: Option<Option<String>> =
        sqlx::query_scalar("SELECT source_hash FROM dashboards WHERE slug = $1")
            .bind(&slug)
            .fetch_optional(pool)
            .await?;
    if known.flatten().as_deref() == Some(hash.as_str()) {
        return Ok(Loaded::Unchanged);
    }
    import(
        pool,
        text,
        datasets,
        minimum_refresh,
        OnConflict::Replace,
        Some(&hash),
    )
    .await?;
    Ok(Loaded::Created)
}

/// FNV-1a over the file's bytes: enough to tell whether a file changed.
fn content_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
