//! Accounts and roles through the real router and Postgres: signing in and
//! out, the session cookie, what each role may call, public dashboards and
//! the cross-site guard.

mod support;

use app::accounts::Role;
use app::accounts::store as accounts;
use app::chart::dataset::builtin;
use app::chart::definition::ChartDefinition;
use app::dashboard::definition::Dashboard;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use server::config::{FirstAdmin, Secret};
use sqlx::PgPool;
use support::{Reply, send_as_is, server_fn_path, session_cookie, state};

const PASSWORD: &str = "correct horse battery";

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let encoded: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A request as a browser on this server's page sends it, with `cookie`.
fn request(method: &str, uri: &str, cookie: Option<&str>, body: (&str, String)) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "pulseboard.test")
        .header("origin", "http://pulseboard.test");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    if !body.0.is_empty() {
        builder = builder.header("content-type", body.0);
    }
    builder.body(Body::from(body.1)).expect("request")
}

fn no_body() -> (&'static str, String) {
    ("", String::new())
}

fn url_form(pairs: &[(&str, &str)]) -> (&'static str, String) {
    ("application/x-www-form-urlencoded", form(pairs))
}

fn json(value: serde_json::Value) -> (&'static str, String) {
    ("application/json", value.to_string())
}

async fn sign_in(pool: &PgPool, username: &str, password: &str, next: &str) -> Reply {
    send_as_is(
        state(pool.clone(), None),
        request(
            "POST",
            "/login",
            None,
            url_form(&[
                ("username", username),
                ("password", password),
                ("next", next),
            ]),
        ),
    )
    .await
}

async fn new_chart(pool: &PgPool, name: &str) -> i64 {
    let mut definition = ChartDefinition::starter();
    definition.name = name.into();
    app::chart::store::create(pool, &definition, &builtin())
        .await
        .expect("chart")
        .id
}

async fn new_dashboard(pool: &PgPool, slug: &str, chart: i64) {
    let dashboard = Dashboard::empty(slug.into(), slug.into());
    app::dashboard::store::create(pool, &dashboard, 1)
        .await
        .expect("dashboard");
    app::dashboard::store::add_chart(pool, slug, chart, 1)
        .await
        .expect("chart placed");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn passwords_are_kept_as_argon2id_hashes_and_checked_on_sign_in(pool: PgPool) {
    accounts::create_user(&pool, "ada", PASSWORD, Role::Editor)
        .await
        .unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'ada'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));

    assert!(
        accounts::sign_in(&pool, "ada", "wrong password!!")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts::sign_in(&pool, "nobody", PASSWORD)
            .await
            .unwrap()
            .is_none()
    );
    let (account, token) = accounts::sign_in(&pool, "ada", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.role, Role::Editor);
    // Only a digest of the token is stored.
    let tokens: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_ne!(tokens[0], token.as_bytes());

    let short = accounts::create_user(&pool, "bob", "short", Role::Viewer).await;
    assert!(
        short
            .unwrap_err()
            .to_string()
            .contains("at least 10 characters")
    );
    let taken = accounts::create_user(&pool, "ada", PASSWORD, Role::Viewer).await;
    assert!(taken.unwrap_err().to_string().contains("taken"));
    let odd = accounts::create_user(&pool, "<script>", PASSWORD, Role::Viewer).await;
    assert!(odd.unwrap_err().to_string().contains("letters, digits"));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_first_admin_comes_from_configuration_and_only_into_an_empty_table(pool: PgPool) {
    let unset = FirstAdmin {
        username: "admin".into(),
        password: None,
    };
    server::auth::ensure_first_admin(&pool, &unset)
        .await
        .unwrap();
    assert_eq!(
        support::count(&pool, "users").await,
        0,
        "no password, no account"
    );

    let first = FirstAdmin {
        username: "root".into(),
        password: Some(Secret::new(PASSWORD)),
    };
    server::auth::ensure_first_admin(&pool, &first)
        .await
        .unwrap();
    let again = FirstAdmin {
        username: "root".into(),
        password: Some(Secret::new("another password entirely")),
    };
    server::auth::ensure_first_admin(&pool, &again)
        .await
        .unwrap();
    assert_eq!(support::count(&pool, "users").await, 1);
    let (account, _) = accounts::sign_in(&pool, "root", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.role, Role::Admin);
    assert!(
        accounts::sign_in(&pool, "root", "another password entirely")
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn signing_in_sets_a_strict_cookie_and_signing_out_ends_the_session(pool: PgPool) {
    accounts::create_user(&pool, "ada", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let page = |cookie: Option<String>| {
        let pool = pool.clone();
        async move {
            send_as_is(
                state(pool, None),
                request("GET", "/charts", cookie.as_deref(), no_body()),
            )
            .await
        }
    };
    let anonymous = page(None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), Some("/login?next=/charts"));

    let wrong = sign_in(&pool, "ada", "not her password", "/charts").await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(
        wrong.header("location"),
        Some("/login?error=wrong&next=/charts")
    );
    assert!(wrong.header("set-cookie").is_none());

    let right = sign_in(&pool, "ada", PASSWORD, "/charts").await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.header("location"), Some("/charts"));
    let set = right
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP cannot carry a Secure cookie: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(page(Some(cookie.clone())).await.status, StatusCode::OK);

    // Behind a TLS proxy the cookie is Secure too.
    let mut over_tls = request(
        "POST",
        "/login",
        None,
        url_form(&[("username", "ada"), ("password", PASSWORD)]),
    );
    over_tls
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let tls = send_as_is(state(pool.clone(), None), over_tls).await;
    assert!(tls.header("set-cookie").unwrap().contains("; Secure"));

    // Never sent on to another site after signing in.
    let elsewhere = sign_in(&pool, "ada", PASSWORD, "//evil.example/").await;
    assert_eq!(elsewhere.header("location"), Some("/"));

    let out = send_as_is(
        state(pool.clone(), None),
        request("POST", "/logout", Some(&cookie), no_body()),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(page(Some(cookie)).await.status, StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn repeated_wrong_passwords_lock_the_username_for_a_while(pool: PgPool) {
    accounts::create_user(&pool, "target", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    for _ in 0..10 {
        let reply = sign_in(&pool, "target", "guess guess guess", "/").await;
        assert_eq!(reply.header("location"), Some("/login?error=wrong&next=/"));
    }
    // Even the right password is refused now.
    let reply = sign_in(&pool, "target", PASSWORD, "/").await;
    assert_eq!(
        reply.header("location"),
        Some("/login?error=throttled&next=/")
    );
    assert!(reply.header("set-cookie").is_none());
}

/// Valid arguments for every server function, with the least role that may
/// call it. A server function missing here fails the test.
fn calls(
    key: i64,
    chart: i64,
    spare_chart: i64,
    user: i64,
    spare_user: i64,
    dashboard_file: &str,
) -> Vec<(&'static str, (&'static str, String), Option<Role>)> {
    let definition = serde_json::to_value(ChartDefinition::starter()).unwrap();
    let options =
        serde_json::json!({"time_range": null, "filters": [], "width": 400, "height": 200});
    let chart_file = app::chart::store::to_file(&ChartDefinition::starter()).unwrap();
    let c = chart.to_string();
    let dashboard = serde_json::json!({
        "name": "Private", "slug": "private", "time_range": null, "refresh_seconds": null,
        "live": false, "tabs": [{"name": "Overview", "elements": [
            {"x": 0, "y": 0, "w": 6, "h": 4, "content": {"chart": chart}}
        ]}]
    });
    use Role::*;
    vec![
        ("get_temperature_chart", no_body(), Some(Viewer)),
        ("list_sensor_averages", no_body(), Some(Viewer)),
        ("list_stream_status", no_body(), Some(Viewer)),
        ("list_datasets", no_body(), Some(Viewer)),
        ("list_charts", no_body(), Some(Viewer)),
        ("get_chart", url_form(&[("id", &c)]), Some(Viewer)),
        ("chart_revisions", url_form(&[("id", &c)]), Some(Viewer)),
        (
            "view_chart",
            json(serde_json::json!({"id": chart, "options": options})),
            Some(Viewer),
        ),
        ("list_dashboards", no_body(), Some(Viewer)),
        (
            "get_dashboard",
            url_form(&[("slug", "private")]),
            Some(Viewer),
        ),
        (
            "preview_chart",
            json(serde_json::json!({"definition": definition, "options": options})),
            Some(Viewer),
        ),
        (
            "save_chart",
            json(serde_json::json!({"id": chart, "definition": definition})),
            Some(Editor),
        ),
        ("duplicate_chart", url_form(&[("id", &c)]), Some(Editor)),
        (
            "restore_chart",
            url_form(&[("id", &c), ("revision", "1")]),
            Some(Editor),
        ),
        (
            "import_chart",
            json(serde_json::json!({"file": chart_file})),
            Some(Editor),
        ),
        (
            "save_dashboard",
            json(serde_json::json!({"slug": "private", "dashboard": dashboard})),
            Some(Editor),
        ),
        (
            "add_chart_to_dashboard",
            url_form(&[("slug", "private"), ("chart", &c)]),
            Some(Editor),
        ),
        (
            "create_dashboard",
            url_form(&[("name", "New"), ("slug", "new-one")]),
            Some(Editor),
        ),
        (
            "import_dashboard",
            json(serde_json::json!({"file": dashboard_file})),
            Some(Editor),
        ),
        (
            "delete_dashboard",
            url_form(&[("slug", "new-one")]),
            Some(Editor),
        ),
        (
            "delete_chart",
            url_form(&[("id", &spare_chart.to_string())]),
            Some(Editor),
        ),
        ("list_users", no_body(), Some(Admin)),
        ("list_dashboard_access", no_body(), Some(Admin)),
        (
            "create_user",
            url_form(&[
                ("username", "carol"),
                ("password", PASSWORD),
                ("role", "viewer"),
            ]),
            Some(Admin),
        ),
        (
            "set_user_role",
            url_form(&[("id", &user.to_string()), ("role", "editor")]),
            Some(Admin),
        ),
        (
            "reset_password",
            url_form(&[
                ("id", &user.to_string()),
                ("password", "a brand new password"),
            ]),
            Some(Admin),
        ),
        (
            "set_dashboard_public",
            url_form(&[("slug", "private"), ("public", "false")]),
            Some(Admin),
        ),
        (
            "delete_user",
            url_form(&[("id", &spare_user.to_string())]),
            Some(Admin),
        ),
        ("list_ingest_keys", no_body(), Some(Admin)),
        (
            "create_ingest_key",
            url_form(&[("name", "a feed")]),
            Some(Admin),
        ),
        (
            "revoke_ingest_key",
            url_form(&[("id", &key.to_string())]),
            Some(Admin),
        ),
    ]
}

/// What a table's rows add up to, to show a refused call changed nothing.
async fn fingerprint(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT concat_ws('|',
            (SELECT string_agg(id || ':' || revision, ',' ORDER BY id) FROM charts),
            (SELECT string_agg(slug || ':' || md5(definition::text) || ':' || public, ',' ORDER BY slug) FROM dashboards),
            (SELECT string_agg(username || ':' || role || ':' || md5(password_hash), ',' ORDER BY username) FROM users),
            (SELECT string_agg(access_key_id || ':' || (revoked_at IS NULL), ',' ORDER BY id) FROM ingest_keys))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn every_server_function_checks_the_role_of_the_caller(pool: PgPool) {
    let chart = new_chart(&pool, "Kept").await;
    let spare_chart = new_chart(&pool, "Spare").await;
    new_dashboard(&pool, "private", chart).await;
    let mut file: serde_json::Value = serde_json::from_str(
        &app::dashboard::store::export(&pool, "private")
            .await
            .unwrap(),
    )
    .unwrap();
    file["dashboard"]["slug"] = "imported".into();
    let user = accounts::create_user(&pool, "dave", PASSWORD, Role::Viewer)
        .await
        .unwrap()
        .id;
    let spare_user = accounts::create_user(&pool, "erin", PASSWORD, Role::Viewer)
        .await
        .unwrap()
        .id;
    let cookies = [
        (
            Some(Role::Viewer),
            session_cookie(&pool, Role::Viewer).await,
        ),
        (
            Some(Role::Editor),
            session_cookie(&pool, Role::Editor).await,
        ),
        (Some(Role::Admin), session_cookie(&pool, Role::Admin).await),
    ];
    app::accounts::keys::create(&pool, "to revoke", "test")
        .await
        .unwrap();
    let key: i64 = sqlx::query_scalar("SELECT max(id) FROM ingest_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    let table = calls(key, chart, spare_chart, user, spare_user, &file.to_string());

    let registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    let covered: Vec<String> = table
        .iter()
        .map(|(name, _, _)| server_fn_path(name))
        .collect();
    for path in &registered {
        assert!(
            covered.contains(path),
            "{path} has no entry in this test's table"
        );
    }

    // Below its role every call is refused and changes nothing.
    let before = fingerprint(&pool).await;
    for (name, body, least) in &table {
        let path = server_fn_path(name);
        let callers = std::iter::once((None, None))
            .chain(cookies.iter().map(|(role, c)| (*role, Some(c.as_str()))));
        for (role, cookie) in callers.filter(|(role, _)| *role < *least) {
            let reply = send_as_is(
                state(pool.clone(), None),
                request("POST", &path, cookie, body.clone()),
            )
            .await;
            let expected = if role.is_none() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(reply.status, expected, "{name} as {role:?}: {}", reply.body);
        }
    }
    assert_eq!(
        fingerprint(&pool).await,
        before,
        "a refused call changed something"
    );

    // At its role each call works.
    for (name, body, least) in &table {
        let cookie = cookies
            .iter()
            .find(|(role, _)| *role == least.or(Some(Role::Viewer)))
            .map(|(_, c)| c.as_str());
        let reply = send_as_is(
            state(pool.clone(), None),
            request("POST", &server_fn_path(name), cookie, body.clone()),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{name} as {least:?}: {}",
            reply.body
        );
    }
}

/// A session cookie for a new account `username` with `role`.
async fn signed_in_as(pool: &PgPool, username: &str, role: Role) -> String {
    accounts::create_user(pool, username, PASSWORD, role)
        .await
        .unwrap();
    let (_, token) = accounts::sign_in(pool, username, PASSWORD)
        .await
        .unwrap()
        .unwrap();
    format!("{}={token}", server::auth::SESSION_COOKIE)
}

/// Application state whose saved chart definitions, pages and sessions are
/// kept an hour, so only announced changes make them stale; with its
/// listener connected.
async fn listening(
    pool: &PgPool,
) -> (server::state::AppState, tokio_util::sync::CancellationToken) {
    let hour = std::time::Duration::from_secs(3_600);
    let mut shared = state(pool.clone(), None);
    shared.charts = app::chart::service::ChartService::new(
        pool.clone(),
        builtin(),
        app::chart::service::ChartSettings {
            minimum_refresh: 3_600,
            tile_url: None,
        },
    );
    shared.pages = std::sync::Arc::new(server::page_cache::PageCache::new(hour));
    shared.sessions = std::sync::Arc::new(server::sessions::SessionCache::new(hour));
    let shutdown = tokio_util::sync::CancellationToken::new();
    shared.live = server::live::Live::start(pool.clone(), shared.kept(), shutdown.clone());
    // The listener connects in the background; announce until it hears.
    let mut events = shared.live.subscribe();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            sqlx::query("SELECT pg_notify('pulseboard_data', 'sensors')")
                .execute(pool)
                .await
                .unwrap();
            let heard = tokio::time::timeout(std::time::Duration::from_millis(500), events.recv());
            if let Ok(Ok(_)) = heard.await {
                return;
            }
        }
    })
    .await
    .expect("the listener connects within 10 s");
    (shared, shutdown)
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn dashboard_pages_are_rendered_once_per_role_and_anew_after_any_change(pool: PgPool) {
    let chart = new_chart(&pool, "Wall temperatures").await;
    new_dashboard(&pool, "wall", chart).await;
    let (shared, shutdown) = listening(&pool).await;
    let pages = shared.pages.clone();
    let quokka = signed_in_as(&pool, "quokka1", Role::Viewer).await;
    let wombat = signed_in_as(&pool, "wombat2", Role::Viewer).await;
    let numbat = signed_in_as(&pool, "numbat3", Role::Editor).await;
    let page = |cookie: &String| {
        let (state, cookie) = (shared.clone(), cookie.clone());
        async move {
            let reply =
                send_as_is(state, request("GET", "/d/wall", Some(&cookie), no_body())).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body
        }
    };
    let notify = |channel: &'static str, payload: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let mut events = shared.live.subscribe();

    // Two viewers share one rendering, each named on it.
    let first = page(&quokka).await;
    let second = page(&wombat).await;
    assert_eq!(pages.renders(), 1);
    assert!(first.contains("signed-in-as\">quokka1<"), "{first}");
    assert!(first.contains("content=\"quokka1 viewer\""), "{first}");
    assert_eq!(second, first.replace("quokka1", "wombat2"));
    assert!(first.contains("Wall temperatures"));
    assert!(!first.contains("data-testid=\"edit-dashboard\""));

    // An editor gets a page of their own, with the edit controls.
    let editor = page(&numbat).await;
    assert_eq!(pages.renders(), 2);
    assert!(editor.contains("signed-in-as\">numbat3<"));
    assert!(editor.contains("data-testid=\"edit-dashboard\""));
    assert!(!editor.contains("quokka1") && !second.contains("quokka1"));
    page(&numbat).await;
    assert_eq!(pages.renders(), 2);

    // New data: rendered anew.
    notify("pulseboard_data", "sensors").await;
    tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
        .await
        .expect("heard within 5 s")
        .unwrap();
    page(&quokka).await;
    assert_eq!(pages.renders(), 3);

    // A saved dashboard shows at once, whoever saved it.
    let mut dashboard = app::dashboard::store::get(&pool, "wall").await.unwrap();
    dashboard.name = "Wall, renamed".into();
    app::dashboard::store::save(&pool, "wall", &dashboard, 1)
        .await
        .unwrap();
    let renamed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let body = page(&wombat).await;
            if body.contains("Wall, renamed") {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the renamed dashboard shows within 5 s");
    assert!(renamed.contains("signed-in-as\">wombat2<"));
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_kept_chart_definition_is_read_anew_once_a_change_is_announced(pool: PgPool) {
    let chart = new_chart(&pool, "Before").await;
    let (shared, shutdown) = listening(&pool).await;
    let name = || async { shared.charts.saved(chart).await.unwrap().name };
    assert_eq!(name().await, "Before");
    let renamed = |to: &'static str| {
        let pool = pool.clone();
        async move {
            let mut definition = app::chart::store::get(&pool, chart)
                .await
                .unwrap()
                .definition;
            definition.name = to.into();
            // Without triggers, as a replica applies changes: nothing is announced.
            let mut tx = pool.begin().await.unwrap();
            if to == "Unannounced" {
                sqlx::query("SET LOCAL session_replication_role = replica")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            sqlx::query("UPDATE charts SET definition = $2::jsonb WHERE id = $1")
                .bind(chart)
                .bind(serde_json::to_string(&definition).unwrap())
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };

    // Kept: a change no one announced does not show.
    renamed("Unannounced").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(name().await, "Before");

    // Announced (a chart saved by another service): read anew at once.
    renamed("After").await;
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while name().await != "After" {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the renamed chart shows within 5 s");
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_kept_session_ends_and_changes_with_its_account_at_once(pool: PgPool) {
    let (shared, shutdown) = listening(&pool).await;
    let list_users = server_fn_path("list_users");
    let call = |cookie: &String| {
        let (state, cookie, path) = (shared.clone(), cookie.clone(), list_users.clone());
        async move {
            send_as_is(state, request("POST", &path, Some(&cookie), url_form(&[])))
                .await
                .status
        }
    };
    let until = |cookie: String, wanted: StatusCode| {
        let call = &call;
        async move {
            tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while call(&cookie).await != wanted {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{wanted} within 5 s"));
        }
    };
    let cookie = signed_in_as(&pool, "kiwi4", Role::Viewer).await;
    assert_eq!(call(&cookie).await, StatusCode::FORBIDDEN);

    // Promoted by an admin anywhere: an admin here.
    let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'kiwi4'")
        .fetch_one(&pool)
        .await
        .unwrap();
    accounts::set_role(&pool, id, Role::Admin).await.unwrap();
    until(cookie.clone(), StatusCode::OK).await;

    // Signed out elsewhere (a new password ends every session): refused here.
    accounts::set_password(&pool, id, "another password, long enough")
        .await
        .unwrap();
    until(cookie, StatusCode::UNAUTHORIZED).await;

    // Signed out here: refused with the next request.
    let (_, token) = accounts::sign_in(&pool, "kiwi4", "another password, long enough")
        .await
        .unwrap()
        .unwrap();
    let cookie = format!("{}={token}", server::auth::SESSION_COOKIE);
    assert_eq!(call(&cookie).await, StatusCode::OK);
    let out = send_as_is(
        shared.clone(),
        request("POST", "/logout", Some(&cookie), no_body()),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(call(&cookie).await, StatusCode::UNAUTHORIZED);
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn signing_out_with_a_cookie_of_no_session_keeps_the_other_sessions(pool: PgPool) {
    let (shared, shutdown) = listening(&pool).await;
    let mut events = shared.live.subscribe();
    // Notifications arrive in order: once a later one of our own is heard,
    // any ended session announced before it has been acted on. Its own name,
    // so no earlier announcement is taken for it.
    async fn settled(pool: &PgPool, events: &mut tokio::sync::broadcast::Receiver<String>) {
        let marker = format!("settled-{}", rand::random::<u64>());
        sqlx::query("SELECT pg_notify('pulseboard_data', $1)")
            .bind(&marker)
            .execute(pool)
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while events.recv().await.expect("an event") != marker {}
        })
        .await
        .expect("the listener hears within 5 s");
    }
    let logout = |cookie: String| {
        let state = shared.clone();
        async move {
            let out = send_as_is(state, request("POST", "/logout", Some(&cookie), no_body())).await;
            assert_eq!(out.status, StatusCode::SEE_OTHER);
        }
    };
    let made_up = format!("{}=no-such-session", server::auth::SESSION_COOKIE);
    let before = shared.sessions.generation();
    logout(made_up).await;
    settled(&pool, &mut events).await;
    assert_eq!(
        shared.sessions.generation(),
        before,
        "a made-up cookie emptied the kept sessions"
    );

    // A session that did end is announced, as before.
    let cookie = signed_in_as(&pool, "plum5", Role::Viewer).await;
    logout(cookie).await;
    settled(&pool, &mut events).await;
    assert!(
        shared.sessions.generation() > before,
        "an ended session was not announced"
    );
    shutdown.cancel();
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_public_dashboard_is_readable_without_an_account_and_nothing_else_is(pool: PgPool) {
    let shown = new_chart(&pool, "On the public dashboard").await;
    let hidden = new_chart(&pool, "Only for accounts").await;
    new_dashboard(&pool, "lobby", shown).await;
    new_dashboard(&pool, "board", hidden).await;
    let anonymous = |method: &'static str, uri: String, body: (&'static str, String)| {
        let pool = pool.clone();
        async move { send_as_is(state(pool, None), request(method, &uri, None, body)).await }
    };
    assert_eq!(
        anonymous("GET", "/d/lobby".into(), no_body()).await.status,
        StatusCode::SEE_OTHER
    );

    // Only an admin makes a dashboard public.
    let editor = session_cookie(&pool, Role::Editor).await;
    let admin = session_cookie(&pool, Role::Admin).await;
    let path = server_fn_path("set_dashboard_public");
    let publish = url_form(&[("slug", "lobby"), ("public", "true")]);
    for (cookie, status) in [(&editor, StatusCode::FORBIDDEN), (&admin, StatusCode::OK)] {
        let reply = send_as_is(
            state(pool.clone(), None),
            request("POST", &path, Some(cookie), publish.clone()),
        )
        .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }

    let page = anonymous("GET", "/d/lobby".into(), no_body()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("On the public dashboard"));
    assert!(
        !page.body.contains("Only for accounts"),
        "other charts' names leak"
    );
    assert!(
        !page.body.contains("data-testid=\"edit-dashboard\""),
        "a reader without an account cannot edit"
    );
    assert_eq!(
        anonymous("GET", "/d/board".into(), no_body()).await.status,
        StatusCode::SEE_OTHER
    );

    let csv = |id: i64| anonymous("GET", format!("/download/chart/{id}/csv"), no_body());
    assert_eq!(csv(shown).await.status, StatusCode::OK);
    assert_eq!(csv(hidden).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous("GET", "/download/dashboard/lobby".into(), no_body())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        anonymous("GET", "/download/dashboard/board".into(), no_body())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let view = |id: i64| {
        let path = server_fn_path("view_chart");
        anonymous(
            "POST",
            path,
            json(
                serde_json::json!({"id": id, "options": {"time_range": null, "filters": [], "width": 400, "height": 200}}),
            ),
        )
    };
    assert_eq!(view(shown).await.status, StatusCode::OK);
    assert_eq!(view(hidden).await.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn changes_from_another_site_are_refused_before_they_run(pool: PgPool) {
    let chart = new_chart(&pool, "Target").await;
    let editor = session_cookie(&pool, Role::Editor).await;
    let path = server_fn_path("delete_chart");
    let body = url_form(&[("id", &chart.to_string())]);
    let forged = |origin: Option<&'static str>| {
        let mut request = request("POST", &path, Some(&editor), body.clone());
        request.headers_mut().remove("origin");
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        send_as_is(state(pool.clone(), None), request)
    };
    for origin in [
        Some("http://evil.example"),
        Some("http://pulseboard.test.evil.example"),
        None,
    ] {
        let reply = forged(origin).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(
            reply.body.contains("cross-site request refused"),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        support::count(&pool, "charts").await,
        1,
        "the chart is still there"
    );
    // The same request from the server's own page works.
    assert_eq!(
        forged(Some("http://pulseboard.test")).await.status,
        StatusCode::OK
    );

    // Signing in is guarded too, so nobody is signed in to an account of
    // someone else's choosing.
    let mut login = request(
        "POST",
        "/login",
        None,
        url_form(&[("username", "x"), ("password", PASSWORD)]),
    );
    login
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert_eq!(
        send_as_is(state(pool.clone(), None), login).await.status,
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_last_admin_cannot_be_removed_or_demoted(pool: PgPool) {
    let only = accounts::create_user(&pool, "root", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let other = accounts::create_user(&pool, "ops", PASSWORD, Role::Editor)
        .await
        .unwrap();
    assert!(matches!(
        accounts::set_role(&pool, only.id, Role::Viewer).await,
        Err(accounts::AccountError::LastAdmin)
    ));
    assert!(matches!(
        accounts::delete_user(&pool, only.id).await,
        Err(accounts::AccountError::LastAdmin)
    ));
    accounts::set_role(&pool, other.id, Role::Admin)
        .await
        .unwrap();
    accounts::set_role(&pool, only.id, Role::Viewer)
        .await
        .unwrap();
    // A role change applies to sessions already open.
    let (_, token) = accounts::sign_in(&pool, "ops", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    accounts::set_role(&pool, only.id, Role::Admin)
        .await
        .unwrap();
    accounts::set_role(&pool, other.id, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        accounts::session_account(&pool, &token)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Viewer
    );
    // A new password ends the account's sessions.
    accounts::set_password(&pool, other.id, "a brand new password")
        .await
        .unwrap();
    assert!(
        accounts::session_account(&pool, &token)
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn static_files_are_served_without_reading_the_session(pool: PgPool) {
    let cookie = session_cookie(&pool, Role::Viewer).await;
    let app_state = state(pool.clone(), None);
    // With the database gone, a session read would answer 503.
    pool.close().await;
    for path in ["/pkg/pulseboard.css", "/favicon.svg"] {
        let reply = send_as_is(
            app_state.clone(),
            request("GET", path, Some(&cookie), no_body()),
        )
        .await;
        assert_ne!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            reply.body
        );
    }
    let page = send_as_is(
        app_state,
        request("GET", "/charts", Some(&cookie), no_body()),
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "pages still need the session"
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_server_function_answers_a_callers_mistake_4xx_with_its_reason(pool: PgPool) {
    let viewer = session_cookie(&pool, Role::Viewer).await;
    let call = |name: &'static str, body: serde_json::Value| {
        let path = server_fn_path(name);
        send_as_is(
            state(pool.clone(), None),
            request("POST", &path, Some(&viewer), json(body)),
        )
    };
    let definition = serde_json::to_value(ChartDefinition::starter()).unwrap();
    let options = |width: u32| serde_json::json!({ "time_range": null, "filters": [], "width": width, "height": 300 });

    let drawn = call(
        "preview_chart",
        serde_json::json!({ "definition": definition, "options": options(600) }),
    )
    .await;
    assert_eq!(drawn.status, StatusCode::OK, "{}", drawn.body);

    let mistakes = [
        (
            "preview_chart",
            serde_json::json!({ "definition": definition, "options": options(5_000) }),
            StatusCode::BAD_REQUEST,
            "1 to 4000 pixels",
        ),
        (
            "preview_chart",
            serde_json::json!({ "definition": definition, "options": { "width": 600 } }),
            StatusCode::BAD_REQUEST,
            "missing field",
        ),
        (
            "view_chart",
            serde_json::json!({ "id": 999_999, "options": options(600) }),
            StatusCode::NOT_FOUND,
            "chart 999999",
        ),
    ];
    for (name, body, status, reason) in mistakes {
        let reply = call(name, body).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert!(reply.body.contains(reason), "{name}: {}", reply.body);
    }
}
