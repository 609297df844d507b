//! Dashboards kept as files with the deployment (`PULSEBOARD_DASHBOARDS_DIR`),
//! loaded at start: a new or changed file (re)creates its dashboard, an
//! unchanged one leaves edits made in the browser alone.

use anyhow::Context;
use app::chart::dataset::Dataset;
use app::dashboard::store::{self, Loaded};
use sqlx::PgPool;
use std::path::Path;

/// Loads every `*.json` file in `dir`, in name order. A missing folder loads
/// nothing; a file that cannot be loaded stops the start, naming it.
pub async fn load_dir(
    pool: &PgPool,
    dir: &Path,
    datasets: &[Dataset],
    minimum_refresh: u32,
) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(dir = %dir.display(), "no dashboards folder; none loaded");
            return Ok(());
        }
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", dir.display()));
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let loaded = store::load(pool, &text, datasets, minimum_refresh)
            .await
            .with_context(|| format!("loading the dashboard file {}", path.display()))?;
        match loaded {
            Loaded::Created => tracing::info!(file = %path.display(), "dashboard loaded"),
            Loaded::Unchanged => {
                tracing::debug!(file = %path.display(), "dashboard file unchanged")
            }
        }
    }
    Ok(())
}
