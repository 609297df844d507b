//! The offset fence in Postgres: a batch is stored only if none of it already is.

use server::offsets::{self, Fence, Progress};
use sqlx::PgPool;

async fn store(pool: &PgPool, partition: i32, first: i64, last: i64) -> Fence {
    let mut progress = Progress::default();
    for offset in first..=last {
        progress.record("readings", partition, offset);
    }
    let mut tx = pool.begin().await.expect("tx");
    let fence = offsets::store(&mut tx, "group", &progress)
        .await
        .expect("store");
    if fence == Fence::Stored {
        tx.commit().await.expect("commit");
    }
    fence
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn consecutive_batches_advance_and_overlaps_are_refused(pool: PgPool) {
    assert_eq!(store(&pool, 0, 0, 9).await, Fence::Stored);
    assert_eq!(store(&pool, 0, 10, 14).await, Fence::Stored);
    // Offsets 12..14 are stored already: the whole batch is refused.
    assert_eq!(
        store(&pool, 0, 12, 19).await,
        Fence::Overlap {
            topic: "readings".into(),
            partition: 0,
            stored_next: 15
        }
    );
    // A gap (records removed by retention) is fine.
    assert_eq!(store(&pool, 0, 30, 31).await, Fence::Stored);
    // Partitions are independent.
    assert_eq!(store(&pool, 1, 0, 0).await, Fence::Stored);
    let stored = offsets::stored_for_topic(&pool, "group", "readings")
        .await
        .expect("stored");
    assert_eq!(stored.into_iter().collect::<Vec<_>>(), [(0, 32), (1, 1)]);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_refused_batch_leaves_nothing_behind(pool: PgPool) {
    assert_eq!(store(&pool, 0, 0, 9).await, Fence::Stored);
    // Two partitions, the second overlapping: neither moves.
    let mut progress = Progress::default();
    progress.record("readings", 1, 0);
    progress.record("readings", 0, 5);
    let mut tx = pool.begin().await.expect("tx");
    let fence = offsets::store(&mut tx, "group", &progress)
        .await
        .expect("store");
    assert!(
        matches!(fence, Fence::Overlap { partition: 0, .. }),
        "{fence:?}"
    );
    tx.rollback().await.expect("rollback");
    let stored = offsets::stored_for_topic(&pool, "group", "readings")
        .await
        .expect("stored");
    assert_eq!(stored.into_iter().collect::<Vec<_>>(), [(0, 10)]);
}
