//! Shared by the HTTP tests: application state over a test database, and
//! requests driven through the router without a socket.

#![allow(dead_code)] // each test binary uses its own part of this

use axum::body::Body;
use axum::http::{Request, StatusCode};
use leptos::config::LeptosOptions;
use server::config::KafkaConfig;
use server::state::AppState;
use sqlx::PgPool;
use tower::ServiceExt;

pub fn state(pool: PgPool, kafka: Option<KafkaConfig>) -> AppState {
    let leptos_options = LeptosOptions::builder()
        .output_name("pulseboard")
        .site_root("target/site")
        .build();
    AppState {
        pool,
        leptos_options,
        kafka,
        ingest_streams: vec!["sensors".to_string()].into(),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn send(state: AppState, request: Request<Body>) -> Reply {
    let response = server::router::router(state)
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .expect("body");
    Reply {
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(state: AppState, uri: &str) -> Reply {
    send(
        state,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}
