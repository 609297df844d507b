//! The Pulseboard service: ingest, pipeline, storage and the HTTP surface.

pub mod api_errors;
pub mod auth;
pub mod cli;
pub mod combined;
pub mod config;
pub mod connections;
pub mod consumer;
pub mod custom;
pub mod dashboard_files;
pub mod definitions;
pub mod downloads;
pub mod firehose;
pub mod group_commit;
pub mod health;
pub mod ingest_auth;
pub mod ingest_rate;
pub mod kafka;
pub mod live;
pub mod median_counts;
pub mod metrics;
pub mod offsets;
pub mod operators;
pub mod page_cache;
pub mod pgcopy;
pub mod pipeline;
pub mod reading;
pub mod replay;
pub mod request_time;
pub mod retention;
pub mod router;
pub mod sales;
pub mod sales_kafka;
pub mod sales_pipeline;
pub mod sales_windows;
pub mod service;
pub mod sessions;
pub mod sigv4;
pub mod simulator;
pub mod state;
pub mod store;

/// The migrations in `migrations/`, embedded so the binary sets up its own database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
