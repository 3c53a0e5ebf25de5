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

#[tokio::test]
async fn only_an_admin_manages_accounts_through_the_api_and_weak_passwords_are_refused() {
    use casebook_shared::api::{NewPassword, NewStaff, SetDisabled, StaffRecord};
    let server = TestServer::start().await.unwrap();
    let admin = server.sign_in("admin").await;
    let manager = server.sign_in("manager").await;
    let worker = server.sign_in("worker.north1").await;
    let post = |who: &casebook_tests::http::Session, path: &str, body: serde_json::Value| {
        reqwest::Client::new()
            .post(format!("{}{path}", server.base))
            .header("cookie", who.cookie.clone())
            .json(&body)
            .send()
    };
    let new = NewStaff {
        username: "nell.worker".into(),
        name: "Nell Worker".into(),
        role: "practitioner".into(),
        team: Some("North".into()),
        password: "a long enough passphrase".into(),
    };
    let body = serde_json::to_value(&new).unwrap();

    // Not an admin: refused, and nothing is created.
    for who in [&manager, &worker] {
        assert_eq!(
            post(who, "/api/staff", body.clone())
                .await
                .unwrap()
                .status(),
            403
        );
    }
    let weak = serde_json::to_value(NewStaff {
        password: "password".into(),
        ..new.clone()
    })
    .unwrap();
    let refused = post(&admin, "/api/staff", weak).await.unwrap();
    assert_eq!(refused.status(), 422);
    let message = refused
        .json::<casebook_shared::api::ApiError>()
        .await
        .unwrap()
        .message;
    assert!(message.to_lowercase().contains("password"), "{message}");
    let no_team = serde_json::to_value(NewStaff {
        team: None,
        ..new.clone()
    })
    .unwrap();
    assert_eq!(
        post(&admin, "/api/staff", no_team).await.unwrap().status(),
        422
    );

    assert!(
        post(&admin, "/api/staff", body.clone())
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(
        sign_in_status(&server.base, "nell.worker", "a long enough passphrase").await,
        200
    );
    assert_eq!(
        post(&admin, "/api/staff", body).await.unwrap().status(),
        422,
        "a username is taken once"
    );
    // Managers may list staff (for the audit search); workers may not.
    let list = |who: &casebook_tests::http::Session| {
        reqwest::Client::new()
            .get(format!("{}/api/staff", server.base))
            .header("cookie", who.cookie.clone())
            .send()
    };
    assert_eq!(list(&worker).await.unwrap().status(), 403);
    let staff: Vec<StaffRecord> = list(&manager).await.unwrap().json().await.unwrap();
    assert!(
        staff
            .iter()
            .any(|s| s.username == "nell.worker" && s.team == "North")
    );

    // A reset ends the person's sessions; the new password works.
    let nell = server
        .sign_in_with("nell.worker", "a long enough passphrase")
        .await;
    let reset = serde_json::to_value(NewPassword {
        password: "another long passphrase".into(),
    })
    .unwrap();
    assert_eq!(
        post(&worker, "/api/staff/nell.worker/password", reset.clone())
            .await
            .unwrap()
            .status(),
        403
    );
    assert!(
        post(&admin, "/api/staff/nell.worker/password", reset)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        nell.cases().await.is_err(),
        "the reset ended Nell's session"
    );
    assert_eq!(
        sign_in_status(&server.base, "nell.worker", "another long passphrase").await,
        200
    );

    // Disabling refuses sign-in; enabling allows it again; an admin cannot disable themselves.
    let disable = |d: bool| serde_json::to_value(SetDisabled { disabled: d }).unwrap();
    assert!(
        post(&admin, "/api/staff/nell.worker/disabled", disable(true))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(
        sign_in_status(&server.base, "nell.worker", "another long passphrase").await,
        401
    );
    assert!(
        post(&admin, "/api/staff/nell.worker/disabled", disable(false))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(
        sign_in_status(&server.base, "nell.worker", "another long passphrase").await,
        200
    );
    assert_eq!(
        post(&admin, "/api/staff/admin/disabled", disable(true))
            .await
            .unwrap()
            .status(),
        422
    );
}
