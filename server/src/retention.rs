//! Raw-event retention: rows of the raw tables older than the configured age
//! are removed in small batches, each its own short transaction, so ingest
//! keeps writing meanwhile. The finer summaries of the readings (per 10
//! seconds, and latency per minute) go with them. Rollups, windows and
//! totals live in tables of their own and stay.

use crate::custom::CustomStream;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the removal runs.
const EVERY: Duration = Duration::from_secs(60);

/// Rows removed per transaction.
pub const BATCH_ROWS: i64 = 10_000;

/// A raw table and the SQL expression that dates its rows (a timestamptz
/// that an index covers).
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    pub table: String,
    pub time: String,
}

/// The built-in raw tables and those of the streams of your own.
pub fn raw_tables(custom: &[Arc<CustomStream>]) -> Vec<RawTable> {
    let mut tables = vec![
        RawTable {
            table: "message".into(),
            time: "to_timestamp(ts)".into(),
        },
        RawTable {
            table: "sensor_stats_10s".into(),
            time: "bucket_start".into(),
        },
        RawTable {
            table: "sensor_latency_batches".into(),
            time: "bucket_start".into(),
        },
        RawTable {
            table: "purchases_enriched".into(),
            time: "transaction_time".into(),
        },
        RawTable {
            table: "inventories".into(),
            time: "event_time".into(),
        },
    ];
    tables.extend(custom.iter().map(|stream| RawTable {
        table: stream.table.clone(),
        time: "_event_time".into(),
    }));
    tables
}

/// Removes the rows of `tables` dated more than `age` ago, `batch` rows per
/// transaction. Returns the rows removed and the transactions it took.
pub async fn remove_older_than(
    pool: &PgPool,
    tables: &[RawTable],
    age: Duration,
    batch: i64,
) -> Result<(u64, u64), sqlx::Error> {
    let (mut rows, mut transactions) = (0, 0);
    for RawTable { table, time } in tables {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
               SELECT ctid FROM {table} WHERE {time} < now() - make_interval(secs => $1) LIMIT $2))"
        );
        loop {
            let removed = sqlx::query(&sql)
                .bind(age.as_secs_f64())
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected();
            rows += removed;
            transactions += 1;
            if removed < batch as u64 {
                break;
            }
            // Let flushes waiting for a connection go first.
            tokio::task::yield_now().await;
        }
    }
    Ok((rows, transactions))
}

/// Every minute until shutdown, removes raw rows older than `age`.
pub async fn run(pool: PgPool, tables: Vec<RawTable>, age: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match remove_older_than(&pool, &tables, age, BATCH_ROWS).await {
            Ok((0, _)) => {}
            Ok((rows, transactions)) => {
                tracing::info!(rows, transactions, "removed raw rows past their retention");
            }
            Err(error) => {
                tracing::warn!(%error, "removing raw rows past their retention failed; trying again in a minute");
            }
        }
    }
}
