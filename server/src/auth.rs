//! Signing in and out, the session of each request, and the guard against
//! cross-site requests. Roles are checked where the work is done: by each
//! server function (`app::accounts::require`) and each download.

use crate::config::FirstAdmin;
use crate::state::AppState;
use anyhow::Context;
use app::accounts::store::{self, sign_in, sign_out};
use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "pulseboard_session";
/// Failed sign-ins allowed per username within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Creates the configured first admin when there are no accounts yet.
pub async fn ensure_first_admin(pool: &PgPool, first: &FirstAdmin) -> anyhow::Result<()> {
    match &first.password {
        Some(password) => {
            if store::ensure_first_admin(pool, &first.username, password.expose())
                .await
                .context("creating the first admin account")?
            {
                tracing::info!(username = first.username, "created the first admin account");
            }
        }
        None => {
            if !store::any_account(pool).await? {
                tracing::warn!(
                    "no accounts yet, so nobody can sign in: set PULSEBOARD_ADMIN_PASSWORD_FILE \
                     (or PULSEBOARD_ADMIN_PASSWORD) to create the first admin, or run \
                     `pulseboard create-user NAME admin`"
                );
            }
        }
    }
    Ok(())
}

/// The session token a request's cookies carry.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// Requests that carry no cookie-based authority: the ingest APIs take keys.
fn is_ingest(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/") || path.starts_with("/ingest/")
}

/// Requests that no account changes: the ingest APIs and the static files
/// (the browser sends its cookie with every wasm and stylesheet request too,
/// and those need no session read from the database).
fn needs_no_session(method: &Method, path: &str) -> bool {
    is_ingest(method, path)
        || path.starts_with("/pkg/")
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
}

/// Requests that change something must come from a page of this server.
/// Browsers send `Origin` with every such request (`Referer` is the fallback);
/// its host must be the one the request was sent to.
fn cross_site(request: &Request) -> Option<String> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || is_ingest(request.method(), request.uri().path())
    {
        return None;
    }
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("x-forwarded-host").or_else(|| text(header::HOST.as_str()));
    let origin = text(header::ORIGIN.as_str()).or_else(|| text(header::REFERER.as_str()));
    let origin_host = origin
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
    match (origin_host, host) {
        (Some(from), Some(to)) if from.eq_ignore_ascii_case(to) => None,
        (None, _) => Some("the request has no Origin header".into()),
        (Some(from), _) => Some(format!("the request comes from another site ({from})")),
    }
}

/// Resolves the request's session into an `Account` extension, refuses
/// cross-site changes, and sends readers who are not signed in to the
/// sign-in page (public dashboards excepted).
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(reason) = cross_site(&request) {
        return (
            StatusCode::FORBIDDEN,
            format!("cross-site request refused: {reason}\n"),
        )
            .into_response();
    }
    if needs_no_session(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let account = match session_token(request.headers()) {
        None => None,
        Some(token) => match session_account(&state, &token).await {
            Ok(account) => account,
            Err(error) => {
                tracing::error!(%error, "cannot read the session");
                return unavailable();
            }
        },
    };
    match account {
        Some(account) => {
            request.extensions_mut().insert(account);
        }
        None => match needs_sign_in(
            &state.pool,
            request.method().clone(),
            request.uri().path().to_string(),
        )
        .await
        {
            Ok(false) => {}
            Ok(true) => return to_sign_in(&request),
            Err(error) => {
                tracing::error!(%error, "cannot check whether the dashboard is public");
                return unavailable();
            }
        },
    }
    next.run(request).await
}

/// The session's account: kept from a recent request, or read from Postgres.
async fn session_account(
    state: &AppState,
    token: &str,
) -> Result<Option<app::accounts::Account>, store::AccountError> {
    if let Some(account) = state.sessions.get(token) {
        return Ok(Some(account));
    }
    let seen = state.sessions.generation();
    let account = store::session_account(&state.pool, token).await?;
    if let Some(account) = &account {
        state
            .sessions
            .keep(token.to_string(), account.clone(), seen);
    }
    Ok(account)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable; retry shortly\n",
    )
        .into_response()
}

/// Whether an anonymous request is for a page that needs an account. Server
/// functions, downloads, files and the ingest APIs answer for themselves.
async fn needs_sign_in(pool: &PgPool, method: Method, path: String) -> Result<bool, sqlx::Error> {
    if !matches!(method, Method::GET | Method::HEAD) {
        return Ok(false);
    }
    let path = path.as_str();
    let open = ["/login", "/healthz", "/metrics", "/events"].contains(&path)
        || ["/api/", "/download/"]
            .iter()
            .any(|prefix| path.starts_with(prefix));
    if open {
        return Ok(false);
    }
    if let Some(slug) = path.strip_prefix("/d/") {
        return match app::dashboard::store::is_public(pool, slug).await {
            Ok(public) => Ok(!public),
            Err(app::dashboard::store::DashboardError::Database(error)) => Err(error),
            Err(_) => Ok(true),
        };
    }
    Ok(true)
}

fn to_sign_in(request: &Request) -> Response {
    let next = request.uri().path_and_query().map_or("/", |p| p.as_str());
    see_other(&format!("/login?next={}", encode(next)))
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only a path on this server: never `//host` or `https://elsewhere`.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

fn served_over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    ))
    .expect("cookie characters are all visible ASCII")
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Failed sign-ins per username, so a password cannot be guessed quickly.
static FAILURES: Mutex<Option<HashMap<String, (u32, Instant)>>> = Mutex::new(None);

fn throttled(username: &str) -> bool {
    let mut failures = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    let map = failures.get_or_insert_with(HashMap::new);
    map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
    map.get(username)
        .is_some_and(|(count, _)| *count >= MAX_FAILURES)
}

fn record_failure(username: &str) {
    let mut failures = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
    let entry = failures
        .get_or_insert_with(HashMap::new)
        .entry(username.to_string())
        .or_insert((0, Instant::now()));
    entry.0 += 1;
}

/// `POST /login` from the sign-in form.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = local_path(&form.next).to_string();
    let again = |error: &str| see_other(&format!("/login?error={error}&next={}", encode(&next)));
    if throttled(&form.username) {
        return again("throttled");
    }
    match sign_in(&state.pool, &form.username, &form.password).await {
        Ok(Some((account, token))) => {
            tracing::info!(username = account.username, "signed in");
            let mut response = see_other(&next);
            let max_age = i64::from(store::SESSION_DAYS) * 24 * 3600;
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&token, max_age, served_over_tls(&headers)),
            );
            response
        }
        Ok(None) => {
            record_failure(&form.username);
            tracing::warn!(username = form.username, "failed sign-in");
            again("wrong")
        }
        Err(error) => {
            tracing::error!(%error, "sign-in failed");
            unavailable()
        }
    }
}

/// `POST /logout`: ends the session and forgets the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.sessions.forget(&token);
        if let Err(error) = sign_out(&state.pool, &token).await {
            tracing::error!(%error, "sign-out failed");
            return unavailable();
        }
    }
    let mut response = see_other("/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, served_over_tls(&headers)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(local_path("/d/sales?refresh=5s"), "/d/sales?refresh=5s");
        for elsewhere in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "",
            "d/x",
        ] {
            assert_eq!(local_path(elsewhere), "/", "{elsewhere}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pulseboard_session=tok; b=2"),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("tok"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("pulseboard_sessionx=1"),
        );
        assert_eq!(session_token(&headers), None);
    }
}
