//! Stream health: for each stream, its rate, lag, last event, latency and dead letters.

use crate::error::{AppError, Result};
use crate::panel::LivePanel;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub name: String,
    /// Records stored in the last minute, per second.
    pub rate_per_second: f64,
    /// Messages waiting in Kafka, over all partitions; `None` without a consumer.
    pub kafka_lag: Option<i64>,
    /// Newest event time among records stored in the last ten minutes, `HH:MM:SS UTC`.
    pub last_event: Option<String>,
    pub latency: Option<Latency>,
    pub dead_letters: i64,
}

/// End-to-end latency in milliseconds (stored time minus event time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

#[server]
pub async fn list_stream_status() -> Result<Vec<StreamStatus>, AppError> {
    let pool = crate::error::pool()?;
    Ok(vec![ssr::sensors_status(&pool).await?])
}

#[component]
pub fn StreamsTable(tick: ReadSignal<u64>) -> impl IntoView {
    let statuses = Resource::new(move || tick.get(), |_| list_stream_status());
    view! {
        <LivePanel id="streams-title" title="Streams">
                    {move || Suspend::new(async move {
                        statuses.await.map(|rows| view! {
                            <table class="data" data-testid="streams">
                                <thead>
                                    <tr>
                                        <th scope="col">"stream"</th>
                                        <th scope="col" class="num">"records/s (1 min)"</th>
                                        <th scope="col" class="num">"Kafka lag"</th>
                                        <th scope="col">"last event"</th>
                                        <th scope="col" class="num">"latency p50 / p95 / p99 / max"</th>
                                        <th scope="col" class="num">"dead letters"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {rows.into_iter().map(|s| view! {
                                        <tr data-stream=s.name.clone()>
                                            <td>{s.name.clone()}</td>
                                            <td class="num rate">{format!("{:.1}", s.rate_per_second)}</td>
                                            <td class="num lag">{s.kafka_lag.map_or("—".to_string(), |l| l.to_string())}</td>
                                            <td class="last-event">{s.last_event.unwrap_or_else(|| "none in 10 min".into())}</td>
                                            <td class="num latency">{s.latency.map_or("—".to_string(), |l| {
                                                format!("{} / {} / {} / {} ms", l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms)
                                            })}</td>
                                            <td class="num dead-letters">{s.dead_letters}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
        </LivePanel>
    }
}

/// Kafka lag as the server knows it, provided to server functions as context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct KafkaLag(pub std::sync::Arc<dyn Fn() -> Option<i64> + Send + Sync>);

#[cfg(feature = "ssr")]
mod ssr {
    use super::{KafkaLag, Latency, StreamStatus};
    use crate::chart::render::clock_time;
    use crate::error::Result;
    use sqlx::PgPool;

    pub async fn sensors_status(pool: &PgPool) -> Result<StreamStatus> {
        let (stored_last_minute, last_event): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE created >= now() - interval '1 minute'), max(ts)
               FROM message
              WHERE created >= now() - interval '10 minutes'",
        )
        .fetch_one(pool)
        .await?;
        let latency: Option<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT p50_ms, p95_ms, p99_ms, max_ms FROM stream_latency WHERE stream = 'sensors'",
        )
        .fetch_optional(pool)
        .await?;
        let dead_letters: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(pool)
            .await?;
        let kafka_lag = leptos::prelude::use_context::<KafkaLag>().and_then(|lag| (lag.0)());
        Ok(StreamStatus {
            name: "sensors".into(),
            rate_per_second: stored_last_minute as f64 / 60.0,
            kafka_lag,
            last_event: last_event.map(|ts| format!("{} UTC", clock_time(ts))),
            latency: latency.map(|(p50_ms, p95_ms, p99_ms, max_ms)| Latency {
                p50_ms,
                p95_ms,
                p99_ms,
                max_ms,
            }),
            dead_letters,
        })
    }
}
