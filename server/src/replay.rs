//! Replay: re-process a stream's topics from their earliest offsets into the
//! database (the seed's Spark batch job), reporting progress as it goes.
//!
//! It reads every partition up to the end offsets seen when it starts, with a
//! fresh consumer group that commits nothing, so the live consumer group is
//! untouched. Records go through the stream's own sink, so a replay computes
//! exactly what live ingest does. With a reset first, a stream's tables and
//! the figures computed from them are emptied, so they are rebuilt from the
//! topics alone.

use crate::config::KafkaConfig;
use crate::consumer::{Decode, Sink};
use crate::kafka::client_config;
use crate::sales_kafka::{INVENTORIES, PRODUCTS, PURCHASES};
use crate::store;
use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;

/// Records written per transaction.
const BATCH_RECORDS: usize = 5_000;

/// How far a replay has got: records done out of the records to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Empties the readings and the statistics derived from them.
pub async fn reset_readings(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("TRUNCATE message, sensor_stats_minutely, sensor_stats_10s, sensor_temp_histogram, sensor_temp_counts_pending, sensor_latency_batches")
        .execute(&mut *tx)
        .await?;
    forget_streams(&mut tx, &[store::SENSOR_STREAM]).await?;
    tx.commit().await
}

/// Empties what the sales pipeline computed (the menu stays: it is the
/// latest state, not a history).
pub async fn reset_sales(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "TRUNCATE purchases_enriched, inventories, running_totals, sales_windows, pending_purchases",
    )
    .execute(&mut *tx)
    .await?;
    forget_streams(&mut tx, &[PRODUCTS, PURCHASES, INVENTORIES]).await?;
    tx.commit().await
}

/// Deletes the streams' rows from the tables all streams share: latency,
/// activity, late events, window watermarks and the dead letters read from Kafka.
pub(crate) async fn forget_streams(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    streams: &[&str],
) -> Result<(), sqlx::Error> {
    for table in [
        "latency_stats",
        "latency_histogram",
        "stream_activity",
        "late_events",
        "window_watermarks",
        "window_sources",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE stream = ANY($1)"))
            .bind(streams)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM dead_letters WHERE source = 'kafka' AND stream = ANY($1)")
        .bind(streams)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replays `topics` from the beginning to the end offsets seen at start,
/// through `sink`, one transaction per batch.
pub async fn run<S: Sink>(
    pool: &PgPool,
    kafka: &KafkaConfig,
    topics: &[String],
    sink: &mut S,
    mut report: impl FnMut(Progress),
) -> anyhow::Result<Progress> {
    let group = format!("pulseboard-replay-{:016x}", rand::random::<u64>());
    let consumer: StreamConsumer = client_config(kafka)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating the replay consumer")?;

    // The partitions and where each ends now: the replay stops there.
    let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("reading the partitions of {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {topic:?} does not exist or has no partitions"
        );
        for partition in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
            if high > low {
                remaining.insert((topic.clone(), partition), high);
                total += (high - low) as u64;
                assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
            }
        }
    }
    let mut progress = Progress { done: 0, total };
    report(progress);
    if remaining.is_empty() {
        return Ok(progress);
    }
    consumer
        .assign(&assignment)
        .context("assigning the partitions")?;
    let partitions: Vec<(String, i32)> = remaining.keys().cloned().collect();
    sink.assigned(&partitions);

    let decoder = sink.decoder();
    while !remaining.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("no record from Kafka for 30 s")?
            .context("reading from Kafka")?;
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let key = (topic.to_string(), partition);
        let Some(end) = remaining.get(&key).copied() else {
            continue;
        };
        if offset >= end {
            remaining.remove(&key);
            continue;
        }
        let record = decoder.decode(
            topic,
            partition,
            message.payload().unwrap_or_default(),
            &|| format!("{topic}/{partition}@{offset}"),
        );
        sink.hold(record);
        progress.done += 1;
        if offset + 1 >= end {
            remaining.remove(&key);
        }
        if sink.len() >= BATCH_RECORDS || remaining.is_empty() {
            let mut tx = pool.begin().await?;
            let staged = sink.stage(&mut tx).await.context("writing a batch")?;
            tx.commit().await.context("committing a batch")?;
            sink.committed(staged).await;
            report(progress);
        }
    }
    // The last partition may end on a record past its end offset.
    if !sink.is_empty() {
        let mut tx = pool.begin().await?;
        let staged = sink.stage(&mut tx).await.context("writing a batch")?;
        tx.commit().await.context("committing a batch")?;
        sink.committed(staged).await;
        report(progress);
    }
    Ok(progress)
}

/// A one-line text progress bar, e.g. `[#####.....]  50%  500/1000 records`.
pub fn bar(progress: Progress, width: usize) -> String {
    let share = if progress.total == 0 {
        1.0
    } else {
        progress.done as f64 / progress.total as f64
    };
    let filled = ((share * width as f64).round() as usize).min(width);
    format!(
        "[{}{}] {:>3}%  {}/{} records",
        "#".repeat(filled),
        ".".repeat(width - filled),
        (share * 100.0).round() as u64,
        progress.done,
        progress.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_progress() {
        assert_eq!(
            bar(Progress { done: 0, total: 10 }, 10),
            "[..........]   0%  0/10 records"
        );
        assert_eq!(
            bar(Progress { done: 5, total: 10 }, 10),
            "[#####.....]  50%  5/10 records"
        );
        assert_eq!(
            bar(
                Progress {
                    done: 10,
                    total: 10
                },
                10
            ),
            "[##########] 100%  10/10 records"
        );
        assert_eq!(
            bar(Progress { done: 0, total: 0 }, 4),
            "[####] 100%  0/0 records"
        );
    }
}
