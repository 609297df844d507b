//! The sales simulator's storage: enriched purchases, restocks and running
//! totals, checked against totals computed independently.

use rdkafka::Message;
use server::config::{FlushConfig, KafkaConfig};
use server::kafka::{JsonPublisher, ensure_topics};
use server::sales::{RunningTotals, SalesConfig, SalesGenerator};
use server::sales_pipeline::{
    self, SalesBatch, SalesOutputs, prepare, store_catalogue, write_sales,
};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod support;

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
    let mut notifications = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .expect("listener");
    notifications
        .listen("pulseboard_data")
        .await
        .expect("listen");
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

    // Each stream's activity, latency and live notification counted them too.
    let activity: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream, sum(records)::int8 FROM stream_activity GROUP BY stream ORDER BY stream",
    )
    .fetch_all(&pool)
    .await
    .expect("activity");
    let expected_activity = vec![
        ("inventories".to_string(), restocks as i64),
        ("purchases".to_string(), 2_000),
    ];
    assert_eq!(activity, expected_activity);
    let latencies: i64 = sqlx::query_scalar(
        "SELECT sum(msg_count)::int8 FROM latency_stats WHERE stream = 'purchases'",
    )
    .fetch_one(&pool)
    .await
    .expect("latency counts");
    assert_eq!(latencies, 2_000);
    let mut heard = std::collections::BTreeSet::new();
    while let Ok(Ok(Some(notification))) =
        tokio::time::timeout(Duration::from_millis(500), notifications.try_recv()).await
    {
        heard.insert(notification.payload().to_string());
    }
    let both = ["inventories", "purchases"].map(String::from);
    assert_eq!(heard, std::collections::BTreeSet::from(both));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_simulator_stores_purchases_until_shutdown_and_publishes_results(pool: PgPool) {
    // Results go to topics of this test's own (needs ./scripts/test's broker).
    let bootstrap = std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
        .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP must name a running Kafka broker (./scripts/test starts one)");
    let nonce: u64 = rand::random();
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap,
        readings_topic: String::new(),
        group_id: String::new(),
        ..Default::default()
    };
    let (totals_topic, enriched_topic) = (
        format!("test.totals.{nonce:x}"),
        format!("test.enriched.{nonce:x}"),
    );
    let outputs = SalesOutputs {
        publisher: std::sync::Arc::new(JsonPublisher::new(&kafka).expect("producer")),
        running_totals_topic: Some(totals_topic.clone()),
        enriched_topic: Some(enriched_topic.clone()),
    };
    // Created first, as the service does.
    ensure_topics(&kafka, &outputs.topics()).await;
    let shutdown = CancellationToken::new();
    let flush = FlushConfig {
        max_records: 50,
        interval: Duration::from_millis(100),
    };
    let task = tokio::spawn(sales_pipeline::run(
        pool.clone(),
        Some(outputs),
        server::sales_windows::SalesWindows::new().expect("window spec"),
        SalesGenerator::new(SalesConfig::default(), 7),
        Some(200.0),
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

    // Every enriched purchase was published, and the newest total per product
    // on the topic is the stored one.
    let consumer =
        support::results_reader(&kafka.bootstrap_servers, &[&totals_topic, &enriched_topic]);
    let (mut enriched, mut newest): (i64, BTreeMap<String, (i64, i64, f64)>) = (0, BTreeMap::new());
    while enriched < purchases
        || newest.len() < totals.len()
        || newest.values().map(|t| t.0).sum::<i64>() < purchases
    {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("published results arrive")
            .expect("message");
        let json: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
        if message.topic() == enriched_topic {
            assert!(
                json["product_name"].is_string() && json["total_purchase"].is_number(),
                "{json}"
            );
            enriched += 1;
        } else {
            let total = (
                json["transactions"].as_i64().expect("transactions"),
                json["quantities"].as_i64().expect("quantities"),
                json["sales"].as_f64().expect("sales"),
            );
            newest.insert(
                json["product_id"].as_str().expect("product_id").to_string(),
                total,
            );
        }
    }
    assert_eq!(enriched, purchases);
    let stored: BTreeMap<String, (i64, i64, f64)> =
        totals.into_iter().map(|t| (t.0, (t.1, t.2, t.3))).collect();
    assert_eq!(newest, stored);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sales_windows_match_a_brute_force_count_and_late_purchases_are_kept(pool: PgPool) {
    use server::sales::{Disorder, parse_timestamp};
    use server::sales_pipeline::add_event;
    use server::sales_windows::{SIZE_MS, SLIDE_MS, SalesWindows, WATERMARK_DELAY_MS};
    use std::collections::{BTreeMap, BTreeSet};

    // A fifth of the purchases up to 2 minutes out of order (within the
    // watermark); 3% stamped 30 to 40 minutes in the past (past every window).
    let config = SalesConfig {
        disorder: Disorder {
            out_of_order_fraction: 0.2,
            max_out_of_order_ms: 120_000,
            late_fraction: 0.03,
            late_min_ms: 30 * 60_000,
            late_max_ms: 40 * 60_000,
            ..Disorder::default()
        },
        ..SalesConfig::default()
    };
    let mut generator = SalesGenerator::new(config, 9);
    store_catalogue(&pool, generator.products())
        .await
        .expect("catalogue");
    let events = generator.run(1_700_000_000_000, 3_000);
    let mut windows = SalesWindows::new().expect("window spec");
    for chunk in events.chunks(250) {
        let mut batch = SalesBatch::default();
        for event in chunk {
            add_event(&mut batch, &mut windows, &generator, event.clone());
        }
        batch.windows = windows.drain();
        write_sales(&pool, &batch).await.expect("batch");
    }

    let late: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT payload->>'transaction_id', payload->>'product_id' FROM late_events WHERE stream = 'purchases'",
    )
    .fetch_all(&pool)
    .await
    .expect("late events")
    .into_iter()
    .collect();
    assert!(
        late.len() > 30,
        "about 90 late purchases expected, got {}",
        late.len()
    );

    // Every other purchase counts once in each window that holds it.
    let mut expected: BTreeMap<(i64, String), (i64, i64, i64)> = BTreeMap::new();
    let mut newest_event = i64::MIN;
    for event in &events {
        let p = &event.purchase;
        let at = parse_timestamp(&p.transaction_time).expect("time");
        if late.contains(&(p.transaction_id.clone(), p.product_id.clone())) {
            continue;
        }
        newest_event = newest_event.max(at);
        let mut start = at - at.rem_euclid(SLIDE_MS);
        while start > at - SIZE_MS {
            let entry = expected.entry((start, p.product_id.clone())).or_default();
            entry.0 += 1;
            entry.1 += i64::from(p.quantity);
            entry.2 += (p.total_purchase * 100.0).round() as i64;
            start -= SLIDE_MS;
        }
    }
    let stored: Vec<(i64, String, i64, i64, i64, i64, bool)> = sqlx::query_as(
        "SELECT (extract(epoch FROM window_start) * 1000)::int8, product_id, transactions, quantities,
                (sales * 100)::int8, (extract(epoch FROM window_end) * 1000)::int8, is_final
           FROM sales_windows ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("sales windows");
    let as_map: BTreeMap<(i64, String), (i64, i64, i64)> = stored
        .iter()
        .map(|r| ((r.0, r.1.clone()), (r.2, r.3, r.4)))
        .collect();
    assert_eq!(as_map, expected);

    // A window is final exactly when the watermark has passed its end.
    let watermark = newest_event - WATERMARK_DELAY_MS;
    for row in &stored {
        assert_eq!(
            row.6,
            row.5 <= watermark,
            "window ending {} with watermark {watermark}",
            row.5
        );
    }
    let top: i64 = sqlx::query_scalar("SELECT max(rank) FROM sales_top_products")
        .fetch_one(&pool)
        .await
        .expect("top");
    assert!(top <= 10);
}
