//! `/`: the live IoT sensor dashboard.

use crate::refresh::use_refresh_tick;
use crate::sensor_averages::SensorAverageTable;
use crate::temperature::TemperatureChart;
use leptos::prelude::*;
use std::time::Duration;

/// How often the page refreshes its charts.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[component]
pub fn SensorsPage() -> impl IntoView {
    let tick = use_refresh_tick(REFRESH_EVERY);
    view! {
        <div class="dashboard-header">
            <h1>"IoT sensors"</h1>
            <p class="refresh">"Refreshes every " {REFRESH_EVERY.as_secs()} " s"</p>
        </div>
        <TemperatureChart tick/>
        <SensorAverageTable tick/>
    }
}
