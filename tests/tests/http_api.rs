//! The HTTP API: sign-in, sign-out, the session cookie and the headers on case data.

use casebook_shared::api::SignIn;
use casebook_tests::http::PASSWORD;
use casebook_tests::server::TestServer;

/// The `Set-Cookie` header of a response.
fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .expect("a cookie is set")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn sign_in(base: &str, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&SignIn {
            username: username.into(),
            password: password.into(),
        })
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_with_the_same_clear_message() {
    let server = TestServer::start().await.unwrap();
    let wrong = sign_in(&server.base, "worker.north1", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong: serde_json::Value = wrong.json().await.unwrap();
    let unknown: serde_json::Value = sign_in(&server.base, "nobody.here", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        wrong, unknown,
        "the answer does not reveal whether the username exists"
    );
    assert_eq!(wrong["message"], "The username or password is not right.");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_strict() {
    let server = TestServer::start().await.unwrap();
    let response = sign_in(&server.base, "worker.north1", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    assert!(cookie.starts_with("casebook_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/"));
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("casebook_session=");
    assert_eq!(token.len(), 64, "256 random bits, hex");
}

#[tokio::test]
async fn every_sign_in_gets_a_new_session_and_sign_out_ends_it() {
    let server = TestServer::start().await.unwrap();
    let first = server.sign_in("worker.north1").await;
    let second = server.sign_in("worker.north1").await;
    assert_ne!(first.cookie, second.cookie);
    let client = reqwest::Client::new();
    let out = client
        .delete(format!("{}/api/session", server.base))
        .header("cookie", &first.cookie)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    assert!(
        first.cases().await.is_err(),
        "the signed-out session no longer works"
    );
    assert!(second.cases().await.is_ok(), "other sessions carry on");
}

#[tokio::test]
async fn case_data_is_never_cached_and_pages_carry_security_headers() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let client = reqwest::Client::new();
    for path in ["/api/cases", "/api/me"] {
        let response = client
            .get(format!("{}{path}", server.base))
            .header("cookie", &jo.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'")
                && csp.contains("script-src 'self' 'wasm-unsafe-eval'")
        );
        assert!(!csp.contains("unsafe-inline"));
    }
    let anonymous = client
        .get(format!("{}/api/cases", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// The app's files go out compressed as the build wrote them (`cargo xtask build-app` puts a
/// `.br` and a `.gz` beside each): brotli to a browser that takes it, gzip to one that takes
/// only that, the file itself to one that takes neither; deep links get `index.html` the same
/// way; and every answer keeps the security headers, says it varies by encoding, and is to be
/// checked with the server before a browser's HTTP cache uses it again (the service worker
/// keeps the app for offline use, so one build's files are never mixed with another's).
#[tokio::test]
async fn the_app_is_sent_compressed_as_built_when_the_browser_accepts_it() {
    let dist =
        std::env::temp_dir().join(format!("casebook-dist-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dist).unwrap();
    for (name, body) in [
        ("casebook_app_bg.wasm", "the module"),
        ("casebook_app_bg.wasm.gz", "the module in gzip"),
        ("casebook_app_bg.wasm.br", "the module in brotli"),
        ("index.html", "the page"),
        ("index.html.gz", "the page in gzip"),
        ("index.html.br", "the page in brotli"),
    ] {
        std::fs::write(dist.join(name), body).unwrap();
    }
    let server = TestServer::start_with(Some(dist.clone())).await.unwrap();
    let client = reqwest::Client::new();
    let cases = [
        (
            "/casebook_app_bg.wasm",
            Some("gzip, deflate, br, zstd"),
            "the module in brotli",
            Some("br"),
        ),
        (
            "/casebook_app_bg.wasm",
            Some("gzip, deflate"),
            "the module in gzip",
            Some("gzip"),
        ),
        ("/casebook_app_bg.wasm", None, "the module", None),
        (
            "/casebook_app_bg.wasm",
            Some("identity"),
            "the module",
            None,
        ),
        (
            "/cases/0b7e0d54-7a5e-4c1e-9a55-3f0e6c1d2a10",
            Some("br"),
            "the page in brotli",
            Some("br"),
        ),
        ("/", Some("gzip"), "the page in gzip", Some("gzip")),
    ];
    for (path, accepts, body, encoding) in cases {
        let mut request = client.get(format!("{}{path}", server.base));
        if let Some(accepts) = accepts {
            request = request.header("accept-encoding", accepts);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} {accepts:?}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-encoding").map(|e| e.to_str().unwrap()),
            encoding,
            "{path} {accepts:?}"
        );
        assert_eq!(headers["vary"], "accept-encoding", "{path} {accepts:?}");
        if path.ends_with(".wasm") {
            assert_eq!(headers["content-type"], "application/wasm");
        } else {
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-cache", "{path} {accepts:?}");
        assert_eq!(response.text().await.unwrap(), body, "{path} {accepts:?}");
    }
    std::fs::remove_dir_all(&dist).unwrap();
}

#[tokio::test]
async fn a_worker_sees_only_the_cases_allocated_to_them() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let cases = jo.cases().await.unwrap();
    assert!(!cases.is_empty());
    let (allocated,): (i64,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select count(*) from allocations where staff_id = $1")
            .bind(jo.me.id.to_string()).fetch_one(pool).await)
    .unwrap();
    assert_eq!(cases.len() as i64, allocated);
    assert!(
        cases
            .iter()
            .all(|c| c.relation == "worker" || c.relation == "co-worker")
    );
}

/// Each case in the list names every record of it the user's device syncs (the chronology
/// among them), so the app can say a case is ready offline only once all of them are on the
/// device, not just those that have arrived so far.
#[tokio::test]
async fn each_case_in_the_list_names_all_its_records() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let cases = jo.cases().await.unwrap();
    let mut several = 0;
    for case in &cases {
        let rows: Vec<(String,)> = casebook_server::on_pool!(&server.db, pool =>
            sqlx::query_as("select id from documents where case_id = $1 and superseded_by is null")
                .bind(case.id.to_string()).fetch_all(pool).await)
        .unwrap();
        let mut stored: Vec<String> = rows.into_iter().map(|(id,)| id).collect();
        let mut listed: Vec<String> = case.records.iter().map(ToString::to_string).collect();
        stored.sort();
        listed.sort();
        assert_eq!(listed, stored, "case {}", case.reference);
        assert!(case.records.contains(&case.chronology));
        several += usize::from(case.records.len() > 1);
    }
    assert!(
        several > 0,
        "the demo gives some of Jo's cases more records than a chronology"
    );
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_absolute_timeouts() {
    use casebook_server::auth::{ABSOLUTE_TIMEOUT_MS, IDLE_TIMEOUT_MS};
    let server = TestServer::start().await.unwrap();
    let idle = server.sign_in("worker.north1").await;
    let old = server.sign_in("worker.north2").await;
    let fresh = server.sign_in("senior.north").await;
    let now = casebook_server::now_ms();
    // Move the stored times back rather than waiting: the server compares them with its clock.
    casebook_server::on_pool!(&server.db, pool => sqlx::query("update sessions set last_seen_at = $1 where staff_id = $2")
        .bind(now - IDLE_TIMEOUT_MS - 1_000).bind(idle.me.id.to_string()).execute(pool).await.map(|_| ())).unwrap();
    casebook_server::on_pool!(&server.db, pool => sqlx::query("update sessions set created_at = $1 where staff_id = $2")
        .bind(now - ABSOLUTE_TIMEOUT_MS - 1_000).bind(old.me.id.to_string()).execute(pool).await.map(|_| ())).unwrap();
    assert!(
        idle.cases().await.is_err(),
        "idle for longer than the idle timeout"
    );
    assert!(
        old.cases().await.is_err(),
        "older than the absolute timeout, though in use"
    );
    assert!(fresh.cases().await.is_ok());
    let (left,): (i64,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select count(*) from sessions").fetch_one(pool).await)
    .unwrap();
    assert_eq!(left, 1, "ended sessions are deleted");
}

#[tokio::test]
async fn over_tls_the_session_cookie_is_host_prefixed_and_secure() {
    let settings = casebook_server::Settings {
        secure_cookies: true,
        ..Default::default()
    };
    let server = TestServer::start_with_settings(settings).await.unwrap();
    let response = sign_in(&server.base, "worker.north1", PASSWORD).await;
    let cookie = set_cookie(&response);
    assert!(cookie.starts_with("__Host-casebook_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let cases = reqwest::Client::new()
        .get(format!("{}/api/cases", server.base))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(cases.status(), 200);
    assert!(
        cases.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let plain = pair.replacen("__Host-", "", 1);
    let refused = reqwest::Client::new()
        .get(format!("{}/api/cases", server.base))
        .header("cookie", &plain)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the unprefixed name is not accepted when secure"
    );
}
