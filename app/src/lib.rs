//! Pulseboard's pages, components and server functions.
//!
//! Built twice: with `ssr` for the server (database access and chart
//! rendering live here) and with `hydrate` for the browser bundle.

pub mod accounts;
#[cfg(feature = "ssr")]
pub mod announced;
pub mod browser;
pub mod chart;
pub mod codec;
pub mod dashboard;
#[cfg(feature = "ssr")]
pub mod duration_histogram;
pub mod error;
pub mod json_layout;
pub mod number;
pub mod pages;
pub mod panel;
pub mod refresh;
pub mod sensor_averages;
pub mod streams;
pub mod temperature;
pub mod text;

/// Repeatable pseudo-random numbers for tests that sweep many inputs
/// (xorshift64: the same sequence on every run).
#[cfg(test)]
pub(crate) fn test_random() -> impl FnMut() -> u64 {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, ParamSegment, StaticSegment,
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
                <meta name=browser::ACCOUNT_META content=browser::served_account().map(|(name, role)| format!("{name} {}", role.name()))/>
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
                <AccountMenu/>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=StaticSegment("") view={Lazy::<pages::SensorsRoute>::new()}/>
                    <Route path=StaticSegment("streams") view={Lazy::<pages::StreamsRoute>::new()}/>
                    <Route path=StaticSegment("dashboards") view={Lazy::<pages::DashboardsRoute>::new()}/>
                    <Route path=(StaticSegment("d"), ParamSegment("slug")) view={Lazy::<pages::DashboardRoute>::new()}/>
                    <Route path=StaticSegment("charts") view={Lazy::<pages::ChartsRoute>::new()}/>
                    <Route path=(StaticSegment("charts"), ParamSegment("id")) view={Lazy::<pages::ChartEditorRoute>::new()}/>
                    <Route path=StaticSegment("login") view={Lazy::<pages::LoginRoute>::new()}/>
                    <Route path=StaticSegment("admin") view={Lazy::<pages::AdminRoute>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

/// Who is signed in, with the way out; admins also get their page.
#[component]
fn AccountMenu() -> impl IntoView {
    view! {
        <div class="account">
            {match browser::served_account() {
                Some((username, role)) => view! {
                    {(role == accounts::Role::Admin).then(|| view! { <a href="/admin">"Admin"</a> })}
                    <span data-testid="signed-in-as">{username}" ("{role.name()}")"</span>
                    <form method="post" action="/logout"><button type="submit" data-testid="sign-out">"Sign out"</button></form>
                }.into_any(),
                None => view! { <a href="/login" data-testid="sign-in-link">"Sign in"</a> }.into_any(),
            }}
        </div>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console, for builds that format them: the release
    // bundle aborts at once instead (see `leptos_build` in scripts/lib/tools.sh).
    console_error_panic_hook::set_once();
    // Lazy routes hydrate once their code has loaded, so hydration is awaited.
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::prelude::document()
            .body()
            .expect("the page has a body");
        leptos::mount::hydrate_from_async(body.clone(), App)
            .await
            .forget();
        // Lets browser tests wait until buttons work.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
