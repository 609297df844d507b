//! Stream health: for each stream, its rate, lag, last event, latency, dead
//! letters and late events.

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
    /// Rows of `late_events`: one per window definition that refused an event.
    pub late_events: i64,
}

/// End-to-end latency in milliseconds (stored time minus event time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

#[server(output = crate::codec::JsonText)]
pub async fn list_stream_status() -> Result<Vec<StreamStatus>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let pool = crate::error::pool()?;
    let catalog = leptos::prelude::use_context::<StreamCatalog>().unwrap_or_default();
    ssr::statuses(&pool, &catalog).await
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
                                        <th scope="col" class="num">"late events"</th>
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
                                            <td class="num late-events">{s.late_events}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
        </LivePanel>
    }
}

/// The defined streams and the Kafka topics each reads, provided to server
/// functions as context.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Default)]
pub struct StreamCatalog(pub std::sync::Arc<[CatalogEntry]>);

#[cfg(feature = "ssr")]
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    pub topics: Vec<String>,
}

/// Kafka lag over the given topics' partitions, as the server knows it;
/// `None` when no consumer reports on them. Provided as context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct KafkaLag(pub std::sync::Arc<LagOfTopics>);

#[cfg(feature = "ssr")]
pub type LagOfTopics = dyn Fn(&[String]) -> Option<i64> + Send + Sync;

#[cfg(feature = "ssr")]
mod ssr {
    use super::{KafkaLag, Latency, StreamCatalog, StreamStatus};
    use crate::chart::render::clock_time;
    use crate::error::Result;
    use sqlx::PgPool;
    use std::collections::HashMap;

    /// Each stream's status, in catalogue order, from three queries in all.
    pub async fn statuses(pool: &PgPool, catalog: &StreamCatalog) -> Result<Vec<StreamStatus>> {
        let names: Vec<&str> = catalog.0.iter().map(|e| e.name.as_str()).collect();
        // Rates over the previous whole minute and the current one so far.
        let activity: Vec<(String, i64, f64, Option<i64>)> = sqlx::query_as(
            "SELECT stream,
                    coalesce(sum(records) FILTER (WHERE minute >= date_trunc('minute', now()) - interval '1 minute'), 0)::int8,
                    extract(epoch FROM now() - (date_trunc('minute', now()) - interval '1 minute'))::float8,
                    extract(epoch FROM max(newest_event))::int8
               FROM stream_activity
              WHERE stream = ANY($1) AND minute >= date_trunc('minute', now()) - interval '10 minutes'
              GROUP BY stream",
        )
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let activity: HashMap<String, (i64, f64, Option<i64>)> = activity
            .into_iter()
            .map(|(stream, records, seconds, newest)| (stream, (records, seconds, newest)))
            .collect();
        let latency: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT stream, p50_ms, p95_ms, p99_ms, max_ms FROM stream_latency WHERE stream = ANY($1)",
        )
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let mut latency: HashMap<String, Latency> = latency
            .into_iter()
            .map(|(stream, p50_ms, p95_ms, p99_ms, max_ms)| {
                let figures = Latency {
                    p50_ms,
                    p95_ms,
                    p99_ms,
                    max_ms,
                };
                (stream, figures)
            })
            .collect();
        let kept: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT stream, sum(dead)::int8, sum(late)::int8
               FROM (SELECT stream, 1 AS dead, 0 AS late FROM dead_letters WHERE stream = ANY($1)
                     UNION ALL
                     SELECT stream, 0, 1 FROM late_events WHERE stream = ANY($1)) kept
              GROUP BY stream",
        )
        .bind(&names)
        .fetch_all(pool)
        .await?;
        let kept: HashMap<String, (i64, i64)> = kept
            .into_iter()
            .map(|(stream, dead, late)| (stream, (dead, late)))
            .collect();
        let lag = leptos::prelude::use_context::<KafkaLag>();
        Ok(catalog
            .0
            .iter()
            .map(|entry| {
                let (records, seconds, newest) = activity
                    .get(&entry.name)
                    .copied()
                    .unwrap_or((0, 60.0, None));
                StreamStatus {
                    name: entry.name.clone(),
                    rate_per_second: records as f64 / seconds.max(1.0),
                    kafka_lag: lag.as_ref().and_then(|lag| (lag.0)(&entry.topics)),
                    last_event: newest.map(|ts| format!("{} UTC", clock_time(ts))),
                    latency: latency.remove(&entry.name),
                    dead_letters: kept.get(&entry.name).map_or(0, |k| k.0),
                    late_events: kept.get(&entry.name).map_or(0, |k| k.1),
                }
            })
            .collect())
    }
}
