//! Accounts and roles. Viewers read; editors also change charts and
//! dashboards; admins also manage accounts, ingest keys and which dashboards
//! are public. The server resolves the session cookie of each request
//! (`server/src/auth.rs`); server functions ask [`require`] for the role
//! they need.

pub mod api;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod store;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The signed-in user of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

impl Account {
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// The account of the request being served, if it is signed in.
#[cfg(feature = "ssr")]
pub fn current() -> Option<Account> {
    let parts = leptos::prelude::use_context::<axum::http::request::Parts>()?;
    parts.extensions.get::<Account>().cloned()
}

/// The request's account if it has at least `role`. Otherwise the answer is
/// 401 (not signed in) or 403 (signed in, role too low).
#[cfg(feature = "ssr")]
pub fn require(role: Role) -> crate::error::Result<Account> {
    use crate::error::AppError;
    // A refused server function call answers 401 or 403; a page that reads
    // through one while it renders keeps its own status and shows the error.
    let refuse = |status: axum::http::StatusCode, error: AppError| {
        let called = leptos::prelude::use_context::<axum::http::request::Parts>()
            .is_some_and(|parts| parts.uri.path().starts_with("/api/"));
        if called
            && let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        {
            response.set_status(status);
        }
        Err(error)
    };
    match current() {
        Some(account) if account.may(role) => Ok(account),
        Some(account) => refuse(
            axum::http::StatusCode::FORBIDDEN,
            AppError::Forbidden(format!(
                "this needs the {} role; {} is a {}",
                role.name(),
                account.username,
                account.role.name()
            )),
        ),
        None => refuse(
            axum::http::StatusCode::UNAUTHORIZED,
            AppError::SignInRequired,
        ),
    }
}
