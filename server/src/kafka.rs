//! Kafka: the readings producer (for the simulator) and the consumer group
//! that writes readings to Postgres in batches.

use crate::config::{FlushConfig, KafkaConfig};
use crate::reading::Reading;
use crate::store::{self, Batch, DeadLetter};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    client
}

/// Publishes readings as JSON, keyed by sensor GUID so each sensor stays in order.
pub struct ReadingPublisher {
    producer: FutureProducer,
    topic: String,
}

impl ReadingPublisher {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer = client_config(config)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(ReadingPublisher {
            producer,
            topic: config.readings_topic.clone(),
        })
    }

    /// Sends every reading and waits until the broker has acknowledged all of them.
    pub async fn publish(&self, readings: &[Reading]) -> Result<(), KafkaError> {
        let payloads: Vec<Vec<u8>> = readings.iter().map(Reading::to_json).collect();
        let mut deliveries = Vec::with_capacity(readings.len());
        for (reading, payload) in readings.iter().zip(&payloads) {
            let record = FutureRecord::to(&self.topic)
                .key(reading.guid.as_str())
                .payload(payload);
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

/// Where the consumer has got to: the next offset to read, per partition.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NextOffsets(BTreeMap<(String, i32), i64>);

impl NextOffsets {
    pub fn record(&mut self, topic: &str, partition: i32, offset: i64) {
        let next = self
            .0
            .entry((topic.to_string(), partition))
            .or_insert(offset + 1);
        *next = (*next).max(offset + 1);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn to_list(&self) -> Result<TopicPartitionList, KafkaError> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &self.0 {
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        Ok(list)
    }
}

pub fn consumer(config: &KafkaConfig) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer = client_config(config)
        .set("group.id", &config.group_id)
        // Offsets are committed only after the rows they cover are in Postgres.
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[config.readings_topic.as_str()])?;
    Ok(consumer)
}

/// Consumes readings until shutdown: decode, buffer, flush, then commit offsets.
pub async fn run_consumer(
    pool: PgPool,
    consumer: StreamConsumer,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    let mut batch = Batch::default();
    let mut offsets = NextOffsets::default();
    let mut ticker = tokio::time::interval(flush.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => {
                    let position = format!("{}/{}@{}", message.topic(), message.partition(), message.offset());
                    admit(&mut batch, message.payload().unwrap_or_default(), position);
                    offsets.record(message.topic(), message.partition(), message.offset());
                    if batch.len() >= flush.max_records {
                        flush_and_commit(&pool, &consumer, &mut batch, &mut offsets, &shutdown).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    flush_and_commit(&pool, &consumer, &mut batch, &mut offsets, &shutdown).await;
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
    if !batch.is_empty() {
        flush_and_commit(&pool, &consumer, &mut batch, &mut offsets, &shutdown).await;
    }
    tracing::info!("kafka consumer stopped");
}

/// A payload becomes a reading, or a dead letter with the reason it was refused.
fn admit(batch: &mut Batch, payload: &[u8], position: String) {
    match Reading::decode_json(payload) {
        Ok(reading) => batch.readings.push(reading),
        Err(error) => batch.dead_letters.push(DeadLetter {
            source: "kafka".into(),
            position: Some(position),
            payload: payload.to_vec(),
            reason: error.to_string(),
        }),
    }
}

async fn flush_and_commit(
    pool: &PgPool,
    consumer: &StreamConsumer,
    batch: &mut Batch,
    offsets: &mut NextOffsets,
    shutdown: &CancellationToken,
) {
    match store::flush_with_retry(pool, batch, shutdown).await {
        Ok(()) => {
            let commit = offsets
                .to_list()
                .and_then(|list| consumer.commit(&list, CommitMode::Sync));
            if let Err(error) = commit {
                // The rows are stored; the group will re-read from the last commit after a restart.
                tracing::warn!(%error, "offset commit failed");
            }
        }
        Err(error) => {
            // Offsets stay uncommitted, so these records are read again after a restart.
            tracing::error!(%error, "kafka flush abandoned");
        }
    }
    batch.clear();
    *offsets = NextOffsets::default();
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
    fn next_offsets_keep_the_highest_per_partition() {
        let mut offsets = NextOffsets::default();
        offsets.record("t", 0, 5);
        offsets.record("t", 0, 3);
        offsets.record("t", 1, 0);
        offsets.record("t", 0, 9);
        assert_eq!(offsets.0.get(&("t".to_string(), 0)), Some(&10));
        assert_eq!(offsets.0.get(&("t".to_string(), 1)), Some(&1));
    }

    #[test]
    fn undecodable_payloads_become_dead_letters() {
        let mut batch = Batch::default();
        admit(
            &mut batch,
            br#"{"guid":"g","ts":1,"temp":70.5}"#,
            "t/0@0".into(),
        );
        admit(&mut batch, b"{broken", "t/0@1".into());
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].position.as_deref(), Some("t/0@1"));
        assert_eq!(batch.dead_letters[0].payload, b"{broken");
    }
}
