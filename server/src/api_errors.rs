//! Server functions answer every error 500. A call whose error is the
//! caller's (unreadable arguments, a chart that does not exist, a field out
//! of range) is answered with the status that says so, body unchanged.

use app::error::AppError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// An error's body is a few hundred bytes; anything longer is not one.
const MAX_ERROR_BYTES: usize = 64 * 1024;

pub async fn statuses(request: Request, next: Next) -> Response {
    let called = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !called || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_ERROR_BYTES).await {
        Ok(bytes) => {
            if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
                parts.status = error.status();
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(error) => {
            tracing::error!(%error, "a server function's error could not be read");
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from("the server function failed\n"))
        }
    }
}
