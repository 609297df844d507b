//! Enrichment joins between two streams of one's own: each order is joined
//! with the latest record of its store; an order whose store is not known yet
//! waits in Postgres until the store arrives or the wait is over, and is
//! never lost or joined twice.

use server::custom::{CustomBatch, CustomStream};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

mod support;

const STORES: &str = r#"
name = "stores"
sources = { http_names = ["stores"] }
event_time = { field = "at", format = "epoch_millis" }
fields = [
    { name = "at", type = "integer", role = "time" },
    { name = "store", type = "string", role = "dimension" },
    { name = "city", type = "string", role = "dimension" },
]
"#;

const ORDERS: &str = r#"
name = "orders"
sources = { http_names = ["orders"] }
event_time = { field = "at", format = "epoch_millis" }
fields = [
    { name = "at", type = "integer", role = "time" },
    { name = "store", type = "string", role = "dimension" },
    { name = "amount", type = "float", role = "metric" },
]

[[joins]]
name = "with_store"
stream = "stores"
on = "store"
wait = "1s"
"#;

/// Both streams, planned together as at start, with their tables.
async fn streams(pool: &PgPool) -> (Arc<CustomStream>, Arc<CustomStream>) {
    let definitions = server::definitions::parse_all(&[
        ("orders.toml".into(), ORDERS.into()),
        ("stores.toml".into(), STORES.into()),
    ])
    .expect("valid definitions");
    let mut planned = CustomStream::plan_all(&definitions).expect("planned");
    for stream in &planned {
        stream.prepare(pool).await.expect("tables");
    }
    let stores = Arc::new(planned.pop().expect("stores"));
    let orders = Arc::new(planned.pop().expect("orders"));
    assert_eq!(
        (orders.name.as_str(), stores.name.as_str()),
        ("orders", "stores")
    );
    (orders, stores)
}

fn batch(stream: &Arc<CustomStream>, records: &[serde_json::Value]) -> CustomBatch {
    let mut batch = CustomBatch::new(stream.clone());
    for record in records {
        let payload = serde_json::to_vec(record).expect("json");
        assert_eq!(batch.add("test", &payload, &|| "test".into()), None);
    }
    batch
}

async fn flush(pool: &PgPool, stream: &Arc<CustomStream>, records: &[serde_json::Value]) {
    let mut tx = pool.begin().await.expect("begin");
    batch(stream, records).stage(&mut tx).await.expect("staged");
    tx.commit().await.expect("committed");
}

fn store(at: i64, store: &str, city: &str) -> serde_json::Value {
    serde_json::json!({ "at": at, "store": store, "city": city })
}

fn order(at: i64, store: &str, amount: f64) -> serde_json::Value {
    serde_json::json!({ "at": at, "store": store, "amount": amount })
}

/// `(amount, store, city, matched)` of every joined order, by amount.
async fn joined(pool: &PgPool) -> Vec<(f64, String, Option<String>, bool)> {
    sqlx::query_as(
        "SELECT amount, store, stores_city, _matched FROM join_orders_with_store ORDER BY amount",
    )
    .fetch_all(pool)
    .await
    .expect("joined orders")
}

async fn waiting(pool: &PgPool) -> i64 {
    support::count(pool, "join_orders_with_store_pending").await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn orders_join_the_latest_store_and_wait_for_unknown_ones(pool: PgPool) {
    let (orders, stores) = streams(&pool).await;
    let lisbon = || Some("Lisbon".to_string());

    flush(&pool, &stores, &[store(1_000, "s1", "Lisbon")]).await;
    flush(
        &pool,
        &orders,
        &[order(2_000, "s1", 1.0), order(2_000, "s2", 2.0)],
    )
    .await;
    assert_eq!(joined(&pool).await, [(1.0, "s1".into(), lisbon(), true)]);
    assert_eq!(
        waiting(&pool).await,
        1,
        "the order of an unknown store waits"
    );

    // The store arrives: its flush releases the order that waited for it.
    flush(&pool, &stores, &[store(3_000, "s2", "Porto")]).await;
    assert_eq!(waiting(&pool).await, 0);
    assert_eq!(
        joined(&pool).await[1],
        (2.0, "s2".into(), Some("Porto".into()), true)
    );

    // A store that moved: later orders see its latest record, earlier ones keep theirs.
    flush(
        &pool,
        &stores,
        &[store(4_000, "s1", "Faro"), store(500, "s1", "Old")],
    )
    .await;
    flush(&pool, &orders, &[order(5_000, "s1", 3.0)]).await;
    let rows = joined(&pool).await;
    assert_eq!(rows[0], (1.0, "s1".into(), lisbon(), true));
    assert_eq!(rows[2], (3.0, "s1".into(), Some("Faro".into()), true));

    // A store that never arrives: after the wait the order is stored unmatched.
    flush(&pool, &orders, &[order(6_000, "s9", 4.0)]).await;
    assert_eq!(waiting(&pool).await, 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // A flush with no new records (a consumer's periodic one) is enough.
    flush(&pool, &orders, &[]).await;
    assert_eq!(waiting(&pool).await, 0);
    assert_eq!(joined(&pool).await[3], (4.0, "s9".into(), None, false));
    flush(&pool, &orders, &[order(7_000, "s2", 5.0)]).await;
    let rows = joined(&pool).await;
    assert_eq!(rows[3], (4.0, "s9".into(), None, false));
    assert_eq!(rows[4], (5.0, "s2".into(), Some("Porto".into()), true));
    assert_eq!(waiting(&pool).await, 0);
    assert_eq!(rows.len(), 5, "every order once: {rows:?}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn two_flushes_at_once_move_a_waiting_order_once(pool: PgPool) {
    let (orders, stores) = streams(&pool).await;
    flush(&pool, &orders, &[order(1_000, "s1", 1.0)]).await;
    assert_eq!(waiting(&pool).await, 1);

    // Two flushes of the stores stream, as from two instances, both holding
    // the store the order waits for, in transactions open at the same time.
    let mut first = pool.begin().await.expect("begin");
    batch(&stores, &[store(2_000, "s1", "Lisbon")])
        .stage(&mut first)
        .await
        .expect("first staged");
    let second = {
        let (pool, batch) = (
            pool.clone(),
            batch(&stores, &[store(2_000, "s1", "Lisbon")]),
        );
        tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            batch.stage(&mut tx).await.expect("second staged");
            tx.commit().await.expect("second committed");
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.commit().await.expect("first committed");
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second flush finishes")
        .expect("second flush");
    assert_eq!(joined(&pool).await.len(), 1, "joined once");
    assert_eq!(waiting(&pool).await, 0);
}

#[test]
fn only_a_stream_that_keeps_its_raw_rows_can_be_joined() {
    let definitions = server::definitions::parse_all(&[
        ("orders.toml".into(), ORDERS.into()),
        ("stores.toml".into(), format!("raw_rows = false\n{STORES}")),
    ])
    .expect("valid definitions");
    let error = match CustomStream::plan_all(&definitions) {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("keeps its raw rows"), "{error}");
}
