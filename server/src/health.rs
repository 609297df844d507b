//! `/healthz`: whether the stores Pulseboard depends on answer.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Serialize, PartialEq)]
pub struct Health {
    /// `ok` when every configured dependency answers, else `degraded`.
    pub status: &'static str,
    pub postgres: Check,
    /// Absent when no Kafka broker is configured.
    pub kafka: Option<Check>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    fn from_result(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Check {
                ok: true,
                error: None,
            },
            Err(error) => Check {
                ok: false,
                error: Some(error),
            },
        }
    }
}

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let postgres = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await
    .map_err(|_| "timed out after 2s".to_string())
    .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let postgres = Check::from_result(postgres);
    let kafka = match &state.kafka {
        Some(config) => Some(Check::from_result(
            crate::kafka::broker_reachable(config).await,
        )),
        None => None,
    };
    let healthy = postgres.ok && kafka.as_ref().is_none_or(|k| k.ok);
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Health {
            status: if healthy { "ok" } else { "degraded" },
            postgres,
            kafka,
        }),
    )
}
