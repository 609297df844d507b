//! Per-sensor statistics and latency, kept with every batch, checked against
//! the same figures computed independently from the raw rows.

use server::operators::latency::bucket;
use server::reading::{Reading, epoch_micros};
use server::simulator::seed_waves;
use server::store::{Batch, write_batch};
use sqlx::PgPool;

type SensorFigures = (String, i64, f64, f64, f64, f64);

async fn write_readings(pool: &PgPool, readings: Vec<Reading>) {
    let batch = Batch {
        readings,
        dead_letters: vec![],
    };
    write_batch(pool, &batch).await.expect("batch");
}

async fn write_minutes_of_readings(pool: &PgPool, start: i64, seconds: i64) {
    let mut rng = rand::rng();
    let mut waves = seed_waves();
    // Several batches, so stored partial aggregates are merged with new ones.
    for chunk_start in (0..seconds).step_by(37) {
        let mut readings = Vec::new();
        for second in chunk_start..(chunk_start + 37).min(seconds) {
            readings.extend(
                waves
                    .iter_mut()
                    .map(|w| w.next_reading(start + second, &mut rng).received_now()),
            );
        }
        write_readings(pool, readings).await;
    }
}

/// The all-time statistics per sensor, as stored and as computed from the
/// raw rows. The median is kept per tenth of a degree: the exact median,
/// rounded.
async fn all_time_statistics(pool: &PgPool) -> (Vec<SensorFigures>, Vec<SensorFigures>) {
    let kept = sqlx::query_as(
        "SELECT guid::text, msg_count::int8, avg_temp::float8, min_temp::float8, max_temp::float8,
                median_temp::float8
           FROM sensor_stats ORDER BY guid",
    )
    .fetch_all(pool)
    .await
    .expect("sensor_stats");
    let from_rows = sqlx::query_as(
        "SELECT guid::text, count(*)::int8, round(avg(temp), 2)::float8, min(temp)::float8,
                max(temp)::float8, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY temp), 1)::float8
           FROM message GROUP BY guid ORDER BY guid",
    )
    .fetch_all(pool)
    .await
    .expect("raw");
    (kept, from_rows)
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sensor_statistics_match_the_raw_rows(pool: PgPool) {
    write_minutes_of_readings(&pool, 1_700_000_030, 300).await;

    let (kept, expected) = all_time_statistics(&pool).await;
    assert_eq!(kept.len(), 6);
    assert_eq!(kept, expected);

    let per_minute =
        "SELECT guid::text, msg_count::int8, avg_temp::float8, min_temp::float8, max_temp::float8,
                             median_temp::float8
                        FROM sensor_stats_per_minute ORDER BY guid, bucket_start";
    let minute_rows = "SELECT guid::text, count(*)::int8, round(avg(temp), 2)::float8, min(temp)::float8,
                              max(temp)::float8, (percentile_disc(0.5) WITHIN GROUP (ORDER BY temp))::float8
                         FROM message GROUP BY guid, ts - ts % 60 ORDER BY guid, ts - ts % 60";
    let kept: Vec<SensorFigures> = sqlx::query_as(per_minute)
        .fetch_all(&pool)
        .await
        .expect("per minute");
    let expected: Vec<SensorFigures> = sqlx::query_as(minute_rows)
        .fetch_all(&pool)
        .await
        .expect("raw");
    // 300 s from :30 spans six minutes.
    assert_eq!(kept.len(), 6 * 6);
    assert_eq!(kept, expected);
}

async fn pending_value_counts(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sensor_temp_counts_pending")
        .fetch_one(pool)
        .await
        .expect("pending counts")
}

/// Readings below zero too: a tenth rounds half away from zero, as
/// round(temp, 1) does.
async fn write_freezer(pool: &PgPool, ts: i64) {
    let readings = [-12.35, -12.34, -0.05, -0.04, 0.0, 0.04, -0.06, -12.35, -3.3]
        .iter()
        .map(|&temp| Reading::new("freezer", ts, temp).received_now())
        .collect();
    write_readings(pool, readings).await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn medians_are_exact_before_during_and_after_folding(pool: PgPool) {
    write_minutes_of_readings(&pool, 1_700_000_030, 120).await;
    write_freezer(&pool, 1_700_000_030).await;
    let (kept, expected) = all_time_statistics(&pool).await;
    assert_eq!(kept.len(), 7);
    assert_eq!(kept, expected, "every count pending");
    assert!(pending_value_counts(&pool).await > 0);

    let folded = server::median_counts::fold(&pool).await.expect("fold");
    assert!(folded > 0);
    assert_eq!(pending_value_counts(&pool).await, 0);
    assert_eq!(
        all_time_statistics(&pool).await,
        (kept, expected),
        "every count folded"
    );
    assert_eq!(server::median_counts::fold(&pool).await.expect("fold"), 0);

    // The same tenths again, so the median adds pending counts to folded ones.
    write_minutes_of_readings(&pool, 1_700_000_150, 120).await;
    write_freezer(&pool, 1_700_000_150).await;
    write_freezer(&pool, 1_700_000_151).await;
    let (kept, expected) = all_time_statistics(&pool).await;
    assert_eq!(kept, expected, "folded and pending counts");
    assert_eq!(
        kept.iter().find(|s| s.0 == "freezer").map(|s| s.5),
        Some(-0.1)
    );
    server::median_counts::fold(&pool).await.expect("fold");
    assert_eq!(all_time_statistics(&pool).await, (kept, expected));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn latency_percentiles_match_the_raw_rows(pool: PgPool) {
    let now_s = epoch_micros() / 1_000_000;
    // Events 0 to 90 s old: every row's latency is its stored time minus its event time.
    write_minutes_of_readings(&pool, now_s - 90, 90).await;
    write_readings(&pool, vec![Reading::new("late-sensor", now_s - 3600, 70.0)]).await;

    let mut latencies: Vec<i64> = sqlx::query_scalar(
        "SELECT ((extract(epoch FROM created) * 1000000)::int8 - ts * 1000000) / 1000 FROM message",
    )
    .fetch_all(&pool)
    .await
    .expect("raw latencies");
    latencies.sort_unstable();
    let n = latencies.len();
    // The bucket of the exact percentile, kept within the exact extremes.
    let at = |q: f64| {
        bucket(latencies[((q * n as f64).ceil() as usize).max(1) - 1])
            .clamp(latencies[0], latencies[n - 1])
    };

    let (count, min, avg, p50, p95, p99, max): (i64, i64, f64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT msg_count::int8, min_ms, avg_ms::float8, p50_ms, p95_ms, p99_ms, max_ms
           FROM stream_latency WHERE stream = 'sensors'",
        )
        .fetch_one(&pool)
        .await
        .expect("stream_latency");
    assert_eq!(count as usize, n);
    assert_eq!((min, max), (latencies[0], latencies[n - 1]));
    let mean = latencies.iter().sum::<i64>() as f64 / n as f64;
    assert!((avg - mean).abs() <= 0.05, "{avg} vs {mean}");
    assert_eq!((p50, p95, p99), (at(0.50), at(0.95), at(0.99)));
    assert!(max >= 3_600_000, "the hour-old event is the maximum: {max}");

    // Per key: the late sensor alone.
    let (key_count, key_p50): (i64, i64) = sqlx::query_as(
        "SELECT msg_count::int8, p50_ms FROM stream_key_latency WHERE stream = 'sensors' AND key = 'late-sensor'",
    )
    .fetch_one(&pool)
    .await
    .expect("stream_key_latency");
    assert_eq!(key_count, 1);
    assert_eq!(
        key_p50,
        latencies[n - 1],
        "one row: every percentile is that row's latency"
    );

    // Every row also carries the time it was received.
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message WHERE ingested_at IS NULL AND guid <> 'late-sensor'",
    )
    .fetch_one(&pool)
    .await
    .expect("ingested_at");
    assert_eq!(missing, 0);
}

/// Charts over the readings that summaries can answer (statistics per
/// minute or per 10 seconds, latency counts per minute) read those for whole
/// steps, finer statistics for whole steps left at the edges of their range,
/// and readings only for what remains; their answers must equal those from
/// the readings alone. Each chart lists the summaries it reads.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn charts_read_from_summaries_answer_as_the_readings_do(pool: PgPool) {
    use app::chart::dataset::builtin;
    use app::chart::definition::{
        Aggregate, ChartDefinition, ChartType, Filter, FilterOp, Metric, Relative, Scalar,
        TimeGrain, TimeRange, Visual,
    };
    use app::chart::query::{Rollups, build_with};

    // 40 minutes of readings from 30 s past a minute, and one of a sensor
    // nobody installed (neither path shows it).
    let start = 1_700_000_030;
    write_minutes_of_readings(&pool, start, 2_400).await;
    let stray = Reading {
        guid: "not-installed".into(),
        ts: start + 600,
        temp: 50.0,
        received_at: None,
    };
    write_readings(&pool, vec![stray]).await;
    // Mid-second and mid-minute, so every range has partial edges.
    let now_ms = (start + 2_000) * 1_000 + 500;
    let metric = |aggregate, column: Option<&str>| Metric {
        aggregate,
        column: column.map(String::from),
    };
    let every_measure = vec![
        metric(Aggregate::Avg, Some("temp")),
        metric(Aggregate::Count, None),
        metric(Aggregate::Count, Some("temp")),
        metric(Aggregate::Sum, Some("temp")),
        metric(Aggregate::Min, Some("temp")),
        metric(Aggregate::Max, Some("temp")),
    ];
    let starter = ChartDefinition::starter();
    let location = "Research Lab #2203";
    // Four recent minutes too, so latencies are seconds, not years: a
    // histogram of them shows a millisecond's difference.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    write_minutes_of_readings(&pool, now_s - 240, 240).await;
    let latency = ChartDefinition {
        dataset: "sensor_latency".into(),
        chart_type: ChartType::Histogram,
        metrics: vec![metric(Aggregate::Count, Some("latency_ms"))],
        group_by: vec![],
        time_grain: None,
        time_range: TimeRange::Last(Relative::FifteenMinutes),
        visual: Visual {
            bins: Some(30),
            ..starter.visual.clone()
        },
        ..starter.clone()
    };
    const MINUTES: &str = "sensor_stats_minutely";
    const TEN_SECONDS: &str = "sensor_stats_10s";
    const LATENCY_MINUTES: &str = "sensor_latency_batches";
    let definitions = [
        (&[MINUTES, TEN_SECONDS][..], starter.clone()),
        (
            &[MINUTES, TEN_SECONDS][..],
            ChartDefinition {
                chart_type: ChartType::Kpi,
                metrics: every_measure.clone(),
                group_by: vec![],
                time_range: TimeRange::Last(Relative::FifteenMinutes),
                ..starter.clone()
            },
        ),
        (
            &[MINUTES, TEN_SECONDS][..],
            ChartDefinition {
                chart_type: ChartType::HorizontalBar,
                time_grain: None,
                ..starter.clone()
            },
        ),
        (
            &[MINUTES, TEN_SECONDS][..],
            ChartDefinition {
                chart_type: ChartType::Table,
                metrics: every_measure.clone(),
                group_by: vec!["guid".into(), "lat".into(), "long".into()],
                time_grain: Some(TimeGrain::FiveMinutes),
                time_range: TimeRange::Between {
                    from_ms: (start + 95) * 1_000 + 250,
                    to_ms: (start + 1_900) * 1_000 + 750,
                },
                filters: vec![Filter {
                    column: "location".into(),
                    op: FilterOp::Ne,
                    values: vec![Scalar::Text(location.into())],
                }],
                ..starter.clone()
            },
        ),
        (
            &[MINUTES],
            ChartDefinition {
                chart_type: ChartType::Table,
                metrics: every_measure.clone(),
                time_grain: None,
                time_range: TimeRange::All,
                ..starter.clone()
            },
        ),
        // The map's: when each sensor last reported.
        (
            &[MINUTES, TEN_SECONDS][..],
            ChartDefinition {
                chart_type: ChartType::Map,
                metrics: vec![
                    metric(Aggregate::Avg, Some("temp")),
                    metric(Aggregate::Count, None),
                    metric(Aggregate::Max, Some("recorded")),
                ],
                group_by: vec![
                    "guid".into(),
                    "location".into(),
                    "lat".into(),
                    "long".into(),
                ],
                time_grain: None,
                time_range: TimeRange::Last(Relative::OneHour),
                ..starter.clone()
            },
        ),
        // Over all time: every latest time from the statistics.
        (
            &[MINUTES],
            ChartDefinition {
                chart_type: ChartType::Table,
                metrics: vec![
                    metric(Aggregate::Count, Some("recorded")),
                    metric(Aggregate::Max, Some("recorded")),
                ],
                group_by: vec!["guid".into()],
                time_grain: None,
                time_range: TimeRange::All,
                ..starter.clone()
            },
        ),
        // Within one minute: no whole minute at all.
        (
            &[TEN_SECONDS],
            ChartDefinition {
                chart_type: ChartType::Table,
                metrics: every_measure.clone(),
                time_grain: None,
                time_range: TimeRange::Between {
                    from_ms: (start + 40) * 1_000,
                    to_ms: (start + 50) * 1_000,
                },
                ..starter.clone()
            },
        ),
        // The sensors dashboard's line: 10-second buckets.
        (
            &[TEN_SECONDS],
            ChartDefinition {
                chart_type: ChartType::Line,
                time_grain: Some(TimeGrain::TenSeconds),
                time_range: TimeRange::Last(Relative::FifteenMinutes),
                ..starter.clone()
            },
        ),
        (
            &[TEN_SECONDS],
            ChartDefinition {
                chart_type: ChartType::Table,
                metrics: every_measure.clone(),
                group_by: vec!["guid".into()],
                time_grain: Some(TimeGrain::TenSeconds),
                time_range: TimeRange::Between {
                    from_ms: (start + 95) * 1_000 + 250,
                    to_ms: (start + 1_900) * 1_000 + 750,
                },
                ..starter.clone()
            },
        ),
        // Its latency histogram: over the last 15 minutes, over unaligned
        // recent minutes, and over all time.
        (&[LATENCY_MINUTES], latency.clone()),
        (
            &[LATENCY_MINUTES],
            ChartDefinition {
                time_range: TimeRange::Between {
                    from_ms: (now_s - 200) * 1_000 + 250,
                    to_ms: (now_s - 30) * 1_000 + 750,
                },
                ..latency.clone()
            },
        ),
        (
            &[LATENCY_MINUTES],
            ChartDefinition {
                time_range: TimeRange::All,
                ..latency.clone()
            },
        ),
    ];
    let datasets = builtin();
    let summaries = [MINUTES, TEN_SECONDS, LATENCY_MINUTES];
    assert_summaries_answer_as_readings(&pool, &definitions, &summaries, now_ms).await;

    // Summaries rebuilt from the stored readings (as after a bulk load)
    // answer the same.
    sqlx::query(
        "TRUNCATE sensor_stats_minutely, sensor_stats_10s, sensor_temp_histogram, sensor_temp_counts_pending, sensor_latency_batches",
    )
    .execute(&pool)
    .await
    .expect("truncate");
    server::store::summarize_stored_readings(&pool, 0, i64::MAX)
        .await
        .expect("summarized");
    assert_summaries_answer_as_readings(&pool, &definitions, &summaries, now_ms).await;

    // Charts that need single readings still read them: buckets finer than
    // 10 seconds, a distinct count, a latency histogram of one sensor.
    let single_readings = [
        ChartDefinition {
            time_grain: Some(TimeGrain::Second),
            ..starter.clone()
        },
        ChartDefinition {
            metrics: vec![metric(Aggregate::CountDistinct, Some("temp"))],
            ..starter
        },
        ChartDefinition {
            filters: vec![Filter {
                column: "guid".into(),
                op: FilterOp::Eq,
                values: vec![Scalar::Text("not-installed".into())],
            }],
            ..latency
        },
    ];
    for definition in &single_readings {
        let query = build_with(definition, &datasets, now_ms, Rollups::Use).expect("valid");
        for table in summaries {
            assert!(!query.sql.contains(table), "{table}: {}", query.sql);
        }
    }
}

/// Each chart, read from summaries, answers as it does from the readings
/// alone, and reads exactly the summaries listed beside it.
async fn assert_summaries_answer_as_readings(
    pool: &PgPool,
    definitions: &[(&[&str], app::chart::definition::ChartDefinition)],
    summaries: &[&str],
    now_ms: i64,
) {
    use app::chart::Cell;
    use app::chart::query::{Rollups, build_with};
    let datasets = app::chart::dataset::builtin();
    for (read, definition) in definitions {
        let by_summary = build_with(definition, &datasets, now_ms, Rollups::Use).expect("valid");
        let by_reading = build_with(definition, &datasets, now_ms, Rollups::Skip).expect("valid");
        for &table in summaries {
            // The summary whose rows the chart sums (another may list which
            // sensors to read).
            let reads = by_summary.sql.contains(&format!("FROM {table} m"));
            assert_eq!(reads, read.contains(&table), "{table}: {}", by_summary.sql);
            assert!(!by_reading.sql.contains(table));
        }
        let expected = by_reading.run(pool).await.expect("from readings");
        let answered = by_summary.run(pool).await.expect("from summaries");
        assert!(!expected.rows.is_empty(), "{definition:?}");
        assert_eq!(answered.columns, expected.columns);
        assert_eq!(answered.rows.len(), expected.rows.len(), "{definition:?}");
        for (got, want) in answered.rows.iter().zip(&expected.rows) {
            for (g, w) in got.iter().zip(want) {
                match (g, w) {
                    (Cell::Number(g), Cell::Number(w)) => {
                        assert!(
                            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                            "{g} vs {w}: {definition:?}"
                        )
                    }
                    _ => assert_eq!(g, w, "{definition:?}"),
                }
            }
        }
    }
}
