//! Starts every part of the service and stops them in order.

use crate::config::{Config, DatabaseConfig, SimulatorSink};
use crate::custom::{CustomBatch, CustomStream};
use crate::group_commit::GroupCommit;
use crate::ingest_rate::IngestRates;
use crate::live::{Kept, Live};
use crate::page_cache::PageCache;
use crate::sales_kafka::{self, SalesSink, SalesStreams};
use crate::sales_windows::SalesWindows;
use crate::state::AppState;
use crate::{MIGRATOR, consumer, definitions, kafka, pipeline, sales_pipeline, simulator};
use anyhow::Context;
use app::chart::service::{ChartService, ChartSettings};
use app::streams::{CatalogEntry, StreamCatalog};
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Connects, retrying for a while: the database may still be starting.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.url)
            .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(%error, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error).context("connecting to Postgres (DATABASE_URL)"),
        }
    }
}

/// Runs until `shutdown` is cancelled, then flushes buffered records and exits.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let definitions = definitions::load_dir(&config.streams_dir).with_context(|| {
        format!(
            "loading stream definitions from {} (PULSEBOARD_STREAMS_DIR)",
            config.streams_dir.display()
        )
    })?;
    let sensors = definitions
        .iter()
        .find(|d| d.name == "sensors")
        .with_context(|| {
            format!(
                "{} has no definition of the sensors stream",
                config.streams_dir.display()
            )
        })?;
    let sales = SalesStreams::from_definitions(&definitions).context("the sales streams")?;
    let custom: Vec<Arc<CustomStream>> = CustomStream::plan_all(&definitions)
        .context("planning the custom streams")?
        .into_iter()
        .map(Arc::new)
        .collect();
    let pool = connect(&config.database).await?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations")?;
    crate::auth::ensure_first_admin(&pool, &config.first_admin).await?;
    app::chart::render::ensure_font().context("loading the chart font")?;
    for stream in &custom {
        stream
            .prepare(&pool)
            .await
            .with_context(|| format!("preparing the tables of stream {:?}", stream.name))?;
    }

    // One producer serves every stream of your own that declares output topics.
    let outputs_publisher = match custom.iter().find(|s| s.output_topics().next().is_some()) {
        None => None,
        Some(stream) => {
            let kafka_config = config.kafka.as_ref().with_context(|| {
                format!(
                    "stream {:?} produces to Kafka topics, but no broker is configured (PULSEBOARD_KAFKA_BOOTSTRAP)",
                    stream.name
                )
            })?;
            let topics: Vec<String> = custom
                .iter()
                .flat_map(|s| s.output_topics())
                .cloned()
                .collect();
            kafka::ensure_topics(kafka_config, &topics).await;
            Some(Arc::new(
                kafka::JsonPublisher::new(kafka_config).context("creating the Kafka producer")?,
            ))
        }
    };

    // The sales pipeline's results, one producer with the streams of your own:
    // its Kafka consumer and the in-process simulator both publish through it.
    let sales_outputs = match (&config.kafka, &sales) {
        (Some(kafka_config), Some(sales)) => {
            let publisher = match &outputs_publisher {
                Some(publisher) => publisher.clone(),
                None => Arc::new(
                    kafka::JsonPublisher::new(kafka_config)
                        .context("creating the Kafka producer")?,
                ),
            };
            Some(sales.outputs(publisher))
        }
        _ => None,
    };

    let mut tasks = JoinSet::new();
    if let Some(kafka_config) = &config.kafka {
        kafka::ensure_topics(
            kafka_config,
            std::slice::from_ref(&kafka_config.readings_topic),
        )
        .await;
        tasks.spawn(kafka::run_consumer(
            pool.clone(),
            kafka_config.clone(),
            config.flush,
            shutdown.clone(),
        ));
        tracing::info!(
            brokers = %kafka_config.bootstrap_servers,
            topic = %kafka_config.readings_topic,
            group = %kafka_config.group_id,
            "consuming readings from Kafka"
        );
    }
    if config.simulator.enabled {
        let sink = match (config.simulator.sink, &config.kafka) {
            (SimulatorSink::Kafka, Some(kafka_config)) => simulator::Sink::Kafka(
                kafka::ReadingPublisher::new(kafka_config)
                    .context("creating the Kafka producer")?,
            ),
            _ => {
                let (tx, rx) = pipeline::channel();
                tasks.spawn(pipeline::run(
                    pool.clone(),
                    rx,
                    config.flush,
                    shutdown.clone(),
                ));
                simulator::Sink::Pipeline(tx)
            }
        };
        tasks.spawn(simulator::run(
            config.simulator.period,
            sink,
            shutdown.clone(),
        ));
    }
    if let (Some(kafka_config), Some(sales)) = (&config.kafka, &sales) {
        let subscription = sales.subscription(&kafka_config.group_id);
        let outputs = sales_outputs.clone();
        // Before anything reads or publishes, in this path or in-process.
        let result_topics = outputs.as_ref().map(|o| o.topics()).unwrap_or_default();
        let topics = [subscription.topics.clone(), result_topics].concat();
        kafka::ensure_topics(kafka_config, &topics).await;
        tracing::info!(group = %subscription.group, topics = ?subscription.topics, "consuming sales from Kafka");
        tasks.spawn(consumer::run(
            pool.clone(),
            kafka_config.clone(),
            subscription,
            SalesSink::new(sales.clone(), outputs),
            config.flush,
            shutdown.clone(),
        ));
    }
    if let Some(kafka_config) = &config.kafka {
        for stream in custom.iter().filter(|s| !s.kafka_topics.is_empty()) {
            let subscription = stream.subscription(&kafka_config.group_id);
            kafka::ensure_topics(kafka_config, &subscription.topics).await;
            tracing::info!(stream = %stream.name, group = %subscription.group, topics = ?subscription.topics, "consuming a custom stream from Kafka");
            tasks.spawn(consumer::run(
                pool.clone(),
                kafka_config.clone(),
                subscription,
                CustomBatch::new(stream.clone()).publishing(outputs_publisher.clone()),
                config.flush,
                shutdown.clone(),
            ));
        }
    }
    if config.simulator.sales {
        let seed = rand::random();
        let sales_config = crate::sales::SalesConfig {
            disorder: config.simulator.sales_disorder.clone(),
            ..Default::default()
        };
        match (config.simulator.sink, &config.kafka, &sales) {
            (SimulatorSink::Kafka, Some(kafka_config), Some(sales)) => {
                tasks.spawn(sales_kafka::run_simulator(
                    kafka_config.clone(),
                    sales.clone(),
                    sales_config.clone(),
                    config.simulator.sales_rate,
                    seed,
                    config.flush,
                    shutdown.clone(),
                ));
            }
            _ => {
                // In-process sales follow the definitions too: their windows,
                // and results to the topics they name.
                let windows = match &sales {
                    Some(sales) => SalesWindows::with_spec(sales.windows),
                    None => SalesWindows::new().context("the default sales windows")?,
                };
                if config.kafka.is_some() && sales.is_none() {
                    tracing::warn!(
                        "no sales streams are defined, so in-process sales publish no results to Kafka"
                    );
                }
                tasks.spawn(sales_pipeline::run(
                    pool.clone(),
                    sales_outputs.clone(),
                    windows,
                    crate::sales::SalesGenerator::new(sales_config, seed),
                    config.simulator.sales_rate,
                    config.flush,
                    shutdown.clone(),
                ));
            }
        }
    }

    tasks.spawn(crate::median_counts::run(pool.clone(), shutdown.clone()));
    if let Some(age) = config.raw_retention {
        tracing::info!(
            ?age,
            "raw rows are kept for this long (PULSEBOARD_RAW_RETENTION)"
        );
        tasks.spawn(crate::retention::run(
            pool.clone(),
            crate::retention::raw_tables(&custom),
            age,
            shutdown.clone(),
        ));
    }

    let leptos_options = LeptosOptions::builder()
        .output_name("pulseboard")
        .site_root(config.http.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.http.addr)
        .build();
    // Streams of your own chart like the built-in ones.
    let mut datasets = app::chart::dataset::builtin();
    datasets.extend(
        crate::custom::datasets(&pool, &custom)
            .await
            .context("reading the custom streams' tables")?,
    );
    let charts = ChartService::new(
        pool.clone(),
        datasets,
        ChartSettings {
            minimum_refresh: config.dashboards.minimum_refresh,
            tile_url: config.dashboards.tile_url.clone(),
        },
    );
    crate::dashboard_files::load_dir(
        &pool,
        &config.dashboards.dir,
        &charts.datasets,
        config.dashboards.minimum_refresh,
    )
    .await
    .with_context(|| {
        format!(
            "loading dashboards from {} (PULSEBOARD_DASHBOARDS_DIR)",
            config.dashboards.dir.display()
        )
    })?;
    let kept = Kept {
        pages: Arc::new(PageCache::new(charts.max_age())),
        sessions: Arc::default(),
        charts,
    };
    let live = Live::start(pool.clone(), kept.clone(), shutdown.clone());
    let state = AppState {
        charts: kept.charts,
        live,
        pages: kept.pages,
        sessions: kept.sessions,
        ingest_streams: sensors.sources.http_names.clone().into(),
        catalog: catalog(&definitions, config.kafka.as_ref()),
        custom_streams: Arc::new(
            custom
                .iter()
                .flat_map(|stream| {
                    stream
                        .http_names
                        .iter()
                        .map(|name| (name.clone(), stream.clone()))
                })
                .collect(),
        ),
        writer: GroupCommit::start(pool.clone(), config.flush.max_records, outputs_publisher),
        pool,
        leptos_options,
        kafka: config.kafka.clone(),
        ingest_rates: IngestRates::new(config.http.limits.ingest_records_per_second),
        request_timeout: config.http.limits.request_timeout,
    };
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("listening on {} (PULSEBOARD_ADDR)", config.http.addr))?;
    tracing::info!("Pulseboard is serving http://{}", config.http.addr);
    crate::connections::serve(
        listener,
        crate::router::router(state),
        config.http.limits,
        shutdown.clone(),
    )
    .await;

    // Whatever ended serving, stop the ingest tasks and let them flush.
    shutdown.cancel();
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "a background task failed");
        }
    }
    Ok(())
}

/// Every defined stream, in definition order with the sensors first, and the
/// topics it reads (the sensors' from the Kafka settings, which may override).
fn catalog(
    definitions: &[definitions::StreamDefinition],
    kafka: Option<&crate::config::KafkaConfig>,
) -> StreamCatalog {
    let mut entries: Vec<CatalogEntry> = definitions
        .iter()
        .map(|d| CatalogEntry {
            name: d.name.clone(),
            topics: match (d.pipeline, kafka) {
                (Some(definitions::Pipeline::Sensors), Some(kafka)) => {
                    vec![kafka.readings_topic.clone()]
                }
                _ => d.sources.kafka_topics.clone(),
            },
        })
        .collect();
    entries.sort_by_key(|e| e.name != crate::store::SENSOR_STREAM);
    StreamCatalog(entries.into())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => tracing::info!("interrupted; shutting down"),
            _ = terminate => tracing::info!("terminated; shutting down"),
        }
        token.cancel();
    });
}
