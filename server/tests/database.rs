//! Migrations and the seed's views, on a real Postgres (a fresh database per test).

use server::MIGRATOR;
use server::reading::Reading;
use server::store::{Batch, DeadLetter, write_batch};
use sqlx::PgPool;

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn columns(pool: &PgPool, view: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1
          ORDER BY ordinal_position",
    )
    .bind(view)
    .fetch_all(pool)
    .await
    .expect("columns")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

const LAB_2203: &str = "03e39872-e105-4be4-83c0-9ade818465dc";
const ZONE_2: &str = "93238559-4d55-4b2a-bdcb-6aa3be0f3908";

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_seed_the_star_schema(pool: PgPool) {
    MIGRATOR.run(&pool).await.expect("migrations apply");
    assert_eq!(count(&pool, "location").await, 6);
    assert_eq!(count(&pool, "sensor").await, 6);
    assert_eq!(count(&pool, "manufacturer").await, 1);
    assert_eq!(count(&pool, "history").await, 30);
    assert_eq!(count(&pool, "sensors").await, 30);
    assert_eq!(count(&pool, "message").await, 0);
    // Running them again is a no-op, as on every restart.
    MIGRATOR
        .run(&pool)
        .await
        .expect("migrations are idempotent");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn views_have_the_seed_columns(pool: PgPool) {
    assert_eq!(
        columns(&pool, "sensor_msg_detail").await,
        [
            "recorded",
            "temp",
            "guid",
            "sku",
            "mac",
            "lat",
            "long",
            "location",
            "installed",
            "redshift",
            // Not the seed's: event seconds, for charts' index reads.
            "ts"
        ]
    );
    assert_eq!(
        columns(&pool, "sensor_msg_count").await,
        ["msg_count", "guid", "lat", "long", "location"]
    );
    for view in ["sensor_avg_temp", "sensor_avg_temp_current"] {
        assert_eq!(
            columns(&pool, view).await,
            ["avg_temp", "msg_count", "guid", "lat", "long", "location"],
            "{view}"
        );
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn batches_land_in_message_and_the_views(pool: PgPool) {
    let t = now();
    let batch = Batch {
        readings: vec![
            Reading::new(LAB_2203, t, 70.0),
            Reading::new(LAB_2203, t - 60, 71.15),
            Reading::new(LAB_2203, t - 7200, 90.0),
            Reading::new(ZONE_2, t, 80.5),
        ],
        dead_letters: vec![DeadLetter {
            stream: Some("sensors".into()),
            source: "test".into(),
            position: Some("t/0@7".into()),
            payload: b"{broken".to_vec(),
            reason: "not JSON".into(),
        }],
    };
    write_batch(&pool, &batch).await.expect("batch written");
    assert_eq!(count(&pool, "message").await, 4);
    assert_eq!(count(&pool, "dead_letters").await, 1);

    let all: Vec<(String, f64, i64, String, f64, f64)> = sqlx::query_as(
        "SELECT guid::text, avg_temp::float8, msg_count::int8, location::text, lat::float8, long::float8
           FROM sensor_avg_temp ORDER BY guid",
    )
    .fetch_all(&pool)
    .await
    .expect("sensor_avg_temp");
    assert_eq!(all.len(), 2, "only sensors with readings: {all:?}");
    assert_eq!(all[0].0, LAB_2203);
    assert_eq!(all[0].1, 77.05);
    assert_eq!(all[0].2, 3);
    assert_eq!(all[0].3, "Research Lab #2203");
    assert_eq!((all[0].4, all[0].5), (37.7068476, -122.4191599));

    let current: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT guid::text, avg_temp::float8, msg_count::int8 FROM sensor_avg_temp_current ORDER BY guid",
    )
    .fetch_all(&pool)
    .await
    .expect("sensor_avg_temp_current");
    assert_eq!(
        current,
        [
            (LAB_2203.to_string(), 70.58, 2),
            (ZONE_2.to_string(), 80.5, 1)
        ]
    );

    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT guid::text, msg_count::int8 FROM sensor_msg_count ORDER BY guid")
            .fetch_all(&pool)
            .await
            .expect("sensor_msg_count");
    assert_eq!(counts, [(LAB_2203.to_string(), 3), (ZONE_2.to_string(), 1)]);
    assert_eq!(count(&pool, "sensor_msg_detail").await, 4);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_batch_is_all_or_nothing(pool: PgPool) {
    // The second reading cannot be stored (guid longer than the column), so neither is.
    let batch = Batch {
        readings: vec![
            Reading::new(LAB_2203, now(), 70.0),
            Reading::new("x".repeat(40), now(), 70.0),
        ],
        dead_letters: vec![],
    };
    assert!(write_batch(&pool, &batch).await.is_err());
    assert_eq!(count(&pool, "message").await, 0);
}

/// Managed Postgres (RDS, Aurora) refuses connections without TLS, so the
/// driver must speak it. The test server has no certificate: asked for TLS
/// it says so, rather than the driver saying it cannot.
#[tokio::test]
async fn a_connection_can_require_tls() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let separator = if url.contains('?') { '&' } else { '?' };
    let error = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&format!("{url}{separator}sslmode=require"))
        .await
        .expect_err("the test server has no TLS");
    let text = error.to_string();
    assert!(!text.contains("without TLS support"), "{text}");
    assert!(text.contains("TLS"), "{text}");
}
