//! Accounts and sessions in Postgres.

use super::{Account, Role};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Hashing is deliberately slow; an unbounded password would make it slower.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_USERNAME_CHARS: usize = 64;
/// How long a sign-in lasts.
pub const SESSION_DAYS: i32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("the username {0:?} is taken")]
    Taken(String),
    #[error("no account {0}")]
    NotFound(String),
    #[error("there must be at least one admin left")]
    LastAdmin,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub fn username_problem(username: &str) -> Option<String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if username.is_empty()
        || username.chars().count() > MAX_USERNAME_CHARS
        || !username.chars().all(fine)
    {
        Some(format!(
            "a username is 1 to {MAX_USERNAME_CHARS} letters, digits and . _ - @"
        ))
    } else {
        None
    }
}

pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("a password is at most {MAX_PASSWORD_BYTES} bytes"))
    } else {
        None
    }
}

/// An argon2id hash (PHC string) of `password` with a random salt. Runs off
/// the async workers: it takes tens of milliseconds and 19 MiB by design.
pub async fn hash_password(password: String) -> Result<String, AccountError> {
    let mut salt = [0_u8; 16];
    rand::rng().fill_bytes(&mut salt);
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| AccountError::Invalid(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| AccountError::Invalid(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Invalid(e.to_string()))?
}

async fn password_matches(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

fn role_of(name: &str) -> Result<Role, AccountError> {
    Role::parse(name).ok_or_else(|| AccountError::Invalid(format!("unknown role {name:?}")))
}

pub async fn create_user(
    pool: &PgPool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<Account, AccountError> {
    if let Some(problem) = username_problem(username).or_else(|| password_problem(password)) {
        return Err(AccountError::Invalid(problem));
    }
    let hash = hash_password(password.to_string()).await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(&hash)
    .bind(role.name())
    .fetch_optional(pool)
    .await?;
    let id = id.ok_or_else(|| AccountError::Taken(username.into()))?;
    Ok(Account {
        id,
        username: username.into(),
        role,
    })
}

/// Whether any account exists.
pub async fn any_account(executor: impl sqlx::PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(executor)
        .await
}

/// Creates `username` as an admin when there is no account at all; says
/// whether it did. Accounts made since are left alone.
pub async fn ensure_first_admin(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<bool, AccountError> {
    let mut tx = pool.begin().await?;
    // Two instances starting at once must not both see an empty table.
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    if any_account(&mut *tx).await? {
        return Ok(false);
    }
    if let Some(problem) = username_problem(username).or_else(|| password_problem(password)) {
        return Err(AccountError::Invalid(problem));
    }
    let hash = hash_password(password.to_string()).await?;
    sqlx::query("INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'admin')")
        .bind(username)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Every account with when it was made (Unix ms), by name.
pub async fn list_users(pool: &PgPool) -> Result<Vec<(Account, i64)>, AccountError> {
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, username, role, (extract(epoch FROM created_at) * 1000)::int8
           FROM users ORDER BY username",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, username, role, created)| {
            Ok((
                Account {
                    id,
                    username,
                    role: role_of(&role)?,
                },
                created,
            ))
        })
        .collect()
}

/// Runs `change` on user `id` unless it would leave no admin. Admin rows are
/// locked first, so two changes at once cannot both remove "the other" admin.
async fn change_keeping_an_admin(
    pool: &PgPool,
    id: i64,
    leaves_admin: bool,
    change: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    let admins: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' FOR UPDATE")
            .fetch_all(&mut *tx)
            .await?;
    if !leaves_admin && admins == [id] {
        return Err(AccountError::LastAdmin);
    }
    if change.execute(&mut *tx).await?.rows_affected() == 0 {
        return Err(AccountError::NotFound(id.to_string()));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn set_role(pool: &PgPool, id: i64, role: Role) -> Result<(), AccountError> {
    let change = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role.name());
    change_keeping_an_admin(pool, id, role == Role::Admin, change).await
}

/// Deletes the account and so ends its sessions.
pub async fn delete_user(pool: &PgPool, id: i64) -> Result<(), AccountError> {
    let change = sqlx::query("DELETE FROM users WHERE id = $1").bind(id);
    change_keeping_an_admin(pool, id, false, change).await
}

/// Sets a new password and ends every session of the account.
pub async fn set_password(pool: &PgPool, id: i64, password: &str) -> Result<(), AccountError> {
    if let Some(problem) = password_problem(password) {
        return Err(AccountError::Invalid(problem));
    }
    let hash = hash_password(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let changed = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(AccountError::NotFound(id.to_string()));
    }
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A session token for the account if the password is right. An unknown
/// username costs the same hash as a wrong password, so timing does not
/// tell which accounts exist.
pub async fn sign_in(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<Option<(Account, String)>, AccountError> {
    static UNKNOWN_USER: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(None);
    }
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, password_hash, role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    let Some((id, hash, role)) = row else {
        let dummy = UNKNOWN_USER
            .get_or_try_init(|| hash_password("not anyone's password".into()))
            .await?;
        password_matches(dummy.clone(), password.to_string()).await;
        return Ok(None);
    };
    if !password_matches(hash, password.to_string()).await {
        return Ok(None);
    }
    let mut secret = [0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = URL_SAFE_NO_PAD.encode(secret);
    sqlx::query(
        "INSERT INTO sessions (token_sha256, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(days => $3))",
    )
    .bind(token_digest(&token))
    .bind(id)
    .bind(SESSION_DAYS)
    .execute(pool)
    .await?;
    let account = Account {
        id,
        username: username.into(),
        role: role_of(&role)?,
    };
    Ok(Some((account, token)))
}

/// The account a session token stands for, if the session is current.
pub async fn session_account(pool: &PgPool, token: &str) -> Result<Option<Account>, AccountError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT u.id, u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_sha256 = $1 AND s.expires_at > now()",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await?;
    row.map(|(id, username, role)| {
        Ok(Account {
            id,
            username,
            role: role_of(&role)?,
        })
    })
    .transpose()
}

/// Ends the session (signing out); expired sessions go at the same time.
pub async fn sign_out(pool: &PgPool, token: &str) -> Result<(), AccountError> {
    sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1 OR expires_at < now()")
        .bind(token_digest(token))
        .execute(pool)
        .await?;
    Ok(())
}
