//! A stream of the user's own, neither sensors nor sales: a definition file
//! alone makes the unchanged `pulseboard` binary consume its Kafka topic and
//! accept it over the Firehose-compatible and NDJSON endpoints, store typed
//! rows, keep rollups and windows that equal figures computed from the input,
//! and produce their changes to the declared output topics.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::config::KafkaConfig;
use server::kafka::JsonPublisher;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use support::scalar;

const DEFINITION: &str = r#"
name = "rides"
description = "Bike-share rides"

[sources]
kafka_topics = ["TOPIC"]
http_names = ["rides", "rides-firehose"]

[event_time]
field = "started_at"
format = "rfc3339"

[[fields]]
name = "started_at"
type = "string"
role = "time"

[[fields]]
name = "station"
type = "string"
role = "dimension"
max_length = 12

[[fields]]
name = "city"
type = "string"
role = "dimension"

[[fields]]
name = "duration_s"
type = "integer"
role = "metric"

[[fields]]
name = "distance_km"
type = "float"
role = "metric"
required = false

[[fields]]
name = "electric"
type = "boolean"
role = "dimension"

[[rollups]]
name = "per_station"
grains = ["1m"]
group_by = ["station"]
measures = [
    { fn = "count" },
    { fn = "sum", field = "distance_km" },
    { fn = "avg", field = "duration_s" },
    { fn = "max", field = "duration_s" },
    { fn = "median", field = "duration_s" },
    { fn = "p95", field = "duration_s" },
]

[[rollups]]
name = "per_city"
group_by = ["city"]
measures = [{ fn = "count" }, { fn = "sum", field = "distance_km" }]

# Rides arrive over Kafka and HTTP at once, in no order of time: the lateness
# lets every one count, and the watermark still passes the first window.
[[windows]]
name = "city_5m"
kind = "tumbling"
size = "5m"
watermark = "4m"
allowed_lateness = "10m"
group_by = ["city"]
measures = [{ fn = "count" }, { fn = "avg", field = "duration_s" }]

# Each ride joined with its station's latest record.
[[joins]]
name = "with_station"
stream = "stations"
on = "station"
wait = "60s"

[[outputs]]
topic = "TOPIC.per_city"
from = "per_city"

[[outputs]]
topic = "TOPIC.with_station"
from = "with_station"

[[outputs]]
topic = "TOPIC.city_5m"
from = "city_5m"
"#;

/// The docks, a second stream of one's own that rides are joined with.
const STATIONS: &str = r#"
name = "stations"
sources = { http_names = ["stations"] }
event_time = { field = "since", format = "rfc3339" }
fields = [
    { name = "since", type = "string", role = "time" },
    { name = "station", type = "string", role = "dimension" },
    { name = "docks", type = "integer", role = "metric" },
]
"#;

fn docks(station: &str) -> i64 {
    station.len() as i64 * 4
}

#[derive(Debug, Clone)]
struct Ride {
    minute: i64,
    station: String,
    city: String,
    duration_s: i64,
    distance_km: Option<f64>,
    json: Vec<u8>,
}

/// Rides over ten minutes from 2024-05-01T12:00Z, at three stations in two cities.
fn rides(count: usize) -> Vec<Ride> {
    let mut rng = StdRng::seed_from_u64(3);
    (0..count)
        .map(|i| {
            let minute = (i * 10 / count) as i64;
            let second = rng.random_range(0..60);
            let station = ["north", "south", "harbour"][rng.random_range(0..3)].to_string();
            let city = if station == "harbour" {
                "Porto"
            } else {
                "Lisbon"
            }
            .to_string();
            let duration_s = rng.random_range(60..3600);
            let distance_km = rng
                .random_bool(0.8)
                .then(|| f64::from(rng.random_range(1..400_u32)) / 10.0);
            let json = serde_json::json!({
                "started_at": format!("2024-05-01T12:{minute:02}:{second:02}Z"),
                "station": station,
                "city": city,
                "duration_s": duration_s,
                "distance_km": distance_km,
                "electric": rng.random_bool(0.5),
            });
            Ride {
                minute,
                station,
                city,
                duration_s,
                distance_km,
                json: serde_json::to_vec(&json).expect("json"),
            }
        })
        .collect()
}

/// Produces the rides (keyed by station), then `extra` if given, to `topic`.
async fn publish(kafka: &KafkaConfig, topic: &str, rides: &[Ride], extra: Option<Vec<u8>>) {
    let mut messages: Vec<(String, String, Vec<u8>)> = rides
        .iter()
        .map(|r| (topic.to_string(), r.station.clone(), r.json.clone()))
        .collect();
    messages.extend(extra.map(|payload| (topic.to_string(), "extra".to_string(), payload)));
    JsonPublisher::new(kafka)
        .expect("producer")
        .publish_all(&messages)
        .await
        .expect("published");
}

/// `percentile_disc(p)`: the first value whose cumulative share reaches `p`.
fn percentile_disc(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_definition_alone_makes_a_new_stream_with_tables_and_rollups(pool: PgPool) {
    const RIDES: usize = 2_000;
    let bootstrap = std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
        .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP must name a running Kafka broker (./scripts/test starts one)");
    let nonce: u64 = rand::random();
    let topic = format!("test.rides.{nonce:x}");
    let dir = std::env::temp_dir().join(format!("pulseboard-custom-{nonce:x}"));
    std::fs::create_dir_all(&dir).expect("definitions dir");
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../streams/sensors.toml");
    std::fs::copy(shipped, dir.join("sensors.toml")).expect("sensors definition");
    std::fs::write(dir.join("rides.toml"), DEFINITION.replace("TOPIC", &topic))
        .expect("definition written");
    std::fs::write(dir.join("stations.toml"), STATIONS).expect("definition written");

    let all = rides(RIDES);
    // Every path carries rides from all ten minutes, so each source's clock
    // (each Kafka partition, and HTTP) passes the end of the first window.
    let by_kafka: Vec<Ride> = all.iter().step_by(2).cloned().collect();
    let by_http: Vec<Ride> = all.iter().skip(1).step_by(2).cloned().collect();
    let (by_firehose, by_ndjson) = by_http.split_at(by_http.len() / 2);
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap.clone(),
        readings_topic: String::new(),
        group_id: String::new(),
        ..Default::default()
    };
    // Bad input among them: a ride without its station.
    let bad = br#"{"started_at": "2024-05-01T12:00:00Z", "city": "Lisbon", "duration_s": 5, "electric": true}"#;
    publish(&kafka, &topic, &by_kafka, Some(bad.to_vec())).await;

    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _instance = support::start_instance(
        &pool,
        &[
            ("PULSEBOARD_ADDR", addr.as_str()),
            ("PULSEBOARD_STREAMS_DIR", dir.to_str().expect("utf-8 path")),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", bootstrap.as_str()),
            ("PULSEBOARD_KAFKA_GROUP", &format!("test-rides-{nonce:x}")),
            ("PULSEBOARD_KAFKA_TOPIC", &format!("{topic}.readings")),
        ],
    );
    support::wait_until_serving(port).await;
    // The stations arrive while rides already flow: rides read before them wait.
    let stations: Vec<u8> = ["north", "south", "harbour"]
        .iter()
        .flat_map(|s| {
            let json = serde_json::json!({ "since": "2024-01-01T00:00:00Z", "station": s, "docks": docks(s) });
            format!("{json}\n").into_bytes()
        })
        .collect();
    let (status, answer) =
        support::post_ingest(&pool, port, "/ingest/stations", &[], &stations).await;
    assert_eq!(status, 200, "{answer}");

    for chunk in by_firehose.chunks(500) {
        let records: Vec<serde_json::Value> = chunk
            .iter()
            .map(|r| serde_json::json!({ "Data": BASE64.encode(&r.json) }))
            .collect();
        let body =
            serde_json::json!({ "DeliveryStreamName": "rides-firehose", "Records": records });
        let (status, answer) = support::post_ingest(
            &pool,
            port,
            "/",
            &[
                ("X-Amz-Target", "Firehose_20150804.PutRecordBatch"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains(r#""FailedPutCount":0"#), "{answer}");
    }
    let mut ndjson: Vec<u8> = Vec::new();
    for ride in by_ndjson {
        ndjson.extend_from_slice(&ride.json);
        ndjson.push(b'\n');
    }
    ndjson.extend_from_slice(br#"{"started_at": "2024-05-01T12:00:00Z", "station": "north", "city": "Lisbon", "duration_s": "long", "electric": true}"#);
    let (status, answer) = support::post_ingest(&pool, port, "/ingest/rides", &[], &ndjson).await;
    assert_eq!(status, 200, "{answer}");
    let outcome: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
    assert_eq!(outcome["accepted"], by_ndjson.len());
    let rejected = outcome["rejected"][0]["error"].as_str().unwrap_or_default();
    assert!(
        rejected.contains("\"duration_s\" must be an integer"),
        "{answer}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while scalar(&pool, "SELECT count(*) FROM stream_rides").await < RIDES as i64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rides never all arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM stream_rides").await,
        RIDES as i64
    );

    // Rollup per station and minute, against figures computed from the input.
    type Expected = (i64, f64, Vec<i64>);
    let mut expected: BTreeMap<(i64, String), Expected> = BTreeMap::new();
    for ride in &all {
        let entry = expected
            .entry((ride.minute, ride.station.clone()))
            .or_insert((0, 0.0, Vec::new()));
        entry.0 += 1;
        entry.1 += ride.distance_km.unwrap_or(0.0);
        entry.2.push(ride.duration_s);
    }
    type Stored = (
        i64,
        String,
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<i64>,
        Option<i64>,
    );
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT extract(minute FROM bucket_start)::int8, station, count, sum_distance_km,
                avg_duration_s, max_duration_s, median_duration_s, p95_duration_s
           FROM rollup_rides_per_station_view WHERE grain = '1m' ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("rollup view");
    assert_eq!(stored.len(), expected.len());
    for (minute, station, count, sum, avg, max, median, p95) in stored {
        let (n, distance, mut durations) = expected
            .remove(&(minute, station.clone()))
            .unwrap_or_else(|| panic!("unexpected group {minute} {station}"));
        durations.sort_unstable();
        let at = format!("minute {minute}, {station}");
        assert_eq!(count, n, "{at}");
        assert!(
            (sum.unwrap_or(0.0) - distance).abs() < 1e-6,
            "{at}: {sum:?} vs {distance}"
        );
        let mean = durations.iter().sum::<i64>() as f64 / durations.len() as f64;
        assert!((avg.expect("avg") - mean).abs() < 1e-9, "{at}");
        assert_eq!(max, durations.last().map(|&d| d as f64), "{at}");
        assert_eq!(median, Some(percentile_disc(&durations, 0.5)), "{at}");
        assert_eq!(p95, Some(percentile_disc(&durations, 0.95)), "{at}");
    }

    // All-time rollup per city.
    let per_city: Vec<(String, i64)> =
        sqlx::query_as("SELECT city, count FROM rollup_rides_per_city_view ORDER BY city")
            .fetch_all(&pool)
            .await
            .expect("per city");
    let porto = all.iter().filter(|r| r.city == "Porto").count() as i64;
    assert_eq!(
        per_city,
        [
            ("Lisbon".to_string(), RIDES as i64 - porto),
            ("Porto".to_string(), porto)
        ]
    );

    // The five-minute windows per city: the first is final, the second not yet.
    let mut per_window: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for ride in &all {
        *per_window
            .entry((ride.minute / 5 * 5, ride.city.clone()))
            .or_default() += 1;
    }
    let windows: Vec<(i64, String, i64, bool)> = sqlx::query_as(
        "SELECT extract(minute FROM window_start)::int8, city, count, is_final
           FROM window_rides_city_5m_view ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("window view");
    let want: Vec<(i64, String, i64, bool)> = per_window
        .iter()
        .map(|((minute, city), n)| (*minute, city.clone(), *n, *minute == 0))
        .collect();
    assert_eq!(windows, want);

    // Each output topic's newest message per group is the row as stored.
    let newest = newest_messages(&bootstrap, &format!("{topic}.city_5m"), |json| {
        let start = json["window_start"].as_str().unwrap_or_default();
        format!("{start} {}", json["city"])
    })
    .await;
    let published: Vec<(i64, String, i64, bool)> = newest
        .values()
        .map(|json| {
            let start = json["window_start"].as_str().expect("window_start");
            let minute: i64 = start[14..16].parse().expect("minute");
            let city = json["city"].as_str().expect("city").to_string();
            (
                minute,
                city,
                json["count"].as_i64().expect("count"),
                json["is_final"] == true,
            )
        })
        .collect();
    assert_eq!(published, want);
    let newest = newest_messages(&bootstrap, &format!("{topic}.per_city"), |json| {
        json["city"].to_string()
    })
    .await;
    let published: Vec<(String, i64)> = newest
        .values()
        .map(|json| {
            (
                json["city"].as_str().expect("city").to_string(),
                json["count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(published, per_city);

    // Every ride joined once with its station, and produced to the join's topic.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let joined = "SELECT count(*) FROM join_rides_with_station WHERE _matched";
    while scalar(&pool, joined).await < RIDES as i64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rides never all joined"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wrong = "SELECT count(*) FROM join_rides_with_station
                  WHERE stations_docks IS DISTINCT FROM length(station) * 4";
    assert_eq!(scalar(&pool, wrong).await, 0);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM join_rides_with_station").await,
        RIDES as i64
    );
    let produced = newest_messages(&bootstrap, &format!("{topic}.with_station"), |json| {
        format!(
            "{} {} {}",
            json["started_at"], json["station"], json["duration_s"]
        )
    })
    .await;
    let distinct: std::collections::BTreeSet<String> = all
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_slice(&r.json).expect("json");
            format!(
                "{} {} {}",
                json["started_at"], json["station"], json["duration_s"]
            )
        })
        .collect();
    assert_eq!(produced.len(), distinct.len());
    for json in produced.values() {
        let station = json["station"].as_str().expect("station");
        assert_eq!(
            json["stations_docks"].as_i64(),
            Some(docks(station)),
            "{json}"
        );
    }

    // Bad input from both paths is kept with its reason; latency is kept for the stream.
    let reasons: Vec<(String, String)> =
        sqlx::query_as("SELECT source, reason FROM dead_letters ORDER BY source")
            .fetch_all(&pool)
            .await
            .expect("dead letters");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "kafka");
    assert!(
        reasons[0].1.contains("\"station\" is missing"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, "ndjson");
    assert_eq!(
        scalar(
            &pool,
            "SELECT sum(msg_count)::int8 FROM latency_stats WHERE stream = 'rides'"
        )
        .await,
        RIDES as i64
    );
    // The Streams page's figures: activity and dead letters of this stream.
    let activity = "SELECT sum(records)::int8 FROM stream_activity WHERE stream = 'rides'";
    assert_eq!(scalar(&pool, activity).await, RIDES as i64);
    let dead = "SELECT count(*) FROM dead_letters WHERE stream = 'rides'";
    assert_eq!(scalar(&pool, dead).await, 2);
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads `topic` from the start until it has been quiet for 3 s, and keeps
/// the newest message per `group` (messages of one group share a key, so
/// they arrive in the order they were produced).
async fn newest_messages(
    bootstrap: &str,
    topic: &str,
    group: impl Fn(&serde_json::Value) -> String,
) -> BTreeMap<String, serde_json::Value> {
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("test-outputs-{:x}", rand::random::<u64>()),
        )
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut newest = BTreeMap::new();
    let mut quiet = Duration::from_secs(30);
    while let Ok(message) = tokio::time::timeout(quiet, consumer.recv()).await {
        let message = message.expect("message");
        let json: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
        newest.insert(group(&json), json);
        quiet = Duration::from_secs(3);
    }
    assert!(!newest.is_empty(), "nothing was produced to {topic}");
    newest
}

/// The rides stream as `definition` plans it, beside the stations it joins.
fn plan(definition: &str) -> server::custom::CustomStream {
    let parsed = server::definitions::parse_all(&[
        ("rides.toml".into(), definition.into()),
        ("stations.toml".into(), STATIONS.into()),
    ])
    .expect("valid definitions");
    server::custom::CustomStream::plan_all(&parsed)
        .expect("planned")
        .into_iter()
        .find(|s| s.name == "rides")
        .expect("rides planned")
}

/// The stations stream's tables, which the rides' join reads.
async fn prepare_stations(pool: &PgPool) {
    let parsed = server::definitions::parse_all(&[("stations.toml".into(), STATIONS.into())])
        .expect("valid definition");
    server::custom::CustomStream::plan(&parsed[0])
        .expect("planned")
        .prepare(pool)
        .await
        .expect("stations tables");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_new_field_becomes_a_column_and_a_changed_type_is_refused(pool: PgPool) {
    let first = DEFINITION.replace("TOPIC", "t");
    prepare_stations(&pool).await;
    plan(&first).prepare(&pool).await.expect("tables created");
    plan(&first)
        .prepare(&pool)
        .await
        .expect("preparing again is harmless");

    let added =
        format!("{first}\n[[fields]]\nname = \"bike\"\ntype = \"string\"\nrole = \"dimension\"\n");
    plan(&added).prepare(&pool).await.expect("new field added");
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'stream_rides' ORDER BY ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert!(columns.contains(&"bike".to_string()), "{columns:?}");

    let retyped = added.replace(
        "name = \"duration_s\"\ntype = \"integer\"",
        "name = \"duration_s\"\ntype = \"float\"",
    );
    let error = plan(&retyped)
        .prepare(&pool)
        .await
        .expect_err("a changed type is refused");
    assert!(error.to_string().contains("\"duration_s\""), "{error}");

    let regrouped = first.replace("group_by = [\"city\"]", "group_by = [\"electric\"]");
    let error = plan(&regrouped)
        .prepare(&pool)
        .await
        .expect_err("a changed rollup is refused");
    assert!(error.to_string().contains("new name"), "{error}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn replay_rebuilds_a_custom_stream_from_its_topic(pool: PgPool) {
    use server::replay;
    let bootstrap = std::env::var("PULSEBOARD_TEST_KAFKA_BOOTSTRAP")
        .expect("PULSEBOARD_TEST_KAFKA_BOOTSTRAP must name a running Kafka broker (./scripts/test starts one)");
    let topic = format!("test.rides.replay.{:x}", rand::random::<u64>());
    let stream = plan(&DEFINITION.replace("TOPIC", &topic));
    prepare_stations(&pool).await;
    stream.prepare(&pool).await.expect("tables");
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap,
        ..Default::default()
    };
    let all = rides(300);
    publish(&kafka, &topic, &all, None).await;

    let stream = std::sync::Arc::new(stream);
    for _ in 0..2 {
        stream.reset(&pool).await.expect("reset");
        let mut sink = server::custom::CustomBatch::new(stream.clone());
        let done = replay::run(&pool, &kafka, &stream.kafka_topics, &mut sink, |_| {})
            .await
            .expect("replay");
        assert_eq!(done.done, 300);
        assert_eq!(
            scalar(&pool, "SELECT count(*) FROM stream_rides").await,
            300
        );
        let counted =
            "SELECT sum(count)::int8 FROM rollup_rides_per_station_view WHERE grain = '1m'";
        assert_eq!(scalar(&pool, counted).await, 300);
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_streams_tables_are_chart_datasets_with_typed_columns(pool: PgPool) {
    use app::chart::dataset::ColumnKind;
    use app::chart::definition::{Aggregate, ChartDefinition, ChartType, Metric, TimeRange};

    prepare_stations(&pool).await;
    let stream = std::sync::Arc::new(plan(&DEFINITION.replace("TOPIC", "t")));
    stream.prepare(&pool).await.expect("tables");
    let datasets = server::custom::datasets(&pool, std::slice::from_ref(&stream))
        .await
        .expect("datasets read");
    let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stream_rides",
            "rollup_rides_per_station_view",
            "rollup_rides_per_city_view",
            "window_rides_city_5m_view"
        ]
    );
    let kinds = |name: &str| -> Vec<(String, ColumnKind)> {
        let dataset = datasets.iter().find(|d| d.name == name).unwrap();
        assert_eq!(dataset.streams, ["rides"]);
        dataset
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.kind))
            .collect()
    };
    let raw = kinds("stream_rides");
    assert_eq!(raw[0], ("_event_time".into(), ColumnKind::Time));
    for (column, kind) in [
        ("station", ColumnKind::Dimension),
        ("duration_s", ColumnKind::Metric),
        ("distance_km", ColumnKind::Metric),
        ("electric", ColumnKind::Dimension),
    ] {
        assert!(raw.contains(&(column.into(), kind)), "{column}: {raw:?}");
    }
    assert!(
        !raw.iter()
            .any(|(c, _)| c == "started_at" || c == "_stored_at")
    );
    let rollup = kinds("rollup_rides_per_station_view");
    assert_eq!(rollup[0], ("bucket_start".into(), ColumnKind::Time));
    assert!(rollup.contains(&("station".into(), ColumnKind::Dimension)));
    assert!(rollup.contains(&("avg_duration_s".into(), ColumnKind::Metric)));
    let window = kinds("window_rides_city_5m_view");
    assert_eq!(window[0], ("window_start".into(), ColumnKind::Time));

    // A chart over the raw table gives the figures of its rows.
    for (station, duration) in [("A", 100), ("A", 300), ("B", 50)] {
        sqlx::query(
            "INSERT INTO stream_rides (started_at, station, city, duration_s, electric, _event_time, _ingested_at)
             VALUES ('2026-01-01T00:00:00Z', $1, 'Oslo', $2, false, now(), now())",
        )
        .bind(station)
        .bind(duration)
        .execute(&pool)
        .await
        .expect("a ride");
    }
    let chart = ChartDefinition {
        name: "Ride time by station".into(),
        dataset: "stream_rides".into(),
        chart_type: ChartType::Bar,
        metrics: vec![Metric {
            aggregate: Aggregate::Sum,
            column: Some("duration_s".into()),
        }],
        group_by: vec!["station".into()],
        time_range: TimeRange::All,
        time_grain: None,
        ..ChartDefinition::starter()
    };
    let rows = app::chart::query::build(&chart, &datasets, 0)
        .expect("valid over the stream's dataset")
        .run(&pool)
        .await
        .expect("ran");
    use app::chart::Cell;
    assert_eq!(
        rows.rows,
        [
            vec![Cell::Text("A".into()), Cell::Number(400.0)],
            vec![Cell::Text("B".into()), Cell::Number(50.0)]
        ]
    );
}
