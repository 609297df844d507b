//! The sales simulator in-process: purchases enriched with their product,
//! restocking events, running totals and event-time windows, written to
//! Postgres in batches, each in one transaction.

use crate::combined::Combined;
use crate::config::FlushConfig;
use crate::kafka::JsonPublisher;
use crate::operators::latency::Latencies;
use crate::pgcopy::{BinaryRows, copy_rows};
use crate::reading::epoch_micros;
use crate::sales::{
    EnrichedPurchase, Inventory, Product, RunningTotal, SaleEvent, SalesGenerator, enrich,
    format_timestamp, parse_timestamp,
};
use crate::sales_kafka::{INVENTORIES, PURCHASES};
use crate::sales_windows::{LateEvent, SalesWindows, WindowDelta};
use crate::store;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A purchase ready to store: enriched, with when Pulseboard received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPurchase {
    pub enriched: EnrichedPurchase,
    pub transaction_ms: i64,
    pub received_us: i64,
}

/// Purchases, restocks and window changes waiting for the next flush.
#[derive(Debug, Default)]
pub struct SalesBatch {
    pub purchases: Vec<StoredPurchase>,
    pub restocks: Vec<Inventory>,
    pub windows: Vec<WindowDelta>,
    pub late: Vec<LateEvent>,
    /// Where the windows' watermark stands after this batch.
    pub watermark: Option<i64>,
}

impl SalesBatch {
    pub fn is_empty(&self) -> bool {
        self.purchases.is_empty()
            && self.restocks.is_empty()
            && self.windows.is_empty()
            && self.late.is_empty()
    }

    pub fn clear(&mut self) {
        self.purchases.clear();
        self.restocks.clear();
        self.windows.clear();
        self.late.clear();
        self.watermark = None;
    }
}

/// Upserts the catalogue, so enriched purchases always have their product.
pub async fn store_catalogue(pool: &PgPool, products: &[Product]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    upsert_products(&mut tx, products).await?;
    tx.commit().await
}

/// Inserts or updates products; a later entry for the same product wins.
pub(crate) async fn upsert_products(
    tx: &mut Transaction<'_, Postgres>,
    products: &[Product],
) -> Result<(), sqlx::Error> {
    // One row per product, the latest: a statement may not touch a row twice.
    let latest: BTreeMap<&str, &Product> = products
        .iter()
        .map(|p| (p.product_id.as_str(), p))
        .collect();
    if latest.is_empty() {
        return Ok(());
    }
    let all = |f: fn(&Product) -> String| latest.values().map(|p| f(p)).collect::<Vec<_>>();
    let flags = |f: fn(&Product) -> bool| latest.values().map(|p| f(p)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO products (product_id, category, item, size, cogs, price, inventory_level,
                               contains_fruit, contains_veggies, contains_nuts, contains_caffeine)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[]::numeric(8,2)[],
                              $6::float8[]::numeric(8,2)[], $7::int4[], $8::bool[], $9::bool[], $10::bool[], $11::bool[])
         ON CONFLICT (product_id) DO UPDATE
            SET category = excluded.category, item = excluded.item, size = excluded.size,
                cogs = excluded.cogs, price = excluded.price, inventory_level = excluded.inventory_level,
                contains_fruit = excluded.contains_fruit, contains_veggies = excluded.contains_veggies,
                contains_nuts = excluded.contains_nuts, contains_caffeine = excluded.contains_caffeine,
                updated_at = now()",
    )
    .bind(all(|p| p.product_id.clone()))
    .bind(all(|p| p.category.clone()))
    .bind(all(|p| p.item.clone()))
    .bind(all(|p| p.size.clone()))
    .bind(latest.values().map(|p| p.cogs).collect::<Vec<_>>())
    .bind(latest.values().map(|p| p.price).collect::<Vec<_>>())
    .bind(latest.values().map(|p| p.inventory_level as i32).collect::<Vec<_>>())
    .bind(flags(|p| p.contains_fruit))
    .bind(flags(|p| p.contains_veggies))
    .bind(flags(|p| p.contains_nuts))
    .bind(flags(|p| p.contains_caffeine))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes purchases, restocks, running-total deltas and window changes in one
/// transaction, and returns the running totals of the products it changed.
pub async fn write_sales(
    pool: &PgPool,
    batch: &SalesBatch,
) -> Result<Vec<RunningTotal>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let totals = stage_sales(&mut tx, batch).await?;
    // In-process there is one clock: it resumes from here after a restart.
    if let Some(watermark) = batch.watermark {
        store::save_watermark(&mut tx, PURCHASES, crate::sales_windows::NAME, watermark).await?;
    }
    tx.commit().await?;
    Ok(totals)
}

/// Writes the batch in `tx` and returns the running totals it changed.
pub(crate) async fn stage_sales(
    tx: &mut Transaction<'_, Postgres>,
    batch: &SalesBatch,
) -> Result<Vec<RunningTotal>, sqlx::Error> {
    if batch.purchases.is_empty() && batch.restocks.is_empty() {
        upsert_windows(tx, &batch.windows).await?;
        finalize_windows(tx, batch.watermark).await?;
        return Ok(Vec::new());
    }
    // now() is fixed for the transaction: every row's `created`, and its latency.
    let stored_at_ms: i64 = sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000)::int8")
        .fetch_one(&mut **tx)
        .await?;
    insert_purchases(tx, &batch.purchases).await?;
    insert_restocks(tx, &batch.restocks).await?;
    let totals = upsert_running_totals(tx, &batch.purchases).await?;
    upsert_windows(tx, &batch.windows).await?;
    finalize_windows(tx, batch.watermark).await?;
    store::insert_late_events(tx, PURCHASES, &batch.late).await?;
    let mut latency: BTreeMap<&str, Latencies> = BTreeMap::new();
    for p in &batch.purchases {
        latency
            .entry(p.enriched.product_id.as_str())
            .or_default()
            .add(stored_at_ms - p.transaction_ms);
    }
    let mut summaries = Combined::default();
    store::add_latencies(&mut summaries, PURCHASES, &latency);
    let newest = batch.purchases.iter().map(|p| p.transaction_ms).max();
    store::add_activity(&mut summaries, PURCHASES, batch.purchases.len(), newest);
    let newest = batch
        .restocks
        .iter()
        .filter_map(|r| parse_timestamp(&r.event_time))
        .max();
    store::add_activity(&mut summaries, INVENTORIES, batch.restocks.len(), newest);
    summaries.execute(&mut **tx).await?;
    Ok(totals)
}

/// Where [`encode_purchases`] rows go: `purchases_enriched`, by binary COPY.
pub const COPY_PURCHASES: &str = "COPY purchases_enriched (transaction_time, transaction_id,
     product_id, product_category, product_name, product_size, product_cogs, product_price,
     contains_fruit, contains_veggies, contains_nuts, contains_caffeine, purchase_price,
     purchase_quantity, is_member, member_discount, add_supplements, supplement_price,
     total_purchase, ingested_at) FROM STDIN (FORMAT binary)";

/// Enriched purchases in Postgres' binary COPY format, for [`COPY_PURCHASES`].
pub fn encode_purchases(purchases: &[StoredPurchase]) -> Vec<u8> {
    let mut rows = BinaryRows::with_capacity(purchases.len());
    for row in purchases {
        encode_purchase(&mut rows, row);
    }
    rows.finish()
}

fn encode_purchase(rows: &mut BinaryRows, row: &StoredPurchase) {
    let cents = |dollars: f64| (dollars * 100.0).round() as i64;
    let p = &row.enriched;
    rows.row(20)
        .timestamptz(Some(row.transaction_ms * 1000))
        .text(&p.transaction_id)
        .text(&p.product_id)
        .text(&p.product_category)
        .text(&p.product_name)
        .text(&p.product_size)
        .numeric2(cents(p.product_cogs))
        .numeric2(cents(p.product_price))
        .bool(p.contains_fruit)
        .bool(p.contains_veggies)
        .bool(p.contains_nuts)
        .bool(p.contains_caffeine)
        .numeric2(cents(p.purchase_price))
        .int4(p.purchase_quantity as i32)
        .bool(p.is_member)
        .numeric2(cents(p.member_discount))
        .bool(p.add_supplements)
        .numeric2(cents(p.supplement_price))
        .numeric2(cents(p.total_purchase))
        .timestamptz(Some(row.received_us));
}

/// Enriched rows by binary COPY: the fastest way into the table.
async fn insert_purchases(
    tx: &mut Transaction<'_, Postgres>,
    purchases: &[StoredPurchase],
) -> Result<(), sqlx::Error> {
    if purchases.is_empty() {
        return Ok(());
    }
    copy_rows(tx, COPY_PURCHASES, purchases, encode_purchase).await?;
    Ok(())
}

async fn insert_restocks(
    tx: &mut Transaction<'_, Postgres>,
    restocks: &[Inventory],
) -> Result<(), sqlx::Error> {
    if restocks.is_empty() {
        return Ok(());
    }
    let times: Vec<i64> = restocks
        .iter()
        .map(|r| parse_timestamp(&r.event_time).unwrap_or_default())
        .collect();
    sqlx::query(
        "INSERT INTO inventories (event_time, product_id, existing_level, stock_quantity, new_level)
         SELECT to_timestamp(t_ms / 1000.0), pid, existing, added, new_level
           FROM unnest($1::int8[], $2::text[], $3::int4[], $4::int4[], $5::int4[])
                AS r(t_ms, pid, existing, added, new_level)",
    )
    .bind(&times)
    .bind(restocks.iter().map(|r| r.product_id.clone()).collect::<Vec<_>>())
    .bind(restocks.iter().map(|r| r.existing_level as i32).collect::<Vec<_>>())
    .bind(restocks.iter().map(|r| r.stock_quantity as i32).collect::<Vec<_>>())
    .bind(restocks.iter().map(|r| r.new_level as i32).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Per-product deltas of a batch: transactions, quantities, sales in cents, newest time.
fn running_total_deltas(purchases: &[StoredPurchase]) -> BTreeMap<&str, (i64, i64, i64, i64)> {
    let mut deltas: BTreeMap<&str, (i64, i64, i64, i64)> = BTreeMap::new();
    for p in purchases {
        let entry = deltas
            .entry(p.enriched.product_id.as_str())
            .or_insert((0, 0, 0, i64::MIN));
        entry.0 += 1;
        entry.1 += i64::from(p.enriched.purchase_quantity);
        // Cents, so sums are exact.
        entry.2 += (p.enriched.total_purchase * 100.0).round() as i64;
        entry.3 = entry.3.max(p.transaction_ms);
    }
    deltas
}

async fn upsert_running_totals(
    tx: &mut Transaction<'_, Postgres>,
    purchases: &[StoredPurchase],
) -> Result<Vec<RunningTotal>, sqlx::Error> {
    let deltas = running_total_deltas(purchases);
    if deltas.is_empty() {
        return Ok(Vec::new());
    }
    // Sorted product ids: concurrent writers lock rows in the same order.
    let rows: Vec<(String, i64, i64, f64, i64)> = sqlx::query_as(
        "INSERT INTO running_totals AS t (product_id, transactions, quantities, sales, event_time)
         SELECT pid, n, qty, cents / 100.0, to_timestamp(t_ms / 1000.0)
           FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS r(pid, n, qty, cents, t_ms)
         ON CONFLICT (product_id) DO UPDATE
            SET transactions = t.transactions + excluded.transactions,
                quantities   = t.quantities + excluded.quantities,
                sales        = t.sales + excluded.sales,
                event_time   = greatest(t.event_time, excluded.event_time),
                updated_at   = now()
         RETURNING product_id, transactions, quantities, sales::float8,
                   (extract(epoch FROM event_time) * 1000)::int8",
    )
    .bind(deltas.keys().copied().collect::<Vec<_>>())
    .bind(deltas.values().map(|d| d.0).collect::<Vec<_>>())
    .bind(deltas.values().map(|d| d.1).collect::<Vec<_>>())
    .bind(deltas.values().map(|d| d.2).collect::<Vec<_>>())
    .bind(deltas.values().map(|d| d.3).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(product_id, transactions, quantities, sales, event_ms): (
                String,
                i64,
                i64,
                f64,
                i64,
            )| RunningTotal {
                event_time: format_timestamp(event_ms),
                product_id,
                transactions: transactions as u64,
                quantities: quantities as u64,
                sales,
            },
        )
        .collect())
}

async fn upsert_windows(
    tx: &mut Transaction<'_, Postgres>,
    windows: &[WindowDelta],
) -> Result<(), sqlx::Error> {
    if windows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sales_windows AS w (window_start, window_end, product_id, transactions, quantities, sales, is_final)
         SELECT to_timestamp(s_ms / 1000.0), to_timestamp(e_ms / 1000.0), pid, n, qty, cents / 100.0, fin
           FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::bool[])
                AS r(s_ms, e_ms, pid, n, qty, cents, fin)
         ON CONFLICT (window_start, product_id) DO UPDATE
            SET transactions = w.transactions + excluded.transactions,
                quantities   = w.quantities + excluded.quantities,
                sales        = w.sales + excluded.sales,
                is_final     = w.is_final OR excluded.is_final,
                updated_at   = now()",
    )
    .bind(windows.iter().map(|w| w.start_ms).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.end_ms).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.product_id.clone()).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.transactions).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.quantities).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.sales_cents).collect::<Vec<_>>())
    .bind(windows.iter().map(|w| w.is_final).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks every stored window the watermark has passed as final, also those
/// no longer in memory (their last events came before a restart).
async fn finalize_windows(
    tx: &mut Transaction<'_, Postgres>,
    watermark: Option<i64>,
) -> Result<(), sqlx::Error> {
    let Some(watermark) = watermark else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE sales_windows SET is_final = true, updated_at = now()
          WHERE NOT is_final AND window_end <= to_timestamp($1 / 1000.0)",
    )
    .bind(watermark)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Topics the sales pipeline writes its results to, as the seed's jobs do.
#[derive(Clone)]
pub struct SalesOutputs {
    /// The service's one producer, shared with every other path that publishes.
    pub publisher: std::sync::Arc<JsonPublisher>,
    pub running_totals_topic: Option<String>,
    pub enriched_topic: Option<String>,
}

impl SalesOutputs {
    /// The topics results go to, for creating them before the first result:
    /// a reader subscribed to a topic that does not exist yet gets an error,
    /// and a broker without automatic creation refuses what is produced to it.
    pub fn topics(&self) -> Vec<String> {
        [&self.running_totals_topic, &self.enriched_topic]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Messages waiting to be published: topic, key and JSON payload.
pub use crate::kafka::PendingMessages;

impl SalesOutputs {
    /// Queues a committed batch's results (its enriched purchases and the new
    /// running totals), then publishes everything queued.
    pub async fn publish(
        &self,
        pending: &mut PendingMessages,
        purchases: &[StoredPurchase],
        totals: Vec<RunningTotal>,
    ) {
        if let Some(topic) = &self.enriched_topic {
            for purchase in purchases {
                let json = serde_json::to_vec(&purchase.enriched).unwrap_or_default();
                pending.push((topic.clone(), purchase.enriched.product_id.clone(), json));
            }
        }
        if let Some(topic) = &self.running_totals_topic {
            for total in totals {
                let json = serde_json::to_vec(&total).unwrap_or_default();
                pending.push((topic.clone(), total.product_id, json));
            }
        }
        self.publisher
            .publish_pending(pending, "sales results")
            .await;
    }
}

/// Adds a generated event to the batch: the purchase, its restocks, and its
/// windows (or a late event).
pub fn add_event(
    batch: &mut SalesBatch,
    windows: &mut SalesWindows,
    generator: &SalesGenerator,
    event: SaleEvent,
) {
    match prepare(generator, &event.purchase) {
        Some(stored) => {
            if let Some(late) = windows.push(&stored) {
                batch.late.push(late);
            }
            batch.purchases.push(stored);
        }
        None => tracing::error!(purchase = ?event.purchase, "generated purchase has no product"),
    }
    batch.restocks.extend(event.restocks);
}

/// Turns a generated purchase into what is stored, joining its product.
pub fn prepare(
    generator: &SalesGenerator,
    purchase: &crate::sales::Purchase,
) -> Option<StoredPurchase> {
    let product = generator.product(&purchase.product_id)?;
    Some(StoredPurchase {
        enriched: enrich(purchase, product),
        transaction_ms: parse_timestamp(&purchase.transaction_time)?,
        received_us: epoch_micros(),
    })
}

/// Runs `generator` until shutdown, at its own pace or at `rate` purchases
/// per second, flushing on the usual size and time limits, into `windows`
/// (their state from before a restart is read first).
pub async fn run(
    pool: PgPool,
    outputs: Option<SalesOutputs>,
    mut windows: SalesWindows,
    mut generator: SalesGenerator,
    rate: Option<f64>,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    let catalogue = generator.products().to_vec();
    if store::retry(&shutdown, "storing the product catalogue", || {
        store_catalogue(&pool, &catalogue)
    })
    .await
    .is_err()
    {
        return;
    }
    tracing::info!(products = catalogue.len(), ?rate, "sales simulator started");
    let mut batch = SalesBatch::default();
    let mut pending = Vec::new();
    // Windows closed before a restart stay closed.
    match store::stored_watermark(&pool, PURCHASES, crate::sales_windows::NAME).await {
        Ok(Some(watermark)) => windows.advance_watermark(watermark),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "the stored watermark of the sales windows is unavailable")
        }
    }
    let mut ticker = tokio::time::interval(flush.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_at) => {
                let now_ms = epoch_micros() / 1000;
                let event = generator.next_event(now_ms);
                add_event(&mut batch, &mut windows, &generator, event);
                let delay_ms = match rate {
                    Some(rate) => (1000.0 / rate) as u64,
                    None => generator.next_delay_ms(),
                };
                next_at += Duration::from_millis(delay_ms);
                if batch.purchases.len() >= flush.max_records {
                    close_windows(&mut batch, &mut windows);
                    flush_sales(&pool, &mut batch, outputs.as_ref(), &mut pending, &shutdown).await;
                }
            }
            _ = ticker.tick() => {
                close_windows(&mut batch, &mut windows);
                if !batch.is_empty() {
                    flush_sales(&pool, &mut batch, outputs.as_ref(), &mut pending, &shutdown).await;
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
    close_windows(&mut batch, &mut windows);
    if !batch.is_empty() {
        flush_sales(&pool, &mut batch, outputs.as_ref(), &mut pending, &shutdown).await;
    }
    tracing::info!("sales simulator stopped");
}

/// Hands the windows' changes and watermark to the batch about to be flushed.
pub fn close_windows(batch: &mut SalesBatch, windows: &mut SalesWindows) {
    batch.windows = windows.drain();
    batch.watermark = windows.watermark();
}

async fn flush_sales(
    pool: &PgPool,
    batch: &mut SalesBatch,
    outputs: Option<&SalesOutputs>,
    pending: &mut PendingMessages,
    shutdown: &CancellationToken,
) {
    match store::retry(shutdown, "sales flush", || write_sales(pool, batch)).await {
        Ok(totals) => {
            if let Some(outputs) = outputs {
                outputs.publish(pending, &batch.purchases, totals).await;
            }
        }
        Err(error) => {
            tracing::error!(%error, purchases = batch.purchases.len(), "sales flush abandoned")
        }
    }
    batch.clear();
}
