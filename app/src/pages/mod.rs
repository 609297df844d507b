//! Routed pages, one per file.

pub mod admin;
pub mod chart_tile;
pub mod charts;
pub mod dashboard;
pub mod dashboards;
pub mod login;
pub mod sensors;
pub mod streams;

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

/// A route whose page code the browser downloads on the first visit to it
/// (in its own module when the bundle is built with `--split`), so no page
/// waits for the code of the others.
macro_rules! lazy_page {
    ($route:ident, $page:ident) => {
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_route: Self) -> AnyView {
                view! { <$page/> }.into_any()
            }
        }
    };
}

use admin::AdminPage;
use charts::{ChartEditorPage, ChartsPage};
use dashboard::DashboardPageView;
use dashboards::DashboardsPage;
use login::LoginPage;
use sensors::SensorsPage;
use streams::StreamsPage;

lazy_page!(SensorsRoute, SensorsPage);
lazy_page!(StreamsRoute, StreamsPage);
lazy_page!(DashboardsRoute, DashboardsPage);
lazy_page!(DashboardRoute, DashboardPageView);
lazy_page!(ChartsRoute, ChartsPage);
lazy_page!(ChartEditorRoute, ChartEditorPage);
lazy_page!(LoginRoute, LoginPage);
lazy_page!(AdminRoute, AdminPage);

/// A `<select>` over (value, label) pairs. Every picker of the editor and
/// the dashboard is one, so the browser bundle holds a single copy of a
/// select's code.
#[component]
pub fn Choice(
    options: Signal<Vec<(String, String)>>,
    current: Signal<String>,
    choose: Callback<String>,
    #[prop(default = None, into)] test_id: Option<&'static str>,
    #[prop(default = None, into)] class: Option<&'static str>,
) -> impl IntoView {
    view! {
        <select data-testid=test_id class=class on:change=move |ev| choose.run(event_target_value(&ev))>
            {move || options.get().into_iter().map(|(value, label)| {
                let chosen = value.clone();
                view! { <option value=value selected=move || current.with(|c| *c == chosen)>{label}</option> }
            }).collect_view()}
        </select>
    }
}

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
