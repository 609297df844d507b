//! Properties of window assignment and of merging partial aggregates, over
//! generated specs, event times and orders.

use proptest::prelude::*;
use server::operators::stats::{GroupedStats, Stats};
use server::operators::window::{Window, WindowSpec, WindowedAggregator};
use std::collections::BTreeMap;

/// Valid window specs: sizes up to an hour, slides dividing into at most 60
/// windows per event, tumbling included.
fn spec() -> impl Strategy<Value = WindowSpec> {
    (1i64..3_600_000, 1i64..=60).prop_flat_map(|(size, per_event)| {
        let least_slide = (size + per_event - 1) / per_event;
        (Just(size), least_slide.max(1)..=size)
            .prop_map(|(size, slide)| WindowSpec::new(size, slide, 0, 0).expect("a valid spec"))
    })
}

/// Event times in ±10^10 ms, half of them on or next to the times where a
/// window starts or ends (where off-by-one errors live).
fn event_near_edges(spec: WindowSpec) -> impl Strategy<Value = i64> {
    let (size, slide) = (spec.size_ms(), spec.slide_ms());
    let step = -10_000_000_000 / slide..10_000_000_000 / slide;
    prop_oneof![
        -10_000_000_000i64..10_000_000_000,
        (step, -1i64..=1, prop::bool::ANY).prop_map(move |(k, nudge, at_end)| {
            // A window starts at multiples of the slide and ends `size` later.
            k * slide + if at_end { size % slide } else { 0 } + nudge
        }),
    ]
}

/// A reading as Postgres keeps it: two decimals.
fn value() -> impl Strategy<Value = f64> {
    (-5_000i32..15_000).prop_map(|cents| f64::from(cents) / 100.0)
}

/// Count, minimum and maximum exactly; sums up to float rounding (Postgres
/// adds the merged sums as exact numerics, and two decimals are shown).
fn assert_same(a: &Stats, b: &Stats) {
    assert_eq!((a.count, a.min, a.max), (b.count, b.min, b.max));
    assert!(
        (a.sum - b.sum).abs() <= 1e-9 * a.sum.abs().max(1.0),
        "sums {} and {}",
        a.sum,
        b.sum
    );
}

proptest! {
    /// The windows of an event hold it, are the spec's size, start on the
    /// slide's grid, and are all the windows that hold it.
    #[test]
    fn an_event_falls_in_every_window_that_holds_it_and_no_other(
        (spec, event) in spec().prop_flat_map(|spec| (Just(spec), event_near_edges(spec))),
    ) {
        let windows = spec.windows_of(event).expect("in range");
        prop_assert!(!windows.is_empty());
        for w in &windows {
            prop_assert!(w.contains(event));
            prop_assert_eq!(w.end - w.start, spec.size_ms());
            prop_assert_eq!(w.start.rem_euclid(spec.slide_ms()), 0);
        }
        for pair in windows.windows(2) {
            prop_assert_eq!(pair[1].start - pair[0].start, spec.slide_ms());
        }
        let before = windows[0].start - spec.slide_ms();
        let after = windows[windows.len() - 1].start + spec.slide_ms();
        for start in [before, after] {
            let neighbour = Window { start, end: start + spec.size_ms() };
            prop_assert!(!neighbour.contains(event), "{neighbour:?} also holds {event}");
        }
        if spec.is_tumbling() {
            prop_assert_eq!(windows.len(), 1);
        }
    }

    /// Partial aggregates merged in any grouping and order give what
    /// aggregating every value at once gives.
    #[test]
    fn partial_aggregates_merge_in_any_order_to_the_same_result(
        values in prop::collection::vec((0u8..6, value()), 1..400),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        order in any::<u64>(),
    ) {
        let mut whole = GroupedStats::default();
        for (key, v) in &values {
            whole.add(*key, *v);
        }
        // Cut the values into batches, aggregate each, merge in a shuffled order.
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(values.len())).collect();
        bounds.extend([0, values.len()]);
        bounds.sort_unstable();
        let mut partials: Vec<GroupedStats<u8>> = bounds
            .windows(2)
            .map(|b| {
                let mut partial = GroupedStats::default();
                for (key, v) in &values[b[0]..b[1]] {
                    partial.add(*key, *v);
                }
                partial
            })
            .collect();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(order);
        rand::seq::SliceRandom::shuffle(partials.as_mut_slice(), &mut rng);
        let mut merged = GroupedStats::default();
        for partial in &partials {
            merged.merge(partial);
        }
        prop_assert_eq!(merged.len(), whole.len());
        for ((key_a, a), (key_b, b)) in merged.iter().zip(whole.iter()) {
            prop_assert_eq!(key_a, key_b);
            assert_same(a, b);
        }
    }

    /// Events pushed in any order, with a watermark delay that lets none be
    /// late, give every window and group the figures computed directly from
    /// the events.
    #[test]
    fn windowed_aggregates_do_not_depend_on_arrival_order(
        spec in spec(),
        events in prop::collection::vec((0u8..4, 0i64..7_200_000, value()), 1..300),
        order in any::<u64>(),
    ) {
        let patient = WindowSpec::new(spec.size_ms(), spec.slide_ms(), 7_200_000, 0)
            .expect("a valid spec");
        let mut expected: BTreeMap<(i64, u8), Stats> = BTreeMap::new();
        for (key, at, v) in &events {
            for w in patient.windows_of(*at).expect("in range") {
                expected
                    .entry((w.start, *key))
                    .and_modify(|s| s.add(*v))
                    .or_insert_with(|| Stats::of(*v));
            }
        }
        let mut shuffled = events.clone();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(order);
        rand::seq::SliceRandom::shuffle(shuffled.as_mut_slice(), &mut rng);
        let mut aggregator = WindowedAggregator::new(patient);
        for (key, at, v) in &shuffled {
            prop_assert!(aggregator.push(*key, *at, *v).is_aggregated());
        }
        for ((start, key), want) in &expected {
            let got = aggregator.stats(*start, key).expect("a window for every event");
            assert_same(&got, want);
        }
        prop_assert_eq!(
            aggregator.windows().count(),
            expected.keys().map(|(start, _)| *start).collect::<std::collections::BTreeSet<_>>().len()
        );
    }
}
