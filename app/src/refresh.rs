//! Auto-refresh: a counter that ticks on an interval in the browser.

use leptos::prelude::*;
use std::time::Duration;

/// A signal that increases every `period` while the tab is visible.
///
/// Resources keyed on it refetch on each tick. It never ticks during server
/// rendering, because effects only run in the browser.
pub fn use_refresh_tick(period: Duration) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0_u64);
    Effect::new(move |_| {
        let advance = move || {
            if !tab_hidden() {
                set_tick.update(|t| *t += 1);
            }
        };
        match set_interval_with_handle(advance, period) {
            Ok(handle) => on_cleanup(move || handle.clear()),
            Err(error) => leptos::logging::error!("auto-refresh unavailable: {error:?}"),
        }
    });
    tick
}

#[cfg(feature = "hydrate")]
pub fn tab_hidden() -> bool {
    document().hidden()
}

#[cfg(not(feature = "hydrate"))]
pub fn tab_hidden() -> bool {
    false
}
