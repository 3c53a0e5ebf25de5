//! The HTTP API: sign-in, sign-out, the session cookie and the headers on case data.

use casebook_shared::api::SignIn;
use casebook_tests::http::{PASSWORD, Session};
use casebook_tests::server::TestServer;

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
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
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
    let first = Session::sign_in(&server.base, "worker.north1")
        .await
        .unwrap();
    let second = Session::sign_in(&server.base, "worker.north1")
        .await
        .unwrap();
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
    let jo = Session::sign_in(&server.base, "worker.north1")
        .await
        .unwrap();
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

#[tokio::test]
async fn a_worker_sees_only_the_cases_allocated_to_them() {
    let server = TestServer::start().await.unwrap();
    let jo = Session::sign_in(&server.base, "worker.north1")
        .await
        .unwrap();
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
