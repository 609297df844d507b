//! The seed's smoothie-shop sales stream, as pure logic: the product
//! catalogue, purchases and restocking events in the shapes the public
//! "streaming-sales-generator" publishes to `demo.products`,
//! `demo.purchases` and `demo.inventories`, the enriched purchase the Flink
//! join writes to `demo.purchases.enriched`, and the per-product running
//! totals the Kafka Streams / Flink jobs write to `demo.running.totals`.
//!
//! Nothing here performs I/O or reads a clock: time is passed in as epoch
//! milliseconds so that a seeded [`SalesGenerator`] yields the same stream on
//! every run, which is what the pipeline tests rely on.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------

/// One smoothie on the menu, with the fields of a `demo.products` message
/// (minus `event_time`, which belongs to the message, see [`ProductEvent`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub category: String,
    /// The product's name; the generator calls it `item`.
    pub item: String,
    pub size: String,
    /// Cost of goods sold, dollars.
    pub cogs: f64,
    /// List price, dollars.
    pub price: f64,
    /// Stock on hand when the shop opens.
    pub inventory_level: i64,
    pub contains_fruit: bool,
    pub contains_veggies: bool,
    pub contains_nuts: bool,
    pub contains_caffeine: bool,
    /// Upper end of this product's slice of the cumulative 0..=200
    /// propensity-to-buy range. The slice's width is the product's weight:
    /// see [`weights`]. Absent from messages that do not carry it.
    #[serde(default)]
    pub propensity_to_buy: u32,
}

impl Product {
    /// The `demo.products` message for this product, stamped at `epoch_ms`.
    pub fn event(&self, epoch_ms: i64) -> ProductEvent {
        ProductEvent {
            event_time: format_timestamp(epoch_ms),
            product: self.clone(),
        }
    }
}

/// A `demo.products` message: `event_time` followed by the product's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductEvent {
    pub event_time: String,
    #[serde(flatten)]
    pub product: Product,
}

/// Per-category facts shared by every product of the category.
struct Category {
    prefix: &'static str,
    name: &'static str,
    cogs: f64,
    price: f64,
    inventory: i64,
}

const CATEGORIES: [Category; 4] = [
    Category {
        prefix: "CS",
        name: "Classic Smoothies",
        cogs: 1.50,
        price: 4.99,
        inventory: 75,
    },
    Category {
        prefix: "SF",
        name: "Superfoods Smoothies",
        cogs: 2.10,
        price: 5.99,
        inventory: 50,
    },
    Category {
        prefix: "SC",
        name: "Supercharged Smoothies",
        cogs: 2.70,
        price: 5.99,
        inventory: 35,
    },
    Category {
        prefix: "IS",
        name: "Indulgent Smoothies",
        cogs: 2.20,
        price: 5.49,
        inventory: 60,
    },
];

/// `(id, name, [fruit, veggies, nuts, caffeine], weight)`, in the
/// generator's order. The weights sum to 200; the cumulative sums are the
/// generator's `propensity_to_buy` values.
const MENU: [(&str, &str, [bool; 4], u32); 27] = [
    ("CS01", "Sunrise Sunset", [true, false, false, false], 3),
    ("CS02", "Kiwi Quencher", [true, false, false, false], 3),
    ("CS03", "Paradise Point", [true, false, false, false], 9),
    ("CS04", "Sunny Day", [true, false, false, false], 3),
    ("CS05", "Mango Magic", [true, false, false, false], 9),
    ("CS06", "Blimey Limey", [true, false, false, false], 9),
    ("CS07", "Blueberry Bliss", [true, false, false, false], 3),
    (
        "CS08",
        "Rockin\u{2019} Raspberry",
        [true, false, false, false],
        15,
    ),
    (
        "CS09",
        "Strawberry Limeade",
        [true, false, false, false],
        12,
    ),
    (
        "CS10",
        "Peaches \u{2018}n Silk",
        [true, false, false, false],
        9,
    ),
    ("CS11", "Jetty Punch", [true, false, false, false], 3),
    ("SF01", "Island Green", [true, true, false, false], 4),
    ("SF02", "Totally Green", [true, true, false, false], 2),
    ("SF03", "Acai Berry Boost", [true, false, false, false], 8),
    ("SF04", "Pomegranate Plunge", [true, false, false, false], 2),
    ("SF05", "Caribbean C-Burst", [true, false, false, false], 10),
    ("SF06", "Get Up and Goji", [true, true, false, false], 8),
    ("SF07", "Detox Island Green", [true, true, false, false], 10),
    ("SC01", "Triple Berry Oat", [true, false, false, false], 15),
    // The source data marks Peanut Paradise as nut-free; kept as published.
    ("SC02", "Peanut Paradise", [false, false, false, false], 3),
    ("SC03", "Health Nut", [false, false, true, false], 3),
    ("SC04", "Lean Machine", [false, true, true, true], 9),
    ("SC05", "Muscle Blaster", [false, false, true, true], 12),
    ("IS01", "Bahama Mama", [true, false, false, false], 4),
    ("IS02", "Peanut Butter Cup", [false, false, true, false], 12),
    ("IS03", "Beach Bum", [true, true, false, false], 12),
    ("IS04", "Mocha Madness", [false, false, true, true], 8),
];

/// The generator's menu: 27 smoothies (all 24 oz.) in four categories.
pub fn catalogue() -> Vec<Product> {
    let mut cumulative = 0;
    MENU.iter()
        .map(|&(id, name, [fruit, veggies, nuts, caffeine], weight)| {
            cumulative += weight;
            // Every id starts with one of the category prefixes; the
            // fallback only keeps this free of panics.
            let category = CATEGORIES
                .iter()
                .find(|c| id.starts_with(c.prefix))
                .unwrap_or(&CATEGORIES[0]);
            Product {
                product_id: id.to_string(),
                category: category.name.to_string(),
                item: name.to_string(),
                size: "24 oz.".to_string(),
                cogs: category.cogs,
                price: category.price,
                inventory_level: category.inventory,
                contains_fruit: fruit,
                contains_veggies: veggies,
                contains_nuts: nuts,
                contains_caffeine: caffeine,
                propensity_to_buy: cumulative,
            }
        })
        .collect()
}

/// Each product's purchase weight: the width of its slice of the cumulative
/// propensity range, for products sorted by `propensity_to_buy`.
pub fn weights(products: &[Product]) -> Vec<u32> {
    let mut previous = 0;
    products
        .iter()
        .map(|p| {
            let weight = p.propensity_to_buy.saturating_sub(previous);
            previous = previous.max(p.propensity_to_buy);
            weight
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// One line item of a sale, as published to `demo.purchases`. A transaction
/// of several line items publishes several messages sharing
/// `transaction_time`, `transaction_id` and membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    /// UTC, `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub transaction_time: String,
    /// A non-negative 63-bit integer as decimal text.
    pub transaction_id: String,
    pub product_id: String,
    /// The product's list price.
    pub price: f64,
    pub quantity: u32,
    pub is_member: bool,
    /// Fraction off for club members (0.1), else 0.
    pub member_discount: f64,
    pub add_supplements: bool,
    /// Per-drink supplement charge (1.99), else 0.
    pub supplement_price: f64,
    /// See [`total_purchase`].
    pub total_purchase: f64,
}

/// The generator's total for a line item: the discount applies to the drink
/// and its supplements alike, rounded to cents once at the end:
/// `round(quantity * (price + supplement_price) * (1 - member_discount), 2)`.
/// The operations run in the generator's order so the doubles agree exactly.
pub fn total_purchase(
    price: f64,
    quantity: u32,
    member_discount: f64,
    supplement_price: f64,
) -> f64 {
    let gross = f64::from(quantity) * (price + supplement_price);
    round2(gross * (1.0 - member_discount))
}

/// A restocking event, as published to `demo.inventories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub event_time: String,
    pub product_id: String,
    /// Stock before restocking (at or below the minimum).
    pub existing_level: i64,
    /// Units added.
    pub stock_quantity: i64,
    pub new_level: i64,
}

/// A purchase joined with its product, as the seed's Flink job writes to
/// `demo.purchases.enriched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedPurchase {
    pub transaction_time: String,
    pub transaction_id: String,
    pub product_id: String,
    pub product_category: String,
    pub product_name: String,
    pub product_size: String,
    pub product_cogs: f64,
    pub product_price: f64,
    pub contains_fruit: bool,
    pub contains_veggies: bool,
    pub contains_nuts: bool,
    pub contains_caffeine: bool,
    /// The price on the purchase, which may differ from the product's
    /// current `product_price` if the catalogue changed.
    pub purchase_price: f64,
    pub purchase_quantity: u32,
    pub is_member: bool,
    pub member_discount: f64,
    pub add_supplements: bool,
    pub supplement_price: f64,
    pub total_purchase: f64,
}

/// Joins a purchase with its product (the caller matches them on `product_id`).
pub fn enrich(purchase: &Purchase, product: &Product) -> EnrichedPurchase {
    EnrichedPurchase {
        transaction_time: purchase.transaction_time.clone(),
        transaction_id: purchase.transaction_id.clone(),
        product_id: purchase.product_id.clone(),
        product_category: product.category.clone(),
        product_name: product.item.clone(),
        product_size: product.size.clone(),
        product_cogs: product.cogs,
        product_price: product.price,
        contains_fruit: product.contains_fruit,
        contains_veggies: product.contains_veggies,
        contains_nuts: product.contains_nuts,
        contains_caffeine: product.contains_caffeine,
        purchase_price: purchase.price,
        purchase_quantity: purchase.quantity,
        is_member: purchase.is_member,
        member_discount: purchase.member_discount,
        add_supplements: purchase.add_supplements,
        supplement_price: purchase.supplement_price,
        total_purchase: purchase.total_purchase,
    }
}

// ---------------------------------------------------------------------------
// Running totals
// ---------------------------------------------------------------------------

/// One product's running totals, as published to `demo.running.totals`
/// after every purchase of that product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningTotal {
    /// `transaction_time` of the last purchase added (the seed's reduce keeps
    /// the newer record's time, which is arrival order, not the maximum).
    pub event_time: String,
    pub product_id: String,
    /// Purchase messages (line items) counted, not distinct transaction ids.
    pub transactions: u64,
    /// Drinks sold.
    pub quantities: u64,
    /// Sum of `total_purchase`, dollars.
    pub sales: f64,
}

impl RunningTotal {
    pub fn new(product_id: &str) -> Self {
        RunningTotal {
            event_time: String::new(),
            product_id: product_id.to_string(),
            transactions: 0,
            quantities: 0,
            sales: 0.0,
        }
    }

    /// Folds one purchase of this product in.
    pub fn add(&mut self, purchase: &Purchase) {
        self.event_time.clone_from(&purchase.transaction_time);
        self.transactions += 1;
        self.quantities += u64::from(purchase.quantity);
        // The seed sums BigDecimals; rounding each sum to cents keeps the
        // double at the nearest value to that exact decimal sum.
        self.sales = round2(self.sales + purchase.total_purchase);
    }
}

/// Running totals keyed by product, like the seed's `keyBy(productId)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningTotals {
    totals: BTreeMap<String, RunningTotal>,
}

impl RunningTotals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a purchase to its product's total and returns the updated total,
    /// which is the message the seed's jobs emit for this input.
    pub fn add(&mut self, purchase: &Purchase) -> &RunningTotal {
        let total = self
            .totals
            .entry(purchase.product_id.clone())
            .or_insert_with(|| RunningTotal::new(&purchase.product_id));
        total.add(purchase);
        total
    }

    pub fn get(&self, product_id: &str) -> Option<&RunningTotal> {
        self.totals.get(product_id)
    }

    /// All totals, ordered by product id.
    pub fn iter(&self) -> impl Iterator<Item = &RunningTotal> {
        self.totals.values()
    }

    pub fn len(&self) -> usize {
        self.totals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

/// The generator's knobs. [`Default`] reproduces the public generator's
/// `configuration.ini`, with no disorder.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesConfig {
    /// Chance a transaction is a club member's (0.3).
    pub member_probability: f64,
    /// Fraction off for members (0.10).
    pub member_discount: f64,
    /// Chance of supplements on Superfoods (SF) and Supercharged (SC)
    /// smoothies (0.5).
    pub supplement_probability_sf_sc: f64,
    /// Chance of supplements on other smoothies (0.2).
    pub supplement_probability_other: f64,
    /// Per-drink supplement charge (1.99).
    pub supplement_price: f64,
    /// Relative odds of a line item's quantity being 1, 2 or 3 (24:5:1).
    pub quantity_weights: [u32; 3],
    /// Relative odds of a transaction having 1, 2 or 3 line items (13:5:2).
    pub line_item_weights: [u32; 3],
    /// Restock once stock is at or below this level (10).
    pub min_inventory: i64,
    /// Units added per restock (15).
    pub restock_amount: i64,
    /// Gap between transactions is uniform in `min_gap_ms..=max_gap_ms`
    /// (2 s to 5 s).
    pub min_gap_ms: u64,
    pub max_gap_ms: u64,
    pub disorder: Disorder,
}

impl Default for SalesConfig {
    fn default() -> Self {
        SalesConfig {
            member_probability: 0.3,
            member_discount: 0.10,
            supplement_probability_sf_sc: 0.5,
            supplement_probability_other: 0.2,
            supplement_price: 1.99,
            quantity_weights: [24, 5, 1],
            line_item_weights: [13, 5, 2],
            min_inventory: 10,
            restock_amount: 15,
            min_gap_ms: 2_000,
            max_gap_ms: 5_000,
            disorder: Disorder::default(),
        }
    }
}

/// Imperfections to inject so the pipeline's handling of them can be tested.
/// All default to off. Fractions are probabilities in `0.0..=1.0`.
///
/// Time shifts are decided once per transaction, so every line item of a
/// shifted transaction carries the same earlier `transaction_time`; arrival
/// (the `now` passed in) is unchanged, which is what makes them disordered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disorder {
    /// Share of transactions stamped `1..=max_out_of_order_ms` before their
    /// arrival: slightly out of order, meant to stay within a pipeline's
    /// allowed lateness.
    pub out_of_order_fraction: f64,
    pub max_out_of_order_ms: u64,
    /// Share of transactions stamped `late_min_ms..=late_max_ms` before
    /// their arrival: meant to exceed the allowed lateness, so their windows
    /// have already closed. Decided before, and exclusive of, out-of-order.
    pub late_fraction: f64,
    pub late_min_ms: u64,
    pub late_max_ms: u64,
    /// Share of purchase messages delivered twice: the next call returns an
    /// exact copy (same id, time and values), as an at-least-once producer
    /// retry would. The copy does not touch inventory.
    pub duplicate_fraction: f64,
    /// Chance, at each gap between transactions, that a burst starts: the
    /// next `burst_len` gaps are `burst_gap_ms` instead of the usual gap.
    pub burst_probability: f64,
    pub burst_len: u32,
    pub burst_gap_ms: u64,
}

/// How an emitted purchase relates to its arrival time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    OnTime,
    OutOfOrder,
    Late,
    /// A redelivered copy of the previous message.
    Duplicate,
}

/// One step of the generator: a purchase message and any restock it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleEvent {
    /// When the message is published (the `now` it was generated at).
    pub arrival_ms: i64,
    pub kind: EventKind,
    pub purchase: Purchase,
    pub restocks: Vec<Inventory>,
}

/// Shared header of the line items of one transaction still to be emitted.
#[derive(Debug, Clone)]
struct OpenTransaction {
    time: String,
    id: String,
    is_member: bool,
    kind: EventKind,
    remaining: usize,
    /// Products already in this transaction, to avoid repeating one.
    chosen: Vec<usize>,
}

/// Re-draws allowed to avoid a repeated product within a transaction; like
/// the generator this makes repeats rare rather than impossible.
const DISTINCT_PRODUCT_TRIES: usize = 8;

/// Seeded, deterministic stand-in for the sales generator.
#[derive(Debug, Clone)]
pub struct SalesGenerator {
    config: SalesConfig,
    rng: StdRng,
    products: Vec<Product>,
    weights: Vec<u32>,
    /// Current stock, by index into `products`.
    levels: Vec<i64>,
    open: Option<OpenTransaction>,
    redelivery: Option<Purchase>,
    burst_left: u32,
}

impl SalesGenerator {
    /// A generator over [`catalogue`].
    pub fn new(config: SalesConfig, seed: u64) -> Self {
        Self::build(catalogue(), config, seed)
    }

    /// A generator over `products`, chosen by [`weights`]; `None` if empty.
    pub fn with_products(products: Vec<Product>, config: SalesConfig, seed: u64) -> Option<Self> {
        if products.is_empty() {
            return None;
        }
        Some(Self::build(products, config, seed))
    }

    fn build(mut products: Vec<Product>, config: SalesConfig, seed: u64) -> Self {
        products.sort_by_key(|p| p.propensity_to_buy);
        let weights = weights(&products);
        let levels = products.iter().map(|p| p.inventory_level).collect();
        SalesGenerator {
            config,
            rng: StdRng::seed_from_u64(seed),
            products,
            weights,
            levels,
            open: None,
            redelivery: None,
            burst_left: 0,
        }
    }

    pub fn config(&self) -> &SalesConfig {
        &self.config
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    pub fn product(&self, product_id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.product_id == product_id)
    }

    /// Current stock of a product.
    pub fn inventory_level(&self, product_id: &str) -> Option<i64> {
        let index = self
            .products
            .iter()
            .position(|p| p.product_id == product_id)?;
        self.levels.get(index).copied()
    }

    /// The `demo.products` messages the generator publishes at start-up.
    pub fn product_events(&self, now_ms: i64) -> Vec<ProductEvent> {
        self.products.iter().map(|p| p.event(now_ms)).collect()
    }

    /// The next purchase message at `now_ms` and any restocking it caused.
    pub fn next_purchase(&mut self, now_ms: i64) -> (Purchase, Vec<Inventory>) {
        let event = self.next_event(now_ms);
        (event.purchase, event.restocks)
    }

    /// Like [`Self::next_purchase`], also saying how the event was disordered.
    pub fn next_event(&mut self, now_ms: i64) -> SaleEvent {
        if let Some(purchase) = self.redelivery.take() {
            return SaleEvent {
                arrival_ms: now_ms,
                kind: EventKind::Duplicate,
                purchase,
                restocks: Vec::new(),
            };
        }

        let mut open = match self.open.take() {
            Some(open) if open.remaining > 0 => open,
            _ => self.open_transaction(now_ms),
        };
        let index = self.pick_product(&open.chosen);
        open.chosen.push(index);
        open.remaining = open.remaining.saturating_sub(1);

        let purchase = self.line_item(&open, index);
        let kind = open.kind;
        if open.remaining > 0 {
            self.open = Some(open);
        }

        let restocks = self.take_stock(index, purchase.quantity, now_ms);
        if self.chance(self.config.disorder.duplicate_fraction) {
            self.redelivery = Some(purchase.clone());
        }
        SaleEvent {
            arrival_ms: now_ms,
            kind,
            purchase,
            restocks,
        }
    }

    /// Milliseconds to wait before the next call: zero while a transaction's
    /// line items or a redelivery are pending (they are published together),
    /// otherwise the burst gap or the usual random gap.
    pub fn next_delay_ms(&mut self) -> u64 {
        if self.redelivery.is_some() || self.open.is_some() {
            return 0;
        }
        let disorder = &self.config.disorder;
        if self.burst_left > 0 {
            self.burst_left -= 1;
            return disorder.burst_gap_ms;
        }
        let (burst_probability, burst_len, burst_gap_ms) = (
            disorder.burst_probability,
            disorder.burst_len,
            disorder.burst_gap_ms,
        );
        if burst_len > 0 && self.chance(burst_probability) {
            self.burst_left = burst_len - 1;
            return burst_gap_ms;
        }
        let (min, max) = (self.config.min_gap_ms, self.config.max_gap_ms);
        self.rng.random_range(min.min(max)..=min.max(max))
    }

    /// `count` events starting at `start_ms`, advancing the clock by
    /// [`Self::next_delay_ms`] between them.
    pub fn run(&mut self, start_ms: i64, count: usize) -> Vec<SaleEvent> {
        let mut now = start_ms;
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(self.next_event(now));
            let delay = i64::try_from(self.next_delay_ms()).unwrap_or(i64::MAX);
            now = now.saturating_add(delay);
        }
        events
    }

    fn open_transaction(&mut self, now_ms: i64) -> OpenTransaction {
        let (kind, shift_ms) = self.time_shift();
        let time = format_timestamp(now_ms.saturating_sub(shift_ms));
        // The generator hashes the timestamp into a non-negative 64-bit
        // signed integer; a random one has the same shape.
        let id = (self.rng.random::<u64>() >> 1).to_string();
        let is_member = self.chance(self.config.member_probability);
        let remaining = weighted_index(&mut self.rng, &self.config.line_item_weights) + 1;
        OpenTransaction {
            time,
            id,
            is_member,
            kind,
            remaining,
            chosen: Vec::with_capacity(remaining),
        }
    }

    /// Decides whether a new transaction is late, out of order or on time.
    fn time_shift(&mut self) -> (EventKind, i64) {
        let d = self.config.disorder.clone();
        let roll: f64 = self.rng.random();
        if roll < d.late_fraction {
            let lo = d.late_min_ms.min(d.late_max_ms);
            let hi = d.late_min_ms.max(d.late_max_ms);
            let shift = self.rng.random_range(lo..=hi);
            (EventKind::Late, i64::try_from(shift).unwrap_or(i64::MAX))
        } else if roll < d.late_fraction + d.out_of_order_fraction && d.max_out_of_order_ms > 0 {
            let shift = self.rng.random_range(1..=d.max_out_of_order_ms);
            (
                EventKind::OutOfOrder,
                i64::try_from(shift).unwrap_or(i64::MAX),
            )
        } else {
            (EventKind::OnTime, 0)
        }
    }

    fn pick_product(&mut self, avoid: &[usize]) -> usize {
        let mut index = weighted_index(&mut self.rng, &self.weights);
        for _ in 0..DISTINCT_PRODUCT_TRIES {
            if !avoid.contains(&index) {
                break;
            }
            index = weighted_index(&mut self.rng, &self.weights);
        }
        index.min(self.products.len() - 1)
    }

    fn line_item(&mut self, open: &OpenTransaction, index: usize) -> Purchase {
        let product = &self.products[index];
        let (product_id, price) = (product.product_id.clone(), product.price);
        let supplement_probability = if product_id.starts_with("SF") || product_id.starts_with("SC")
        {
            self.config.supplement_probability_sf_sc
        } else {
            self.config.supplement_probability_other
        };
        let quantity = weighted_index(&mut self.rng, &self.config.quantity_weights) as u32 + 1;
        let add_supplements = self.chance(supplement_probability);
        let member_discount = if open.is_member {
            self.config.member_discount
        } else {
            0.0
        };
        let supplement_price = if add_supplements {
            self.config.supplement_price
        } else {
            0.0
        };
        Purchase {
            transaction_time: open.time.clone(),
            transaction_id: open.id.clone(),
            product_id,
            price,
            quantity,
            is_member: open.is_member,
            member_discount,
            add_supplements,
            supplement_price,
            total_purchase: total_purchase(price, quantity, member_discount, supplement_price),
        }
    }

    /// Sells `quantity` of a product and restocks it once it is at or below
    /// the minimum, as the generator does after each line item.
    fn take_stock(&mut self, index: usize, quantity: u32, now_ms: i64) -> Vec<Inventory> {
        let Some(level) = self.levels.get_mut(index) else {
            return Vec::new();
        };
        *level -= i64::from(quantity);
        if *level > self.config.min_inventory {
            return Vec::new();
        }
        let existing_level = *level;
        *level += self.config.restock_amount;
        vec![Inventory {
            event_time: format_timestamp(now_ms),
            product_id: self.products[index].product_id.clone(),
            existing_level,
            stock_quantity: self.config.restock_amount,
            new_level: *level,
        }]
    }

    /// True with probability `p`; never panics, whatever `p` is.
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }
}

/// An index drawn in proportion to `weights`; 0 if they are all zero.
fn weighted_index(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return 0;
    }
    let mut roll = rng.random_range(0..total);
    for (index, &weight) in weights.iter().enumerate() {
        let weight = u64::from(weight);
        if roll < weight {
            return index;
        }
        roll -= weight;
    }
    0
}

/// Rounds to cents the way Python's `round(x, 2)` does: correctly rounded
/// from the double's exact value, ties to even. Scaling by 100 first would
/// not match it (the product is itself rounded).
fn round2(value: f64) -> f64 {
    format!("{value:.2}").parse().unwrap_or(value)
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

const MS_PER_DAY: i64 = 86_400_000;

/// Formats epoch milliseconds as the generator's UTC
/// `YYYY-MM-DD HH:MM:SS.ffffff` (always six fractional digits).
pub fn format_timestamp(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = epoch_ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000 * 1000
    )
}

/// Parses `YYYY-MM-DD HH:MM:SS[.f…]` (UTC; a `T` separator is accepted, and
/// the fraction may be absent, as Python prints whole seconds) to epoch
/// milliseconds, dropping sub-millisecond digits.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = parse_digits(date_parts.next()?, 4, 4)?;
    let month: i64 = parse_digits(date_parts.next()?, 2, 2)?;
    let day: i64 = parse_digits(date_parts.next()?, 2, 2)?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = parse_digits(clock_parts.next()?, 2, 2)?;
    let minute: i64 = parse_digits(clock_parts.next()?, 2, 2)?;
    let second: i64 = parse_digits(clock_parts.next()?, 2, 2)?;
    let millis = match fraction {
        Some(f) => {
            parse_digits(f, 1, 9)?;
            // Milliseconds: the first three digits, padded with zeros.
            let digits = f.bytes().chain(*b"00").take(3);
            digits.fold(0, |ms, digit| ms * 10 + i64::from(digit - b'0'))
        }
        None => 0,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis)
}

/// Parses an all-ASCII-digit field of `min..=max` characters.
fn parse_digits(text: &str, min: usize, max: usize) -> Option<i64> {
    let ok = (min..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    // At most nine digits are asked for anywhere, so this cannot overflow.
    ok.then(|| {
        text.bytes()
            .fold(0, |n, digit| n * 10 + i64::from(digit - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// The two conversions below count in 400-year eras starting on 0000-03-01, so
// that the leap day falls at the end of each counted year and the month
// lengths from March on follow the fixed 153-days-per-5-months pattern.

/// Days since 1970-01-01 to proleptic Gregorian `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Proleptic Gregorian `(year, month, day)` to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashMap;

    /// 2022-09-25 01:58:11.714 UTC, the article's sample transaction time.
    const SAMPLE_MS: i64 = 1_664_071_091_714;

    /// The enriched message exactly as the article prints it.
    const ARTICLE_SAMPLE: &str = r#"{
        "transaction_time": "2022-09-25 01:58:11.714838",
        "transaction_id": "4068565608708439642",
        "product_id": "CS08",
        "product_category": "Classic Smoothies",
        "product_name": "Rockin’ Raspberry",
        "product_size": "24 oz.",
        "product_cogs": 1.5,
        "product_price": 4.99,
        "contains_fruit": true,
        "contains_veggies": false,
        "contains_nuts": false,
        "contains_caffeine": false,
        "purchase_price": 4.99,
        "purchase_quantity": 2,
        "is_member": false,
        "member_discount": 0,
        "add_supplements": false,
        "supplement_price": 0,
        "total_purchase": 9.98
    }"#;

    fn product(id: &str) -> Product {
        catalogue()
            .into_iter()
            .find(|p| p.product_id == id)
            .expect("product in catalogue")
    }

    fn purchase(id: &str, quantity: u32, member: bool, supplements: bool) -> Purchase {
        let price = product(id).price;
        let member_discount = if member { 0.1 } else { 0.0 };
        let supplement_price = if supplements { 1.99 } else { 0.0 };
        Purchase {
            transaction_time: "2022-09-25 01:58:11.714838".to_string(),
            transaction_id: "4068565608708439642".to_string(),
            product_id: id.to_string(),
            price,
            quantity,
            is_member: member,
            member_discount,
            add_supplements: supplements,
            supplement_price,
            total_purchase: total_purchase(price, quantity, member_discount, supplement_price),
        }
    }

    fn quiet() -> SalesConfig {
        SalesConfig::default()
    }

    #[test]
    fn catalogue_has_27_products_in_four_categories() {
        let products = catalogue();
        assert_eq!(products.len(), 27);
        let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &products {
            *per_category.entry(p.category.as_str()).or_default() += 1;
        }
        let expected: BTreeMap<&str, usize> = [
            ("Classic Smoothies", 11),
            ("Indulgent Smoothies", 4),
            ("Supercharged Smoothies", 5),
            ("Superfoods Smoothies", 7),
        ]
        .into_iter()
        .collect();
        assert_eq!(per_category, expected);

        let ids: std::collections::BTreeSet<&str> =
            products.iter().map(|p| p.product_id.as_str()).collect();
        assert_eq!(ids.len(), 27, "ids are unique");

        // The generator's cumulative `_RangeWeight` column, in file order.
        let ranges: Vec<u32> = products.iter().map(|p| p.propensity_to_buy).collect();
        assert_eq!(
            ranges,
            [
                3, 6, 15, 18, 27, 36, 39, 54, 66, 75, 78, 82, 84, 92, 94, 104, 112, 122, 137, 140,
                143, 152, 164, 168, 180, 192, 200
            ]
        );
        assert_eq!(weights(&products).iter().sum::<u32>(), 200);

        let cs08 = product("CS08");
        assert_eq!(cs08.item, "Rockin’ Raspberry");
        assert_eq!(cs08.size, "24 oz.");
        assert_eq!(
            (cs08.cogs, cs08.price, cs08.inventory_level),
            (1.5, 4.99, 75)
        );
        let sc04 = product("SC04");
        assert_eq!(
            (sc04.cogs, sc04.price, sc04.inventory_level),
            (2.7, 5.99, 35)
        );
        assert!(!sc04.contains_fruit && sc04.contains_veggies && sc04.contains_nuts);
        assert!(sc04.contains_caffeine);
        let is04 = product("IS04");
        assert_eq!(
            (is04.cogs, is04.price, is04.inventory_level),
            (2.2, 5.49, 60)
        );
        assert_eq!(weights(&products)[26], 8);
    }

    #[test]
    fn enrichment_reproduces_the_article_sample() {
        let bought = purchase("CS08", 2, false, false);
        assert_eq!(bought.total_purchase, 9.98);
        let enriched = enrich(&bought, &product("CS08"));

        let ours: Value = serde_json::to_value(&enriched).expect("serialize");
        let sample: Value = serde_json::from_str(ARTICLE_SAMPLE).expect("sample parses");
        let (ours, sample) = (
            ours.as_object().expect("object"),
            sample.as_object().expect("object"),
        );
        assert_eq!(ours.len(), 19);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            sample.keys().collect::<Vec<_>>(),
            "same field names"
        );
        for (name, expected) in sample {
            let actual = &ours[name];
            match (expected.as_f64(), actual.as_f64()) {
                // The article prints Java decimals (`0`); ours are doubles (`0.0`).
                (Some(e), Some(a)) => assert_eq!(a, e, "{name}"),
                _ => assert_eq!(actual, expected, "{name}"),
            }
        }

        // And the struct fields directly, for the values the join takes from each side.
        assert_eq!(enriched.product_name, "Rockin’ Raspberry");
        assert_eq!(enriched.product_category, "Classic Smoothies");
        assert_eq!(enriched.purchase_price, enriched.product_price);
        assert_eq!(enriched.purchase_quantity, 2);
    }

    #[test]
    fn totals_follow_the_generator_formula() {
        // The generator README's sample purchases.
        assert_eq!(purchase("CS06", 1, false, true).total_purchase, 6.98);
        assert_eq!(purchase("SC04", 1, true, true).total_purchase, 7.18);
        assert_eq!(purchase("SF03", 1, false, true).total_purchase, 7.98);
        assert_eq!(purchase("SF07", 2, true, true).total_purchase, 14.36);
        assert_eq!(purchase("CS04", 3, true, true).total_purchase, 18.85);
        // Discount without supplements: 2 * 4.99 * 0.9 = 8.982.
        assert_eq!(purchase("CS08", 2, true, false).total_purchase, 8.98);
        // The discount covers supplements too: 3 * (5.49 + 1.99) * 0.9 = 20.196.
        assert_eq!(purchase("IS01", 3, true, true).total_purchase, 20.2);
    }

    #[test]
    fn round2_matches_python_round() {
        // Python: round(0.125, 2) == 0.12, round(0.375, 2) == 0.38 (ties to
        // even), round(2.675, 2) == 2.67 and round(1.005, 2) == 1.0 (the
        // doubles sit just below the tie).
        assert_eq!(round2(0.125), 0.12);
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(2.675), 2.67);
        assert_eq!(round2(1.005), 1.0);
        assert_eq!(round2(-1.239), -1.24);
    }

    #[test]
    fn restock_happens_exactly_at_the_minimum() {
        let mut only = product("SC03");
        only.inventory_level = 13;
        let config = SalesConfig {
            quantity_weights: [1, 0, 0],
            line_item_weights: [1, 0, 0],
            ..quiet()
        };
        let mut generator =
            SalesGenerator::with_products(vec![only], config, 7).expect("non-empty");

        let (_, restocks) = generator.next_purchase(SAMPLE_MS);
        assert!(restocks.is_empty(), "12 is above the minimum");
        let (_, restocks) = generator.next_purchase(SAMPLE_MS + 1);
        assert!(restocks.is_empty(), "11 is above the minimum");
        assert_eq!(generator.inventory_level("SC03"), Some(11));

        let (_, restocks) = generator.next_purchase(SAMPLE_MS + 2);
        assert_eq!(
            restocks,
            vec![Inventory {
                event_time: "2022-09-25 01:58:11.716000".to_string(),
                product_id: "SC03".to_string(),
                existing_level: 10,
                stock_quantity: 15,
                new_level: 25,
            }]
        );
        assert_eq!(generator.inventory_level("SC03"), Some(25));

        // From 25, fourteen more sales reach 11 without a restock; the next one restocks.
        for i in 0..14 {
            assert!(generator.next_purchase(SAMPLE_MS + 3 + i).1.is_empty());
        }
        let (_, restocks) = generator.next_purchase(SAMPLE_MS + 20);
        assert_eq!(restocks.len(), 1);
        assert_eq!(restocks[0].existing_level, 10);
    }

    #[test]
    fn restock_accounts_for_quantity() {
        let mut only = product("CS01");
        only.inventory_level = 12;
        let config = SalesConfig {
            quantity_weights: [0, 0, 1],
            line_item_weights: [1, 0, 0],
            ..quiet()
        };
        let mut generator =
            SalesGenerator::with_products(vec![only], config, 1).expect("non-empty");
        let (bought, restocks) = generator.next_purchase(0);
        assert_eq!(bought.quantity, 3);
        assert_eq!(restocks.len(), 1);
        assert_eq!((restocks[0].existing_level, restocks[0].new_level), (9, 24));
    }

    #[test]
    fn products_are_chosen_by_weight() {
        let config = SalesConfig {
            line_item_weights: [1, 0, 0],
            ..quiet()
        };
        let mut generator = SalesGenerator::new(config, 42);
        let draws = 100_000;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut quantities = [0usize; 3];
        let mut members = 0;
        for i in 0..draws {
            let (bought, _) = generator.next_purchase(i);
            *counts.entry(bought.product_id.clone()).or_default() += 1;
            quantities[bought.quantity as usize - 1] += 1;
            members += usize::from(bought.is_member);
        }
        let products = catalogue();
        for (p, weight) in products.iter().zip(weights(&products)) {
            let expected = f64::from(weight) / 200.0;
            let seen = counts.get(&p.product_id).copied().unwrap_or(0) as f64 / draws as f64;
            assert!(
                (seen - expected).abs() < 0.004,
                "{}: {seen} vs {expected}",
                p.product_id
            );
        }
        let share = |n: usize| n as f64 / draws as f64;
        assert!((share(quantities[0]) - 24.0 / 30.0).abs() < 0.01);
        assert!((share(quantities[1]) - 5.0 / 30.0).abs() < 0.01);
        assert!((share(quantities[2]) - 1.0 / 30.0).abs() < 0.005);
        assert!((share(members) - 0.3).abs() < 0.01);
    }

    #[test]
    fn line_items_share_a_transaction() {
        let mut generator = SalesGenerator::new(quiet(), 3);
        let events = generator.run(SAMPLE_MS, 2_000);
        let mut by_id: BTreeMap<&str, Vec<&Purchase>> = BTreeMap::new();
        for e in &events {
            by_id
                .entry(&e.purchase.transaction_id)
                .or_default()
                .push(&e.purchase);
        }
        let sizes: Vec<usize> = by_id.values().map(Vec::len).collect();
        assert!(sizes.iter().all(|&n| (1..=3).contains(&n)));
        assert!(
            sizes.iter().any(|&n| n > 1),
            "some transactions have several items"
        );
        for items in by_id.values() {
            assert!(
                items
                    .iter()
                    .all(|p| p.transaction_time == items[0].transaction_time)
            );
            assert!(items.iter().all(|p| p.is_member == items[0].is_member));
        }
        // Transactions start 2 to 5 seconds apart; their items arrive together.
        for pair in events.windows(2) {
            let gap = pair[1].arrival_ms - pair[0].arrival_ms;
            if pair[1].purchase.transaction_id == pair[0].purchase.transaction_id {
                assert_eq!(gap, 0);
            } else {
                assert!((2_000..=5_000).contains(&gap), "gap {gap}");
            }
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let a = SalesGenerator::new(quiet(), 9).run(SAMPLE_MS, 500);
        let b = SalesGenerator::new(quiet(), 9).run(SAMPLE_MS, 500);
        let c = SalesGenerator::new(quiet(), 10).run(SAMPLE_MS, 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn timestamps_format_known_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_timestamp(951_782_400_000),
            "2000-02-29 00:00:00.000000"
        );
        assert_eq!(format_timestamp(SAMPLE_MS), "2022-09-25 01:58:11.714000");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999000");
        assert_eq!(
            format_timestamp(2_147_483_647_000),
            "2038-01-19 03:14:07.000000"
        );
        assert_eq!(
            format_timestamp(1_709_251_199_999),
            "2024-02-29 23:59:59.999000"
        );
        assert_eq!(
            format_timestamp(253_402_300_799_999),
            "9999-12-31 23:59:59.999000"
        );
    }

    #[test]
    fn timestamps_parse_back() {
        for ms in [
            0,
            -1,
            951_782_400_000,
            SAMPLE_MS,
            1_709_251_199_999,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms));
        }
        // The article's microseconds are cut to milliseconds.
        assert_eq!(
            parse_timestamp("2022-09-25 01:58:11.714838"),
            Some(SAMPLE_MS)
        );
        // Python prints whole seconds without a fraction.
        assert_eq!(
            parse_timestamp("2022-09-25 01:58:11"),
            Some(SAMPLE_MS - 714)
        );
        assert_eq!(
            parse_timestamp("2022-09-25T01:58:11.7"),
            Some(SAMPLE_MS - 14)
        );
        for bad in [
            "",
            "2022-09-25",
            "2022-02-29 00:00:00",
            "2022-13-01 00:00:00",
            "2022-09-25 24:00:00",
            "2022-09-25 01:58:11.",
            "2022-9-25 01:58:11",
            "2022-09-25 01:58:1x",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
        // Every day over four centuries survives the round trip through the civil calendar.
        for days in -80_000..80_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn json_shapes_match_the_generator() {
        let bought = Purchase {
            transaction_time: "2022-09-13 11:53:24.925539".to_string(),
            transaction_id: "9051670610281553996".to_string(),
            ..purchase("SC04", 1, true, true)
        };
        assert_eq!(
            serde_json::to_string(&bought).expect("serialize"),
            r#"{"transaction_time":"2022-09-13 11:53:24.925539","transaction_id":"9051670610281553996","product_id":"SC04","price":5.99,"quantity":1,"is_member":true,"member_discount":0.1,"add_supplements":true,"supplement_price":1.99,"total_purchase":7.18}"#
        );
        let plain = purchase("CS08", 2, false, false);
        let text = serde_json::to_string(&plain).expect("serialize");
        assert!(
            text.contains(
                r#""member_discount":0.0,"add_supplements":false,"supplement_price":0.0"#
            )
        );
        assert_eq!(
            serde_json::from_str::<Purchase>(&text).expect("parse"),
            plain
        );

        let restock = Inventory {
            event_time: "2022-08-29 15:09:23.007874".to_string(),
            product_id: "SC05".to_string(),
            existing_level: 9,
            stock_quantity: 15,
            new_level: 24,
        };
        assert_eq!(
            serde_json::to_string(&restock).expect("serialize"),
            r#"{"event_time":"2022-08-29 15:09:23.007874","product_id":"SC05","existing_level":9,"stock_quantity":15,"new_level":24}"#
        );

        let event = product("SF04").event(0);
        let text = serde_json::to_string(&event).expect("serialize");
        assert_eq!(
            text,
            r#"{"event_time":"1970-01-01 00:00:00.000000","product_id":"SF04","category":"Superfoods Smoothies","item":"Pomegranate Plunge","size":"24 oz.","cogs":2.1,"price":5.99,"inventory_level":50,"contains_fruit":true,"contains_veggies":false,"contains_nuts":false,"contains_caffeine":false,"propensity_to_buy":94}"#
        );
        assert_eq!(
            serde_json::from_str::<ProductEvent>(&text).expect("parse"),
            event
        );
        // The generator's Python escapes non-ASCII; both spellings parse alike.
        let escaped = r#"{"event_time":"2022-09-11 14:39:46.934384","product_id":"CS08","category":"Classic Smoothies","item":"Rockin\u2019 Raspberry","size":"24 oz.","cogs":1.5,"price":4.99,"inventory_level":75,"contains_fruit":true,"contains_veggies":false,"contains_nuts":false,"contains_caffeine":false,"propensity_to_buy":54}"#;
        let parsed: ProductEvent = serde_json::from_str(escaped).expect("parse");
        assert_eq!(parsed.product, product("CS08"));

        let mut total = RunningTotal::new("CS08");
        total.add(&purchase("CS08", 2, false, false));
        total.add(&purchase("CS08", 1, true, true));
        assert_eq!(
            serde_json::to_string(&total).expect("serialize"),
            r#"{"event_time":"2022-09-25 01:58:11.714838","product_id":"CS08","transactions":2,"quantities":3,"sales":16.26}"#
        );

        let enriched = enrich(&purchase("CS08", 2, false, false), &product("CS08"));
        assert_eq!(
            serde_json::to_string(&enriched).expect("serialize"),
            r#"{"transaction_time":"2022-09-25 01:58:11.714838","transaction_id":"4068565608708439642","product_id":"CS08","product_category":"Classic Smoothies","product_name":"Rockin’ Raspberry","product_size":"24 oz.","product_cogs":1.5,"product_price":4.99,"contains_fruit":true,"contains_veggies":false,"contains_nuts":false,"contains_caffeine":false,"purchase_price":4.99,"purchase_quantity":2,"is_member":false,"member_discount":0.0,"add_supplements":false,"supplement_price":0.0,"total_purchase":9.98}"#
        );
    }

    #[test]
    fn running_totals_add_up_over_a_stream() {
        let mut generator = SalesGenerator::new(quiet(), 2024);
        let events = generator.run(SAMPLE_MS, 5_000);
        let mut totals = RunningTotals::new();
        // Independent tally in integer cents.
        let mut expected: BTreeMap<String, (u64, u64, i64, String)> = BTreeMap::new();
        for e in &events {
            let p = &e.purchase;
            let emitted = totals.add(p).clone();
            let entry = expected.entry(p.product_id.clone()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(p.quantity);
            entry.2 += (p.total_purchase * 100.0).round() as i64;
            entry.3.clone_from(&p.transaction_time);
            assert_eq!(emitted.product_id, p.product_id);
            assert_eq!(emitted.transactions, entry.0);
        }
        assert_eq!(totals.len(), expected.len());
        assert_eq!(totals.len(), 27, "every product sells in 5000 purchases");
        for total in totals.iter() {
            let (transactions, quantities, cents, last_time) = &expected[&total.product_id];
            assert_eq!(total.transactions, *transactions);
            assert_eq!(total.quantities, *quantities);
            assert_eq!(total.sales, *cents as f64 / 100.0, "{}", total.product_id);
            assert_eq!(&total.event_time, last_time);
        }
        let all: u64 = totals.iter().map(|t| t.transactions).sum();
        assert_eq!(all, 5_000);
        let drinks: u64 = totals.iter().map(|t| t.quantities).sum();
        assert_eq!(
            drinks,
            events
                .iter()
                .map(|e| u64::from(e.purchase.quantity))
                .sum::<u64>()
        );
    }

    #[test]
    fn disorder_knobs_shift_duplicate_and_burst() {
        let config = SalesConfig {
            line_item_weights: [1, 0, 0],
            disorder: Disorder {
                out_of_order_fraction: 0.2,
                max_out_of_order_ms: 3_000,
                late_fraction: 0.05,
                late_min_ms: 60_000,
                late_max_ms: 120_000,
                duplicate_fraction: 0.1,
                burst_probability: 0.02,
                burst_len: 20,
                burst_gap_ms: 10,
            },
            ..quiet()
        };
        let mut generator = SalesGenerator::new(config, 11);
        let events = generator.run(SAMPLE_MS, 20_000);
        let mut kinds: HashMap<EventKind, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let time = parse_timestamp(&e.purchase.transaction_time).expect("valid time");
            let behind = e.arrival_ms - time;
            match e.kind {
                EventKind::OnTime => assert_eq!(behind, 0),
                EventKind::OutOfOrder => assert!((1..=3_000).contains(&behind), "{behind}"),
                EventKind::Late => assert!((60_000..=120_000).contains(&behind), "{behind}"),
                EventKind::Duplicate => {
                    assert_eq!(e.purchase, events[i - 1].purchase, "exact copy");
                    assert_eq!(e.arrival_ms, events[i - 1].arrival_ms);
                    assert!(e.restocks.is_empty());
                }
            }
            *kinds.entry(e.kind).or_default() += 1;
        }
        let share = |kind: EventKind, of: f64| kinds[&kind] as f64 / of;
        let originals = (events.len() - kinds[&EventKind::Duplicate]) as f64;
        assert!((share(EventKind::Duplicate, originals) - 0.1).abs() < 0.01);
        assert!((share(EventKind::OutOfOrder, originals) - 0.2).abs() < 0.015);
        assert!((share(EventKind::Late, originals) - 0.05).abs() < 0.01);

        // Bursts: runs of 10 ms gaps, which the usual 2-5 s gap never produces.
        let gaps: Vec<i64> = events
            .windows(2)
            .map(|w| w[1].arrival_ms - w[0].arrival_ms)
            .collect();
        let short = gaps.iter().filter(|&&g| g == 10).count();
        assert!(short > 1_000, "{short} burst gaps");
        assert!(
            gaps.iter()
                .all(|&g| g == 0 || g == 10 || (2_000..=5_000).contains(&g))
        );

        // Duplicates are redeliveries, not sales: stock reflects originals only.
        let sold: i64 = events
            .iter()
            .filter(|e| e.kind != EventKind::Duplicate && e.purchase.product_id == "CS08")
            .map(|e| i64::from(e.purchase.quantity))
            .sum();
        let restocked: i64 = events
            .iter()
            .flat_map(|e| &e.restocks)
            .filter(|r| r.product_id == "CS08")
            .map(|r| r.stock_quantity)
            .sum();
        assert_eq!(
            generator.inventory_level("CS08"),
            Some(75 - sold + restocked)
        );
    }

    #[test]
    fn empty_catalogue_is_refused() {
        assert!(SalesGenerator::with_products(Vec::new(), quiet(), 0).is_none());
    }

    #[test]
    fn product_events_cover_the_catalogue() {
        let generator = SalesGenerator::new(quiet(), 0);
        let events = generator.product_events(SAMPLE_MS);
        assert_eq!(events.len(), 27);
        assert!(
            events
                .iter()
                .all(|e| e.event_time == "2022-09-25 01:58:11.714000")
        );
        assert_eq!(
            generator.product("CS08").map(|p| p.propensity_to_buy),
            Some(54)
        );
        assert_eq!(generator.inventory_level("CS08"), Some(75));
        assert_eq!(generator.inventory_level("XX99"), None);
    }
}
