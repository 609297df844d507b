//! Kafka offsets kept in Postgres, beside the rows they cover.
//!
//! A batch read from Kafka is stored together with the next offset of every
//! partition it touches, in one transaction. The store is fenced: a batch whose
//! first offset is below what is already stored for its partition (another
//! instance, or this one before a crash, got there first) is refused whole, and
//! the consumer rewinds to the stored offsets. Records are therefore stored
//! exactly once, whatever Kafka's own committed offsets say.

use sqlx::{PgPool, Postgres, Transaction};
use std::collections::BTreeMap;

/// One partition's part of a batch: offsets `first..next` were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub next: i64,
}

/// The partitions a batch covers, keyed by `(topic, partition)`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Progress(BTreeMap<String, BTreeMap<i32, Span>>);

impl Progress {
    /// Notes that `offset` was read; offsets arrive in order within a partition.
    pub fn record(&mut self, topic: &str, partition: i32, offset: i64) {
        // Look up by &str first: no allocation on the hot path.
        let partitions = match self.0.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.0.entry(topic.to_string()).or_default(),
        };
        partitions
            .entry(partition)
            .and_modify(|span| span.next = span.next.max(offset + 1))
            .or_insert(Span {
                first: offset,
                next: offset + 1,
            });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The offset after the last one read from the partition, if any was.
    pub fn next(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic)?.get(&partition).map(|span| span.next)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, Span)> {
        self.0.iter().flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |(partition, span)| (topic.as_str(), *partition, *span))
        })
    }
}

/// Whether a batch's offsets could be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    Stored,
    /// Part of the batch was already stored for this partition.
    Overlap {
        topic: String,
        partition: i32,
        stored_next: i64,
    },
}

/// Stores the batch's offsets in `tx`, or reports the first partition where
/// they overlap what is already stored (the caller must then roll back).
pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    progress: &Progress,
) -> Result<Fence, sqlx::Error> {
    for (topic, partition, span) in progress.iter() {
        // Takes the partition only if nothing at or after this batch's first offset is stored.
        let updated: Option<i64> = sqlx::query_scalar(
            "INSERT INTO kafka_offsets AS k (group_id, topic, partition, next_offset)
             VALUES ($1, $2, $3, $5)
             ON CONFLICT (group_id, topic, partition) DO UPDATE
                SET next_offset = excluded.next_offset, updated_at = now()
              WHERE k.next_offset <= $4
             RETURNING next_offset",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .bind(span.first)
        .bind(span.next)
        .fetch_optional(&mut **tx)
        .await?;
        if updated.is_none() {
            let stored_next = stored(&mut **tx, group, topic, partition)
                .await?
                .unwrap_or(0);
            return Ok(Fence::Overlap {
                topic: topic.to_string(),
                partition,
                stored_next,
            });
        }
    }
    Ok(Fence::Stored)
}

/// The next offset stored for one partition, if any.
pub async fn stored<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT next_offset FROM kafka_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3")
        .bind(group)
        .bind(topic)
        .bind(partition)
        .fetch_optional(executor)
        .await
}

/// Every partition's stored next offset for a group and topic.
pub async fn stored_for_topic(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, sqlx::Error> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM kafka_offsets WHERE group_id = $1 AND topic = $2",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_spans_each_partition_from_first_to_next() {
        let mut progress = Progress::default();
        progress.record("t", 0, 5);
        progress.record("t", 0, 6);
        progress.record("t", 1, 0);
        progress.record("t", 0, 9);
        let spans: Vec<_> = progress.iter().collect();
        assert_eq!(
            spans,
            [
                ("t", 0, Span { first: 5, next: 10 }),
                ("t", 1, Span { first: 0, next: 1 })
            ]
        );
    }
}
