//! Accounts: the admin command line, password rules, sign-in throttling and its log, and
//! ending sessions (sign out everywhere, password reset, disabled account).

use casebook_shared::api::SignIn;
use casebook_tests::server::TestServer;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `casebook-server admin ...` against the test server's database, with `stdin`.
fn admin(server: &TestServer, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_casebook-server-under-test"))
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", server.database_url())
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sign_in_status(base: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&SignIn {
            username: username.into(),
            password: password.into(),
        })
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_admin_command_creates_staff_and_refuses_weak_passwords() {
    let server = TestServer::start().await.unwrap();
    let create = [
        "create-staff",
        "--username",
        "new.worker",
        "--name",
        "Nell Worker",
        "--role",
        "practitioner",
        "--team",
        "East",
    ];
    let (ok, text) = admin(&server, &create, "short\n");
    assert!(!ok && text.contains("at least 8 characters"), "{text}");
    let (ok, text) = admin(&server, &create, "password123\n");
    assert!(!ok && text.contains("too common"), "{text}");
    let (ok, text) = admin(
        &server,
        &[
            "create-staff",
            "--username",
            "x",
            "--name",
            "X",
            "--role",
            "practitioner",
        ],
        "a long enough pass\n",
    );
    assert!(!ok && text.contains("--team"), "{text}");
    let (ok, text) = admin(&server, &create, "river lamp orange kettle\n");
    assert!(ok, "{text}");
    assert_eq!(
        sign_in_status(&server.base, "new.worker", "river lamp orange kettle").await,
        200
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled_and_every_attempt_is_logged() {
    let server = TestServer::start().await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            sign_in_status(&server.base, "worker.north1", "wrong guess 1").await,
            401
        );
    }
    // Even the right password waits now.
    assert_eq!(
        sign_in_status(
            &server.base,
            "worker.north1",
            casebook_tests::http::PASSWORD
        )
        .await,
        429
    );
    // Other accounts are unaffected.
    assert_eq!(
        sign_in_status(
            &server.base,
            "worker.north2",
            casebook_tests::http::PASSWORD
        )
        .await,
        200
    );
    let rows: Vec<(String, String)> = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select username, outcome from sign_in_attempts order by at").fetch_all(pool).await).unwrap();
    let jo: Vec<&str> = rows
        .iter()
        .filter(|r| r.0 == "worker.north1")
        .map(|r| r.1.as_str())
        .collect();
    assert_eq!(
        jo,
        [
            "failure",
            "failure",
            "failure",
            "failure",
            "failure",
            "throttled"
        ]
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "worker.north2" && r.1 == "success")
    );
}

#[tokio::test]
async fn resetting_a_password_or_disabling_an_account_ends_its_sessions() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let (ok, text) = admin(
        &server,
        &["reset-password", "--username", "worker.north1"],
        "maple window seven trains\n",
    );
    assert!(ok, "{text}");
    assert!(jo.cases().await.is_err(), "the old session ended");
    assert_eq!(
        sign_in_status(&server.base, "worker.north1", "maple window seven trains").await,
        200
    );

    let lee = server.sign_in("worker.north2").await;
    let (ok, text) = admin(&server, &["disable", "--username", "worker.north2"], "");
    assert!(ok, "{text}");
    assert!(
        lee.cases().await.is_err(),
        "a disabled account's session ended"
    );
    assert_eq!(
        sign_in_status(
            &server.base,
            "worker.north2",
            casebook_tests::http::PASSWORD
        )
        .await,
        401
    );
    let (ok, _) = admin(&server, &["enable", "--username", "worker.north2"], "");
    assert!(ok);
    assert_eq!(
        sign_in_status(
            &server.base,
            "worker.north2",
            casebook_tests::http::PASSWORD
        )
        .await,
        200
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_that_person() {
    let server = TestServer::start().await.unwrap();
    let tablet = server.sign_in("worker.north1").await;
    let laptop = server.sign_in("worker.north1").await;
    let colleague = server.sign_in("worker.north2").await;
    let out = reqwest::Client::new()
        .delete(format!("{}/api/sessions", server.base))
        .header("cookie", &tablet.cookie)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    assert!(tablet.cases().await.is_err());
    assert!(laptop.cases().await.is_err());
    assert!(colleague.cases().await.is_ok());
}
