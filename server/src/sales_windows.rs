//! The seed's Spark job, in-process: per product, purchases, drinks and sales
//! in event-time windows of 10 minutes sliding every 5, with a 10-minute
//! watermark and 5 minutes of allowed lateness. Windows are provisional until
//! the watermark passes their end, then final; purchases too late for every
//! window they belong to are kept as late events instead.

use crate::operators::window::{
    Admission, Phase, SourceId, SourceProgress, WindowSpec, WindowSpecError, WindowedAggregator,
};
use crate::sales_pipeline::StoredPurchase;
pub use crate::store::LateEvent;
use std::collections::HashMap;

const MINUTE_MS: i64 = 60_000;
pub const SIZE_MS: i64 = 10 * MINUTE_MS;
pub const SLIDE_MS: i64 = 5 * MINUTE_MS;
pub const WATERMARK_DELAY_MS: i64 = 10 * MINUTE_MS;
pub const ALLOWED_LATENESS_MS: i64 = 5 * MINUTE_MS;
/// The window's name in the purchases definition, under which its watermark is stored.
pub const NAME: &str = "sales_windows";

/// The change to one product's row in one window since it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDelta {
    pub start_ms: i64,
    pub end_ms: i64,
    pub product_id: String,
    pub transactions: i64,
    pub quantities: i64,
    pub sales_cents: i64,
    /// The watermark has passed the window's end.
    pub is_final: bool,
}

/// Current totals of a (window, product) as last written: purchases, drinks, cents.
type Totals = (i64, i64, i64);

#[derive(Clone)]
pub struct SalesWindows {
    sales: WindowedAggregator<String>,
    drinks: WindowedAggregator<String>,
    written: HashMap<(i64, String), Totals>,
}

impl SalesWindows {
    /// The seed's windows: 10 minutes sliding every 5, watermark 10 minutes, lateness 5.
    pub fn new() -> Result<Self, WindowSpecError> {
        let spec = WindowSpec::new(SIZE_MS, SLIDE_MS, WATERMARK_DELAY_MS, ALLOWED_LATENESS_MS)?;
        Ok(Self::with_spec(spec))
    }

    pub fn with_spec(spec: WindowSpec) -> Self {
        SalesWindows {
            sales: WindowedAggregator::new(spec),
            drinks: WindowedAggregator::new(spec),
            written: HashMap::new(),
        }
    }

    /// Counts the purchase into its windows, or hands it back as a late event.
    pub fn push(&mut self, purchase: &StoredPurchase) -> Option<LateEvent> {
        self.push_from(0, 0, purchase)
    }

    /// Makes a source (a partition) known before its first purchase, so the
    /// watermark waits for it.
    pub fn register_source(&mut self, source: SourceId, now_ms: i64) {
        self.drinks.register_source(source, now_ms);
        self.sales.register_source(source, now_ms);
    }

    /// [`Self::push`] for a purchase from `source`, at processing time `now_ms`:
    /// the watermark follows the slowest source that is not idle.
    pub fn push_from(
        &mut self,
        source: SourceId,
        now_ms: i64,
        purchase: &StoredPurchase,
    ) -> Option<LateEvent> {
        let key = purchase.enriched.product_id.clone();
        let at = purchase.transaction_ms;
        // Both aggregators see the same events, so their windows move together.
        self.drinks.push_from(
            source,
            now_ms,
            key.clone(),
            at,
            f64::from(purchase.enriched.purchase_quantity),
        );
        let total = purchase.enriched.total_purchase;
        let reason = match self.sales.push_from(source, now_ms, key, at, total) {
            Admission::Accepted { .. } | Admission::Partial { .. } => return None,
            Admission::TooLate { refused } => {
                let starts: Vec<String> = refused
                    .iter()
                    .map(|w| crate::sales::format_timestamp(w.start))
                    .collect();
                format!(
                    "too late: windows starting {} are closed",
                    starts.join(", ")
                )
            }
            Admission::OutOfRange => "event time out of range".to_string(),
        };
        let payload = serde_json::to_string(&purchase.enriched).unwrap_or_default();
        Some(LateEvent {
            event_ms: at,
            payload,
            reason,
        })
    }

    /// Where the watermark stands; `None` before the first purchase.
    pub fn watermark(&self) -> Option<i64> {
        self.sales.watermark()
    }

    /// Carries on from a watermark stored before a restart or by another
    /// instance: windows it closed stay closed.
    pub fn advance_watermark(&mut self, to: i64) {
        self.sales.advance_watermark(to);
        self.drinks.advance_watermark(to);
    }

    /// Resumes partitions' clocks as they were kept.
    pub fn restore_sources(&mut self, kept: &[(SourceId, SourceProgress)], now_ms: i64) {
        self.sales.restore_sources(kept.iter().copied(), now_ms);
        self.drinks.restore_sources(kept.iter().copied(), now_ms);
    }

    /// How far a partition has got.
    pub fn source_progress(&self, source: SourceId) -> Option<SourceProgress> {
        self.sales.source_progress(source)
    }

    /// What changed since the last drain, as deltas to add to the stored rows.
    pub fn drain(&mut self) -> Vec<WindowDelta> {
        let drinks: HashMap<(i64, String), f64> = self
            .drinks
            .drain()
            .updates
            .into_iter()
            .map(|u| ((u.window.start, u.key), u.stats.sum))
            .collect();
        let drained = self.sales.drain();
        let mut deltas = Vec::with_capacity(drained.updates.len());
        for update in drained.updates {
            let id = (update.window.start, update.key.clone());
            let now: Totals = (
                update.stats.count as i64,
                drinks.get(&id).map_or_else(
                    || self.written.get(&id).map_or(0, |w| w.1),
                    |d| d.round() as i64,
                ),
                (update.stats.sum * 100.0).round() as i64,
            );
            let before = self.written.insert(id, now).unwrap_or_default();
            deltas.push(WindowDelta {
                start_ms: update.window.start,
                end_ms: update.window.end,
                product_id: update.key,
                transactions: now.0 - before.0,
                quantities: now.1 - before.1,
                sales_cents: now.2 - before.2,
                is_final: update.phase != Phase::Provisional,
            });
        }
        // Closed windows will not change again.
        for window in drained.evicted {
            self.written.retain(|(start, _), _| *start != window.start);
        }
        deltas
    }
}
