//! The one error type shared by server functions and the UI.

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
    /// Fields of a chart or dashboard that are wrong, and why.
    #[error("{}", describe(.0))]
    Invalid(Vec<crate::chart::definition::FieldError>),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in to see this")]
    SignInRequired,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("request failed: {0}")]
    ServerFn(ServerFnErrorErr),
}

fn describe(errors: &[crate::chart::definition::FieldError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    parts.join("; ")
}

impl FromServerFnError for AppError {
    type Encoder = crate::codec::JsonTextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// The HTTP status that names this failure to a client.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        use leptos::server_fn::error::ServerFnErrorErr as Call;
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) | AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            // On the server these are the call's own arguments, unreadable.
            AppError::ServerFn(
                Call::Deserialization(_)
                | Call::Args(_)
                | Call::MissingArg(_)
                | Call::UnsupportedRequestMethod(_),
            ) => StatusCode::BAD_REQUEST,
            AppError::ChartFailed | AppError::ServerFn(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
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

#[cfg(feature = "ssr")]
impl From<crate::chart::store::StoreError> for AppError {
    fn from(error: crate::chart::store::StoreError) -> Self {
        use crate::chart::store::StoreError;
        match error {
            StoreError::Invalid(errors) => AppError::Invalid(errors),
            StoreError::NotFound(id) => AppError::NotFound(format!("chart {id}")),
            StoreError::BadFile(message) => AppError::BadRequest(message),
            StoreError::Database(error) => error.into(),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::accounts::store::AccountError> for AppError {
    fn from(error: crate::accounts::store::AccountError) -> Self {
        use crate::accounts::store::AccountError;
        match error {
            AccountError::Database(error) => error.into(),
            AccountError::NotFound(what) => AppError::NotFound(format!("account {what}")),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::dashboard::store::DashboardError> for AppError {
    fn from(error: crate::dashboard::store::DashboardError) -> Self {
        use crate::dashboard::store::DashboardError;
        match error {
            DashboardError::Invalid(errors) => AppError::Invalid(errors),
            DashboardError::NotFound(slug) => AppError::NotFound(format!("dashboard {slug:?}")),
            DashboardError::Database(error) => error.into(),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}
