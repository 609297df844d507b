//! What request handlers share.

use crate::config::KafkaConfig;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub leptos_options: LeptosOptions,
    /// Set when a broker is configured, so health checks include it.
    pub kafka: Option<KafkaConfig>,
    /// Stream names the HTTP ingest endpoints accept.
    pub ingest_streams: Arc<[String]>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
