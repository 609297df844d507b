//! Routed pages, one per file.

pub mod chart_tile;
pub mod charts;
pub mod dashboard;
pub mod dashboards;
pub mod sensors;
pub mod streams;

use leptos::prelude::*;

/// The one error view shown inside every `ErrorBoundary`.
pub fn error_list(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div class="error" role="alert">
            <ul>
                {move || errors.get().into_iter().map(|(_, e)| view! { <li>{e.to_string()}</li> }).collect_view()}
            </ul>
        </div>
    }
}
