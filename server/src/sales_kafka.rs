//! The sales pipeline fed from Kafka, as the seed runs it: products,
//! purchases and restocking events arrive on their own topics; purchases are
//! joined with the latest product, totalled and windowed, and everything is
//! stored with the consumed offsets in one transaction per flush.
//!
//! A purchase whose product is not known yet waits in `pending_purchases`,
//! written in the same transaction as the offsets that consumed it, so it
//! survives a crash. Each flush claims the waiting purchases whose product has
//! arrived (by deleting them, so two instances never both take one) and moves
//! those that waited longer than the join allows to `dead_letters`.

use crate::config::{FlushConfig, KafkaConfig};
use crate::consumer::{Decode, Sink, Subscription};
use crate::definitions::{self, Pipeline, StreamDefinition, WindowKind};
use crate::kafka::JsonPublisher;
use crate::operators::window::{SourceId, SourceProgress, WindowSpec};
use crate::reading::epoch_micros;
use crate::sales::{
    Inventory, Product, ProductEvent, Purchase, SalesConfig, SalesGenerator, enrich,
    parse_timestamp,
};
use crate::sales_pipeline::{self, PendingMessages, SalesBatch, SalesOutputs, StoredPurchase};
use crate::sales_windows::SalesWindows;
use crate::store::{self, DeadLetter};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The sales streams' names, as shipped, under which their activity is kept.
pub const PRODUCTS: &str = "products";
pub const PURCHASES: &str = "purchases";
pub const INVENTORIES: &str = "inventories";

/// The sales streams' settings, read from their definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesStreams {
    pub products_topics: Vec<String>,
    pub purchases_topics: Vec<String>,
    pub inventories_topics: Vec<String>,
    /// How long a purchase may wait for its product.
    pub join_wait: Duration,
    pub windows: WindowSpec,
    pub enriched_topic: Option<String>,
    pub running_totals_topic: Option<String>,
}

impl SalesStreams {
    /// The sales pipeline's settings, if the definitions include its streams.
    pub fn from_definitions(definitions: &[StreamDefinition]) -> anyhow::Result<Option<Self>> {
        let find = |pipeline| definitions.iter().find(|d| d.pipeline == Some(pipeline));
        let (Some(products), Some(purchases)) = (
            find(Pipeline::SalesProducts),
            find(Pipeline::SalesPurchases),
        ) else {
            return Ok(None);
        };
        let inventories = find(Pipeline::SalesInventories)
            .map(|d| d.sources.kafka_topics.clone())
            .unwrap_or_default();
        let join_wait = match purchases.joins.first() {
            Some(join) => definitions::duration(&join.wait).map_err(anyhow::Error::msg)?,
            None => anyhow::bail!(
                "stream {:?}: the sales pipeline joins purchases with products; add a [[joins]] entry",
                purchases.name
            ),
        };
        let windows = match purchases.windows.first() {
            Some(window) => {
                let ms = |text: &str| -> anyhow::Result<i64> {
                    let d = definitions::duration(text).map_err(anyhow::Error::msg)?;
                    Ok(i64::try_from(d.as_millis())?)
                };
                let size = ms(&window.size)?;
                let slide = match (window.kind, &window.slide) {
                    (WindowKind::Hopping, Some(slide)) => ms(slide)?,
                    _ => size,
                };
                WindowSpec::new(
                    size,
                    slide,
                    ms(&window.watermark)?,
                    ms(&window.allowed_lateness)?,
                )?
            }
            None => WindowSpec::new(
                crate::sales_windows::SIZE_MS,
                crate::sales_windows::SLIDE_MS,
                crate::sales_windows::WATERMARK_DELAY_MS,
                crate::sales_windows::ALLOWED_LATENESS_MS,
            )?,
        };
        let output = |from: &str| {
            purchases
                .outputs
                .iter()
                .find(|o| o.from == from)
                .map(|o| o.topic.clone())
        };
        let enriched_from = purchases.joins.first().map(|j| j.name.as_str());
        let totals_from = purchases.rollups.first().map(|r| r.name.as_str());
        Ok(Some(SalesStreams {
            products_topics: products.sources.kafka_topics.clone(),
            purchases_topics: purchases.sources.kafka_topics.clone(),
            inventories_topics: inventories,
            join_wait,
            windows,
            enriched_topic: enriched_from.and_then(output),
            running_totals_topic: totals_from.and_then(output),
        }))
    }

    pub fn subscription(&self, group: &str) -> Subscription {
        Subscription {
            group: format!("{group}.sales"),
            topics: [
                &self.products_topics,
                &self.purchases_topics,
                &self.inventories_topics,
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        }
    }

    pub fn outputs(&self, publisher: Arc<JsonPublisher>) -> SalesOutputs {
        SalesOutputs {
            publisher,
            running_totals_topic: self.running_totals_topic.clone(),
            enriched_topic: self.enriched_topic.clone(),
        }
    }
}

/// The window source of purchases that waited for their product: no
/// partition's, so they neither hold back nor push the others' watermark
/// for long (it goes idle).
const PARKED: SourceId = SourceId::MAX;

/// How often an instance looks at the waiting purchases even when it parked none.
const WAITING_CHECK_EVERY: Duration = Duration::from_secs(5);

/// A purchase as read, before its product is known.
#[derive(Debug, Clone)]
pub struct ReadPurchase {
    purchase: Purchase,
    transaction_ms: i64,
    received_us: i64,
    /// The partition it came from, for the windows' watermark.
    source: SourceId,
    position: String,
    raw: Vec<u8>,
}

/// The sales streams' records held for the next flush, and the window state.
pub struct SalesSink {
    streams: Arc<SalesStreams>,
    products: Vec<Product>,
    purchases: Vec<ReadPurchase>,
    restocks: Vec<Inventory>,
    dead_letters: Vec<DeadLetter>,
    windows: SalesWindows,
    /// Purchases may be waiting in Postgres (unknown at start, so assumed).
    maybe_waiting: bool,
    /// When this instance last looked at the waiting purchases: another
    /// instance may have parked some (and stopped), so it looks now and then.
    checked_waiting_at: std::time::Instant,
    /// The purchase partitions this consumer reads now, with their names
    /// (`topic/partition`) under which their clocks are stored.
    assigned: Vec<(SourceId, String)>,
    outputs: Option<SalesOutputs>,
    unpublished: PendingMessages,
}

/// What a committed flush produced.
pub struct StagedSales {
    windows: SalesWindows,
    batch: SalesBatch,
    totals: Vec<crate::sales::RunningTotal>,
    still_waiting: bool,
    checked_waiting: bool,
}

impl SalesSink {
    pub fn new(streams: SalesStreams, outputs: Option<SalesOutputs>) -> Self {
        SalesSink {
            windows: SalesWindows::with_spec(streams.windows),
            streams: Arc::new(streams),
            products: Vec::new(),
            purchases: Vec::new(),
            restocks: Vec::new(),
            dead_letters: Vec::new(),
            maybe_waiting: true,
            checked_waiting_at: std::time::Instant::now(),
            assigned: Vec::new(),
            outputs,
            unpublished: Vec::new(),
        }
    }

    /// Whether to look at the waiting purchases at the next flush.
    fn pending_check_due(&self) -> bool {
        self.maybe_waiting || self.checked_waiting_at.elapsed() >= WAITING_CHECK_EVERY
    }

    /// The source of a partition kept as `topic/partition`, if it is one of
    /// the purchases topics'.
    fn source_named(&self, key: &str) -> Option<SourceId> {
        let (topic, partition) = key.rsplit_once('/')?;
        let partition: i32 = partition.parse().ok()?;
        self.streams
            .purchases_topics
            .iter()
            .any(|t| t == topic)
            .then(|| self.streams.source_of(topic, partition))
    }

    fn clear(&mut self) {
        self.products.clear();
        self.purchases.clear();
        self.restocks.clear();
        self.dead_letters.clear();
    }
}

/// Text Postgres can store (no NUL), and money that fits `numeric(8,2)`.
fn check_text(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "{name} holds a NUL character, which text cannot store"
        ));
    }
    Ok(())
}

fn check_amount(name: &str, value: f64, max: f64) -> Result<(), String> {
    if !(0.0..=max).contains(&value) {
        return Err(format!("{name} {value} is outside 0 to {max}"));
    }
    Ok(())
}

fn check_count(name: &str, value: i64) -> Result<(), String> {
    if i32::try_from(value).is_err() {
        return Err(format!("{name} {value} is too large"));
    }
    Ok(())
}

const MAX_PRICE: f64 = 999_999.99;

fn check_purchase(p: &Purchase) -> Result<(), String> {
    check_text("transaction_id", &p.transaction_id)?;
    check_text("product_id", &p.product_id)?;
    check_amount("price", p.price, MAX_PRICE)?;
    check_amount("supplement_price", p.supplement_price, MAX_PRICE)?;
    check_amount("member_discount", p.member_discount, 1.0)?;
    check_amount("total_purchase", p.total_purchase, 99_999_999.99)?;
    check_count("quantity", i64::from(p.quantity))
}

fn check_product(p: &Product) -> Result<(), String> {
    for (name, value) in [
        ("product_id", &p.product_id),
        ("category", &p.category),
        ("item", &p.item),
        ("size", &p.size),
    ] {
        check_text(name, value)?;
    }
    check_amount("cogs", p.cogs, MAX_PRICE)?;
    check_amount("price", p.price, MAX_PRICE)?;
    check_count("inventory_level", p.inventory_level)
}

fn decode_purchase(payload: &[u8]) -> Result<(Purchase, i64), String> {
    let purchase: Purchase =
        serde_json::from_slice(payload).map_err(|e| format!("not a purchase: {e}"))?;
    check_purchase(&purchase)?;
    let at = parse_timestamp(&purchase.transaction_time).ok_or_else(|| {
        format!(
            "transaction_time {:?} is not a time such as \"2022-09-25 01:58:11.714838\"",
            purchase.transaction_time
        )
    })?;
    Ok((purchase, at))
}

fn decode_restock(payload: &[u8]) -> Result<Inventory, String> {
    let restock: Inventory =
        serde_json::from_slice(payload).map_err(|e| format!("not a restocking event: {e}"))?;
    check_text("product_id", &restock.product_id)?;
    check_count("existing_level", restock.existing_level)?;
    check_count("stock_quantity", restock.stock_quantity)?;
    check_count("new_level", restock.new_level)?;
    parse_timestamp(&restock.event_time)
        .ok_or_else(|| format!("event_time {:?} is not a time", restock.event_time))?;
    Ok(restock)
}

/// One record of a sales topic, decoded or refused.
pub enum SalesRecord {
    Product(Product),
    Purchase(ReadPurchase),
    Restock(Inventory),
    Refused(DeadLetter),
}

impl SalesStreams {
    fn refused(
        stream: Option<&str>,
        payload: &[u8],
        position: String,
        reason: String,
    ) -> SalesRecord {
        SalesRecord::Refused(DeadLetter {
            stream: stream.map(str::to_string),
            source: "kafka".into(),
            position: Some(position),
            payload: payload.to_vec(),
            reason,
        })
    }

    /// Purchase partitions as window sources: the topic's place in the
    /// definition above the partition number.
    fn source_of(&self, topic: &str, partition: i32) -> SourceId {
        let topic_index = self
            .purchases_topics
            .iter()
            .position(|t| t == topic)
            .unwrap_or(0);
        ((topic_index as SourceId) << 16) | (partition as SourceId & 0xffff)
    }
}

impl Decode for SalesStreams {
    type Record = SalesRecord;

    fn decode(
        &self,
        topic: &str,
        partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> SalesRecord {
        let is = |topics: &[String]| topics.iter().any(|t| t == topic);
        if is(&self.purchases_topics) {
            match decode_purchase(payload) {
                Ok((purchase, transaction_ms)) => SalesRecord::Purchase(ReadPurchase {
                    purchase,
                    transaction_ms,
                    received_us: epoch_micros(),
                    source: self.source_of(topic, partition),
                    position: position(),
                    raw: payload.to_vec(),
                }),
                Err(reason) => Self::refused(Some(PURCHASES), payload, position(), reason),
            }
        } else if is(&self.products_topics) {
            let product = serde_json::from_slice::<ProductEvent>(payload)
                .map_err(|e| format!("not a product: {e}"))
                .and_then(|event| check_product(&event.product).map(|()| event.product));
            match product {
                Ok(product) => SalesRecord::Product(product),
                Err(reason) => Self::refused(Some(PRODUCTS), payload, position(), reason),
            }
        } else if is(&self.inventories_topics) {
            match decode_restock(payload) {
                Ok(restock) => SalesRecord::Restock(restock),
                Err(reason) => Self::refused(Some(INVENTORIES), payload, position(), reason),
            }
        } else {
            Self::refused(
                None,
                payload,
                position(),
                format!("topic {topic:?} is not a sales topic"),
            )
        }
    }
}

impl Sink for SalesSink {
    type Staged = StagedSales;
    type Decoder = SalesStreams;

    fn decoder(&self) -> Arc<SalesStreams> {
        self.streams.clone()
    }

    fn hold(&mut self, record: SalesRecord) {
        match record {
            SalesRecord::Product(product) => self.products.push(product),
            SalesRecord::Purchase(purchase) => self.purchases.push(purchase),
            SalesRecord::Restock(restock) => self.restocks.push(restock),
            SalesRecord::Refused(dead_letter) => self.dead_letters.push(dead_letter),
        }
    }

    fn len(&self) -> usize {
        self.products.len() + self.purchases.len() + self.restocks.len() + self.dead_letters.len()
    }

    fn assigned(&mut self, partitions: &[(String, i32)]) {
        self.assigned = partitions
            .iter()
            .filter(|(topic, _)| self.streams.purchases_topics.contains(topic))
            .map(|(topic, partition)| {
                (
                    self.streams.source_of(topic, *partition),
                    format!("{topic}/{partition}"),
                )
            })
            .collect();
    }

    fn flush_due(&self) -> bool {
        self.pending_check_due()
    }

    async fn stage(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<StagedSales, sqlx::Error> {
        sales_pipeline::upsert_products(tx, &self.products).await?;
        store::record_activity(tx, PRODUCTS, self.products.len(), None).await?;
        let mut dead_letters = self.dead_letters.clone();
        let mut claimed = Vec::new();
        let check_waiting = self.pending_check_due() || !self.products.is_empty();
        if check_waiting {
            let (taken, refused) = claim_waiting(tx).await?;
            claimed = taken;
            dead_letters.extend(refused);
            dead_letters.extend(expire_waiting(tx, self.streams.join_wait).await?);
        }
        let candidates: Vec<&ReadPurchase> = self.purchases.iter().chain(&claimed).collect();
        let known = products_of(tx, &candidates).await?;
        let mut batch = SalesBatch {
            restocks: self.restocks.clone(),
            ..SalesBatch::default()
        };
        let mut windows = self.windows.clone();
        let now_ms = epoch_micros() / 1000;
        for (source, _) in &self.assigned {
            windows.register_source(*source, now_ms);
        }
        // Every partition's clock, as kept by whichever instance read it
        // last: the watermark trails the slowest that is not idle, here as
        // anywhere, and carries on after a restart or a rebalance.
        let window = crate::sales_windows::NAME;
        let kept: Vec<(SourceId, SourceProgress)> = store::load_progress(tx, PURCHASES, window)
            .await?
            .into_iter()
            .filter_map(|(key, progress)| Some((self.source_named(&key)?, progress)))
            .collect();
        windows.restore_sources(&kept, now_ms);
        // Windows any instance closed stay closed. The clocks alone can fall
        // behind: a purchase that waited for its product moves none of them.
        if let Some(closed) = store::stored_watermark(&mut **tx, PURCHASES, window).await? {
            windows.advance_watermark(closed);
        }
        let mut unmatched = Vec::new();
        for read in candidates {
            match known.get(&read.purchase.product_id) {
                Some(product) => {
                    let stored = StoredPurchase {
                        enriched: enrich(&read.purchase, product),
                        transaction_ms: read.transaction_ms,
                        received_us: read.received_us,
                    };
                    if let Some(late) = windows.push_from(read.source, now_ms, &stored) {
                        batch.late.push(late);
                    }
                    batch.purchases.push(stored);
                }
                None => unmatched.push(read),
            }
        }
        sales_pipeline::close_windows(&mut batch, &mut windows);
        let progress: Vec<(String, SourceProgress)> = self
            .assigned
            .iter()
            .filter_map(|(source, key)| Some((key.clone(), windows.source_progress(*source)?)))
            .collect();
        store::save_progress(tx, PURCHASES, window, &progress).await?;
        if let Some(watermark) = windows.watermark() {
            store::save_watermark(tx, PURCHASES, window, watermark).await?;
        }
        park(tx, &unmatched).await?;
        let totals = sales_pipeline::stage_sales(tx, &batch).await?;
        store::insert_dead_letters(tx, &dead_letters).await?;
        // Asked only when the waiting purchases were looked at: otherwise the
        // periodic look finds what other instances parked.
        let still_waiting = !unmatched.is_empty()
            || (check_waiting
                && sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pending_purchases)")
                    .fetch_one(&mut **tx)
                    .await?);
        Ok(StagedSales {
            windows,
            batch,
            totals,
            still_waiting,
            checked_waiting: check_waiting,
        })
    }

    async fn committed(&mut self, staged: StagedSales) {
        self.windows = staged.windows;
        self.maybe_waiting = staged.still_waiting;
        if staged.checked_waiting {
            self.checked_waiting_at = std::time::Instant::now();
        }
        self.clear();
        if let Some(outputs) = &self.outputs {
            outputs
                .publish(
                    &mut self.unpublished,
                    &staged.batch.purchases,
                    staged.totals,
                )
                .await;
        }
    }

    fn discard(&mut self) {
        self.clear();
        self.maybe_waiting = true;
    }

    fn tally(&self) -> (usize, usize) {
        (
            self.products.len() + self.purchases.len() + self.restocks.len(),
            self.dead_letters.len(),
        )
    }
}

/// The current products of the purchases' product ids.
async fn products_of(
    tx: &mut Transaction<'static, Postgres>,
    purchases: &[&ReadPurchase],
) -> Result<HashMap<String, Product>, sqlx::Error> {
    let mut ids: Vec<&str> = purchases
        .iter()
        .map(|p| p.purchase.product_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    type Row = (
        String,
        String,
        String,
        String,
        f64,
        f64,
        i32,
        bool,
        bool,
        bool,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT product_id, category, item, size, cogs::float8, price::float8, inventory_level,
                contains_fruit, contains_veggies, contains_nuts, contains_caffeine
           FROM products WHERE product_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let product = Product {
                product_id: r.0.clone(),
                category: r.1,
                item: r.2,
                size: r.3,
                cogs: r.4,
                price: r.5,
                inventory_level: i64::from(r.6),
                contains_fruit: r.7,
                contains_veggies: r.8,
                contains_nuts: r.9,
                contains_caffeine: r.10,
                propensity_to_buy: 0,
            };
            (r.0, product)
        })
        .collect())
}

/// Keeps purchases without a known product until it arrives.
async fn park(
    tx: &mut Transaction<'static, Postgres>,
    unmatched: &[&ReadPurchase],
) -> Result<(), sqlx::Error> {
    if unmatched.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO pending_purchases (product_id, payload, position, received_at)
         SELECT pid, payload, position, to_timestamp(rx_us / 1000000.0)
           FROM unnest($1::text[], $2::bytea[], $3::text[], $4::int8[]) AS r(pid, payload, position, rx_us)",
    )
    .bind(unmatched.iter().map(|p| p.purchase.product_id.as_str()).collect::<Vec<_>>())
    .bind(unmatched.iter().map(|p| p.raw.as_slice()).collect::<Vec<_>>())
    .bind(unmatched.iter().map(|p| p.position.as_str()).collect::<Vec<_>>())
    .bind(unmatched.iter().map(|p| p.received_us).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the waiting purchases whose product has arrived.
async fn claim_waiting(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<(Vec<ReadPurchase>, Vec<DeadLetter>), sqlx::Error> {
    let rows: Vec<(Vec<u8>, String, i64)> = sqlx::query_as(
        "DELETE FROM pending_purchases p USING products pr
          WHERE p.product_id = pr.product_id
         RETURNING p.payload, coalesce(p.position, ''),
                   (extract(epoch FROM p.received_at) * 1000000)::int8",
    )
    .fetch_all(&mut **tx)
    .await?;
    let (mut claimed, mut refused) = (Vec::new(), Vec::new());
    for (raw, position, received_us) in rows {
        // Parked purchases decoded once already; one that no longer does is
        // kept, not lost.
        match decode_purchase(&raw) {
            Ok((purchase, transaction_ms)) => claimed.push(ReadPurchase {
                purchase,
                transaction_ms,
                received_us,
                source: PARKED,
                position,
                raw,
            }),
            Err(reason) => refused.push(DeadLetter {
                stream: Some(PURCHASES.into()),
                source: "kafka".into(),
                position: Some(position),
                payload: raw,
                reason,
            }),
        }
    }
    Ok((claimed, refused))
}

/// Turns purchases that waited too long for their product into dead letters.
async fn expire_waiting(
    tx: &mut Transaction<'static, Postgres>,
    wait: Duration,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<(Vec<u8>, Option<String>, String)> = sqlx::query_as(
        "DELETE FROM pending_purchases
          WHERE waiting_since < now() - make_interval(secs => $1)
         RETURNING payload, position, product_id",
    )
    .bind(wait.as_secs_f64())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(payload, position, product_id)| DeadLetter {
            stream: Some(PURCHASES.into()),
            source: "kafka".into(),
            position,
            payload,
            reason: format!(
                "product {product_id:?} unknown after waiting {}",
                humantime::format_duration(wait)
            ),
        })
        .collect())
}

/// Runs the sales simulator into Kafka: the menu once at start, then
/// purchases and restocks as they happen, sent in batches every flush
/// interval and kept for retry while the broker is away.
pub async fn run_simulator(
    config: KafkaConfig,
    streams: SalesStreams,
    sales: SalesConfig,
    rate: Option<f64>,
    seed: u64,
    flush: FlushConfig,
    shutdown: CancellationToken,
) {
    let publisher = match JsonPublisher::new(&config) {
        Ok(publisher) => publisher,
        Err(error) => {
            tracing::error!(%error, "cannot create the sales producer");
            return;
        }
    };
    let (Some(products_topic), Some(purchases_topic)) = (
        streams.products_topics.first(),
        streams.purchases_topics.first(),
    ) else {
        tracing::error!("the sales streams name no Kafka topics to produce to");
        return;
    };
    let inventories_topic = streams.inventories_topics.first();
    let mut generator = SalesGenerator::new(sales, seed);
    let mut pending: PendingMessages = generator
        .product_events(epoch_micros() / 1000)
        .into_iter()
        .map(|event| {
            let json = serde_json::to_vec(&event).unwrap_or_default();
            (products_topic.clone(), event.product.product_id, json)
        })
        .collect();
    tracing::info!(?rate, topic = %purchases_topic, "sales simulator producing to Kafka");
    let mut ticker = tokio::time::interval(flush.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_at) => {
                let event = generator.next_event(epoch_micros() / 1000);
                let json = serde_json::to_vec(&event.purchase).unwrap_or_default();
                pending.push((purchases_topic.clone(), event.purchase.product_id.clone(), json));
                if let Some(topic) = inventories_topic {
                    for restock in &event.restocks {
                        let json = serde_json::to_vec(restock).unwrap_or_default();
                        pending.push((topic.clone(), restock.product_id.clone(), json));
                    }
                }
                let delay_ms = match rate {
                    Some(rate) => (1000.0 / rate) as u64,
                    None => generator.next_delay_ms(),
                };
                next_at += Duration::from_millis(delay_ms);
            }
            _ = ticker.tick() => publisher.publish_pending(&mut pending, "sales events").await,
            _ = shutdown.cancelled() => break,
        }
    }
    publisher
        .publish_pending(&mut pending, "sales events")
        .await;
    tracing::info!("sales simulator stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_definitions_describe_the_seed_sales_pipeline() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../streams");
        let definitions = definitions::load_dir(std::path::Path::new(shipped)).expect("load");
        let sales = SalesStreams::from_definitions(&definitions)
            .expect("valid")
            .expect("sales streams are shipped");
        assert_eq!(sales.products_topics, ["demo.products"]);
        assert_eq!(sales.purchases_topics, ["demo.purchases"]);
        assert_eq!(sales.inventories_topics, ["demo.inventories"]);
        assert_eq!(sales.join_wait, Duration::from_secs(30));
        assert_eq!(
            sales.windows,
            WindowSpec::new(600_000, 300_000, 600_000, 300_000).expect("spec")
        );
        assert_eq!(
            sales.enriched_topic.as_deref(),
            Some("demo.purchases.enriched")
        );
        assert_eq!(
            sales.running_totals_topic.as_deref(),
            Some("demo.running.totals")
        );
        assert_eq!(sales.subscription("pulseboard").group, "pulseboard.sales");
    }

    #[test]
    fn bad_records_become_dead_letters_with_their_reason() {
        let sales = SalesStreams::from_definitions(
            &definitions::load_dir(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../streams"
            )))
            .expect("load"),
        )
        .expect("valid")
        .expect("shipped");
        let mut sink = SalesSink::new(sales, None);
        sink.admit("demo.purchases", 0, b"{not json", &|| {
            "demo.purchases/0@1".into()
        });
        sink.admit(
            "demo.purchases",
            0,
            br#"{"transaction_time":"yesterday","transaction_id":"1","product_id":"CS01","price":4.99,
                "quantity":1,"is_member":false,"member_discount":0.0,"add_supplements":false,
                "supplement_price":0.0,"total_purchase":4.99}"#,
            &|| "demo.purchases/0@2".into(),
        );
        sink.admit("demo.products", 0, br#"{"product_id":"CS01"}"#, &|| {
            "demo.products/0@0".into()
        });
        sink.admit("elsewhere", 0, b"{}", &|| "elsewhere/0@0".into());
        // Values Postgres could not store are refused here, not retried forever there.
        let purchase = |field: &str, value: &str| {
            let mut json = serde_json::json!({"transaction_time": "2023-11-14 22:13:20.000000",
                "transaction_id": "1", "product_id": "CS01", "price": 4.99, "quantity": 1,
                "is_member": false, "member_discount": 0.0, "add_supplements": false,
                "supplement_price": 0.0, "total_purchase": 4.99});
            json[field] = serde_json::from_str(value).expect("json value");
            serde_json::to_vec(&json).expect("json")
        };
        for (field, value, reason) in [
            ("product_id", r#""CS\u0000""#, "NUL character"),
            ("price", "12345678.0", "price 12345678 is outside"),
            ("quantity", "4000000000", "quantity 4000000000 is too large"),
            ("member_discount", "1.5", "member_discount 1.5 is outside"),
        ] {
            sink.admit("demo.purchases", 0, &purchase(field, value), &|| "p".into());
            let last = sink.dead_letters.last().expect("refused");
            assert!(last.reason.contains(reason), "{field}: {}", last.reason);
        }
        let reasons: Vec<&str> = sink
            .dead_letters
            .iter()
            .map(|d| d.reason.as_str())
            .collect();
        assert_eq!(reasons.len(), 8, "{reasons:?}");
        assert!(reasons[0].starts_with("not a purchase"), "{}", reasons[0]);
        assert!(reasons[1].contains("\"yesterday\""), "{}", reasons[1]);
        assert!(reasons[2].starts_with("not a product"), "{}", reasons[2]);
        assert!(reasons[3].contains("not a sales topic"), "{}", reasons[3]);
        assert_eq!(sink.tally(), (0, 8));
    }
}
