//! The in-process path: readings from a channel, buffered, flushed to Postgres.

use crate::config::FlushConfig;
use crate::metrics::{self, Source};
use crate::reading::Reading;
use crate::store::{self, Batch, DeadLetter};
use sqlx::PgPool;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Capacity of the channel into the pipeline; a full channel makes senders wait.
pub const CHANNEL_CAPACITY: usize = 10_000;

pub fn channel() -> (mpsc::Sender<Reading>, mpsc::Receiver<Reading>) {
    mpsc::channel(CHANNEL_CAPACITY)
}

/// Runs until shutdown (or until every sender is gone), then flushes what is left.
pub async fn run(
    pool: PgPool,
    mut rx: mpsc::Receiver<Reading>,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    let mut batch = Batch::default();
    let mut ticker = tokio::time::interval(flush.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some(reading) => {
                    admit(&mut batch, reading);
                    if batch.len() >= flush.max_records {
                        flush_now(&pool, &mut batch, &shutdown).await;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    flush_now(&pool, &mut batch, &shutdown).await;
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
    // Drain what senders already handed over, then write it.
    rx.close();
    while let Some(reading) = rx.recv().await {
        admit(&mut batch, reading);
    }
    if !batch.is_empty() {
        flush_now(&pool, &mut batch, &shutdown).await;
    }
    tracing::info!("pipeline stopped");
}

/// Valid readings join the batch; invalid ones become dead letters, never silently dropped.
fn admit(batch: &mut Batch, reading: Reading) {
    metrics::global().received(Source::Pipeline, 1);
    match reading.validate() {
        Ok(()) => batch.readings.push(reading.received_now()),
        Err(error) => batch.dead_letters.push(DeadLetter {
            stream: Some(crate::store::SENSOR_STREAM.into()),
            source: "pipeline".into(),
            position: None,
            payload: reading.to_json(),
            reason: error.to_string(),
        }),
    }
}

async fn flush_now(pool: &PgPool, batch: &mut Batch, shutdown: &CancellationToken) {
    let started = Instant::now();
    match store::retry(shutdown, "flush", || store::write_batch(pool, batch)).await {
        Ok(()) => {
            let took = started.elapsed();
            metrics::global().flushed(
                Source::Pipeline,
                batch.readings.len(),
                batch.dead_letters.len(),
                took,
            );
            tracing::debug!(records = batch.len(), ?took, "flushed");
        }
        Err(error) => tracing::error!(%error, records = batch.len(), "pipeline flush abandoned"),
    }
    batch.clear();
}
