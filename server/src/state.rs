//! What request handlers share.

use crate::config::KafkaConfig;
use crate::custom::CustomStream;
use crate::group_commit::GroupCommit;
use crate::ingest_rate::IngestRates;
use crate::live::Live;
use crate::page_cache::PageCache;
use crate::sessions::SessionCache;
use app::chart::service::ChartService;
use app::streams::StreamCatalog;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub leptos_options: LeptosOptions,
    /// Set when a broker is configured, so health checks include it.
    pub kafka: Option<KafkaConfig>,
    /// HTTP names of the sensors stream, accepted by the ingest endpoints.
    pub ingest_streams: Arc<[String]>,
    /// Every defined stream with the Kafka topics it reads, for the Streams page.
    pub catalog: StreamCatalog,
    /// Custom streams by their HTTP names.
    pub custom_streams: Arc<HashMap<String, Arc<CustomStream>>>,
    /// Stores what HTTP ingest requests accepted, several requests per transaction.
    pub writer: GroupCommit,
    /// Draws charts for pages and downloads, sharing one cache.
    pub charts: ChartService,
    /// Announces streams that stored new data.
    pub live: Live,
    /// Rendered dashboard pages, shared by viewers with the same role.
    pub pages: Arc<PageCache>,
    /// Sessions read in the last second.
    pub sessions: Arc<SessionCache>,
    /// Records per second each ingest key may send.
    pub ingest_rates: IngestRates,
    /// The longest a request may take (see [`crate::request_time`]).
    pub request_timeout: Duration,
}

impl AppState {
    /// What the notification listener keeps current for these handlers.
    pub fn kept(&self) -> crate::live::Kept {
        crate::live::Kept {
            charts: self.charts.clone(),
            pages: self.pages.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl FromRef<AppState> for ChartService {
    fn from_ref(state: &AppState) -> Self {
        state.charts.clone()
    }
}

impl FromRef<AppState> for Live {
    fn from_ref(state: &AppState) -> Self {
        state.live.clone()
    }
}

impl FromRef<AppState> for Arc<PageCache> {
    fn from_ref(state: &AppState) -> Self {
        state.pages.clone()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
