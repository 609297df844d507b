//! Saved charts on a real Postgres: the query builder's figures against
//! figures computed here from the same rows, and the chart store's life
//! cycle (revisions, restore, duplicate, export and import).

use app::chart::dataset::builtin;
use app::chart::definition::{
    Aggregate, ChartDefinition, ChartType, Filter, FilterOp, Metric, Relative, Scalar, Sort,
    TimeGrain, TimeRange, Visual,
};
use app::chart::query::build;
use app::chart::store::{self, StoreError};
use app::chart::{Cell, ChartRows};
use sqlx::PgPool;
use std::collections::BTreeMap;

const NOW_MS: i64 = 1_700_000_000_000;

/// One purchase: (minutes before now, product, category, quantity, total, member).
type Sale = (i64, &'static str, &'static str, i32, f64, bool);

fn sales() -> Vec<Sale> {
    let products = [
        ("SC01", "Classic Smoothies"),
        ("SF02", "Superfoods Smoothies"),
        ("IS03", "Indulgent Smoothies"),
    ];
    (0..300)
        .map(|i: i64| {
            let (product, category) = products[(i * 7 % 3) as usize];
            let quantity = (i % 3 + 1) as i32;
            let total = ((i * 37 % 500) as f64) / 10.0 + 1.0;
            (i % 90, product, category, quantity, total, i % 4 == 0)
        })
        .collect()
}

async fn seed(pool: &PgPool, sales: &[Sale]) {
    for (minutes, product, category, quantity, total, member) in sales {
        sqlx::query(
            "INSERT INTO purchases_enriched (transaction_time, transaction_id, product_id, product_category,
                 product_name, product_size, product_cogs, product_price, contains_fruit, contains_veggies,
                 contains_nuts, contains_caffeine, purchase_price, purchase_quantity, is_member,
                 member_discount, add_supplements, supplement_price, total_purchase)
             VALUES (to_timestamp($1::float8 / 1000), 't', $2, $3, $2, '24 oz.', 1, 5, true, false, false,
                 false, 5, $4, $5, 0, false, 0, $6)",
        )
        .bind(NOW_MS - minutes * 60_000 - 1)
        .bind(product)
        .bind(category)
        .bind(quantity)
        .bind(member)
        .bind(total)
        .execute(pool)
        .await
        .expect("insert a purchase");
    }
}

fn definition(chart_type: ChartType, metrics: Vec<Metric>, group_by: &[&str]) -> ChartDefinition {
    ChartDefinition {
        name: "test".into(),
        dataset: "purchases_enriched".into(),
        chart_type,
        metrics,
        group_by: group_by.iter().map(|g| g.to_string()).collect(),
        time_grain: None,
        time_range: TimeRange::Last(Relative::OneHour),
        filters: vec![],
        sort: None,
        limit: None,
        visual: Visual::default(),
        refresh_seconds: None,
    }
}

fn sum(column: &str) -> Metric {
    Metric {
        aggregate: Aggregate::Sum,
        column: Some(column.into()),
    }
}

async fn run(pool: &PgPool, definition: &ChartDefinition) -> ChartRows {
    build(definition, &builtin(), NOW_MS)
        .expect("valid definition")
        .run(pool)
        .await
        .expect("query runs")
}

fn number(cell: &Cell) -> f64 {
    match cell {
        Cell::Number(x) => *x,
        other => panic!("not a number: {other:?}"),
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn chart_queries_give_the_figures_computed_from_the_rows(pool: PgPool) {
    let sales = sales();
    seed(&pool, &sales).await;
    let last_hour: Vec<&Sale> = sales.iter().filter(|s| s.0 < 60).collect();

    // Sales and quantity per product over the last hour, biggest first.
    let mut chart = definition(
        ChartType::Bar,
        vec![sum("total_purchase"), sum("purchase_quantity")],
        &["product_id"],
    );
    chart.sort = Some(Sort {
        by: "sum_total_purchase".into(),
        descending: true,
    });
    let rows = run(&pool, &chart).await;
    assert_eq!(
        rows.columns,
        ["product_id", "sum_total_purchase", "sum_purchase_quantity"]
    );
    let mut expected: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for sale in &last_hour {
        let entry = expected.entry(sale.1).or_default();
        entry.0 += sale.4;
        entry.1 += f64::from(sale.3);
    }
    assert_eq!(rows.rows.len(), expected.len());
    let mut previous = f64::INFINITY;
    for row in &rows.rows {
        let Cell::Text(product) = &row[0] else {
            panic!("{row:?}")
        };
        let (total, quantity) = expected[product.as_str()];
        assert!(
            (number(&row[1]) - total).abs() < 1e-6,
            "{product}: {row:?} vs {total}"
        );
        assert_eq!(number(&row[2]), quantity);
        assert!(number(&row[1]) <= previous, "sorted biggest first");
        previous = number(&row[1]);
    }

    // A KPI: member purchases counted, the filter bound as a value.
    let mut kpi = definition(
        ChartType::Kpi,
        vec![Metric {
            aggregate: Aggregate::Count,
            column: None,
        }],
        &[],
    );
    kpi.filters = vec![Filter {
        column: "is_member".into(),
        op: FilterOp::Eq,
        values: vec![Scalar::Bool(true)],
    }];
    let rows = run(&pool, &kpi).await;
    let members = last_hour.iter().filter(|s| s.5).count();
    assert_eq!(rows.rows, [vec![Cell::Number(members as f64)]]);

    // All time, as totals kept since the start are read: every purchase.
    kpi.filters.clear();
    kpi.time_range = TimeRange::All;
    let rows = run(&pool, &kpi).await;
    assert_eq!(rows.rows, [vec![Cell::Number(sales.len() as f64)]]);

    // Per 15 minutes over the last 6 hours: every purchase in exactly one bucket.
    let mut series = definition(
        ChartType::Line,
        vec![Metric {
            aggregate: Aggregate::Count,
            column: None,
        }],
        &[],
    );
    series.time_grain = Some(TimeGrain::FifteenMinutes);
    series.time_range = TimeRange::Last(Relative::SixHours);
    let rows = run(&pool, &series).await;
    let counted: f64 = rows.rows.iter().map(|r| number(&r[1])).sum();
    assert_eq!(counted, sales.len() as f64);
    for row in &rows.rows {
        let Cell::Time(bucket) = row[0] else {
            panic!("{row:?}")
        };
        let inside = sales
            .iter()
            .filter(|s| {
                let at = NOW_MS - s.0 * 60_000 - 1;
                at >= bucket && at < bucket + 900_000
            })
            .count();
        assert_eq!(number(&row[1]), inside as f64, "bucket {bucket}");
    }

    // A hostile string is a value: it matches nothing and breaks nothing.
    let mut hostile = definition(
        ChartType::Table,
        vec![sum("total_purchase")],
        &["product_id"],
    );
    hostile.filters = vec![Filter {
        column: "product_id".into(),
        op: FilterOp::In,
        values: vec![
            Scalar::Text("SC01' OR '1'='1".into()),
            Scalar::Text("SF02".into()),
        ],
    }];
    let rows = run(&pool, &hostile).await;
    assert_eq!(rows.rows.len(), 1);
    assert_eq!(rows.rows[0][0], Cell::Text("SF02".into()));

    // A histogram of totals: its buckets hold every purchase in range once.
    let mut histogram = definition(ChartType::Histogram, vec![sum("total_purchase")], &[]);
    histogram.visual.bins = Some(8);
    let rows = run(&pool, &histogram).await;
    assert!(rows.rows.len() <= 8);
    let counted: f64 = rows.rows.iter().map(|r| number(&r[2])).sum();
    assert_eq!(counted, last_hour.len() as f64);
}

async fn stored(pool: &PgPool, id: i64) -> store::StoredChart {
    store::get(pool, id).await.expect("the chart reads back")
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_chart_keeps_its_revisions_and_round_trips_through_a_file(pool: PgPool) {
    let datasets = builtin();
    let mut chart = definition(
        ChartType::Bar,
        vec![sum("total_purchase")],
        &["product_category"],
    );
    chart.name = "<script>alert(1)</script>'; DROP TABLE charts; --".into();
    let created = store::create(&pool, &chart, &datasets)
        .await
        .expect("created");
    assert_eq!(created.revision, 1);
    assert_eq!(stored(&pool, created.id).await.definition, chart);

    let mut edited = chart.clone();
    edited.chart_type = ChartType::HorizontalBar;
    edited.visual.colors = vec!["#1f77b4".into()];
    let saved = store::update(&pool, created.id, &edited, &datasets)
        .await
        .expect("saved");
    assert_eq!(saved.revision, 2);
    let history: Vec<i32> = store::revisions(&pool, created.id)
        .await
        .expect("history")
        .into_iter()
        .map(|(revision, _)| revision)
        .collect();
    assert_eq!(history, [2, 1]);
    let restored = store::restore(&pool, created.id, 1, &datasets)
        .await
        .expect("restored");
    assert_eq!(restored.revision, 3);
    assert_eq!(stored(&pool, created.id).await.definition, chart);

    // Invalid edits are refused with the field, and change nothing.
    let mut broken = chart.clone();
    broken.metrics[0].column = Some("cost".into());
    match store::update(&pool, created.id, &broken, &datasets).await {
        Err(StoreError::Invalid(errors)) => assert_eq!(errors[0].field, "metrics[0].column"),
        other => panic!("expected refusal, got {other:?}"),
    }
    assert_eq!(
        store::get(&pool, created.id).await.expect("read").revision,
        3
    );

    let copy = store::duplicate(&pool, created.id, &datasets)
        .await
        .expect("copied");
    assert_eq!(copy.definition.name, format!("Copy of {}", chart.name));

    // Export, delete, import, export: the same file.
    let file = store::export(&pool, created.id).await.expect("exported");
    assert!(store::delete(&pool, created.id).await.expect("deleted"));
    assert!(matches!(
        store::get(&pool, created.id).await,
        Err(StoreError::NotFound(_))
    ));
    let imported = store::import(&pool, &file, &datasets)
        .await
        .expect("imported");
    assert_eq!(
        store::export(&pool, imported.id)
            .await
            .expect("exported again"),
        file
    );
    assert!(matches!(
        store::import(&pool, "{\"pulseboard_chart\": 2}", &datasets).await,
        Err(StoreError::BadFile(_))
    ));
    let names: Vec<String> = store::list(&pool)
        .await
        .expect("listed")
        .into_iter()
        .map(|c| c.definition.name)
        .collect();
    assert_eq!(names.len(), 2);
}
