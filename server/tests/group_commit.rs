//! HTTP ingest requests share transactions: every request that is answered
//! with success is stored, and one request Postgres refuses fails alone.

use server::group_commit::GroupCommit;
use server::reading::Reading;
use server::store::Batch;
use sqlx::PgPool;

fn readings(request: usize, count: usize, temp: f64) -> Batch {
    Batch {
        readings: (0..count)
            .map(|i| {
                Reading::new(format!("sensor-{request}"), 1_700_000_000 + i as i64, temp)
                    .received_now()
            })
            .collect(),
        dead_letters: vec![],
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn concurrent_requests_are_all_stored_and_a_refused_one_fails_alone(pool: PgPool) {
    let writer = GroupCommit::start(pool.clone(), 20_000, None);
    // 40 requests at once: they queue while the first is written, and the
    // rest share transactions. One holds a temperature `numeric(5,2)` cannot.
    let refused = 17;
    let mut requests = tokio::task::JoinSet::new();
    for request in 0..40 {
        let writer = writer.clone();
        let temp = if request == refused { 12_345.0 } else { 70.5 };
        requests.spawn(async move {
            let outcome = writer.store(readings(request, 50, temp), None).await;
            (request, outcome)
        });
    }
    let mut succeeded = 0;
    while let Some(done) = requests.join_next().await {
        let (request, outcome) = done.expect("request task");
        if request == refused {
            let error = outcome.expect_err("the refused request fails");
            assert!(error.to_string().contains("numeric"), "{error}");
        } else {
            outcome.expect("every other request is stored");
            succeeded += 1;
        }
    }
    assert_eq!(succeeded, 39);

    let (rows, refused_rows): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE guid = 'sensor-17') FROM message")
            .fetch_one(&pool)
            .await
            .expect("rows");
    assert_eq!((rows, refused_rows), (39 * 50, 0));
    let counted: i64 = sqlx::query_scalar("SELECT sum(msg_count)::int8 FROM sensor_stats")
        .fetch_one(&pool)
        .await
        .expect("statistics");
    assert_eq!(counted, 39 * 50);
}
