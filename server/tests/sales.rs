//! The sales simulator's storage: enriched purchases, restocks and running
//! totals, checked against totals computed independently.

use server::config::FlushConfig;
use server::sales::{RunningTotals, SalesConfig, SalesGenerator};
use server::sales_pipeline::{self, SalesBatch, prepare, store_catalogue, write_sales};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Total = (String, i64, i64, f64);

async fn stored_totals(pool: &PgPool) -> Vec<Total> {
    sqlx::query_as("SELECT product_id, transactions, quantities, sales::float8 FROM running_totals ORDER BY product_id")
        .fetch_all(pool)
        .await
        .expect("running totals")
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn running_totals_equal_totals_computed_from_the_input(pool: PgPool) {
    let mut generator = SalesGenerator::new(SalesConfig::default(), 42);
    store_catalogue(&pool, generator.products())
        .await
        .expect("catalogue");
    let events = generator.run(1_700_000_000_000, 2_000);
    let mut expected = RunningTotals::new();
    let mut restocks = 0;
    for chunk in events.chunks(300) {
        let mut batch = SalesBatch::default();
        for event in chunk {
            expected.add(&event.purchase);
            batch
                .purchases
                .push(prepare(&generator, &event.purchase).expect("known product"));
            restocks += event.restocks.len();
            batch.restocks.extend(event.restocks.iter().cloned());
        }
        write_sales(&pool, &batch).await.expect("batch");
    }

    let expected: Vec<Total> = expected
        .iter()
        .map(|t| {
            (
                t.product_id.clone(),
                t.transactions as i64,
                t.quantities as i64,
                t.sales,
            )
        })
        .collect();
    assert_eq!(stored_totals(&pool).await, expected);

    // The same totals from the stored rows.
    let from_rows: Vec<Total> = sqlx::query_as(
        "SELECT product_id, count(*)::int8, sum(purchase_quantity)::int8, sum(total_purchase)::float8
           FROM purchases_enriched GROUP BY product_id ORDER BY product_id",
    )
    .fetch_all(&pool)
    .await
    .expect("totals from rows");
    assert_eq!(from_rows, expected);

    // Every stored purchase carries its product's fields.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM purchases_enriched e JOIN products p USING (product_id)
          WHERE e.product_name <> p.item OR e.product_category <> p.category OR e.product_size <> p.size
             OR e.product_price <> p.price OR e.product_cogs <> p.cogs OR e.purchase_price <> p.price
             OR e.contains_nuts <> p.contains_nuts",
    )
    .fetch_one(&pool)
    .await
    .expect("join");
    assert_eq!(mismatched, 0);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM purchases_enriched")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 2_000);
    let stored_restocks: i64 = sqlx::query_scalar("SELECT count(*) FROM inventories")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(restocks > 0, "2,000 purchases drain some stock");
    assert_eq!(stored_restocks as usize, restocks);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_simulator_stores_purchases_until_shutdown(pool: PgPool) {
    let shutdown = CancellationToken::new();
    let flush = FlushConfig {
        max_records: 50,
        interval: Duration::from_millis(100),
    };
    let task = tokio::spawn(sales_pipeline::run(
        pool.clone(),
        Some(200.0),
        7,
        flush,
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    shutdown.cancel();
    task.await.expect("simulator task");

    let (purchases, quantities, sales): (i64, i64, f64) = sqlx::query_as(
        "SELECT count(*)::int8, coalesce(sum(purchase_quantity), 0)::int8, coalesce(sum(total_purchase), 0)::float8
           FROM purchases_enriched",
    )
    .fetch_one(&pool)
    .await
    .expect("purchases");
    assert!(
        purchases >= 100,
        "about 300 expected at 200/s for 1.5 s, got {purchases}"
    );
    let totals = stored_totals(&pool).await;
    assert_eq!(totals.iter().map(|t| t.1).sum::<i64>(), purchases);
    assert_eq!(totals.iter().map(|t| t.2).sum::<i64>(), quantities);
    assert!((totals.iter().map(|t| t.3).sum::<f64>() - sales).abs() < 0.005);
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&pool)
        .await
        .expect("products");
    assert_eq!(products, 27);
}
