//! Writes batches to Postgres: readings into `message`, refused records into
//! `dead_letters`, both in one transaction.

use crate::reading::Reading;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A record that could not be used, kept with where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// e.g. `kafka` or `pipeline`.
    pub source: String,
    /// Position in the source, e.g. `sensor.readings/2@1041`.
    pub position: Option<String>,
    pub payload: Vec<u8>,
    pub reason: String,
}

/// Records waiting for the next flush.
#[derive(Debug, Default)]
pub struct Batch {
    pub readings: Vec<Reading>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.readings.len() + self.dead_letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.readings.clear();
        self.dead_letters.clear();
    }
}

/// Writes one batch in a single transaction: all of it lands, or none of it.
pub async fn write_batch(pool: &PgPool, batch: &Batch) -> Result<(), sqlx::Error> {
    stage_batch(pool, batch).await?.commit().await
}

/// Inserts the batch in a new transaction and hands it back uncommitted, so
/// the caller can add what must land with it (such as source offsets).
pub async fn stage_batch(
    pool: &PgPool,
    batch: &Batch,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_readings(&mut tx, &batch.readings).await?;
    insert_dead_letters(&mut tx, &batch.dead_letters).await?;
    Ok(tx)
}

async fn insert_readings(
    tx: &mut Transaction<'_, Postgres>,
    readings: &[Reading],
) -> Result<(), sqlx::Error> {
    if readings.is_empty() {
        return Ok(());
    }
    let guids: Vec<&str> = readings.iter().map(|r| r.guid.as_str()).collect();
    let stamps: Vec<i64> = readings.iter().map(|r| r.ts).collect();
    let temps: Vec<f64> = readings.iter().map(|r| r.temp).collect();
    // One statement per batch: arrays in, rows out.
    sqlx::query(
        "INSERT INTO message (guid, ts, temp)
         SELECT guid, ts, temp::numeric(5, 2)
           FROM unnest($1::text[], $2::int8[], $3::float8[]) AS r(guid, ts, temp)",
    )
    .bind(&guids)
    .bind(&stamps)
    .bind(&temps)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_dead_letters(
    tx: &mut Transaction<'_, Postgres>,
    letters: &[DeadLetter],
) -> Result<(), sqlx::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    let sources: Vec<&str> = letters.iter().map(|d| d.source.as_str()).collect();
    let positions: Vec<Option<&str>> = letters.iter().map(|d| d.position.as_deref()).collect();
    let payloads: Vec<&[u8]> = letters.iter().map(|d| d.payload.as_slice()).collect();
    let reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO dead_letters (source, position, payload, reason)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[])",
    )
    .bind(&sources)
    .bind(&positions)
    .bind(&payloads)
    .bind(&reasons)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The work was abandoned because the service is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("shutdown while the database was unavailable")]
pub struct Abandoned;

/// Runs `attempt` until it succeeds, backing off while the database is unavailable.
///
/// Nothing is dropped while retrying: callers stop reading their source until
/// this returns, so backpressure reaches the producer. On shutdown it makes
/// one last attempt, so a shutdown during a brief blip still lands the work.
pub async fn retry<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Result<T, Abandoned>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(error) => tracing::warn!(%error, retry_in = ?delay, "{what} failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return attempt().await.map_err(|_| Abandoned),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
