//! The request-time limit: a request not answered within the limit (its body
//! still arriving, or the database slow) is answered 503 instead. An ingest
//! request says whether its records may still be stored: once they are handed
//! to the writer, their transaction may yet commit.

use crate::metrics::{self, Limit};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set once an ingest request's records are handed to the writer.
#[derive(Clone, Default)]
pub struct Handed(Arc<AtomicBool>);

impl Handed {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Paths that stream for as long as the page is open.
fn is_long_lived(path: &str) -> bool {
    path == "/events"
}

pub async fn limit(State(limit): State<Duration>, mut request: Request, next: Next) -> Response {
    if is_long_lived(request.uri().path()) {
        return next.run(request).await;
    }
    let handed = Handed::default();
    request.extensions_mut().insert(handed.clone());
    let posted = request.method() == Method::POST;
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::global().refused(Limit::RequestTime);
            too_slow(posted.then_some(path.as_str()), limit, handed.is_set())
        }
    }
}

/// The answer to a request cut off at `limit`; `posted_to` is its path if it
/// was a POST, which may be an ingest request.
fn too_slow(posted_to: Option<&str>, limit: Duration, handed: bool) -> Response {
    let seconds = limit.as_secs_f64();
    let ingest = if handed {
        format!(
            "the request was not answered within {seconds} s; its records may still be stored, \
             so sending it again may store them twice"
        )
    } else {
        format!(
            "the request was not answered within {seconds} s; nothing was stored, retry the request"
        )
    };
    let mut response = if posted_to == Some("/") {
        crate::firehose::service_unavailable(ingest)
    } else if posted_to.is_some_and(|path| path.starts_with("/ingest/")) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": ingest })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server did not answer within {seconds} s; try again"),
        )
            .into_response()
    };
    if !handed {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(response: &Response) -> &str {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn each_protocol_is_told_in_its_own_shape() {
        let limit = Duration::from_secs(30);
        let firehose = too_slow(Some("/"), limit, false);
        assert_eq!(firehose.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type(&firehose), "application/x-amz-json-1.1");
        assert!(firehose.headers().contains_key(header::RETRY_AFTER));
        let ndjson = too_slow(Some("/ingest/sensors"), limit, true);
        assert_eq!(content_type(&ndjson), "application/json");
        assert!(!ndjson.headers().contains_key(header::RETRY_AFTER));
        // The dashboard home is a page, whatever its path shares with Firehose.
        let page = too_slow(None, limit, false);
        assert!(content_type(&page).starts_with("text/plain"));
    }
}
