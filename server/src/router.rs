//! The HTTP surface: pages, server functions, static files and `/healthz`.

use crate::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let pool = state.pool.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(pool.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(CompressionLayer::new())
        .with_state(state)
}
