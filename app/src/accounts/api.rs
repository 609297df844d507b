//! Server functions for accounts: who is signed in, and the admin's
//! management of accounts and public dashboards.

use super::Account;
#[cfg(feature = "ssr")]
use super::Role;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// An account as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub account: Account,
    pub created_ms: i64,
}

/// A key as the admin page lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestKey {
    pub id: i64,
    pub name: String,
    pub access_key_id: String,
    pub created_by: String,
    pub created_ms: i64,
    pub revoked: bool,
}

/// A new key's credentials, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    pub access_key_id: String,
    pub secret: String,
}

/// A dashboard and whether it can be read without signing in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardAccess {
    pub slug: String,
    pub name: String,
    pub public: bool,
}

#[server(output = crate::codec::JsonText)]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    Ok(super::store::list_users(&pool)
        .await?
        .into_iter()
        .map(|(account, created_ms)| UserRow {
            account,
            created_ms,
        })
        .collect())
}

#[cfg(feature = "ssr")]
fn role_named(name: &str) -> Result<Role, AppError> {
    Role::parse(name).ok_or_else(|| AppError::BadRequest(format!("unknown role {name:?}")))
}

#[server(output = crate::codec::JsonText)]
pub async fn create_user(
    username: String,
    password: String,
    role: String,
) -> Result<Account, AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    let account =
        super::store::create_user(&pool, &username, &password, role_named(&role)?).await?;
    tracing::info!(by = admin.username, username, role, "account created");
    Ok(account)
}

#[server(output = crate::codec::JsonText)]
pub async fn set_user_role(id: i64, role: String) -> Result<(), AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    super::store::set_role(&pool, id, role_named(&role)?).await?;
    tracing::info!(by = admin.username, id, role, "account role changed");
    Ok(())
}

/// Sets an account's password; its sessions end.
#[server(output = crate::codec::JsonText)]
pub async fn reset_password(id: i64, password: String) -> Result<(), AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    super::store::set_password(&pool, id, &password).await?;
    tracing::info!(by = admin.username, id, "password reset");
    Ok(())
}

#[server(output = crate::codec::JsonText)]
pub async fn delete_user(id: i64) -> Result<(), AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    super::store::delete_user(&pool, id).await?;
    tracing::info!(by = admin.username, id, "account deleted");
    Ok(())
}

#[server(output = crate::codec::JsonText)]
pub async fn list_dashboard_access() -> Result<Vec<DashboardAccess>, AppError> {
    super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    Ok(crate::dashboard::store::list(&pool)
        .await?
        .into_iter()
        .map(|s| DashboardAccess {
            slug: s.slug,
            name: s.name,
            public: s.public,
        })
        .collect())
}

/// Makes a dashboard readable without signing in, or not.
#[server(output = crate::codec::JsonText)]
pub async fn set_dashboard_public(slug: String, public: bool) -> Result<(), AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    if !crate::dashboard::store::set_public(&pool, &slug, public).await? {
        return Err(AppError::NotFound(format!("dashboard {slug:?}")));
    }
    tracing::info!(
        by = admin.username,
        slug,
        public,
        "dashboard access changed"
    );
    Ok(())
}

/// Makes an ingest key; its secret is shown this once.
#[server(output = crate::codec::JsonText)]
pub async fn create_ingest_key(name: String) -> Result<NewKey, AppError> {
    let admin = super::require(Role::Admin)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest(
            "a key needs a name of 1 to 100 characters".into(),
        ));
    }
    let pool = crate::error::pool()?;
    let key = super::keys::create(&pool, name, &admin.username).await?;
    tracing::info!(
        by = admin.username,
        name,
        access_key_id = key.access_key_id,
        "ingest key created"
    );
    Ok(key)
}

#[server(output = crate::codec::JsonText)]
pub async fn list_ingest_keys() -> Result<Vec<IngestKey>, AppError> {
    super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    Ok(super::keys::list(&pool).await?)
}

/// Revokes an ingest key: requests signed with it are refused from now on.
#[server(output = crate::codec::JsonText)]
pub async fn revoke_ingest_key(id: i64) -> Result<(), AppError> {
    let admin = super::require(Role::Admin)?;
    let pool = crate::error::pool()?;
    if !super::keys::revoke(&pool, id).await? {
        return Err(AppError::NotFound(format!("active ingest key {id}")));
    }
    tracing::info!(by = admin.username, id, "ingest key revoked");
    Ok(())
}
