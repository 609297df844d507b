use anyhow::Context;
use server::cli::{self, Command};
use server::config::Config;
use server::{replay, service};
use std::io::Write;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
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
        Command::Replay { topic, reset } => {
            let kafka = config
                .kafka
                .as_ref()
                .context("replay needs PULSEBOARD_KAFKA_BOOTSTRAP")?;
            let topic = topic.unwrap_or_else(|| kafka.readings_topic.clone());
            let pool = service::connect(&config.database).await?;
            server::MIGRATOR
                .run(&pool)
                .await
                .context("applying database migrations")?;
            if reset {
                replay::reset(&pool)
                    .await
                    .context("emptying the readings before the replay")?;
            }
            eprintln!("replaying {topic} from its earliest offset");
            let done = replay::run(&pool, kafka, &topic, |progress| {
                eprint!("\r{}", replay::bar(progress, 40));
                let _ = std::io::stderr().flush();
            })
            .await?;
            eprintln!("\nreplayed {} records", done.done);
            Ok(())
        }
    }
}
