//! `/streams`: how each stream is doing, refreshing by itself.

use crate::pages::sensors::REFRESH_EVERY;
use crate::refresh::use_refresh_tick;
use crate::streams::StreamsTable;
use leptos::prelude::*;

#[component]
pub fn StreamsPage() -> impl IntoView {
    let tick = use_refresh_tick(REFRESH_EVERY);
    view! {
        <div class="dashboard-header">
            <h1>"Streams"</h1>
            <p class="refresh">"Refreshes every " {REFRESH_EVERY.as_secs()} " s"</p>
        </div>
        <StreamsTable tick/>
    }
}
