//! Shared by the HTTP tests: application state over a test database, and
//! requests driven through the router without a socket.

#![allow(dead_code)] // each test binary uses its own part of this

use app::streams::{CatalogEntry, StreamCatalog};
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use leptos::config::LeptosOptions;
use server::config::{FlushConfig, KafkaConfig};
use server::group_commit::GroupCommit;
use server::state::AppState;
use sqlx::PgPool;
use tower::ServiceExt;

pub fn state(pool: PgPool, kafka: Option<KafkaConfig>) -> AppState {
    let leptos_options = LeptosOptions::builder()
        .output_name("pulseboard")
        .site_root("target/site")
        .build();
    AppState {
        charts: app::chart::service::ChartService::new(
            pool.clone(),
            app::chart::dataset::builtin(),
            Default::default(),
        ),
        live: Default::default(),
        pages: Default::default(),
        sessions: Default::default(),
        writer: GroupCommit::start(pool.clone(), FlushConfig::DEFAULT.max_records, None),
        pool,
        leptos_options,
        kafka,
        ingest_streams: vec!["sensors".to_string()].into(),
        catalog: StreamCatalog(
            ["sensors", "purchases"]
                .map(|name| CatalogEntry {
                    name: name.into(),
                    topics: Vec::new(),
                })
                .into(),
        ),
        custom_streams: Default::default(),
        ingest_rates: server::ingest_rate::IngestRates::new(
            server::config::HttpLimits::DEFAULT.ingest_records_per_second,
        ),
        request_timeout: server::config::HttpLimits::DEFAULT.request_timeout,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Names the database `pool` reaches, server included.
fn cache_key(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// A session cookie (`name=token`) for a new account with `role` in the
/// test database.
pub async fn session_cookie(pool: &PgPool, role: app::accounts::Role) -> String {
    use app::accounts::store;
    let username = format!("test-{}-{}", role.name(), rand::random::<u32>());
    let password = "a test password, long enough";
    store::create_user(pool, &username, password, role)
        .await
        .expect("account created");
    let (_, token) = store::sign_in(pool, &username, password)
        .await
        .expect("database")
        .expect("signed in");
    format!("{}={token}", server::auth::SESSION_COOKIE)
}

/// Sends the request as the server's own pages would: from its own origin
/// and, unless it carries a cookie of its own, signed in as an admin (one
/// account per test database).
pub async fn send(state: AppState, mut request: Request<Body>) -> Reply {
    static ADMIN_COOKIES: std::sync::Mutex<Vec<(String, String)>> =
        std::sync::Mutex::new(Vec::new());
    let headers = request.headers_mut();
    headers
        .entry("host")
        .or_insert(HeaderValue::from_static("pulseboard.test"));
    headers
        .entry("origin")
        .or_insert(HeaderValue::from_static("http://pulseboard.test"));
    if !headers.contains_key("cookie") {
        let database = cache_key(&state.pool);
        let known = ADMIN_COOKIES
            .lock()
            .expect("cookies")
            .iter()
            .find(|(d, _)| *d == database)
            .map(|(_, cookie)| cookie.clone());
        let cookie = match known {
            Some(cookie) => cookie,
            None => {
                let cookie = session_cookie(&state.pool, app::accounts::Role::Admin).await;
                ADMIN_COOKIES
                    .lock()
                    .expect("cookies")
                    .push((database, cookie.clone()));
                cookie
            }
        };
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(&cookie).expect("cookie"));
    }
    send_as_is(state, request).await
}

/// An active ingest key `(access key id, secret)` in the test database,
/// made once per database.
pub async fn ingest_key(pool: &PgPool) -> (String, String) {
    static KEYS: std::sync::Mutex<Vec<(String, (String, String))>> =
        std::sync::Mutex::new(Vec::new());
    let database = cache_key(pool);
    if let Some((_, key)) = KEYS
        .lock()
        .expect("keys")
        .iter()
        .find(|(d, _)| *d == database)
    {
        return key.clone();
    }
    let key = app::accounts::keys::create(pool, "tests", "tests")
        .await
        .expect("ingest key");
    let key = (key.access_key_id, key.secret);
    KEYS.lock().expect("keys").push((database, key.clone()));
    key
}

/// The headers that give an ingest request `key`'s authority: a Signature
/// Version 4 signature for the Firehose API (`/`, signing `headers`, which
/// must hold `host`), a bearer token for the NDJSON API.
pub fn ingest_authority(
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    key: &(String, String),
) -> Vec<(String, String)> {
    if path == "/" {
        let now = server::reading::epoch_micros() / 1_000_000;
        server::sigv4::sign(
            "POST",
            "/",
            headers,
            body,
            (&key.0, &key.1),
            "us-east-1",
            now,
        )
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
    } else {
        vec![(
            "authorization".into(),
            format!("Bearer {}:{}", key.0, key.1),
        )]
    }
}

/// Sends an ingest request (Firehose or NDJSON) with the test database's key.
pub async fn send_ingest(state: AppState, request: Request<Body>) -> Reply {
    let key = ingest_key(&state.pool).await;
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    parts
        .headers
        .entry("host")
        .or_insert(HeaderValue::from_static("pulseboard.test"));
    let signed: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| ["host", "x-amz-target", "content-type"].contains(&name.as_str()))
        .map(|(n, v)| (n.to_string(), v.to_str().expect("ASCII").to_string()))
        .collect();
    let signed: Vec<(&str, &str)> = signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for (name, value) in ingest_authority(parts.uri.path(), &signed, &body, &key) {
        parts.headers.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(&value).expect("value"),
        );
    }
    send_as_is(state, Request::from_parts(parts, Body::from(body))).await
}

/// Sends the request with exactly the headers it has.
pub async fn send_as_is(state: AppState, request: Request<Body>) -> Reply {
    let response = server::router::router(state)
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(state: AppState, uri: &str) -> Reply {
    send(
        state,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// The one number `sql` selects.
pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `sql` until it reaches `expected` or `limit` passes; returns the last value.
pub async fn wait_for(pool: &PgPool, sql: &str, expected: i64, limit: std::time::Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = scalar(pool, sql).await;
        if n >= expected || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Offsets `config`'s group committed to Kafka, summed over its readings
/// topic's partitions.
pub fn committed_total(config: &KafkaConfig) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let timeout = std::time::Duration::from_secs(10);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", &config.group_id)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(&config.readings_topic), timeout)
        .expect("metadata");
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        partitions.add_partition(&config.readings_topic, partition.id());
    }
    let committed = consumer
        .committed_offsets(partitions, timeout)
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => 0,
        })
        .sum()
}

/// A running `pulseboard` process, killed when dropped.
pub struct Instance(pub std::process::Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The URL of the test's own database (`pool`'s), on the server of `DATABASE_URL`.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let database = pool
        .connect_options()
        .get_database()
        .expect("test database")
        .to_string();
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("DATABASE_URL {base:?} names no database"),
    }
}

/// Starts the `pulseboard` binary on the test's database, simulators off,
/// with `env` on top.
pub fn start_instance(pool: &PgPool, env: &[(&str, &str)]) -> Instance {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pulseboard"));
    command
        .env("DATABASE_URL", database_url(pool))
        .env("PULSEBOARD_ADDR", "127.0.0.1:0")
        .env("PULSEBOARD_SIMULATOR", "false")
        .env("PULSEBOARD_SALES_SIMULATOR", "false")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    Instance(command.spawn().expect("pulseboard starts"))
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A plain HTTP/1.1 POST to a running instance: `(status, body)`.
pub async fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    request(port, "POST", path, headers, body).await
}

/// Posts to an ingest API of the instance at `port` with the key of its
/// database, `pool`.
pub async fn post_ingest(
    pool: &PgPool,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let key = ingest_key(pool).await;
    let mut signed = vec![("host", "127.0.0.1")];
    signed.extend(headers.iter().copied());
    let authority = ingest_authority(path, &signed, body, &key);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(authority.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    request(port, "POST", path, &all, body).await
}

/// A plain HTTP/1.1 request to a running instance: `(status, body)`.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send head");
    stream.write_all(body).await.expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample line of `/metrics`, e.g. `name{labels}`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Waits until a running instance answers `/healthz`.
pub async fn wait_until_serving(port: u16) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let asked = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            if asked.is_ok()
                && stream.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance on port {port} never became healthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Runs the consumer group on the test's topic until the returned token is cancelled.
pub fn start_consumer(
    pool: &PgPool,
    config: &server::config::KafkaConfig,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let flush = server::config::FlushConfig {
        max_records: 100,
        interval: std::time::Duration::from_millis(100),
    };
    let task = tokio::spawn(server::kafka::run_consumer(
        pool.clone(),
        config.clone(),
        flush,
        shutdown.clone(),
    ));
    (shutdown, task)
}

/// A reader of `topics` from their first message, in a consumer group of
/// its own, as a user's application would read a service's results.
pub fn results_reader(bootstrap: &str, topics: &[&str]) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("test-reader-{:x}", rand::random::<u64>()),
        )
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(topics).expect("subscribe");
    consumer
}

/// The path the router serves the server function `name` at: `/api/`, the
/// name, then the digits Leptos adds to keep paths unique.
pub fn server_fn_path(name: &str) -> String {
    let registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    registered
        .iter()
        .find(|path| {
            path.strip_prefix("/api/")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_digit()))
        })
        .unwrap_or_else(|| panic!("no server function {name} among {registered:?}"))
        .clone()
}
