//! The in-process path from simulator to Postgres, on a real database.

use server::config::FlushConfig;
use server::pipeline;
use server::reading::Reading;
use server::simulator::seed_waves;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn message_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM message")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn every_reading_handed_over_is_written_even_at_shutdown(pool: PgPool) {
    let flush = FlushConfig {
        max_records: 50,
        interval: Duration::from_millis(200),
    };
    let (tx, rx) = pipeline::channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pipeline::run(pool.clone(), rx, flush, shutdown.clone()));

    let mut rng = rand::rng();
    let mut waves = seed_waves();
    let mut sent = 0;
    // 120 readings: two flushes by size, the last 20 by time.
    for step in 0..20 {
        for wave in &mut waves {
            tx.send(wave.next_reading(1_700_000_000 + step, &mut rng))
                .await
                .expect("send");
            sent += 1;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while message_count(&pool).await < sent && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(message_count(&pool).await, sent);

    // Readings handed over just before shutdown are written, not lost.
    for wave in &mut waves {
        tx.send(wave.next_reading(1_700_000_100, &mut rng))
            .await
            .expect("send");
        sent += 1;
    }
    shutdown.cancel();
    task.await.expect("pipeline task");
    assert_eq!(message_count(&pool).await, sent);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn invalid_readings_become_dead_letters(pool: PgPool) {
    let flush = FlushConfig {
        max_records: 10,
        interval: Duration::from_millis(50),
    };
    let (tx, rx) = pipeline::channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pipeline::run(pool.clone(), rx, flush, shutdown.clone()));
    tx.send(Reading::new("g", 1_700_000_000, f64::NAN))
        .await
        .expect("send");
    tx.send(Reading::new("g", 1_700_000_000, 71.0))
        .await
        .expect("send");
    drop(tx);
    task.await
        .expect("pipeline stops when its senders are gone");
    assert_eq!(message_count(&pool).await, 1);
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM dead_letters")
        .fetch_all(&pool)
        .await
        .expect("dead letters");
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("temp"), "{reasons:?}");
}
