//! Live dashboards: every flush notifies `pulseboard_data` with its stream's
//! name when it commits (see `store::record_activity`). One listener per
//! process marks that stream's cached charts stale and tells every open
//! dashboard over server-sent events, so charts update within a second of
//! their data landing instead of at their next refresh.
//!
//! The same listener hears `pulseboard_definitions`, announced by Postgres
//! whenever a chart or dashboard changes, and drops the saved definitions
//! and rendered pages kept from before; and `pulseboard_accounts`, for ended
//! sessions and changed accounts, and drops the sessions kept.

use crate::page_cache::PageCache;
use crate::sessions::SessionCache;
use app::chart::service::ChartService;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "pulseboard_data";
/// Named in `migrations/*_definition_notifications.sql`.
pub const DEFINITIONS_CHANNEL: &str = "pulseboard_definitions";
/// Named in `migrations/*_account_notifications.sql`.
pub const ACCOUNTS_CHANNEL: &str = "pulseboard_accounts";

/// What the listener keeps current.
#[derive(Clone)]
pub struct Kept {
    pub charts: ChartService,
    pub pages: Arc<PageCache>,
    pub sessions: Arc<SessionCache>,
}

impl Kept {
    /// Changes made while no one listened went unheard: keep nothing from
    /// before.
    fn forget_unheard(&self) {
        self.charts.definitions_changed();
        self.pages.changed();
        self.sessions.changed();
    }
}

/// Streams that stored new data, for whoever listens.
#[derive(Clone)]
pub struct Live {
    sender: broadcast::Sender<String>,
}

impl Default for Live {
    fn default() -> Self {
        // A slow page misses older events, never the latest.
        let (sender, _) = broadcast::channel(256);
        Live { sender }
    }
}

impl Live {
    /// Listens for flushes until `shutdown`, reconnecting after failures.
    pub fn start(pool: PgPool, kept: Kept, shutdown: CancellationToken) -> Live {
        let live = Live::default();
        let sender = live.sender.clone();
        tokio::spawn(async move {
            loop {
                let result = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    result = listen(&pool, &kept, &sender) => result,
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "lost the data notifications; reconnecting");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        live
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }
}

async fn listen(
    pool: &PgPool,
    kept: &Kept,
    sender: &broadcast::Sender<String>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([CHANNEL, DEFINITIONS_CHANNEL, ACCOUNTS_CHANNEL])
        .await?;
    kept.forget_unheard();
    loop {
        let Some(notification) = listener.try_recv().await? else {
            // The connection dropped and has been made again.
            kept.forget_unheard();
            continue;
        };
        match notification.channel() {
            ACCOUNTS_CHANNEL => kept.sessions.changed(),
            DEFINITIONS_CHANNEL => {
                kept.charts.definitions_changed();
                kept.pages.changed();
            }
            _ => {
                let stream = notification.payload().to_string();
                kept.charts.cache.data_changed(&stream);
                kept.pages.changed();
                // No open page is not an error.
                let _ = sender.send(stream);
            }
        }
    }
}

/// `GET /events`: one `data` event per flush, naming its stream.
pub async fn events(
    State(live): State<Live>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(live.subscribe())
        .filter_map(|item| item.ok())
        .map(|stream| Ok(Event::default().event("data").data(stream)));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
