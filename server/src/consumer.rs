//! The Kafka consumer group loop shared by every stream: a reading task reads
//! and decodes records, the session hands them to the stream's [`Sink`], then
//! stores what the sink holds together with the offsets it covers in one
//! Postgres transaction. Records already stored are skipped, so each is
//! stored exactly once even after crashes, rebalances or lost Kafka commits.

use crate::config::{FlushConfig, KafkaConfig};
use crate::kafka::{LagReporter, client_config};
use crate::metrics::{self, Source};
use crate::offsets::{self, Fence, Progress};
use crate::store;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Turns one record of a topic into what a sink holds. It runs on the
/// consumer's reading task, so decoding takes a core of its own while the
/// sink stages and Postgres stores.
pub trait Decode: Send + Sync + 'static {
    /// One record, decoded or refused.
    type Record: Send + 'static;

    /// Decodes one record of `topic`'s `partition`; what cannot be used
    /// becomes a dead letter. `position` is only called for a dead letter,
    /// off the hot path.
    fn decode(
        &self,
        topic: &str,
        partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Self::Record;
}

/// A sink's decoded record.
pub type Record<S> = <<S as Sink>::Decoder as Decode>::Record;

/// What a stream does with the records of its topics.
pub trait Sink: Send + Sync {
    /// What staging produced that the sink keeps once the transaction commits.
    type Staged: Send;

    type Decoder: Decode;

    /// How this sink's records are decoded.
    fn decoder(&self) -> Arc<Self::Decoder>;

    /// Holds a decoded record for the next flush.
    fn hold(&mut self, record: Record<Self>);

    /// Decodes and holds one record.
    fn admit(
        &mut self,
        topic: &str,
        partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) {
        let record = self.decoder().decode(topic, partition, payload, position);
        self.hold(record);
    }

    /// The partitions this consumer reads now, before each flush (for event
    /// time: a partition not heard from yet holds the watermark back).
    fn assigned(&mut self, _partitions: &[(String, i32)]) {}

    /// Records held for the next flush.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a flush is due although nothing new arrived (for example,
    /// records waiting for a join that may have expired).
    fn flush_due(&self) -> bool {
        false
    }

    /// Writes what is held into `tx`, uncommitted. A failed attempt is
    /// retried, so staging leaves the sink unchanged.
    fn stage<'a>(
        &'a self,
        tx: &'a mut Transaction<'static, Postgres>,
    ) -> impl Future<Output = Result<Self::Staged, sqlx::Error>> + Send + 'a;

    /// The transaction committed: keep what staging produced and let go of the
    /// records held.
    fn committed(&mut self, staged: Self::Staged) -> impl Future<Output = ()> + Send;

    /// What is held was stored by another consumer first: let it go.
    fn discard(&mut self);

    /// `(records stored, dead letters)` held, for the metrics.
    fn tally(&self) -> (usize, usize);
}

/// A consumer group and the topics it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub group: String,
    pub topics: Vec<String>,
}

type GroupConsumer = StreamConsumer<LagReporter>;

fn consumer(
    config: &KafkaConfig,
    subscription: &Subscription,
) -> Result<GroupConsumer, KafkaError> {
    let consumer: GroupConsumer = client_config(config)
        .set("group.id", &subscription.group)
        // Postgres holds the true offsets; Kafka's copy is committed only after
        // the rows it covers are stored.
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "1000")
        // When the local queue is full, fetch again soon rather than after a
        // second: flushes drain the queue in bursts, and a long back-off leaves
        // the consumer idle once it has caught up.
        .set("fetch.queue.backoff.ms", "20")
        // Notice topics created, and partitions added, after the group started.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create_with_context(LagReporter)?;
    let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// Why one consumer session ended.
enum SessionEnd {
    Shutdown,
    /// Stored offsets moved past what this session read: start again from them.
    Rewind,
}

/// Consumes the subscription's topics into `sink` until shutdown.
pub async fn run<S: Sink>(
    pool: PgPool,
    config: KafkaConfig,
    subscription: Subscription,
    mut sink: S,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    loop {
        let consumer = match consumer(&config, &subscription) {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::error!(%error, group = %subscription.group, "cannot create the Kafka consumer; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let consumer = Arc::new(consumer);
        // The reading task runs ahead of the flushes by at most one flush's worth.
        let (sender, mut decoded) = mpsc::channel(flush.max_records.max(1));
        let reader = tokio::spawn(read(consumer.clone(), sink.decoder(), sender));
        let session = Session {
            pool: &pool,
            group: &subscription.group,
            consumer: &consumer,
            shutdown: &shutdown,
        };
        let end = session.consume(&mut sink, &mut decoded, flush).await;
        // The group is left only once the reader has let go of the consumer.
        reader.abort();
        let _ = reader.await;
        match end {
            SessionEnd::Shutdown => break,
            SessionEnd::Rewind => {
                sink.discard();
                tracing::warn!(group = %subscription.group, "stored offsets moved ahead; rejoining the group from them")
            }
        }
    }
    tracing::info!(group = %subscription.group, "kafka consumer stopped");
}

struct Session<'a> {
    pool: &'a PgPool,
    group: &'a str,
    consumer: &'a GroupConsumer,
    shutdown: &'a CancellationToken,
}

/// Where this session stands in each partition it reads.
#[derive(Default)]
struct Tracking {
    /// Offsets read since the last flush.
    progress: Progress,
    /// The next offset stored per topic and partition, as far as this session knows.
    stored: HashMap<String, HashMap<i32, i64>>,
    /// Partitions sought back, with the offset that made us: records past
    /// it were fetched before the seek and come again after it.
    rewinding: HashMap<(String, i32), i64>,
}

impl Tracking {
    /// The flush stored what was read: that is now the floor.
    fn flushed(&mut self) {
        for (topic, partition, span) in self.progress.iter() {
            self.stored
                .entry(topic.to_string())
                .or_default()
                .insert(partition, span.next);
        }
        self.progress.clear();
    }
}

/// What to do with one record read from Kafka.
enum Admission {
    Take,
    Skip,
    End(SessionEnd),
}

/// A record read and decoded by the reading task, in the order Kafka
/// delivered it.
struct Decoded<R> {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    record: R,
}

/// Reads the subscription and decodes each record, in order, until the
/// session ends. The channel's bound keeps it at most one flush ahead.
async fn read<D: Decode>(
    consumer: Arc<GroupConsumer>,
    decoder: Arc<D>,
    decoded: mpsc::Sender<Decoded<D::Record>>,
) {
    // Each topic's name, shared by its records rather than copied into each.
    let mut topics: Vec<Arc<str>> = Vec::new();
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "kafka receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let record = decoder.decode(topic, partition, payload, &|| {
            position(topic, partition, offset)
        });
        let topic = match topics.iter().find(|known| &***known == topic) {
            Some(known) => known.clone(),
            None => {
                let name: Arc<str> = topic.into();
                topics.push(name.clone());
                name
            }
        };
        drop(message);
        let record = Decoded {
            topic,
            partition,
            offset,
            record,
        };
        if decoded.send(record).await.is_err() {
            return;
        }
    }
}

fn position(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}@{offset}")
}

impl Session<'_> {
    async fn consume<S: Sink>(
        &self,
        sink: &mut S,
        decoded: &mut mpsc::Receiver<Decoded<Record<S>>>,
        flush: FlushConfig,
    ) -> SessionEnd {
        let mut tracking = Tracking::default();
        let mut ticker = tokio::time::interval(flush.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_now = sink.len() >= flush.max_records
                || tokio::select! {
                    received = decoded.recv() => {
                        let Some(first) = received else {
                            tracing::error!(group = self.group, "the Kafka reading task stopped; rejoining");
                            return SessionEnd::Rewind;
                        };
                        // Take what else is ready, in order, without going round the select.
                        let mut next = Some(first);
                        while let Some(Decoded { topic, partition, offset, record }) = next {
                            if let Some(end) = self.take(&mut tracking, sink, &topic, partition, offset, record).await {
                                return end;
                            }
                            if sink.len() >= flush.max_records {
                                break;
                            }
                            next = decoded.try_recv().ok();
                        }
                        sink.len() >= flush.max_records
                    },
                    _ = ticker.tick() => !sink.is_empty() || sink.flush_due(),
                    _ = self.shutdown.cancelled() => {
                        if !sink.is_empty() {
                            self.flush(sink, &tracking.progress).await;
                        }
                        return SessionEnd::Shutdown;
                    }
                };
            if flush_now {
                let end = self.flush(sink, &tracking.progress).await;
                tracking.flushed();
                if let Some(end) = end {
                    return end;
                }
            }
        }
    }

    /// Holds a decoded record for the next flush, unless [`Self::admission`]
    /// says otherwise. Returns how the session must end, if it must.
    async fn take<S: Sink>(
        &self,
        tracking: &mut Tracking,
        sink: &mut S,
        topic: &str,
        partition: i32,
        offset: i64,
        record: Record<S>,
    ) -> Option<SessionEnd> {
        match self.admission(tracking, topic, partition, offset).await {
            Admission::Take => {
                metrics::global().received(Source::Kafka, 1);
                sink.hold(record);
                tracking.progress.record(topic, partition, offset);
                None
            }
            Admission::Skip => None,
            Admission::End(end) => Some(end),
        }
    }

    /// Whether to take the record at `offset`: not if this session or an
    /// earlier one already holds or stored it. Seeks where Kafka's position
    /// and what Postgres stored disagree.
    async fn admission(
        &self,
        tracking: &mut Tracking,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Admission {
        if !tracking.rewinding.is_empty() {
            let key = (topic.to_string(), partition);
            match tracking.rewinding.get(&key) {
                Some(trigger) if offset > *trigger => return Admission::Skip,
                Some(_) => {
                    tracking.rewinding.remove(&key);
                }
                None => {}
            }
        }
        let known = tracking
            .stored
            .get(topic)
            .and_then(|p| p.get(&partition))
            .copied();
        let floor = match known {
            Some(floor) => floor,
            None => {
                let load = || offsets::stored(self.pool, self.group, topic, partition);
                let Ok(floor) = store::retry(self.shutdown, "reading stored offsets", load).await
                else {
                    return Admission::End(SessionEnd::Shutdown);
                };
                let from = floor.unwrap_or(0);
                tracking
                    .stored
                    .entry(topic.to_string())
                    .or_default()
                    .insert(partition, from);
                if offset > from {
                    // Kafka's position is past what Postgres holds (its
                    // offsets outlived the database, say): go back, so
                    // nothing in between is skipped.
                    let target = match floor {
                        Some(floor) => Offset::Offset(floor),
                        None => Offset::Beginning,
                    };
                    if let Err(error) =
                        self.consumer
                            .seek(topic, partition, target, Duration::from_secs(5))
                    {
                        tracing::error!(%error, topic, partition, "cannot rewind to the stored offset; rejoining");
                        return Admission::End(SessionEnd::Rewind);
                    }
                    tracing::warn!(topic, partition, from = offset, to = ?target, "Kafka's offset is past the one stored in Postgres; reading again from there");
                    tracking
                        .rewinding
                        .insert((topic.to_string(), partition), offset);
                    return Admission::Skip;
                }
                from
            }
        };
        // A rebalance can deliver again what this session holds for its
        // next flush: take each offset once.
        if tracking
            .progress
            .next(topic, partition)
            .is_some_and(|next| offset < next)
        {
            return Admission::Skip;
        }
        if offset < floor {
            // Already stored: skip ahead rather than read it all again.
            if let Err(error) = self.consumer.seek(
                topic,
                partition,
                Offset::Offset(floor),
                Duration::from_secs(5),
            ) {
                tracing::debug!(%error, topic, partition, "seek failed; skipping one by one");
            }
            return Admission::Skip;
        }
        Admission::Take
    }

    /// Stores what the sink holds and the offsets together, then copies the
    /// offsets to Kafka. The reading task goes on reading and decoding
    /// meanwhile. Returns how the session must end, if it must.
    async fn flush<S: Sink>(&self, sink: &mut S, progress: &Progress) -> Option<SessionEnd> {
        if let Ok(assignment) = self.consumer.assignment() {
            let partitions: Vec<(String, i32)> = assignment
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            sink.assigned(&partitions);
        }
        let started = Instant::now();
        let outcome = self.write(sink, progress).await;
        match outcome {
            Ok(Ok(staged)) => {
                let (records, dead_letters) = sink.tally();
                metrics::global().flushed(Source::Kafka, records, dead_letters, started.elapsed());
                sink.committed(staged).await;
                if let Err(error) = self.commit_to_kafka(progress) {
                    // Only lag tooling reads this copy; Postgres holds the truth.
                    tracing::warn!(%error, "committing offsets to Kafka failed");
                }
                None
            }
            Ok(Err(fence)) => {
                tracing::warn!(
                    ?fence,
                    records = sink.len(),
                    "batch already stored elsewhere; discarded"
                );
                sink.discard();
                Some(SessionEnd::Rewind)
            }
            Err(error) => {
                // Not stored and not committed anywhere: read again after a restart.
                tracing::error!(%error, records = sink.len(), "kafka flush abandoned");
                Some(SessionEnd::Shutdown)
            }
        }
    }

    /// One transaction: the sink's rows and the offsets they cover, fenced.
    async fn write<S: Sink>(
        &self,
        held: &S,
        progress: &Progress,
    ) -> Result<Result<S::Staged, Fence>, store::Abandoned> {
        let (pool, group) = (self.pool, self.group);
        let attempt = move || async move {
            let mut tx = pool.begin().await?;
            let staged = held.stage(&mut tx).await?;
            let fence = offsets::store(&mut tx, group, progress).await?;
            if fence == Fence::Stored {
                tx.commit().await?;
                Ok(Ok(staged))
            } else {
                Ok(Err(fence))
            }
        };
        store::retry(self.shutdown, "flush", attempt).await
    }

    fn commit_to_kafka(&self, progress: &Progress) -> Result<(), KafkaError> {
        if progress.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, span) in progress.iter() {
            list.add_partition_offset(topic, partition, Offset::Offset(span.next))?;
        }
        self.consumer.commit(&list, CommitMode::Async)
    }
}
