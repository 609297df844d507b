//! Pulseboard's pages, components and server functions.
//!
//! Built twice: with `ssr` for the server (database access and chart
//! rendering live here) and with `hydrate` for the browser bundle.

pub mod browser;
pub mod chart;
pub mod dashboard;
pub mod error;
pub mod pages;
pub mod panel;
pub mod refresh;
pub mod sensor_averages;
pub mod streams;
pub mod temperature;
pub mod text;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{Route, Router, Routes},
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/pulseboard.css"/>
        <Title text="Pulseboard"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Pulseboard"</a>
                <nav>
                    <a href="/">"Sensors"</a>
                    <a href="/dashboards">"Dashboards"</a>
                    <a href="/charts">"Charts"</a>
                    <a href="/streams">"Streams"</a>
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=pages::sensors::SensorsPage/>
                    <Route path=StaticSegment("streams") view=pages::streams::StreamsPage/>
                    <Route path=StaticSegment("dashboards") view=pages::dashboards::DashboardsPage/>
                    <Route path=(StaticSegment("d"), ParamSegment("slug")) view=pages::dashboard::DashboardPageView/>
                    <Route path=StaticSegment("charts") view=pages::charts::ChartsPage/>
                    <Route path=(StaticSegment("charts"), ParamSegment("id")) view=pages::charts::ChartEditorPage/>
                </Routes>
            </main>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Lets browser tests wait until buttons work.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
