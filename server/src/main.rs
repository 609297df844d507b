use anyhow::Context;
use server::cli::{self, Command};
use server::config::Config;
use server::custom::{CustomBatch, CustomStream};
use server::definitions::{self, Pipeline};
use server::sales_kafka::{SalesSink, SalesStreams};
use server::store::{self, Batch};
use server::{replay, service};
use std::io::Write;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The log goes to standard error; standard output carries only what a
    // command prints for scripts (such as a new ingest key).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let config = Config::from_env()?;
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        Command::Serve => {
            let shutdown = CancellationToken::new();
            service::cancel_on_signals(shutdown.clone());
            service::run(config, shutdown).await
        }
        Command::Replay {
            stream,
            topic,
            reset,
        } => replay(config, stream, topic, reset).await,
        Command::CreateUser { username, role } => create_user(config, &username, role).await,
        Command::CreateIngestKey { name } => {
            let pool = migrated_pool(&config).await?;
            let key = app::accounts::keys::create(&pool, &name, "command line").await?;
            println!("{} {}", key.access_key_id, key.secret);
            Ok(())
        }
    }
}

async fn migrated_pool(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let pool = service::connect(&config.database).await?;
    server::MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

/// Creates an account whose password is the first line of standard input.
async fn create_user(
    config: Config,
    username: &str,
    role: app::accounts::Role,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let pool = migrated_pool(&config).await?;
    let account = app::accounts::store::create_user(&pool, username, password, role).await?;
    println!(
        "created {} account {:?} (id {})",
        role.name(),
        account.username,
        account.id
    );
    Ok(())
}

/// Replays one stream's topics through its own pipeline.
async fn replay(
    config: Config,
    stream: Option<String>,
    topic: Option<String>,
    reset: bool,
) -> anyhow::Result<()> {
    let kafka = config
        .kafka
        .as_ref()
        .context("replay needs PULSEBOARD_KAFKA_BOOTSTRAP")?;
    let definitions = definitions::load_dir(&config.streams_dir)?;
    let name = stream.as_deref().unwrap_or(store::SENSOR_STREAM);
    let definition = definitions
        .iter()
        .find(|d| d.name == name)
        .with_context(|| {
            format!(
                "no stream named {name:?} in {}",
                config.streams_dir.display()
            )
        })?;
    let pool = migrated_pool(&config).await?;
    let progress = |p: replay::Progress| {
        eprint!("\r{}", replay::bar(p, 40));
        let _ = std::io::stderr().flush();
    };
    let done = match definition.pipeline {
        Some(Pipeline::Sensors) => {
            let topics = vec![topic.unwrap_or_else(|| kafka.readings_topic.clone())];
            if reset {
                replay::reset_readings(&pool)
                    .await
                    .context("emptying the readings")?;
            }
            eprintln!("replaying {topics:?} into the sensors pipeline");
            replay::run(&pool, kafka, &topics, &mut Batch::default(), progress).await?
        }
        Some(_) => {
            let streams = SalesStreams::from_definitions(&definitions)?
                .context("the sales streams need the products and purchases definitions")?;
            let mut topics = streams.subscription("").topics;
            if let Some(topic) = topic {
                topics = vec![topic];
            }
            if reset {
                replay::reset_sales(&pool)
                    .await
                    .context("emptying the sales tables")?;
            }
            eprintln!("replaying {topics:?} into the sales pipeline");
            let mut sink = SalesSink::new(streams, None);
            replay::run(&pool, kafka, &topics, &mut sink, progress).await?
        }
        None => {
            // Planned among all definitions, so its joins know the streams they read.
            let stream = CustomStream::plan_all(&definitions)?
                .into_iter()
                .find(|s| s.name == definition.name)
                .context("the stream was not planned")?;
            stream.prepare(&pool).await?;
            let topics = topic.map_or_else(|| stream.kafka_topics.clone(), |t| vec![t]);
            if reset {
                stream
                    .reset(&pool)
                    .await
                    .context("emptying the stream's tables")?;
            }
            eprintln!("replaying {topics:?} into stream {name:?}");
            let mut sink = CustomBatch::new(std::sync::Arc::new(stream));
            replay::run(&pool, kafka, &topics, &mut sink, progress).await?
        }
    };
    eprintln!("\nreplayed {} records", done.done);
    Ok(())
}
