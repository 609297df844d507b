//! Who may ingest: every Firehose request is signed with an ingest key
//! (AWS Signature Version 4, so AWS SDKs work with those credentials), and
//! every NDJSON request carries one (`Authorization: Bearer <id>:<secret>`).
//! A request refused here stores nothing, not even a dead letter.

use crate::sigv4::{self, Authorization, Refusal};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use sqlx::PgPool;

/// Why a request may not ingest, with the status to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    pub status: StatusCode,
    /// The Firehose error type (`__type`).
    pub kind: &'static str,
    pub message: String,
}

fn denied(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Denied {
    Denied {
        status,
        kind,
        message: message.into(),
    }
}

fn unavailable() -> Denied {
    denied(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        "the database is unavailable; nothing was stored, retry the request",
    )
}

async fn secret(pool: &PgPool, access_key_id: &str) -> Result<Option<String>, Denied> {
    app::accounts::keys::active_secret(pool, access_key_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot read the ingest keys");
            unavailable()
        })
}

fn now() -> i64 {
    crate::reading::epoch_micros() / 1_000_000
}

/// Checks a Firehose request's signature, and gives the key that signed it;
/// answers in Firehose's own errors.
pub async fn firehose(
    pool: &PgPool,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(denied(
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            Refusal::Missing.to_string(),
        ));
    };
    let authorization = value
        .to_str()
        .map_err(|_| Refusal::Malformed("it is not ASCII".into()))
        .and_then(Authorization::parse)
        .map_err(|refusal| {
            denied(
                StatusCode::BAD_REQUEST,
                "IncompleteSignatureException",
                refusal.to_string(),
            )
        })?;
    if authorization.service != "firehose" {
        return Err(denied(
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: 'firehose', not {:?}",
                authorization.service
            ),
        ));
    }
    let Some(secret) = secret(pool, &authorization.access_key_id).await? else {
        return Err(denied(
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            format!(
                "The security token included in the request is invalid: no active ingest key {:?}",
                authorization.access_key_id
            ),
        ));
    };
    let received = sigv4::Received {
        method: "POST",
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
        body,
    };
    sigv4::verify(&received, &authorization, &secret, now()).map_err(|refusal| {
        let kind = match refusal {
            Refusal::Malformed(_) => "IncompleteSignatureException",
            _ => "InvalidSignatureException",
        };
        denied(StatusCode::BAD_REQUEST, kind, refusal.to_string())
    })?;
    Ok(authorization.access_key_id)
}

/// Checks an NDJSON request's `Authorization: Bearer <access key id>:<secret>`,
/// and gives the key's id.
pub async fn bearer(pool: &PgPool, headers: &HeaderMap) -> Result<String, Denied> {
    let refused = |message: &str| {
        denied(
            StatusCode::UNAUTHORIZED,
            "UnrecognizedClientException",
            message,
        )
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(refused(
            "this endpoint needs an ingest key: Authorization: Bearer <access key id>:<secret>",
        ));
    };
    let (access_key_id, given) = token.trim().split_once(':').unwrap_or((token, ""));
    match secret(pool, access_key_id).await? {
        Some(secret) if sigv4::same(secret.as_bytes(), given.as_bytes()) => {
            Ok(access_key_id.to_owned())
        }
        _ => Err(refused("the ingest key is unknown, revoked or wrong")),
    }
}
