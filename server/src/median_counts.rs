//! The all-time medians' value counts. Each batch inserts its own counts as a
//! row per sensor (`sensor_temp_counts_pending`) in its transaction, instead
//! of updating histogram rows that concurrent batches would then wait on.
//! Folding moves them into `sensor_temp_histogram` about once a second, so
//! the table medians read stays small. Medians read both, so they are exact
//! after every commit, whether or not a fold has run.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often pending counts are folded.
const EVERY: Duration = Duration::from_secs(1);

/// Moves every committed pending count into the histogram, in one
/// transaction, and returns how many pending rows it took. Concurrent folds
/// (several instances) never take the same row twice: a row deleted by one
/// is skipped by the other.
pub async fn fold(pool: &PgPool) -> Result<i64, sqlx::Error> {
    // Sorted, so concurrent folds lock histogram rows in the same order.
    let folded: i64 = sqlx::query_scalar(
        "WITH folded AS (
             DELETE FROM sensor_temp_counts_pending RETURNING guid, tenths, counts
         ), added AS (
             INSERT INTO sensor_temp_histogram AS h (guid, temp, msg_count)
             SELECT f.guid, (c.tenth / 10.0)::numeric(5, 2), sum(c.n)
               FROM folded f, unnest(f.tenths, f.counts) AS c(tenth, n)
              GROUP BY 1, 2
              ORDER BY 1, 2
             ON CONFLICT (guid, temp) DO UPDATE SET msg_count = h.msg_count + excluded.msg_count
         )
         SELECT count(*) FROM folded",
    )
    .fetch_one(pool)
    .await?;
    if folded > 0 {
        // The table turns over every second; reclaiming its space now keeps
        // every scan of it (each fold, each median) to a few pages.
        sqlx::query("VACUUM sensor_temp_counts_pending")
            .execute(pool)
            .await?;
    }
    Ok(folded)
}

/// Folds pending counts every second until shutdown.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match fold(&pool).await {
            Ok(_) if failing => {
                tracing::info!("folding the medians' value counts works again");
                failing = false;
            }
            Ok(_) => {}
            // Once per outage: the counts wait in their table meanwhile.
            Err(error) if !failing => {
                tracing::warn!(%error, "folding the medians' value counts failed; trying again every second");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
