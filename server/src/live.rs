//! Live dashboards: every flush notifies `pulseboard_data` with its stream's
//! name when it commits (see `store::record_activity`). One listener per
//! process marks that stream's cached charts stale and tells every open
//! dashboard over server-sent events, so charts update within a second of
//! their data landing instead of at their next refresh.
//!
//! The same listener hears `pulseboard_definitions`, announced by Postgres
//! whenever a chart or dashboard changes, and drops the saved definitions
//! and rendered pages kept from before.

use crate::page_cache::PageCache;
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
    pub fn start(
        pool: PgPool,
        charts: ChartService,
        pages: Arc<PageCache>,
        shutdown: CancellationToken,
    ) -> Live {
        let live = Live::default();
        let sender = live.sender.clone();
        tokio::spawn(async move {
            loop {
                let result = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    result = listen(&pool, &charts, &pages, &sender) => result,
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
    charts: &ChartService,
    pages: &PageCache,
    sender: &broadcast::Sender<String>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, DEFINITIONS_CHANNEL]).await?;
    // Changes made while no one listened went unheard.
    charts.definitions_changed();
    pages.changed();
    loop {
        let notification = listener.recv().await?;
        pages.changed();
        if notification.channel() == DEFINITIONS_CHANNEL {
            charts.definitions_changed();
            continue;
        }
        let stream = notification.payload().to_string();
        charts.cache.data_changed(&stream);
        // No open page is not an error.
        let _ = sender.send(stream);
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
