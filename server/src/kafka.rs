//! Kafka: the readings producer (for the simulator) and the consumer group
//! that writes readings to Postgres in batches.

use crate::config::{FlushConfig, KafkaConfig};
use crate::metrics::{self, Source};
use crate::offsets::{self, Fence, Progress};
use crate::reading::Reading;
use crate::store::{self, Batch, DeadLetter};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    client
}

/// Publishes keyed JSON messages and waits for the broker's acknowledgement.
pub struct JsonPublisher {
    producer: FutureProducer,
}

/// A message to publish: topic, key and JSON payload.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub payload: Vec<u8>,
}

impl JsonPublisher {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer = client_config(config)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(JsonPublisher { producer })
    }

    /// Sends every message and waits until the broker has acknowledged all of them.
    pub async fn publish(&self, messages: &[Outgoing<'_>]) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(messages.len());
        for message in messages {
            let record = FutureRecord::to(message.topic)
                .key(message.key)
                .payload(&message.payload);
            // Enqueue everything first so the batch travels together.
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(error, _record)| error)?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            delivery
                .await
                .map_err(|_canceled| KafkaError::Canceled)?
                .map_err(|(error, _message)| error)?;
        }
        Ok(())
    }
}

/// Messages kept for retry while Kafka is unreachable, at most; beyond that the
/// oldest are discarded, and the loss is logged as an error.
pub const MAX_PENDING: usize = 100_000;

/// After a failed publish: keeps `pending` for the next try, within [`MAX_PENDING`].
pub fn keep_for_retry<T>(pending: &mut Vec<T>, error: &KafkaError, what: &str) {
    tracing::warn!(%error, pending = pending.len(), "publishing {what} failed; will retry");
    if pending.len() > MAX_PENDING {
        let dropped = pending.len() - MAX_PENDING;
        pending.drain(..dropped);
        tracing::error!(dropped, "{what} backlog full; oldest discarded");
    }
}

/// Publishes readings as JSON, keyed by sensor GUID so each sensor stays in order.
pub struct ReadingPublisher {
    publisher: JsonPublisher,
    topic: String,
}

impl ReadingPublisher {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(ReadingPublisher {
            publisher: JsonPublisher::new(config)?,
            topic: config.readings_topic.clone(),
        })
    }

    pub async fn publish(&self, readings: &[Reading]) -> Result<(), KafkaError> {
        let messages: Vec<Outgoing> = readings
            .iter()
            .map(|r| Outgoing {
                topic: &self.topic,
                key: &r.guid,
                payload: r.to_json(),
            })
            .collect();
        self.publisher.publish(&messages).await
    }
}

/// Publishes each partition's lag from the client's periodic statistics.
pub struct LagReporter;

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for partition in topic.partitions.values() {
                // librdkafka lists an internal partition -1; lag is -1 until known.
                if partition.partition >= 0 && partition.consumer_lag >= 0 {
                    metrics::global().set_kafka_lag(
                        &topic.topic,
                        partition.partition,
                        partition.consumer_lag,
                    );
                }
            }
        }
    }
}

impl ConsumerContext for LagReporter {}

type ReadingConsumer = StreamConsumer<LagReporter>;

fn consumer(config: &KafkaConfig) -> Result<ReadingConsumer, KafkaError> {
    let consumer: ReadingConsumer = client_config(config)
        .set("group.id", &config.group_id)
        // Postgres holds the true offsets; Kafka's copy is committed only after
        // the rows it covers are stored.
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "1000")
        .create_with_context(LagReporter)?;
    consumer.subscribe(&[config.readings_topic.as_str()])?;
    Ok(consumer)
}

/// Why one consumer session ended.
enum SessionEnd {
    Shutdown,
    /// Stored offsets moved past what this session read: start again from them.
    Rewind,
}

/// Consumes readings until shutdown: decode, buffer, then store rows and
/// offsets in one transaction. Records already stored are skipped, so each is
/// stored exactly once even after crashes, rebalances or lost Kafka commits.
pub async fn run_consumer(
    pool: PgPool,
    config: KafkaConfig,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    loop {
        let consumer = match consumer(&config) {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::error!(%error, "cannot create the Kafka consumer; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        match consume(&pool, &config, &consumer, flush, &shutdown).await {
            SessionEnd::Shutdown => break,
            SessionEnd::Rewind => {
                tracing::warn!("stored offsets moved ahead; rejoining the group from them")
            }
        }
    }
    tracing::info!("kafka consumer stopped");
}

async fn consume(
    pool: &PgPool,
    config: &KafkaConfig,
    consumer: &ReadingConsumer,
    flush: FlushConfig,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let mut batch = Batch::default();
    let mut progress = Progress::default();
    // The next offset stored per partition, as far as this session knows.
    let mut stored: HashMap<i32, i64> = HashMap::new();
    let mut ticker = tokio::time::interval(flush.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flush_now = tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => {
                    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
                    // One topic per consumer: partitions alone identify the position.
                    let floor = match stored.get(&partition) {
                        Some(floor) => *floor,
                        None => {
                            let load = || offsets::stored(pool, &config.group_id, topic, partition);
                            let Ok(floor) = store::retry(shutdown, "reading stored offsets", load).await else {
                                return SessionEnd::Shutdown;
                            };
                            let floor = floor.unwrap_or(0);
                            stored.insert(partition, floor);
                            floor
                        }
                    };
                    if offset < floor {
                        // Already stored: skip ahead rather than read it all again.
                        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(floor), Duration::from_secs(5)) {
                            tracing::debug!(%error, topic, partition, "seek failed; skipping one by one");
                        }
                        continue;
                    }
                    admit(&mut batch, message.payload().unwrap_or_default(), || format!("{topic}/{partition}@{offset}"));
                    progress.record(topic, partition, offset);
                    batch.len() >= flush.max_records
                }
                Err(error) => {
                    tracing::warn!(%error, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    false
                }
            },
            _ = ticker.tick() => !batch.is_empty(),
            _ = shutdown.cancelled() => {
                if !batch.is_empty() {
                    store_batch(pool, config, consumer, &batch, &progress, shutdown).await;
                }
                return SessionEnd::Shutdown;
            }
        };
        if flush_now {
            let end = store_batch(pool, config, consumer, &batch, &progress, shutdown).await;
            for (_, partition, span) in progress.iter() {
                stored.insert(partition, span.next);
            }
            batch.clear();
            progress.clear();
            if let Some(end) = end {
                return end;
            }
        }
    }
}

/// A payload becomes a reading, or a dead letter with the reason it was refused.
/// `position` is only formatted for a dead letter, off the hot path.
pub(crate) fn admit(batch: &mut Batch, payload: &[u8], position: impl FnOnce() -> String) {
    metrics::global().received(Source::Kafka, 1);
    match Reading::decode_json(payload) {
        Ok(reading) => batch.readings.push(reading.received_now()),
        Err(error) => batch.dead_letters.push(DeadLetter {
            source: "kafka".into(),
            position: Some(position()),
            payload: payload.to_vec(),
            reason: error.to_string(),
        }),
    }
}

/// Stores rows and offsets together, then copies the offsets to Kafka.
/// Returns how the session must end, if it must.
async fn store_batch(
    pool: &PgPool,
    config: &KafkaConfig,
    consumer: &ReadingConsumer,
    batch: &Batch,
    progress: &Progress,
    shutdown: &CancellationToken,
) -> Option<SessionEnd> {
    let attempt = move || async move {
        let mut tx = store::stage_batch(pool, batch).await?;
        let fence = offsets::store(&mut tx, &config.group_id, progress).await?;
        if fence == Fence::Stored {
            tx.commit().await?;
        }
        Ok(fence)
    };
    let started = Instant::now();
    match store::retry(shutdown, "flush", attempt).await {
        Ok(Fence::Stored) => {
            metrics::global().flushed(
                Source::Kafka,
                batch.readings.len(),
                batch.dead_letters.len(),
                started.elapsed(),
            );
            if let Err(error) = commit_to_kafka(consumer, progress) {
                // Only lag tooling reads this copy; Postgres holds the truth.
                tracing::warn!(%error, "committing offsets to Kafka failed");
            }
            None
        }
        Ok(Fence::Overlap {
            topic,
            partition,
            stored_next,
        }) => {
            tracing::warn!(
                topic,
                partition,
                stored_next,
                records = batch.len(),
                "batch already stored elsewhere; discarded"
            );
            Some(SessionEnd::Rewind)
        }
        Err(error) => {
            // Not stored and not committed anywhere: read again after a restart.
            tracing::error!(%error, records = batch.len(), "kafka flush abandoned");
            Some(SessionEnd::Shutdown)
        }
    }
}

fn commit_to_kafka(consumer: &ReadingConsumer, progress: &Progress) -> Result<(), KafkaError> {
    let mut list = TopicPartitionList::new();
    for (topic, partition, span) in progress.iter() {
        list.add_partition_offset(topic, partition, Offset::Offset(span.next))?;
    }
    consumer.commit(&list, CommitMode::Sync)
}

/// Whether the broker answers a metadata request in time.
pub async fn broker_reachable(config: &KafkaConfig) -> Result<(), String> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer =
            client_config(&config).create().map_err(|e| e.to_string())?;
        consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_payloads_become_dead_letters() {
        let mut batch = Batch::default();
        admit(&mut batch, br#"{"guid":"g","ts":1,"temp":70.5}"#, || {
            "t/0@0".into()
        });
        admit(&mut batch, b"{broken", || "t/0@1".into());
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].position.as_deref(), Some("t/0@1"));
        assert_eq!(batch.dead_letters[0].payload, b"{broken");
    }
}
