//! Dashboards on a real Postgres: the shipped dashboard files load and every
//! chart on them draws from the real tables; a dashboard file survives
//! export, delete and import unchanged; downloads hold the chart's data;
//! and a flush's notification reaches live dashboards.

mod support;

use app::chart::dataset::builtin;
use app::chart::service::{ChartService, ChartSettings};
use app::chart::view::ViewOptions;
use app::dashboard::store::{self, Loaded, OnConflict};
use axum::body::Body;
use axum::http::Request;
use server::reading::Reading;
use server::store::{Batch, write_batch};
use sqlx::PgPool;
use std::path::Path;
use std::time::Duration;

const GUIDS: [&str; 6] = [
    "03e39872-e105-4be4-83c0-9ade818465dc",
    "93238559-4d55-4b2a-bdcb-6aa3be0f3908",
    "d120422d-5789-435d-9dc6-73d8489b04c2",
    "dbc05806-6872-4f0a-aca2-f794cc39bd9b",
    "f9ade639-f936-4954-aa5a-1f2ed86c9bcf",
    "fa565921-fddd-4bfb-a7fd-d617f816df4b",
];

fn shipped() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards"))
}

/// Ten readings per sensor over the last minute; sensor `i` reads 60 + 5i °F.
async fn seed_readings(pool: &PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut batch = Batch::default();
    for (i, guid) in GUIDS.iter().enumerate() {
        for k in 0..10 {
            batch.readings.push(Reading {
                guid: guid.to_string(),
                ts: now - 60 + k * 6,
                temp: 60.0 + 5.0 * i as f64,
                received_at: None,
            });
        }
    }
    write_batch(pool, &batch).await.expect("store readings");
}

fn service(pool: &PgPool) -> ChartService {
    ChartService::new(pool.clone(), builtin(), ChartSettings::default())
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_shipped_dashboards_load_once_and_every_chart_draws(pool: PgPool) {
    seed_readings(&pool).await;
    let charts = service(&pool);
    server::dashboard_files::load_dir(&pool, shipped(), &charts.datasets, 1)
        .await
        .expect("the shipped dashboards load");
    let mut slugs: Vec<String> = store::list(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.slug)
        .collect();
    slugs.sort();
    assert_eq!(slugs, ["sales", "sensors"]);

    // Loading again changes nothing, and keeps edits made since.
    let mut edited = store::get(&pool, "sensors").await.unwrap();
    edited.name = "Sensors (edited)".into();
    store::save(&pool, "sensors", &edited, 1).await.unwrap();
    let text = std::fs::read_to_string(shipped().join("sensors.json")).unwrap();
    assert_eq!(
        store::load(&pool, &text, &charts.datasets, 1)
            .await
            .unwrap(),
        Loaded::Unchanged
    );
    assert_eq!(
        store::get(&pool, "sensors").await.unwrap().name,
        "Sensors (edited)"
    );

    for slug in ["sensors", "sales"] {
        let dashboard = store::get(&pool, slug).await.unwrap();
        for id in dashboard.chart_refs() {
            let chart = app::chart::store::get(&pool, id).await.unwrap();
            let view = charts
                .view(&chart.definition, &ViewOptions::default())
                .await
                .unwrap_or_else(|e| {
                    panic!("{slug}: {:?} does not draw: {e}", chart.definition.name)
                });
            assert!(
                view.svg.is_some() || view.table.is_some(),
                "{}",
                chart.definition.name
            );
        }
    }
    // The map of the sensors dashboard has a marker per sensor with readings.
    let dashboard = store::get(&pool, "sensors").await.unwrap();
    let mut maps = 0;
    for id in dashboard.chart_refs() {
        let chart = app::chart::store::get(&pool, id).await.unwrap();
        if chart.definition.chart_type == app::chart::definition::ChartType::Map {
            let view = charts
                .view(&chart.definition, &ViewOptions::default())
                .await
                .unwrap();
            let svg = view.svg.as_deref().unwrap();
            assert_eq!(svg.matches(" data-filter-column=").count(), 6, "{svg}");
            maps += 1;
        }
    }
    assert_eq!(maps, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_dashboard_file_survives_export_delete_and_import_unchanged(pool: PgPool) {
    let datasets = builtin();
    let text = std::fs::read_to_string(shipped().join("sales.json")).unwrap();
    store::import(&pool, &text, &datasets, 1, OnConflict::Refuse, None)
        .await
        .unwrap();
    let exported = store::export(&pool, "sales").await.unwrap();
    assert!(matches!(
        store::import(&pool, &exported, &datasets, 1, OnConflict::Refuse, None).await,
        Err(store::DashboardError::SlugTaken(_))
    ));
    assert!(store::delete(&pool, "sales").await.unwrap());
    store::import(&pool, &exported, &datasets, 1, OnConflict::Refuse, None)
        .await
        .unwrap();
    assert_eq!(store::export(&pool, "sales").await.unwrap(), exported);

    // A file naming a chart it does not hold, or too fast a refresh, is refused whole.
    let dangling = exported.replacen("\"chart\": 0", "\"chart\": 99", 1);
    let before = support::count(&pool, "charts").await;
    store::delete(&pool, "sales").await.unwrap();
    assert!(matches!(
        store::import(&pool, &dangling, &datasets, 1, OnConflict::Refuse, None).await,
        Err(store::DashboardError::BadFile(_))
    ));
    assert!(matches!(
        store::import(&pool, &exported, &datasets, 60, OnConflict::Refuse, None).await,
        Err(store::DashboardError::Invalid(errors)) if errors[0].field == "refresh_seconds"
    ));
    assert_eq!(
        support::count(&pool, "charts").await,
        before,
        "nothing half-imported"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn downloads_hold_the_charts_data(pool: PgPool) {
    seed_readings(&pool).await;
    let datasets = builtin();
    let text = std::fs::read_to_string(shipped().join("sensors.json")).unwrap();
    store::import(&pool, &text, &datasets, 1, OnConflict::Refuse, None)
        .await
        .unwrap();
    let dashboard = store::get(&pool, "sensors").await.unwrap();
    let mut bar = None;
    for id in dashboard.chart_refs() {
        let chart = app::chart::store::get(&pool, id).await.unwrap();
        if chart.definition.name == "Average temperature per sensor, last 30 minutes" {
            bar = Some(id);
        }
    }
    let id = bar.expect("the per-sensor bar chart");
    let state = support::state(pool.clone(), None);

    let csv = support::get(state.clone(), &format!("/download/chart/{id}/csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "location,avg_temp");
    assert_eq!(lines.len(), 7, "{}", csv.body);
    let mut temps: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    temps.sort_by(f64::total_cmp);
    assert_eq!(temps, [60.0, 65.0, 70.0, 75.0, 80.0, 85.0]);

    // Filtered to one sensor, as a click on the map does.
    let one = support::get(
        state.clone(),
        &format!("/download/chart/{id}/csv?filter=guid:{}", GUIDS[2]),
    )
    .await;
    assert_eq!(one.body.lines().count(), 2, "{}", one.body);
    assert!(one.body.ends_with(",70\r\n"), "{}", one.body);

    let svg = support::get(state.clone(), &format!("/download/chart/{id}/svg")).await;
    assert_eq!(svg.content_type, "image/svg+xml");
    assert!(svg.body.starts_with("<svg"), "{}", &svg.body[..80]);
    assert!(svg.body.contains("85"), "the largest average is labelled");

    let png = server::router::router(state.clone())
        .oneshot(
            Request::get(format!("/download/chart/{id}/png"))
                .header(
                    "cookie",
                    support::session_cookie(&pool, app::accounts::Role::Viewer).await,
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    let bytes = axum::body::to_bytes(png.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));

    for (uri, status) in [
        (format!("/download/chart/{id}/gif"), 404),
        (format!("/download/chart/{id}/csv?range=yesterday"), 400),
        ("/download/chart/999999/csv".to_string(), 404),
        ("/download/dashboard/nope".to_string(), 404),
    ] {
        let reply = support::get(state.clone(), &uri).await;
        assert_eq!(reply.status, status, "{uri}: {}", reply.body);
    }
    let file = support::get(state.clone(), "/download/dashboard/sensors").await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, store::export(&pool, "sensors").await.unwrap());

    // A chart file imports as a new chart that exports to the same file.
    let chart_file = support::get(state, &format!("/download/chart/{id}/json")).await;
    assert_eq!(chart_file.status, 200);
    let copy = app::chart::store::import(&pool, &chart_file.body, &datasets)
        .await
        .unwrap();
    assert_ne!(copy.id, id);
    assert_eq!(
        app::chart::store::export(&pool, copy.id).await.unwrap(),
        chart_file.body
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_hundred_viewers_of_a_chart_cost_one_query(pool: PgPool) {
    seed_readings(&pool).await;
    let charts = service(&pool);
    let text = std::fs::read_to_string(shipped().join("sensors.json")).unwrap();
    store::import(&pool, &text, &charts.datasets, 1, OnConflict::Refuse, None)
        .await
        .unwrap();
    let id = store::get(&pool, "sensors").await.unwrap().chart_refs()[0];
    let definition = charts.saved(id).await.unwrap();
    let mut viewers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let charts = charts.clone();
        viewers.spawn(async move {
            let definition = charts.saved(id).await.expect("saved");
            charts
                .view(&definition, &ViewOptions::default())
                .await
                .expect("drawn")
        });
    }
    let views: Vec<_> = viewers.join_all().await;
    assert!(views.iter().all(|v| v.svg == views[0].svg));
    assert_eq!(charts.cache.queries(), 1);
    // Another size is another drawing.
    let wide = ViewOptions {
        width: 1200,
        ..ViewOptions::default()
    };
    charts.view(&definition, &wide).await.unwrap();
    assert_eq!(charts.cache.queries(), 2);

    // The definition came from memory: a deleted chart still reads until
    // the cache's age (1 s here) has passed.
    assert!(app::chart::store::delete(&pool, id).await.unwrap());
    assert_eq!(charts.saved(id).await.unwrap(), definition);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(matches!(
        charts.saved(id).await,
        Err(app::error::AppError::NotFound(_))
    ));
}

use tower::ServiceExt;

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_flush_tells_live_dashboards_and_marks_its_charts_stale(pool: PgPool) {
    use app::chart::Cell;
    use app::chart::definition::{Aggregate, ChartDefinition, ChartType, Metric, TimeRange};
    // Drawn charts are kept an hour here: only new data can make one stale.
    let settings = ChartSettings {
        minimum_refresh: 3_600,
        ..ChartSettings::default()
    };
    let charts = ChartService::new(pool.clone(), builtin(), settings);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let kept = server::live::Kept {
        charts: charts.clone(),
        pages: Default::default(),
        sessions: Default::default(),
    };
    let live = server::live::Live::start(pool.clone(), kept, shutdown.clone());
    let mut events = live.subscribe();
    // The listener connects in the background; flush until it hears one.
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            seed_readings(&pool).await;
            if let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_millis(500), events.recv()).await
            {
                return stream;
            }
        }
    })
    .await
    .expect("a notification within 10 s");
    assert_eq!(heard, "sensors");
    tokio::time::sleep(Duration::from_millis(300)).await;
    while events.try_recv().is_ok() {}

    let readings = ChartDefinition {
        name: "Readings".into(),
        chart_type: ChartType::Table,
        metrics: vec![Metric {
            aggregate: Aggregate::Count,
            column: None,
        }],
        group_by: vec![],
        time_grain: None,
        time_range: TimeRange::All,
        ..ChartDefinition::starter()
    };
    let count = |view: &app::chart::view::ChartView| match view.table.as_ref().unwrap().rows[0][0] {
        Cell::Number(n) => n,
        ref other => panic!("{other:?}"),
    };
    let before = charts
        .view(&readings, &ViewOptions::default())
        .await
        .unwrap();
    let again = charts
        .view(&readings, &ViewOptions::default())
        .await
        .unwrap();
    assert_eq!(charts.cache.queries(), 1, "kept while no data came");
    assert_eq!(count(&again), count(&before));

    seed_readings(&pool).await;
    let stream = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("told within 5 s")
        .unwrap();
    assert_eq!(stream, "sensors");
    let after = charts
        .view(&readings, &ViewOptions::default())
        .await
        .unwrap();
    assert_eq!(charts.cache.queries(), 2);
    assert_eq!(count(&after), count(&before) + 60.0);
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn every_built_in_dataset_matches_its_table_and_charts(pool: PgPool) {
    use app::chart::dataset::ColumnKind;
    use app::chart::definition::{Aggregate, ChartDefinition, ChartType, Metric, TimeRange};
    seed_readings(&pool).await;
    let datasets = builtin();
    for dataset in &datasets {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(&dataset.name)
        .fetch_all(&pool)
        .await
        .unwrap();
        for column in &dataset.columns {
            let (_, data_type) = columns
                .iter()
                .find(|(name, _)| *name == column.name)
                .unwrap_or_else(|| panic!("{} has no column {}", dataset.name, column.name));
            let numeric = [
                "smallint",
                "integer",
                "bigint",
                "numeric",
                "real",
                "double precision",
            ]
            .contains(&data_type.as_str());
            match column.kind {
                ColumnKind::Time => assert!(
                    data_type.starts_with("timestamp"),
                    "{}.{}",
                    dataset.name,
                    column.name
                ),
                ColumnKind::Metric | ColumnKind::Latitude | ColumnKind::Longitude => {
                    assert!(numeric, "{}.{} is {data_type}", dataset.name, column.name)
                }
                ColumnKind::Dimension => {}
            }
        }
        // Every dataset answers a chart: rows per its first dimension.
        let first = dataset
            .columns
            .iter()
            .find(|c| c.kind == ColumnKind::Dimension)
            .map(|c| c.name.clone());
        let chart = ChartDefinition {
            name: dataset.name.clone(),
            dataset: dataset.name.clone(),
            chart_type: ChartType::Table,
            metrics: vec![Metric {
                aggregate: Aggregate::Count,
                column: None,
            }],
            group_by: first.into_iter().collect(),
            time_grain: None,
            time_range: TimeRange::All,
            ..ChartDefinition::starter()
        };
        app::chart::query::build(&chart, &datasets, 0)
            .unwrap_or_else(|e| panic!("{}: {e:?}", dataset.name))
            .run(&pool)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", dataset.name));
    }
}
