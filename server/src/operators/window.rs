//! Event-time windows as stream processors define them (Spark Structured
//! Streaming, Flink). An event belongs to every window `[start, start + size)`
//! whose start is a multiple of the slide; the watermark trails the largest
//! event time seen by a fixed delay. With several sources (Kafka partitions),
//! it trails the slowest source that is not idle, as Flink's does, so events
//! of a partition read behind the others are not judged late. A window is provisional until the
//! watermark reaches its end, then final; for an allowed lateness after that,
//! late events still update it, and after that it is closed for good. Events
//! that only reach closed windows are handed back to the caller as too late
//! rather than dropped, so they can be stored and counted.
//!
//! Pure state, no I/O: the caller pushes events, drains the changed windows
//! and upserts them, and closed windows leave memory at the drain.

use std::collections::BTreeMap;

use super::stats::Stats;

/// Upper bound on the windows one event falls into (`size / slide`, rounded
/// up). Beyond it the slide is almost certainly a unit mistake, and every event
/// would cost that many updates.
pub const MAX_WINDOWS_PER_EVENT: i64 = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowSpecError {
    #[error("window size must be positive, got {0} ms")]
    NonPositiveSize(i64),
    #[error("window slide must be positive and at most the size ({size_ms} ms), got {slide_ms} ms")]
    SlideOutOfRange { size_ms: i64, slide_ms: i64 },
    #[error("watermark delay must not be negative, got {0} ms")]
    NegativeWatermarkDelay(i64),
    #[error("allowed lateness must not be negative, got {0} ms")]
    NegativeAllowedLateness(i64),
    #[error(
        "a {size_ms} ms window sliding every {slide_ms} ms puts each event in more than \
         {MAX_WINDOWS_PER_EVENT} windows"
    )]
    TooManyWindowsPerEvent { size_ms: i64, slide_ms: i64 },
}

/// How events are grouped in time and how long windows wait for stragglers.
/// Fields are private so that every spec in circulation has been validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    size_ms: i64,
    slide_ms: i64,
    watermark_delay_ms: i64,
    allowed_lateness_ms: i64,
}

/// The half-open interval `[start, end)` of event times a window covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn contains(&self, event_ms: i64) -> bool {
        self.start <= event_ms && event_ms < self.end
    }
}

impl WindowSpec {
    /// Hopping windows when `slide_ms < size_ms`, tumbling when they are equal.
    /// The size need not be a multiple of the slide; an event then falls into
    /// a varying number of windows.
    pub fn new(
        size_ms: i64,
        slide_ms: i64,
        watermark_delay_ms: i64,
        allowed_lateness_ms: i64,
    ) -> Result<Self, WindowSpecError> {
        if size_ms <= 0 {
            return Err(WindowSpecError::NonPositiveSize(size_ms));
        }
        if slide_ms <= 0 || slide_ms > size_ms {
            return Err(WindowSpecError::SlideOutOfRange { size_ms, slide_ms });
        }
        if watermark_delay_ms < 0 {
            return Err(WindowSpecError::NegativeWatermarkDelay(watermark_delay_ms));
        }
        if allowed_lateness_ms < 0 {
            return Err(WindowSpecError::NegativeAllowedLateness(
                allowed_lateness_ms,
            ));
        }
        // size / slide rounded up; both are positive here.
        if (size_ms - 1) / slide_ms + 1 > MAX_WINDOWS_PER_EVENT {
            return Err(WindowSpecError::TooManyWindowsPerEvent { size_ms, slide_ms });
        }
        Ok(WindowSpec {
            size_ms,
            slide_ms,
            watermark_delay_ms,
            allowed_lateness_ms,
        })
    }

    /// Back-to-back windows: every event falls into exactly one.
    pub fn tumbling(
        size_ms: i64,
        watermark_delay_ms: i64,
        allowed_lateness_ms: i64,
    ) -> Result<Self, WindowSpecError> {
        Self::new(size_ms, size_ms, watermark_delay_ms, allowed_lateness_ms)
    }

    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    pub fn slide_ms(&self) -> i64 {
        self.slide_ms
    }

    pub fn watermark_delay_ms(&self) -> i64 {
        self.watermark_delay_ms
    }

    pub fn allowed_lateness_ms(&self) -> i64 {
        self.allowed_lateness_ms
    }

    pub fn is_tumbling(&self) -> bool {
        self.slide_ms == self.size_ms
    }

    /// Every window that holds `event_ms`, by ascending start; at least one.
    /// `None` when one of them would not fit in an i64, which only happens
    /// within a window size of the ends of the i64 range.
    pub fn windows_of(&self, event_ms: i64) -> Option<Vec<Window>> {
        // i128 so that window bounds near the ends of the i64 range can be
        // computed and then checked, rather than overflowing.
        let t = i128::from(event_ms);
        let size = i128::from(self.size_ms);
        let slide = i128::from(self.slide_ms);
        // The earliest window holding t starts after t - size; round that up
        // to a multiple of the slide. rem_euclid keeps the rounding aligned to
        // epoch 0 for negative times as well.
        let after = t - size + 1;
        let mut start = after + (-after).rem_euclid(slide);
        let mut windows = Vec::new();
        while start <= t {
            windows.push(Window {
                start: i64::try_from(start).ok()?,
                end: i64::try_from(start + size).ok()?,
            });
            start += slide;
        }
        Some(windows)
    }

    /// Final: the watermark has reached the end, so no on-time event can
    /// still arrive for the window.
    fn is_final(&self, window: &Window, watermark: i64) -> bool {
        watermark >= window.end
    }

    /// Closed for good: not even a late event may change the window any more.
    fn is_closed(&self, window: &Window, watermark: i64) -> bool {
        watermark >= window.end.saturating_add(self.allowed_lateness_ms)
    }
}

/// What became of a pushed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Aggregated into every window that holds it.
    Accepted { windows: Vec<Window> },
    /// Aggregated into the windows still open; the others were closed for good.
    Partial {
        accepted: Vec<Window>,
        refused: Vec<Window>,
    },
    /// Every window that holds it is closed for good: not aggregated
    /// anywhere. The caller keeps and counts it.
    TooLate { refused: Vec<Window> },
    /// The event time is so close to the ends of the i64 range that its
    /// windows cannot be represented. Not aggregated, and the watermark
    /// ignores it.
    OutOfRange,
}

impl Admission {
    /// The windows the event was aggregated into.
    pub fn accepted(&self) -> &[Window] {
        match self {
            Admission::Accepted { windows } => windows,
            Admission::Partial { accepted, .. } => accepted,
            Admission::TooLate { .. } | Admission::OutOfRange => &[],
        }
    }

    /// The windows that were closed for good when the event arrived.
    pub fn refused(&self) -> &[Window] {
        match self {
            Admission::Partial { refused, .. } | Admission::TooLate { refused } => refused,
            Admission::Accepted { .. } | Admission::OutOfRange => &[],
        }
    }

    /// Whether the event counts in at least one window.
    pub fn is_aggregated(&self) -> bool {
        !self.accepted().is_empty()
    }
}

/// Where a window stood when its value was drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The watermark has not reached the window's end: more events are
    /// expected and the value will change.
    Provisional,
    /// The first value drained after the watermark reached the window's end.
    Final,
    /// A late event (within the allowed lateness) changed a window that was
    /// already drained as final.
    LateUpdate,
}

impl Phase {
    pub fn is_final(self) -> bool {
        self != Phase::Provisional
    }
}

/// The current value of one group in one window, to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowUpdate<K> {
    pub window: Window,
    pub key: K,
    pub stats: Stats,
    pub phase: Phase,
}

/// What a drain hands to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Drained<K> {
    /// Every group whose window changed value or turned final since the last
    /// drain, by window start and then key.
    pub updates: Vec<WindowUpdate<K>>,
    /// Windows closed for good and dropped from memory, by start. Their last
    /// value has been drained (in `updates` or earlier).
    pub evicted: Vec<Window>,
}

#[derive(Debug, Clone)]
struct Group {
    stats: Stats,
    changed: bool,
}

#[derive(Debug, Clone)]
struct WindowState<K> {
    window: Window,
    groups: BTreeMap<K, Group>,
    /// Some group changed since the last drain; saves scanning the groups of
    /// windows that did not.
    changed: bool,
    /// A drain has reported this window as final, so later changes are late updates.
    reported_final: bool,
}

/// Where events come from, such as a Kafka partition.
pub type SourceId = u32;

/// A source silent this long (in processing time) stops holding the
/// watermark back: a partition that moved to another consumer, or one
/// without traffic.
pub const IDLE_SOURCE_MS: i64 = 10_000;

/// How far a source has got, to keep between restarts: its largest event
/// time, and when (processing time) it last delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceProgress {
    pub max_event_ms: i64,
    pub seen_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct SourceClock {
    /// `None` for a source known but not heard from yet: it holds the
    /// watermark back until it delivers or goes idle.
    max_event_ms: Option<i64>,
    last_seen_ms: i64,
}

/// Windowed count/sum/min/max per group key, by event time.
#[derive(Debug, Clone)]
pub struct WindowedAggregator<K> {
    spec: WindowSpec,
    sources: BTreeMap<SourceId, SourceClock>,
    /// Never decreases, whatever a new or slow source reports.
    watermark_ms: Option<i64>,
    /// Windows in memory by start. All have the same size, so ordering by
    /// start orders them by end too.
    windows: BTreeMap<i64, WindowState<K>>,
}

impl<K: Ord + Clone> WindowedAggregator<K> {
    pub fn new(spec: WindowSpec) -> Self {
        WindowedAggregator {
            spec,
            sources: BTreeMap::new(),
            watermark_ms: None,
            windows: BTreeMap::new(),
        }
    }

    /// An aggregator that carries on from a watermark kept elsewhere (after a
    /// restart, or by another instance): windows it had closed stay closed.
    pub fn resuming(spec: WindowSpec, watermark_ms: Option<i64>) -> Self {
        WindowedAggregator {
            watermark_ms,
            ..Self::new(spec)
        }
    }

    /// Raises the watermark to `to` if it is behind (it never goes back).
    pub fn advance_watermark(&mut self, to: i64) {
        self.watermark_ms = Some(self.watermark_ms.map_or(to, |w| w.max(to)));
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// The largest event time seen, of the slowest source that is not idle,
    /// minus the watermark delay; `None` until the first event. It never
    /// decreases.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// [`Self::push_from`] for a single source.
    pub fn push(&mut self, key: K, event_ms: i64, value: f64) -> Admission {
        self.push_from(0, 0, key, event_ms, value)
    }

    /// Adds `value` for `key` to every window of `event_ms` that is not closed
    /// for good, and says which windows took it and which refused it. `now_ms`
    /// is processing time, to tell idle sources.
    pub fn push_from(
        &mut self,
        source: SourceId,
        now_ms: i64,
        key: K,
        event_ms: i64,
        value: f64,
    ) -> Admission {
        let Some(windows) = self.spec.windows_of(event_ms) else {
            return Admission::OutOfRange;
        };
        // Judged against the watermark before this event moves it. Moving it
        // first would give the same answer: every window of the event ends
        // after the event, and the watermark trails the event by a
        // non-negative delay.
        let watermark = self.watermark();
        let spec = self.spec;
        let (refused, accepted): (Vec<Window>, Vec<Window>) = windows
            .into_iter()
            .partition(|w| watermark.is_some_and(|wm| spec.is_closed(w, wm)));
        for window in &accepted {
            let state = self
                .windows
                .entry(window.start)
                .or_insert_with(|| WindowState {
                    window: *window,
                    groups: BTreeMap::new(),
                    changed: false,
                    reported_final: false,
                });
            state.changed = true;
            state
                .groups
                .entry(key.clone())
                .and_modify(|group| {
                    group.stats.add(value);
                    group.changed = true;
                })
                .or_insert(Group {
                    stats: Stats::of(value),
                    changed: true,
                });
        }
        self.observe(source, now_ms, event_ms);
        match (accepted.is_empty(), refused.is_empty()) {
            (false, true) => Admission::Accepted { windows: accepted },
            (false, false) => Admission::Partial { accepted, refused },
            // windows_of never returns an empty list, so nothing accepted
            // means everything refused.
            (true, _) => Admission::TooLate { refused },
        }
    }

    /// Makes a source known before its first event (a partition just
    /// assigned), so the watermark waits for it rather than racing ahead on
    /// the others; it stops waiting once the source is idle.
    pub fn register_source(&mut self, source: SourceId, now_ms: i64) {
        self.sources.entry(source).or_insert(SourceClock {
            max_event_ms: None,
            last_seen_ms: now_ms,
        });
    }

    /// Resumes sources' clocks as they were kept (before a restart, or by
    /// the instance that read them before), then the watermark with them:
    /// all at once, so the first one restored cannot move it alone.
    pub fn restore_sources(
        &mut self,
        kept: impl IntoIterator<Item = (SourceId, SourceProgress)>,
        now_ms: i64,
    ) {
        for (source, kept) in kept {
            let clock = self.sources.entry(source).or_insert(SourceClock {
                max_event_ms: None,
                last_seen_ms: kept.seen_ms,
            });
            let max = kept.max_event_ms;
            clock.max_event_ms = Some(clock.max_event_ms.map_or(max, |m| m.max(max)));
            clock.last_seen_ms = clock.last_seen_ms.max(kept.seen_ms);
        }
        self.follow_sources(now_ms);
    }

    /// How far `source` has got, if it has delivered.
    pub fn source_progress(&self, source: SourceId) -> Option<SourceProgress> {
        let clock = self.sources.get(&source)?;
        Some(SourceProgress {
            max_event_ms: clock.max_event_ms?,
            seen_ms: clock.last_seen_ms,
        })
    }

    /// Moves the source's clock and, with it, the watermark.
    fn observe(&mut self, source: SourceId, now_ms: i64, event_ms: i64) {
        let clock = self.sources.entry(source).or_insert(SourceClock {
            max_event_ms: None,
            last_seen_ms: now_ms,
        });
        clock.max_event_ms = Some(clock.max_event_ms.map_or(event_ms, |m| m.max(event_ms)));
        clock.last_seen_ms = clock.last_seen_ms.max(now_ms);
        self.follow_sources(now_ms);
    }

    /// Moves the watermark up to the slowest source that is not idle.
    fn follow_sources(&mut self, now_ms: i64) {
        let idle_before = now_ms.saturating_sub(IDLE_SOURCE_MS);
        let active: Vec<Option<i64>> = self
            .sources
            .values()
            .filter(|c| c.last_seen_ms >= idle_before)
            .map(|c| c.max_event_ms)
            .collect();
        let slowest = if active.is_empty() {
            // Every source idle: the slowest of those heard from still counts.
            self.sources.values().filter_map(|c| c.max_event_ms).min()
        } else if active.contains(&None) {
            // An active source not heard from yet: wait for it.
            None
        } else {
            active.into_iter().flatten().min()
        };
        if let Some(slowest) = slowest {
            let candidate = slowest.saturating_sub(self.spec.watermark_delay_ms);
            self.watermark_ms = Some(self.watermark_ms.map_or(candidate, |w| w.max(candidate)));
        }
    }

    /// Hands over every group that changed or turned final since the last
    /// drain, then drops the windows closed for good. Windows closed between
    /// two drains stay in memory until the next drain (refusing events
    /// meanwhile) so their last value is never lost.
    pub fn drain(&mut self) -> Drained<K> {
        let mut drained = Drained {
            updates: Vec::new(),
            evicted: Vec::new(),
        };
        let Some(watermark) = self.watermark() else {
            return drained;
        };
        for state in self.windows.values_mut() {
            let turning_final =
                !state.reported_final && self.spec.is_final(&state.window, watermark);
            if !state.changed && !turning_final {
                continue;
            }
            let phase = if state.reported_final {
                Phase::LateUpdate
            } else if turning_final {
                Phase::Final
            } else {
                Phase::Provisional
            };
            for (key, group) in &mut state.groups {
                // A window turning final is reported whole, so the caller can
                // flag every row of it, changed or not.
                if group.changed || turning_final {
                    drained.updates.push(WindowUpdate {
                        window: state.window,
                        key: key.clone(),
                        stats: group.stats,
                        phase,
                    });
                    group.changed = false;
                }
            }
            state.changed = false;
            state.reported_final |= turning_final;
        }
        // Closed windows are a prefix of the map: ends grow with starts.
        while let Some(entry) = self.windows.first_entry() {
            if !self.spec.is_closed(&entry.get().window, watermark) {
                break;
            }
            drained.evicted.push(entry.remove().window);
        }
        drained
    }

    /// The windows in memory, by start.
    pub fn windows(&self) -> impl Iterator<Item = Window> + '_ {
        self.windows.values().map(|state| state.window)
    }

    /// The current value of `key` in the window starting at `window_start`,
    /// if that window is in memory and the key has events in it.
    pub fn stats(&self, window_start: i64, key: &K) -> Option<Stats> {
        let state = self.windows.get(&window_start)?;
        state.groups.get(key).map(|group| group.stats)
    }

    /// The `n` keys with the largest `by` measure in the window starting at
    /// `window_start`, largest first, ties broken by ascending key. Empty when
    /// the window is not in memory (never seen, or already evicted).
    pub fn top_n(
        &self,
        window_start: i64,
        n: usize,
        by: impl Fn(&Stats) -> f64,
    ) -> Vec<(K, Stats)> {
        match self.windows.get(&window_start) {
            Some(state) => top_n_by(
                state
                    .groups
                    .iter()
                    .map(|(key, group)| (key.clone(), group.stats)),
                n,
                by,
            ),
            None => Vec::new(),
        }
    }
}

/// The `n` entries with the largest `by` measure, largest first, ties broken
/// by ascending key. A NaN measure ranks below every number, so a broken
/// value never tops a chart. Usable on drained updates too, once a window has
/// left memory.
pub fn top_n_by<K: Ord>(
    entries: impl IntoIterator<Item = (K, Stats)>,
    n: usize,
    by: impl Fn(&Stats) -> f64,
) -> Vec<(K, Stats)> {
    // Adding 0.0 turns -0.0 into 0.0 so the two tie, as they compare equal.
    let measure = |stats: &Stats| {
        let m = by(stats);
        if m.is_nan() {
            f64::NEG_INFINITY
        } else {
            m + 0.0
        }
    };
    let mut ranked: Vec<(f64, K, Stats)> = entries
        .into_iter()
        .map(|(key, stats)| (measure(&stats), key, stats))
        .collect();
    let order =
        |a: &(f64, K, Stats), b: &(f64, K, Stats)| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1));
    // Partition first so that only the n kept entries are sorted.
    if n < ranked.len() {
        ranked.select_nth_unstable_by(n, order);
        ranked.truncate(n);
    }
    ranked.sort_by(order);
    ranked
        .into_iter()
        .map(|(_, key, stats)| (key, stats))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeSet, HashMap};

    const MIN: i64 = 60_000;

    fn w(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    /// A window given in minutes.
    fn wm(start_min: i64, end_min: i64) -> Window {
        w(start_min * MIN, end_min * MIN)
    }

    fn stats(values: &[f64]) -> Stats {
        let mut s = Stats::of(values[0]);
        for v in &values[1..] {
            s.add(*v);
        }
        s
    }

    fn update<K>(window: Window, key: K, values: &[f64], phase: Phase) -> WindowUpdate<K> {
        WindowUpdate {
            window,
            key,
            stats: stats(values),
            phase,
        }
    }

    fn spec(size: i64, slide: i64, delay: i64, lateness: i64) -> WindowSpec {
        WindowSpec::new(size, slide, delay, lateness).expect("valid spec")
    }

    fn windows_of(spec: &WindowSpec, t: i64) -> Vec<Window> {
        spec.windows_of(t).expect("representable windows")
    }

    #[test]
    fn invalid_specs_are_rejected_with_the_reason() {
        use WindowSpecError::*;
        assert_eq!(WindowSpec::new(0, 1, 0, 0), Err(NonPositiveSize(0)));
        assert_eq!(WindowSpec::new(-10, 5, 0, 0), Err(NonPositiveSize(-10)));
        assert_eq!(
            WindowSpec::new(10, 0, 0, 0),
            Err(SlideOutOfRange {
                size_ms: 10,
                slide_ms: 0
            })
        );
        assert_eq!(
            WindowSpec::new(10, 11, 0, 0),
            Err(SlideOutOfRange {
                size_ms: 10,
                slide_ms: 11
            })
        );
        assert_eq!(
            WindowSpec::new(10, 5, -1, 0),
            Err(NegativeWatermarkDelay(-1))
        );
        assert_eq!(
            WindowSpec::new(10, 5, 0, -1),
            Err(NegativeAllowedLateness(-1))
        );
        assert_eq!(
            WindowSpec::new(100_001, 10, 0, 0),
            Err(TooManyWindowsPerEvent {
                size_ms: 100_001,
                slide_ms: 10
            })
        );
        assert!(WindowSpec::new(100_000, 10, 0, 0).is_ok());
        assert_eq!(
            WindowSpec::new(10, 11, 0, 0).map_err(|e| e.to_string()),
            Err("window slide must be positive and at most the size (10 ms), got 11 ms".into())
        );
        let tumbling = WindowSpec::tumbling(10, 3, 4).expect("valid");
        assert!(tumbling.is_tumbling());
        assert_eq!(
            (
                tumbling.size_ms(),
                tumbling.slide_ms(),
                tumbling.watermark_delay_ms(),
                tumbling.allowed_lateness_ms()
            ),
            (10, 10, 3, 4)
        );
        assert!(!spec(10, 5, 0, 0).is_tumbling());
    }

    #[test]
    fn tumbling_windows_hold_each_event_once_with_exact_boundaries() {
        let s = spec(10, 10, 0, 0);
        assert_eq!(windows_of(&s, 0), vec![w(0, 10)]);
        assert_eq!(windows_of(&s, 9), vec![w(0, 10)]);
        // An event exactly at a window's end belongs to the next window.
        assert_eq!(windows_of(&s, 10), vec![w(10, 20)]);
        assert_eq!(windows_of(&s, -1), vec![w(-10, 0)]);
        assert_eq!(windows_of(&s, -10), vec![w(-10, 0)]);
        assert_eq!(windows_of(&s, -11), vec![w(-20, -10)]);
        let minutes = spec(10 * MIN, 10 * MIN, 0, 0);
        assert_eq!(
            windows_of(&minutes, 1_583_292_719_000),
            vec![w(1_583_292_600_000, 1_583_293_200_000)]
        );
    }

    #[test]
    fn hopping_windows_overlap_including_uneven_slides() {
        let s = spec(10 * MIN, 5 * MIN, 0, 0);
        assert_eq!(windows_of(&s, 7 * MIN), vec![wm(0, 10), wm(5, 15)]);
        assert_eq!(windows_of(&s, 5 * MIN), vec![wm(0, 10), wm(5, 15)]);
        assert_eq!(windows_of(&s, 5 * MIN - 1), vec![wm(-5, 5), wm(0, 10)]);
        assert_eq!(windows_of(&s, 10 * MIN), vec![wm(5, 15), wm(10, 20)]);
        assert_eq!(windows_of(&s, -1), vec![wm(-10, 0), wm(-5, 5)]);
        assert_eq!(windows_of(&s, -5 * MIN), vec![wm(-10, 0), wm(-5, 5)]);
        assert_eq!(windows_of(&s, -5 * MIN - 1), vec![wm(-15, -5), wm(-10, 0)]);
        // A size that is not a multiple of the slide: three windows or two.
        let uneven = spec(10, 4, 0, 0);
        assert_eq!(windows_of(&uneven, 9), vec![w(0, 10), w(4, 14), w(8, 18)]);
        assert_eq!(windows_of(&uneven, 10), vec![w(4, 14), w(8, 18)]);
        assert_eq!(
            windows_of(&uneven, -3),
            vec![w(-12, -2), w(-8, 2), w(-4, 6)]
        );
        assert_eq!(windows_of(&uneven, -2), vec![w(-8, 2), w(-4, 6)]);
    }

    #[test]
    fn window_assignment_matches_a_scan_of_candidate_starts() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5_000 {
            let slide = rng.random_range(1..=50);
            let size = rng.random_range(slide..=200);
            let s = spec(size, slide, 0, 0);
            let t = rng.random_range(-1_000..1_000);
            // Scan every multiple of the slide from well before to after t.
            let expected: Vec<Window> = (-1_500..=1_500)
                .filter(|start: &i64| start % slide == 0)
                .map(|start| w(start, start + size))
                .filter(|window| window.contains(t))
                .collect();
            assert_eq!(
                windows_of(&s, t),
                expected,
                "size {size} slide {slide} t {t}"
            );
        }
    }

    #[test]
    fn times_whose_windows_leave_the_i64_range_are_out_of_range() {
        let s = spec(10, 10, 0, 0);
        assert_eq!(s.windows_of(i64::MAX), None);
        assert_eq!(s.windows_of(i64::MAX - 7), None);
        assert_eq!(
            s.windows_of(i64::MAX - 8),
            Some(vec![w(i64::MAX - 17, i64::MAX - 7)])
        );
        assert_eq!(s.windows_of(i64::MIN), None);
        assert_eq!(
            s.windows_of(i64::MIN + 8),
            Some(vec![w(i64::MIN + 8, i64::MIN + 18)])
        );
        let mut agg = WindowedAggregator::new(s);
        assert_eq!(agg.push("k", i64::MAX, 1.0), Admission::OutOfRange);
        // The bogus time must not drag the watermark forward.
        assert_eq!(agg.watermark(), None);
        assert_eq!(agg.windows().count(), 0);
    }

    #[test]
    fn seed_configuration_turns_provisional_windows_final_as_the_watermark_passes() {
        // 10-minute windows sliding every 5 minutes, 10-minute watermark.
        let mut agg = WindowedAggregator::new(spec(10 * MIN, 5 * MIN, 10 * MIN, 0));
        assert_eq!(agg.watermark(), None);
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![],
                evicted: vec![]
            }
        );

        assert_eq!(
            agg.push("a", MIN, 10.0),
            Admission::Accepted {
                windows: vec![wm(-5, 5), wm(0, 10)]
            }
        );
        assert_eq!(agg.watermark(), Some(-9 * MIN));
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(wm(-5, 5), "a", &[10.0], Phase::Provisional),
                    update(wm(0, 10), "a", &[10.0], Phase::Provisional),
                ],
                evicted: vec![]
            }
        );

        agg.push("b", 7 * MIN, 5.0);
        assert_eq!(agg.watermark(), Some(-3 * MIN));
        // Only what changed: "a" is not repeated.
        assert_eq!(
            agg.drain().updates,
            vec![
                update(wm(0, 10), "b", &[5.0], Phase::Provisional),
                update(wm(5, 15), "b", &[5.0], Phase::Provisional),
            ]
        );

        agg.push("a", 14 * MIN, 1.0);
        assert_eq!(agg.watermark(), Some(4 * MIN));
        assert_eq!(
            agg.drain().updates,
            vec![
                update(wm(5, 15), "a", &[1.0], Phase::Provisional),
                update(wm(10, 20), "a", &[1.0], Phase::Provisional),
            ]
        );

        // The watermark passes 0:05: the first window is final and, with no
        // allowed lateness, closed and evicted.
        agg.push("c", 16 * MIN, 2.0);
        assert_eq!(agg.watermark(), Some(6 * MIN));
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(wm(-5, 5), "a", &[10.0], Phase::Final),
                    update(wm(10, 20), "c", &[2.0], Phase::Provisional),
                    update(wm(15, 25), "c", &[2.0], Phase::Provisional),
                ],
                evicted: vec![wm(-5, 5)]
            }
        );

        // Past 0:15: two more windows turn final, reported whole.
        agg.push("b", 25 * MIN, 3.0);
        assert_eq!(agg.watermark(), Some(15 * MIN));
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(wm(0, 10), "a", &[10.0], Phase::Final),
                    update(wm(0, 10), "b", &[5.0], Phase::Final),
                    update(wm(5, 15), "a", &[1.0], Phase::Final),
                    update(wm(5, 15), "b", &[5.0], Phase::Final),
                    update(wm(20, 30), "b", &[3.0], Phase::Provisional),
                    update(wm(25, 35), "b", &[3.0], Phase::Provisional),
                ],
                evicted: vec![wm(0, 10), wm(5, 15)]
            }
        );
        assert_eq!(
            agg.windows().collect::<Vec<_>>(),
            vec![wm(10, 20), wm(15, 25), wm(20, 30), wm(25, 35)]
        );
        assert_eq!(
            agg.top_n(10 * MIN, 10, |s| s.sum),
            vec![("c", stats(&[2.0])), ("a", stats(&[1.0]))]
        );
        // Nothing changed, nothing to drain.
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![],
                evicted: vec![]
            }
        );
    }

    #[test]
    fn a_resumed_aggregator_keeps_closed_windows_closed() {
        // Tumbling 10 ms, watermark 5 ms behind, no lateness; the watermark
        // reached 20 before a restart, so [0, 10) and [10, 20) are closed.
        let mut resumed = WindowedAggregator::resuming(spec(10, 10, 5, 0), Some(20));
        assert_eq!(
            resumed.push("k", 15, 1.0),
            Admission::TooLate {
                refused: vec![w(10, 20)]
            }
        );
        // An older event does not move the watermark back.
        assert_eq!(resumed.watermark(), Some(20));
        assert_eq!(
            resumed.push("k", 21, 1.0),
            Admission::Accepted {
                windows: vec![w(20, 30)]
            }
        );
        assert_eq!(resumed.watermark(), Some(20));
        resumed.push("k", 31, 1.0);
        assert_eq!(resumed.watermark(), Some(26));
    }

    #[test]
    fn a_restored_source_resumes_its_clock() {
        // Two partitions; partition 1 had got to 50 before a restart.
        let mut agg = WindowedAggregator::new(spec(10, 10, 5, 0));
        let kept = |max_event_ms| SourceProgress {
            max_event_ms,
            seen_ms: 0,
        };
        agg.register_source(0, 0);
        agg.restore_sources([(1, kept(50))], 0);
        assert_eq!(agg.source_progress(1), Some(kept(50)));
        // Partition 0 has not delivered yet: it holds the watermark back.
        assert_eq!(agg.watermark(), None);
        // Partition 0 is the slowest: the watermark trails it, not the restored one.
        agg.push_from(0, 0, "k", 30, 1.0);
        assert_eq!(agg.watermark(), Some(25));
        agg.push_from(0, 0, "k", 60, 1.0);
        assert_eq!(agg.watermark(), Some(45));
        // A restored clock never goes back.
        agg.restore_sources([(1, kept(40))], 0);
        assert_eq!(agg.source_progress(1), Some(kept(50)));

        // Alone, a restored partition sets the watermark before its next event.
        let mut alone = WindowedAggregator::<&str>::new(spec(10, 10, 5, 0));
        alone.restore_sources([(0, kept(50))], 0);
        assert_eq!(alone.watermark(), Some(45));
        assert!(matches!(
            alone.push_from(0, 0, "k", 20, 1.0),
            Admission::TooLate { .. }
        ));

        // A source kept as last seen long ago is idle: it does not hold back.
        let mut resumed = WindowedAggregator::<&str>::new(spec(10, 10, 5, 0));
        let stale = SourceProgress {
            max_event_ms: 10,
            seen_ms: 0,
        };
        resumed.restore_sources([(1, stale)], IDLE_SOURCE_MS + 1);
        resumed.push_from(0, IDLE_SOURCE_MS + 1, "k", 100, 1.0);
        assert_eq!(resumed.watermark(), Some(95));
    }

    #[test]
    fn out_of_order_late_and_too_late_events() {
        // Tumbling 10 ms, watermark 5 ms behind, late events allowed for 10 ms.
        let mut agg = WindowedAggregator::new(spec(10, 10, 5, 10));
        agg.push("k", 12, 1.0);
        assert_eq!(agg.watermark(), Some(7));

        // Out of order but ahead of the watermark: provisional.
        assert_eq!(
            agg.push("k", 3, 2.0),
            Admission::Accepted {
                windows: vec![w(0, 10)]
            }
        );
        assert_eq!(agg.watermark(), Some(7));
        assert_eq!(
            agg.drain().updates,
            vec![
                update(w(0, 10), "k", &[2.0], Phase::Provisional),
                update(w(10, 20), "k", &[1.0], Phase::Provisional),
            ]
        );
        agg.push("k", 5, 4.0);
        assert_eq!(
            agg.drain().updates,
            vec![update(w(0, 10), "k", &[2.0, 4.0], Phase::Provisional)]
        );

        // Watermark 11 passes the end of [0, 10): final, but kept for lateness.
        agg.push("k", 16, 8.0);
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(w(0, 10), "k", &[2.0, 4.0], Phase::Final),
                    update(w(10, 20), "k", &[1.0, 8.0], Phase::Provisional),
                ],
                evicted: vec![]
            }
        );

        // Late but within the allowed lateness: updates the final window.
        assert_eq!(
            agg.push("k", 8, 16.0),
            Admission::Accepted {
                windows: vec![w(0, 10)]
            }
        );
        assert_eq!(
            agg.drain().updates,
            vec![update(w(0, 10), "k", &[2.0, 4.0, 16.0], Phase::LateUpdate)]
        );

        // Watermark 25 closes [0, 10) for good (10 + 10 <= 25).
        agg.push("k", 30, 32.0);
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(w(10, 20), "k", &[1.0, 8.0], Phase::Final),
                    update(w(30, 40), "k", &[32.0], Phase::Provisional),
                ],
                evicted: vec![w(0, 10)]
            }
        );

        // Too late: reported, not aggregated, nothing to drain.
        assert_eq!(
            agg.push("k", 9, 64.0),
            Admission::TooLate {
                refused: vec![w(0, 10)]
            }
        );
        assert_eq!(agg.stats(0, &"k"), None);
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![],
                evicted: vec![]
            }
        );
        assert_eq!(
            agg.windows().collect::<Vec<_>>(),
            vec![w(10, 20), w(30, 40)]
        );

        // [10, 20) is final but open until the watermark reaches 30.
        assert!(agg.push("k", 19, 128.0).is_aggregated());
        assert_eq!(
            agg.drain().updates,
            vec![update(
                w(10, 20),
                "k",
                &[1.0, 8.0, 128.0],
                Phase::LateUpdate
            )]
        );
        agg.push("k", 35, 1.0);
        assert_eq!(agg.watermark(), Some(30));
        let refused = agg.push("k", 19, 256.0);
        assert_eq!(
            refused,
            Admission::TooLate {
                refused: vec![w(10, 20)]
            }
        );
        assert_eq!(refused.accepted(), &[] as &[Window]);
        assert_eq!(refused.refused(), &[w(10, 20)]);
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![update(w(30, 40), "k", &[32.0, 1.0], Phase::Provisional)],
                evicted: vec![w(10, 20)]
            }
        );
    }

    #[test]
    fn watermark_boundaries_are_exact() {
        let mut agg = WindowedAggregator::new(spec(10, 10, 0, 5));
        agg.push("k", 9, 1.0);
        assert_eq!(
            agg.drain().updates,
            vec![update(w(0, 10), "k", &[1.0], Phase::Provisional)]
        );
        // A watermark equal to the end makes the window final.
        agg.push("k", 10, 2.0);
        assert_eq!(
            agg.drain().updates,
            vec![
                update(w(0, 10), "k", &[1.0], Phase::Final),
                update(w(10, 20), "k", &[2.0], Phase::Provisional),
            ]
        );
        // One below end + lateness: still open.
        agg.push("k", 14, 0.0);
        assert!(agg.push("k", 9, 4.0).is_aggregated());
        // Equal to end + lateness: closed.
        agg.push("k", 15, 0.0);
        assert_eq!(
            agg.push("k", 9, 8.0),
            Admission::TooLate {
                refused: vec![w(0, 10)]
            }
        );
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(w(0, 10), "k", &[1.0, 4.0], Phase::LateUpdate),
                    update(w(10, 20), "k", &[2.0, 0.0, 0.0], Phase::Provisional),
                ],
                evicted: vec![w(0, 10)]
            }
        );
    }

    #[test]
    fn watermark_never_decreases() {
        let mut agg = WindowedAggregator::new(spec(10, 10, 3, 100));
        agg.push(1u8, 100, 1.0);
        assert_eq!(agg.watermark(), Some(97));
        agg.push(1, 50, 1.0);
        assert_eq!(agg.watermark(), Some(97));
        agg.push(1, 101, 1.0);
        assert_eq!(agg.watermark(), Some(98));
    }

    #[test]
    fn hopping_event_partly_too_late_updates_the_open_windows_only() {
        let mut agg = WindowedAggregator::new(spec(10, 5, 0, 0));
        agg.push("k", 20, 1.0);
        assert_eq!(
            agg.push("k", 17, 2.0),
            Admission::Partial {
                accepted: vec![w(15, 25)],
                refused: vec![w(10, 20)]
            }
        );
        assert_eq!(
            agg.push("k", 14, 4.0),
            Admission::TooLate {
                refused: vec![w(5, 15), w(10, 20)]
            }
        );
        assert_eq!(
            agg.drain(),
            Drained {
                updates: vec![
                    update(w(15, 25), "k", &[1.0, 2.0], Phase::Provisional),
                    update(w(20, 30), "k", &[1.0], Phase::Provisional),
                ],
                evicted: vec![]
            }
        );
        assert_eq!(agg.stats(10, &"k"), None);
        assert_eq!(agg.stats(5, &"k"), None);
    }

    #[test]
    fn a_new_key_in_a_window_already_reported_final_is_a_late_update() {
        let mut agg = WindowedAggregator::new(spec(10, 10, 0, 10));
        agg.push("a", 12, 1.0);
        agg.drain();
        // [0, 10) is first seen after the watermark passed its end: its first
        // report is the final one.
        agg.push("b", 5, 2.0);
        assert_eq!(
            agg.drain().updates,
            vec![update(w(0, 10), "b", &[2.0], Phase::Final)]
        );
        agg.push("c", 6, 3.0);
        assert_eq!(
            agg.drain().updates,
            vec![update(w(0, 10), "c", &[3.0], Phase::LateUpdate)]
        );
        assert!(Phase::LateUpdate.is_final() && Phase::Final.is_final());
        assert!(!Phase::Provisional.is_final());
    }

    #[test]
    fn top_n_ranks_by_the_measure_and_breaks_ties_by_key() {
        let mut agg = WindowedAggregator::new(spec(10, 10, 0, 0));
        for (key, value) in [
            ("d", 1.0),
            ("c", 7.0),
            ("e", 3.0),
            ("a", 5.0),
            ("b", 7.0),
            ("e", 3.0),
        ] {
            agg.push(key, 4, value);
        }
        let keys = |ranked: Vec<(&'static str, Stats)>| -> Vec<&str> {
            ranked.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            agg.top_n(0, 3, |s| s.sum),
            vec![
                ("b", stats(&[7.0])),
                ("c", stats(&[7.0])),
                ("e", stats(&[3.0, 3.0]))
            ]
        );
        assert_eq!(keys(agg.top_n(0, 2, |s| s.count as f64)), vec!["e", "a"]);
        assert_eq!(
            keys(agg.top_n(0, 10, |s| s.sum)),
            vec!["b", "c", "e", "a", "d"]
        );
        assert_eq!(
            keys(agg.top_n(0, 5, |s| -s.max)),
            vec!["d", "e", "a", "b", "c"]
        );
        assert_eq!(agg.top_n(0, 0, |s| s.sum), vec![]);
        assert_eq!(agg.top_n(10, 3, |s| s.sum), vec![]);

        // NaN ranks last; -0.0 ties with 0.0 and falls back to the key.
        let entries = vec![
            (1, stats(&[f64::NAN])),
            (2, stats(&[-1.0])),
            (3, stats(&[0.0])),
            (4, stats(&[-0.0])),
        ];
        let ranked: Vec<i32> = top_n_by(entries, 4, |s| s.sum)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(ranked, vec![3, 4, 2, 1]);
    }

    #[test]
    fn evicted_windows_are_gone_and_state_stays_bounded() {
        let (size, slide, delay, lateness) = (100, 25, 50, 30);
        let mut agg = WindowedAggregator::new(spec(size, slide, delay, lateness));
        // Window starts lie in (max - delay - lateness - size, max].
        let bound = (delay + lateness + size) / slide + 1;
        let mut evicted = Vec::new();
        let mut reported_final = BTreeSet::new();
        for i in 0..2_000 {
            agg.push(i % 5, i * 7, 1.0);
            let drained = agg.drain();
            for u in &drained.updates {
                if u.phase.is_final() {
                    reported_final.insert(u.window);
                }
            }
            for window in &drained.evicted {
                assert!(
                    reported_final.contains(window),
                    "{window:?} evicted unreported"
                );
            }
            evicted.extend(drained.evicted);
            let watermark = agg.watermark().expect("events seen");
            assert!(agg.windows().count() as i64 <= bound);
            assert!(agg.windows().all(|w| watermark < w.end + lateness));
        }
        // Every window from the first to the last closed one, each evicted once, in order.
        let expected: Vec<Window> = (0..evicted.len() as i64)
            .map(|i| w(-75 + i * slide, -75 + i * slide + size))
            .collect();
        assert_eq!(evicted, expected);
        assert!(evicted.len() > 500);
        assert_eq!(agg.stats(0, &0), None);
        assert_eq!(agg.top_n(0, 5, |s| s.sum), vec![]);
        assert!(
            agg.windows()
                .all(|w| w.start > 13_993 - delay - lateness - size)
        );
    }

    /// Which windows hold `t`, by checking every multiple of the slide near it.
    fn brute_force_windows(spec: &WindowSpec, t: i64) -> Vec<Window> {
        let (size, slide) = (spec.size_ms(), spec.slide_ms());
        let first = (t - size).div_euclid(slide) * slide;
        (0..)
            .map(|i| first + i * slide)
            .take_while(|start| *start <= t)
            .map(|start| w(start, start + size))
            .filter(|window| window.contains(t))
            .collect()
    }

    fn random_spec(rng: &mut StdRng, max_delay: i64, lateness: i64) -> WindowSpec {
        let slide = rng.random_range(1..=40);
        let size = slide * rng.random_range(1..=4) + rng.random_range(0..slide);
        spec(size, slide, rng.random_range(1..=max_delay), lateness)
    }

    #[test]
    fn with_disorder_within_the_watermark_final_values_equal_brute_force() {
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let spec = random_spec(&mut rng, 200, 0);
            let disorder = rng.random_range(0..spec.watermark_delay_ms());
            let mut agg = WindowedAggregator::new(spec);
            let mut expected: BTreeMap<(Window, u8), Stats> = BTreeMap::new();
            let mut finals: BTreeMap<(Window, u8), Stats> = BTreeMap::new();
            let mut record = |drained: Drained<u8>| {
                for u in drained.updates {
                    assert_ne!(u.phase, Phase::LateUpdate, "seed {seed}");
                    if u.phase == Phase::Final {
                        let old = finals.insert((u.window, u.key), u.stats);
                        assert_eq!(old, None, "seed {seed}: final twice");
                    } else {
                        assert!(!finals.contains_key(&(u.window, u.key)), "seed {seed}");
                    }
                }
            };
            // Times trail a rising base by less than the watermark delay.
            let mut base = rng.random_range(-1_000..1_000);
            let mut max_t = i64::MIN;
            for _ in 0..rng.random_range(1..300) {
                base += rng.random_range(0..20);
                let t = base - rng.random_range(0..=disorder);
                let key = rng.random_range(0..4u8);
                // Whole numbers keep sums exact whatever the order of addition.
                let value = rng.random_range(0..100) as f64;
                let admission = agg.push(key, t, value);
                assert_eq!(
                    admission,
                    Admission::Accepted {
                        windows: brute_force_windows(&spec, t)
                    },
                    "seed {seed}"
                );
                for window in brute_force_windows(&spec, t) {
                    expected
                        .entry((window, key))
                        .and_modify(|s| s.add(value))
                        .or_insert_with(|| Stats::of(value));
                }
                max_t = max_t.max(t);
                if rng.random_bool(0.2) {
                    record(agg.drain());
                }
            }
            // A sentinel far enough ahead moves the watermark past every window end.
            let sentinel = max_t + spec.size_ms() + spec.watermark_delay_ms();
            agg.push(u8::MAX, sentinel, 0.0);
            record(agg.drain());
            finals.retain(|(_, key), _| *key != u8::MAX);
            assert_eq!(finals, expected, "seed {seed}");
            assert!(agg.windows().all(|w| w.contains(sentinel)), "seed {seed}");
        }
    }

    #[test]
    fn with_any_disorder_every_event_is_aggregated_or_reported_too_late() {
        let (mut too_late, mut partial, mut late_updates) = (0, 0, 0);
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let lateness = rng.random_range(0..=100);
            let spec = random_spec(&mut rng, 100, lateness);
            let mut agg = WindowedAggregator::new(spec);
            let spread = rng.random_range(0..=500);
            let mut cursor = rng.random_range(-2_000..2_000);
            // An independent model: maximum seen, accepted sums per window and key.
            let mut max_seen: Option<i64> = None;
            let mut model: BTreeMap<(Window, u8), Stats> = BTreeMap::new();
            let mut latest: HashMap<(Window, u8), (Stats, Phase)> = HashMap::new();
            let mut windows_final = BTreeSet::new();
            let mut evicted = BTreeSet::new();
            let (mut events, mut aggregated, mut refused_all, mut placements) = (0, 0, 0, 0);
            for _ in 0..rng.random_range(1..400) {
                cursor += rng.random_range(0..30);
                let t = cursor + rng.random_range(-spread..=spread);
                let key = rng.random_range(0..3u8);
                let value = rng.random_range(0..100) as f64;
                let admission = agg.push(key, t, value);
                events += 1;

                let watermark = max_seen.map(|m| m - spec.watermark_delay_ms());
                let (shut, open): (Vec<Window>, Vec<Window>) = brute_force_windows(&spec, t)
                    .into_iter()
                    .partition(|w| watermark.is_some_and(|wm| wm >= w.end + lateness));
                assert_eq!(admission.accepted(), open.as_slice(), "seed {seed}");
                assert_eq!(admission.refused(), shut.as_slice(), "seed {seed}");
                match &admission {
                    Admission::Accepted { .. } => assert!(shut.is_empty()),
                    Admission::Partial { .. } => partial += 1,
                    Admission::TooLate { .. } => assert!(open.is_empty()),
                    Admission::OutOfRange => panic!("seed {seed}: {t} out of range"),
                }
                if admission.is_aggregated() {
                    aggregated += 1;
                } else {
                    refused_all += 1;
                }
                placements += open.len() as u64;
                for window in open {
                    assert!(
                        !evicted.contains(&window),
                        "seed {seed}: evicted window revived"
                    );
                    model
                        .entry((window, key))
                        .and_modify(|s| s.add(value))
                        .or_insert_with(|| Stats::of(value));
                }
                max_seen = Some(max_seen.map_or(t, |m| m.max(t)));

                if rng.random_bool(0.15) {
                    let drained = agg.drain();
                    let wm = agg.watermark().expect("events seen");
                    let mut turned_final = BTreeSet::new();
                    for u in drained.updates {
                        assert_eq!(u.phase.is_final(), wm >= u.window.end, "seed {seed}");
                        assert!(!evicted.contains(&u.window), "seed {seed}");
                        match u.phase {
                            Phase::Final => {
                                assert!(!windows_final.contains(&u.window), "seed {seed}");
                                turned_final.insert(u.window);
                            }
                            Phase::LateUpdate => {
                                assert!(windows_final.contains(&u.window), "seed {seed}");
                                late_updates += 1;
                            }
                            Phase::Provisional => {}
                        }
                        latest.insert((u.window, u.key), (u.stats, u.phase));
                    }
                    windows_final.extend(turned_final);
                    for window in drained.evicted {
                        assert!(wm >= window.end + lateness, "seed {seed}");
                        assert!(windows_final.contains(&window), "seed {seed}");
                        evicted.insert(window);
                    }
                    assert!(
                        agg.windows().all(|w| wm < w.end + lateness),
                        "seed {seed}: closed window kept"
                    );
                }
            }
            // One last drain hands over whatever changed since the previous one.
            for u in agg.drain().updates {
                latest.insert((u.window, u.key), (u.stats, u.phase));
            }
            let latest: BTreeMap<(Window, u8), Stats> =
                latest.into_iter().map(|(cell, (s, _))| (cell, s)).collect();
            assert_eq!(latest, model, "seed {seed}");
            // Conservation: each event lands somewhere or is reported.
            assert_eq!(aggregated + refused_all, events, "seed {seed}");
            assert_eq!(
                latest.values().map(|s| s.count).sum::<u64>(),
                placements,
                "seed {seed}"
            );
            too_late += refused_all;
        }
        // The streams must exercise every path, or the test proves little.
        assert!(too_late > 1_000, "{too_late} too late");
        assert!(partial > 100, "{partial} partial");
        assert!(late_updates > 100, "{late_updates} late updates");
    }

    #[test]
    fn a_partition_read_behind_the_others_is_not_late() {
        // 10-minute tumbling windows, 10-minute watermark, no lateness.
        let spec = WindowSpec::tumbling(10 * MIN, 10 * MIN, 0).expect("spec");
        let mut agg: WindowedAggregator<&str> = WindowedAggregator::new(spec);
        // Both partitions are assigned; partition 0 delivers five hours ahead.
        agg.register_source(0, 1_000);
        agg.register_source(1, 1_000);
        agg.push_from(0, 1_000, "a", 300 * MIN, 1.0);
        assert_eq!(agg.watermark(), None, "waits for partition 1");
        assert!(matches!(
            agg.push_from(1, 1_000, "a", 5 * MIN, 1.0),
            Admission::Accepted { .. }
        ));
        assert_eq!(agg.watermark(), Some(-5 * MIN));
        // Partition 1's next event is on time, though hours behind partition 0.
        assert!(matches!(
            agg.push_from(1, 1_100, "a", 6 * MIN, 1.0),
            Admission::Accepted { .. }
        ));
        // A single source would have judged it too late.
        let mut single: WindowedAggregator<&str> = WindowedAggregator::new(spec);
        single.push("a", 300 * MIN, 1.0);
        assert!(matches!(
            single.push("a", 6 * MIN, 1.0),
            Admission::TooLate { .. }
        ));
    }

    #[test]
    fn an_idle_source_stops_holding_the_watermark_back() {
        let spec = WindowSpec::tumbling(10 * MIN, 10 * MIN, 0).expect("spec");
        let mut agg: WindowedAggregator<&str> = WindowedAggregator::new(spec);
        agg.register_source(0, 0);
        agg.register_source(1, 0);
        agg.push_from(0, 0, "a", 100 * MIN, 1.0);
        agg.push_from(1, 0, "a", 20 * MIN, 1.0);
        assert_eq!(agg.watermark(), Some(10 * MIN));
        // Partition 1 falls silent; partition 0 goes on past the idle time.
        agg.push_from(0, IDLE_SOURCE_MS + 1, "a", 101 * MIN, 1.0);
        assert_eq!(agg.watermark(), Some(91 * MIN));
        // Partition 1 comes back behind: the watermark does not go back.
        agg.push_from(1, IDLE_SOURCE_MS + 2, "a", 21 * MIN, 1.0);
        assert_eq!(agg.watermark(), Some(91 * MIN));
    }
}
