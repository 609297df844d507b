//! Ingest keys in Postgres: made and revoked by admins, checked by the
//! ingest APIs.

use super::api::{IngestKey, NewKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use sqlx::PgPool;

/// Makes a key: an access key id like AWS's (20 capitals and digits,
/// starting `PBK`) and a 256-bit secret.
pub async fn create(pool: &PgPool, name: &str, created_by: &str) -> Result<NewKey, sqlx::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // The thread's generator is not kept across the await below.
    let (access_key_id, secret) = {
        let mut rng = rand::rng();
        let id: String = "PBK"
            .chars()
            .chain((0..17).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char))
            .collect();
        let mut secret = [0_u8; 32];
        rng.fill_bytes(&mut secret);
        (id, URL_SAFE_NO_PAD.encode(secret))
    };
    sqlx::query(
        "INSERT INTO ingest_keys (name, access_key_id, secret, created_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(name)
    .bind(&access_key_id)
    .bind(&secret)
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok(NewKey {
        access_key_id,
        secret,
    })
}

pub async fn list(pool: &PgPool) -> Result<Vec<IngestKey>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String, i64, bool)> = sqlx::query_as(
        "SELECT id, name, access_key_id, created_by,
                (extract(epoch FROM created_at) * 1000)::int8, revoked_at IS NOT NULL
           FROM ingest_keys ORDER BY revoked_at IS NOT NULL, created_at DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, access_key_id, created_by, created_ms, revoked)| IngestKey {
                id,
                name,
                access_key_id,
                created_by,
                created_ms,
                revoked,
            },
        )
        .collect())
}

/// Revokes the key from now on; says whether it was active.
pub async fn revoke(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query(
        "UPDATE ingest_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// The secret of an active key.
pub async fn active_secret(
    pool: &PgPool,
    access_key_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT secret FROM ingest_keys WHERE access_key_id = $1 AND revoked_at IS NULL",
    )
    .bind(access_key_id)
    .fetch_optional(pool)
    .await
}
