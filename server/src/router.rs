//! The HTTP surface: pages, server functions, static files and `/healthz`.

use crate::firehose;
use crate::state::AppState;
use app::streams::KafkaLag;
use app::{App, shell};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::sync::{Arc, OnceLock};
use tower_http::compression::CompressionLayer;

/// The app's routes, generated once per process: while they are generated,
/// `leptos_server` holds back every resource that starts loading anywhere in
/// the process (a process-wide flag), and a page rendered meanwhile would
/// never finish.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    let routes = routes();
    let pool = state.pool.clone();
    // The streams page shows each stream's consumer lag, summed over its partitions.
    let kafka_lag = KafkaLag(Arc::new(|topics: &[String]| {
        let lags: Vec<i64> = topics
            .iter()
            .flat_map(|topic| crate::metrics::global().kafka_lag(topic).into_values())
            .collect();
        (!lags.is_empty()).then(|| lags.iter().sum())
    }));
    let catalog = state.catalog.clone();
    let charts = state.charts.clone();
    let options = state.leptos_options.clone();
    let pages = axum::middleware::from_fn_with_state(state.pages.clone(), crate::page_cache::serve);
    let authenticate =
        axum::middleware::from_fn_with_state(state.clone(), crate::auth::authenticate);
    let request_time =
        axum::middleware::from_fn_with_state(state.request_timeout, crate::request_time::limit);
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/", post(firehose::handle))
        .route("/ingest/{stream}", post(firehose::ingest_ndjson))
        .route("/events", get(crate::live::events))
        .route("/login", post(crate::auth::login))
        .route("/logout", post(crate::auth::logout))
        .route(
            "/download/chart/{id}/{format}",
            get(crate::downloads::chart),
        )
        .route(
            "/download/dashboard/{slug}",
            get(crate::downloads::dashboard),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(pool.clone());
                provide_context(kafka_lag.clone());
                provide_context(catalog.clone());
                provide_context(charts.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(crate::api_errors::statuses))
        .layer(pages)
        .layer(authenticate)
        .layer(request_time)
        .layer(CompressionLayer::new())
        .layer(DefaultBodyLimit::max(firehose::MAX_BODY_BYTES))
        .with_state(state)
}
