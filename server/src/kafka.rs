//! Kafka: the producers (for the simulators and result topics), consumer lag
//! statistics, and the readings stream's consumer group.

use crate::config::{FlushConfig, KafkaConfig};
use crate::consumer::{self, Decode, Sink, Subscription};
use crate::metrics;
use crate::reading::Reading;
use crate::store::{self, Batch, DeadLetter};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    let security = &config.security;
    client.set("security.protocol", security.protocol.name());
    let paths = [
        ("ssl.ca.location", &security.ca_file),
        ("ssl.certificate.location", &security.certificate_file),
        ("ssl.key.location", &security.key_file),
    ];
    for (setting, path) in paths {
        if let Some(path) = path {
            client.set(setting, path.display().to_string());
        }
    }
    if let Some(sasl) = &security.sasl {
        client
            .set("sasl.mechanism", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
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

/// Messages waiting to be published: topic, key and JSON payload.
pub type PendingMessages = Vec<(String, String, Vec<u8>)>;

impl JsonPublisher {
    /// Publishes everything in `pending`; on failure keeps it for the next
    /// call, within [`MAX_PENDING`].
    pub async fn publish_pending(&self, pending: &mut PendingMessages, what: &str) {
        if pending.is_empty() {
            return;
        }
        match self.publish_all(pending).await {
            Ok(()) => pending.clear(),
            Err(error) => keep_for_retry(pending, &error, what),
        }
    }

    /// Publishes `(topic, key, payload)` messages and waits for every acknowledgement.
    pub async fn publish_all(&self, messages: &PendingMessages) -> Result<(), KafkaError> {
        let outgoing: Vec<Outgoing> = messages
            .iter()
            .map(|(topic, key, payload)| Outgoing {
                topic,
                key,
                payload: payload.clone(),
            })
            .collect();
        self.publish(&outgoing).await
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

/// Consumes readings from the configured topic into Postgres until shutdown.
pub async fn run_consumer(
    pool: PgPool,
    config: KafkaConfig,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    let subscription = Subscription {
        group: config.group_id.clone(),
        topics: vec![config.readings_topic.clone()],
    };
    consumer::run(
        pool,
        config,
        subscription,
        Batch::default(),
        flush,
        shutdown,
    )
    .await
}

/// A payload becomes a reading, or a dead letter with the reason it was refused.
/// `position` is only formatted for a dead letter, off the hot path.
pub(crate) fn decode(payload: &[u8], position: &dyn Fn() -> String) -> Result<Reading, DeadLetter> {
    match Reading::decode_json(payload) {
        Ok(reading) => Ok(reading.received_now()),
        Err(error) => Err(DeadLetter {
            stream: Some(store::SENSOR_STREAM.into()),
            source: "kafka".into(),
            position: Some(position()),
            payload: payload.to_vec(),
            reason: error.to_string(),
        }),
    }
}

/// Sensor readings are decoded alike whatever their topic.
pub struct ReadingDecoder;

impl Decode for ReadingDecoder {
    type Record = Result<Reading, DeadLetter>;

    fn decode(
        &self,
        _topic: &str,
        _partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Self::Record {
        decode(payload, position)
    }
}

impl Sink for Batch {
    type Staged = ();
    type Decoder = ReadingDecoder;

    fn decoder(&self) -> Arc<ReadingDecoder> {
        Arc::new(ReadingDecoder)
    }

    fn hold(&mut self, record: Result<Reading, DeadLetter>) {
        match record {
            Ok(reading) => self.readings.push(reading),
            Err(dead_letter) => self.dead_letters.push(dead_letter),
        }
    }

    fn len(&self) -> usize {
        Batch::len(self)
    }

    fn stage<'a>(
        &'a self,
        tx: &'a mut Transaction<'static, Postgres>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a {
        store::stage_into(tx, self)
    }

    async fn committed(&mut self, (): ()) {
        self.clear();
    }

    fn discard(&mut self) {
        self.clear();
    }

    fn tally(&self) -> (usize, usize) {
        (self.readings.len(), self.dead_letters.len())
    }
}

/// Creates the topics that do not exist yet, with the broker's default
/// partitions and replication. Failures are logged: a consumer still waits
/// for a topic someone else creates.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[String]) {
    let admin: AdminClient<DefaultClientContext> = match client_config(config).create() {
        Ok(admin) => admin,
        Err(error) => {
            tracing::warn!(%error, "cannot create a Kafka admin client");
            return;
        }
    };
    // A topic named twice in one request is refused by the broker.
    let names: std::collections::BTreeSet<&String> = topics.iter().collect();
    let new: Vec<NewTopic> = names
        .into_iter()
        .map(|t| NewTopic::new(t, -1, TopicReplication::Fixed(-1)))
        .collect();
    match admin.create_topics(&new, &AdminOptions::new()).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(topic) => tracing::info!(%topic, "created Kafka topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((topic, code)) => {
                        tracing::warn!(%topic, %code, "cannot create Kafka topic")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot create Kafka topics"),
    }
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
        batch.admit("t", 0, br#"{"guid":"g","ts":1,"temp":70.5}"#, &|| {
            "t/0@0".into()
        });
        batch.admit("t", 0, b"{broken", &|| "t/0@1".into());
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.dead_letters.len(), 1);
        assert_eq!(batch.dead_letters[0].position.as_deref(), Some("t/0@1"));
        assert_eq!(batch.dead_letters[0].payload, b"{broken");
    }
}
