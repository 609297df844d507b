//! Streams of your own as chart datasets: the raw table (when records are
//! kept) and each rollup's and window's view, with their columns typed from
//! the table as it exists and the roles the definition gives its fields.

use super::CustomStream;
use crate::definitions::Role;
use app::chart::dataset::{Column, ColumnKind, Dataset};
use sqlx::PgPool;

/// Bookkeeping columns a chart has no use for.
const HIDDEN: [&str; 5] = [
    "_ingested_at",
    "_stored_at",
    "updated_at",
    "bucket_end",
    "window_end",
];

/// The time column each kind of table is charted by.
const TIME_COLUMNS: [&str; 3] = ["_event_time", "bucket_start", "window_start"];

/// Every dataset of `streams`, read from their prepared tables and views.
pub async fn datasets(
    pool: &PgPool,
    streams: &[impl AsRef<CustomStream>],
) -> Result<Vec<Dataset>, sqlx::Error> {
    let mut found = Vec::new();
    for stream in streams {
        let stream = stream.as_ref();
        let mut tables = Vec::new();
        if stream.raw_rows {
            tables.push((
                stream.table.clone(),
                format!("Every record of stream {:?}", stream.name),
            ));
        }
        for rollup in &stream.rollups {
            let what = if rollup.window.is_some() {
                "window"
            } else {
                "rollup"
            };
            tables.push((
                format!("{}_view", rollup.table),
                format!("Stream {:?}, {what} {:?}", stream.name, rollup.name),
            ));
        }
        for (table, description) in tables {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = $1
                  ORDER BY ordinal_position",
            )
            .bind(&table)
            .fetch_all(pool)
            .await?;
            found.push(Dataset {
                name: table,
                description,
                streams: vec![stream.name.clone()],
                columns: typed(stream, columns),
            });
        }
    }
    Ok(found)
}

/// The columns a chart may use, the time column first.
fn typed(stream: &CustomStream, columns: Vec<(String, String)>) -> Vec<Column> {
    let mut typed: Vec<Column> = columns
        .into_iter()
        .filter(|(name, _)| !HIDDEN.contains(&name.as_str()))
        .filter_map(|(name, data_type)| {
            let role = stream
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.role);
            let kind = match (role, data_type.as_str()) {
                _ if TIME_COLUMNS.contains(&name.as_str()) => ColumnKind::Time,
                // The event-time field as sent; `_event_time` is its reading.
                (Some(Role::Time), _) => return None,
                (Some(Role::Latitude), _) => ColumnKind::Latitude,
                (Some(Role::Longitude), _) => ColumnKind::Longitude,
                (Some(Role::Dimension), _) => ColumnKind::Dimension,
                (_, "timestamp with time zone") => return None,
                (
                    _,
                    "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision",
                ) => ColumnKind::Metric,
                _ => ColumnKind::Dimension,
            };
            Some(Column { name, kind })
        })
        .collect();
    typed.sort_by_key(|c| c.kind != ColumnKind::Time);
    typed
}
