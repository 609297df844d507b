//! The writers of every HTTP ingest request: requests that arrive while a
//! transaction is in flight are stored together in the next one, and each is
//! answered once the transaction holding its records has committed.
//!
//! Concurrent requests then cost a transaction per group instead of one each.
//! Three writers take turns: while two groups are stored, the next is gathered.

use crate::custom::CustomBatch;
use crate::kafka::{JsonPublisher, PendingMessages};
use crate::store::{self, Batch};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the writer; a full queue makes requests wait.
const QUEUED_REQUESTS: usize = 64;

/// Transactions in flight at once: Postgres stores two, a core each, while
/// the next gathers its requests. Batches share few rows (the medians'
/// value counts are inserted, not updated), so they seldom wait on each
/// other's locks.
const WRITERS: usize = 3;

/// At most this long, a transaction waits for the requests of the clients
/// the last one answered, so they share it rather than each start a small one.
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(3);

/// Committed groups' outputs queued for the publisher. Beyond that (the broker
/// has been unreachable a while) a group's outputs are dropped and the loss is
/// logged: they are copies of rows Postgres holds.
const QUEUED_OUTPUTS: usize = 1_024;

/// The records of one request, waiting to be stored.
struct Submission {
    batch: Batch,
    custom: Option<CustomBatch>,
    stored: oneshot::Sender<Result<(), String>>,
}

impl Submission {
    fn len(&self) -> usize {
        self.batch.len() + self.custom.as_ref().map_or(0, |c| c.rows.len())
    }
}

/// The records could not be stored; the request may be sent again.
#[derive(Debug, thiserror::Error)]
#[error("storing the records failed: {0}")]
pub struct NotStored(pub String);

/// A handle on the writer; clones share it.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Submission>,
}

impl GroupCommit {
    /// Starts the writer. A transaction takes whole requests until it holds
    /// `max_records` records (always at least one request). Custom streams'
    /// outputs go to `publisher` after each commit, in commit order, from a
    /// task of their own: a broker that is down never holds up ingest.
    pub fn start(pool: PgPool, max_records: usize, publisher: Option<Arc<JsonPublisher>>) -> Self {
        let (queue, requests) = mpsc::channel(QUEUED_REQUESTS);
        let outputs = publisher.map(|publisher| {
            let (outputs, committed) = mpsc::channel(QUEUED_OUTPUTS);
            tokio::spawn(publish_outputs(publisher, committed));
            outputs
        });
        let requests = Arc::new(tokio::sync::Mutex::new(requests));
        for _ in 0..WRITERS {
            let (pool, requests, outputs) = (pool.clone(), requests.clone(), outputs.clone());
            tokio::spawn(write_groups(pool, requests, max_records, outputs));
        }
        GroupCommit { queue }
    }

    /// Stores a request's readings, dead letters and custom-stream rows, and
    /// returns once they are committed.
    pub async fn store(&self, batch: Batch, custom: Option<CustomBatch>) -> Result<(), NotStored> {
        let (stored, outcome) = oneshot::channel();
        let submission = Submission {
            batch,
            custom,
            stored,
        };
        let gone = || NotStored("the writer has stopped".into());
        self.queue.send(submission).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?.map_err(NotStored)
    }
}

async fn write_groups(
    pool: PgPool,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Submission>>>,
    max_records: usize,
    outputs: Option<mpsc::Sender<PendingMessages>>,
) {
    let mut unpublished = PendingMessages::new();
    // How many requests the last group answered: as many clients are likely
    // to send their next request right after their answer.
    let mut clients = 1;
    loop {
        // One writer gathers at a time, while the other's transaction runs.
        let mut requests = queue.lock().await;
        let Some(first) = requests.recv().await else {
            break;
        };
        let mut records = first.len();
        let mut group = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER_WAIT;
        while records < max_records {
            let next = match requests.try_recv() {
                Ok(next) => Some(next),
                Err(_) if group.len() < clients => {
                    tokio::time::timeout_at(deadline, requests.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(_) => None,
            };
            let Some(next) = next else { break };
            records += next.len();
            group.push(next);
        }
        drop(requests);
        clients = group.len();
        match write(&pool, &group).await {
            Ok(outputs) => {
                answer(group, Ok(()));
                unpublished.extend(outputs);
            }
            // One request, or Postgres unreachable: every request fails alike.
            Err(error) if group.len() == 1 || !matches!(error, sqlx::Error::Database(_)) => {
                answer(group, Err(error.to_string()))
            }
            Err(error) => {
                // Postgres refused something, perhaps one request's records:
                // store each alone, so only that one fails.
                tracing::warn!(%error, requests = group.len(), "a group of HTTP requests failed; storing each alone");
                for submission in group {
                    let alone = vec![submission];
                    match write(&pool, &alone).await {
                        Ok(outputs) => {
                            answer(alone, Ok(()));
                            unpublished.extend(outputs);
                        }
                        Err(error) => answer(alone, Err(error.to_string())),
                    }
                }
            }
        }
        let messages = std::mem::take(&mut unpublished);
        if let Some(outputs) = outputs.as_ref().filter(|_| !messages.is_empty())
            && let Err(error) = outputs.try_send(messages)
        {
            let lost = match &error {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => {
                    m.len()
                }
            };
            tracing::error!(
                lost,
                "stream outputs dropped: the publisher is too far behind"
            );
        }
    }
}

/// Produces committed groups' outputs in commit order, retrying what the
/// broker did not acknowledge with the next group.
async fn publish_outputs(
    publisher: Arc<JsonPublisher>,
    mut committed: mpsc::Receiver<PendingMessages>,
) {
    let mut pending = PendingMessages::new();
    while let Some(messages) = committed.recv().await {
        pending.extend(messages);
        while let Ok(more) = committed.try_recv() {
            pending.extend(more);
        }
        publisher
            .publish_pending(&mut pending, "stream outputs")
            .await;
    }
}

fn answer(group: Vec<Submission>, outcome: Result<(), String>) {
    for submission in group {
        // A request that gave up waiting is gone; its records stand.
        let _ = submission.stored.send(outcome.clone());
    }
}

/// Stores the group's records in one transaction. The submissions keep their
/// records (a group writes merged copies), so a failed group can be retried
/// request by request.
async fn write(pool: &PgPool, group: &[Submission]) -> Result<PendingMessages, sqlx::Error> {
    if let [only] = group {
        return write_one(pool, &only.batch, only.custom.iter().collect()).await;
    }
    let mut batch = Batch::default();
    let mut custom: BTreeMap<&str, CustomBatch> = BTreeMap::new();
    for submission in group {
        batch
            .readings
            .extend(submission.batch.readings.iter().cloned());
        batch
            .dead_letters
            .extend(submission.batch.dead_letters.iter().cloned());
        if let Some(rows) = &submission.custom {
            let merged = custom
                .entry(rows.stream.name.as_str())
                .or_insert_with(|| CustomBatch::new(rows.stream.clone()));
            merged.rows.extend(rows.rows.iter().cloned());
            merged
                .dead_letters
                .extend(rows.dead_letters.iter().cloned());
        }
    }
    write_one(pool, &batch, custom.values().collect()).await
}

/// One transaction: custom streams in name order (so concurrent writers lock
/// rows in the same order), then readings and dead letters.
async fn write_one(
    pool: &PgPool,
    batch: &Batch,
    custom: Vec<&CustomBatch>,
) -> Result<PendingMessages, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut outputs = PendingMessages::new();
    for rows in custom {
        outputs.extend(rows.stage(&mut tx).await?);
    }
    store::stage_into(&mut tx, batch).await?;
    tx.commit().await?;
    Ok(outputs)
}
