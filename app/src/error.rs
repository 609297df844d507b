//! The one error type shared by server functions and the UI.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// What a browser may learn about a failure: never database internals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("the database is unavailable; the page will retry")]
    DatabaseUnavailable,
    #[error("the chart could not be drawn")]
    ChartFailed,
    #[error("request failed: {0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        // The detail goes to the log; the browser gets a generic message.
        tracing::error!(%error, "database query failed");
        AppError::DatabaseUnavailable
    }
}

/// The pool that server functions use, provided by the server at start.
#[cfg(feature = "ssr")]
pub fn pool() -> Result<sqlx::PgPool> {
    leptos::prelude::use_context::<sqlx::PgPool>().ok_or_else(|| {
        tracing::error!("no database pool in the request context");
        AppError::DatabaseUnavailable
    })
}
