//! Who may see what: an access matrix (role x relation to the case) over the REST case list
//! and the sync socket, the authority to reallocate, and live revocation on open connections.

use casebook_shared::api::{CoverCreated, CoverRequest, DutyAccessRequest, ReallocateRequest};
use casebook_shared::ids::{CaseId, DeviceId, DocumentId};
use casebook_shared::protocol::{ClientMessage, DenyReason, ErrorCode, ServerMessage};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::raw;
use casebook_tests::server::TestServer;
use futures_util::SinkExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    casebook_server::now_ms()
}

/// A North case allocated to worker.north1 alone, and its chronology.
async fn jos_own_case(server: &TestServer) -> (CaseId, DocumentId) {
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let lees: Vec<CaseId> = lee.cases().await.unwrap().iter().map(|c| c.id).collect();
    let case = jo
        .cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| !lees.contains(&c.id))
        .unwrap();
    (case.id, case.chronology)
}

/// Whether `who` may open the case, asked every way: the REST list, the case's authors
/// endpoint, the socket's welcome, and a sync message for its chronology.
async fn can_open(server: &TestServer, who: &Session, case: CaseId, doc: DocumentId) -> bool {
    let listed = who
        .cases()
        .await
        .map(|cases| cases.iter().any(|c| c.id == case));
    let authors = reqwest::Client::new()
        .get(format!("{}/api/cases/{case}/authors", server.base))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    match &listed {
        Ok(true) => assert_eq!(authors, 200, "the case's authors, like the case list"),
        Ok(false) => assert_eq!(authors, 403, "the case's authors, like the case list"),
        Err(_) => assert_eq!(authors, 401, "signed out or disabled"),
    }
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", who.cookie.parse().unwrap());
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
        assert!(
            listed.is_err(),
            "a refused socket goes with a refused REST call"
        );
        return false;
    };
    let hello = ClientMessage::Hello {
        device: DeviceId(uuid::Uuid::new_v4()),
        actors: vec![uuid::Uuid::new_v4().as_bytes().to_vec()],
    };
    socket
        .send(Message::Binary(hello.encode().into()))
        .await
        .unwrap();
    let welcomed = match raw::next(&mut socket).await {
        Some(ServerMessage::Welcome { documents }) => documents.contains(&doc),
        other => panic!("expected a welcome, got {other:?}"),
    };
    socket
        .send(Message::Binary(
            ClientMessage::Sync {
                doc,
                session: 1,
                data: raw::empty_sync_message(),
            }
            .encode()
            .into(),
        ))
        .await
        .unwrap();
    let synced = match raw::next(&mut socket).await {
        Some(ServerMessage::Denied {
            reason: DenyReason::NoAccess,
            ..
        }) => false,
        Some(ServerMessage::Sync { .. } | ServerMessage::Persisted { .. }) => true,
        other => panic!("unexpected {other:?}"),
    };
    let listed = listed.unwrap();
    assert_eq!(listed, welcomed, "the case list and the socket agree");
    assert_eq!(listed, synced, "the case list and sync messages agree");
    listed
}

async fn set_disabled(server: &TestServer, username: &str, disabled: bool) {
    casebook_server::on_pool!(&server.db, pool => sqlx::query("update staff set disabled = $1 where username = $2")
        .bind(disabled).bind(username).execute(pool).await.map(|_| ())).unwrap();
}

#[tokio::test]
async fn access_matrix_by_role_and_relation_to_the_case() {
    let server = TestServer::start().await.unwrap();
    let (case, doc) = jos_own_case(&server).await;
    let (_, _, shared) = Session::co_workers(&server.base).await.unwrap();
    let sign_in = |u: &'static str| Session::sign_in(&server.base, u);

    // Allocated worker, co-worker, and not allocated.
    let jo = sign_in("worker.north1").await.unwrap();
    assert!(can_open(&server, &jo, case, doc).await, "allocated worker");
    let lee = sign_in("worker.north2").await.unwrap();
    assert!(
        can_open(&server, &lee, shared.id, shared.chronology).await,
        "co-worker"
    );
    assert!(
        !can_open(&server, &lee, case, doc).await,
        "same-team worker without allocation"
    );
    // Seniors, manager, admin.
    assert!(
        can_open(&server, &sign_in("senior.north").await.unwrap(), case, doc).await,
        "same-team senior"
    );
    let south_senior = sign_in("senior.south").await.unwrap();
    assert!(
        !can_open(&server, &south_senior, case, doc).await,
        "other-team senior"
    );
    let south_worker = sign_in("worker.south1").await.unwrap();
    assert!(
        !can_open(&server, &south_worker, case, doc).await,
        "other-team practitioner"
    );
    assert!(
        can_open(&server, &sign_in("manager").await.unwrap(), case, doc).await,
        "manager"
    );
    assert!(
        !can_open(&server, &sign_in("admin").await.unwrap(), case, doc).await,
        "admin sees no cases"
    );

    // Cover: only while it runs.
    let north_senior = sign_in("senior.north").await.unwrap();
    let cover = |starts_at, ends_at| CoverRequest {
        worker: south_worker.me.id,
        starts_at,
        ends_at,
        reason: "Jo on leave".into(),
    };
    let future: CoverCreated = server
        .post(
            &north_senior,
            &format!("/api/cases/{case}/cover"),
            &cover(now() + HOUR, now() + 2 * HOUR),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !can_open(&server, &south_worker, case, doc).await,
        "cover not started"
    );
    server
        .post(
            &north_senior,
            &format!("/api/cases/{case}/cover"),
            &cover(now() - 2 * HOUR, now() - HOUR),
        )
        .await;
    assert!(
        !can_open(&server, &south_worker, case, doc).await,
        "cover expired"
    );
    let active: CoverCreated = server
        .post(
            &north_senior,
            &format!("/api/cases/{case}/cover"),
            &cover(now() - HOUR, now() + HOUR),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        can_open(&server, &south_worker, case, doc).await,
        "cover active"
    );
    server
        .post(&north_senior, &format!("/api/cover/{}/end", active.id), &())
        .await;
    assert!(
        !can_open(&server, &south_worker, case, doc).await,
        "cover ended early"
    );
    let _ = future;

    // Duty access: a reason is required.
    let no_reason = server
        .post(
            &south_senior,
            &format!("/api/cases/{case}/duty-access"),
            &DutyAccessRequest { reason: " ".into() },
        )
        .await;
    assert_eq!(no_reason.status(), 422);
    assert!(
        !can_open(&server, &south_senior, case, doc).await,
        "duty senior without a reason"
    );
    let with_reason = server
        .post(
            &south_senior,
            &format!("/api/cases/{case}/duty-access"),
            &DutyAccessRequest {
                reason: "Police call about a breach tonight".into(),
            },
        )
        .await;
    assert!(with_reason.status().is_success());
    assert!(
        can_open(&server, &south_senior, case, doc).await,
        "duty senior with a reason"
    );
    let practitioner_duty = server
        .post(
            &south_worker,
            &format!("/api/cases/{case}/duty-access"),
            &DutyAccessRequest {
                reason: "I would like to look".into(),
            },
        )
        .await;
    assert_eq!(
        practitioner_duty.status(),
        403,
        "only seniors have duty access"
    );

    // A disabled account has no access at all.
    set_disabled(&server, "worker.north1", true).await;
    assert!(!can_open(&server, &jo, case, doc).await, "disabled account");
}

#[tokio::test]
async fn only_the_teams_senior_or_the_manager_may_reallocate() {
    let server = TestServer::start().await.unwrap();
    let (case, _) = jos_own_case(&server).await;
    let lee = server.sign_in("worker.north2").await;
    let request = ReallocateRequest {
        worker: lee.me.id,
        reason: "Balancing caseloads".into(),
    };
    for (who, allowed) in [
        ("worker.north1", false),
        ("worker.north2", false),
        ("senior.south", false),
        ("admin", false),
        ("senior.north", true),
        ("manager", true),
    ] {
        let session = server.sign_in(who).await;
        let status = server
            .post(&session, &format!("/api/cases/{case}/reallocate"), &request)
            .await
            .status();
        assert_eq!(status.is_success(), allowed, "{who}: {status}");
        if !allowed {
            assert_eq!(status, 403, "{who}");
        }
    }
    let no_reason = ReallocateRequest {
        worker: lee.me.id,
        reason: String::new(),
    };
    let senior = server.sign_in("senior.north").await;
    assert_eq!(
        server
            .post(
                &senior,
                &format!("/api/cases/{case}/reallocate"),
                &no_reason
            )
            .await
            .status(),
        422
    );
}

async fn wait_until(
    what: &str,
    device: &mut NativeDevice,
    done: impl Fn(&NativeDevice) -> bool,
) -> Duration {
    let started = Instant::now();
    device
        .pump_until(Duration::from_secs(2), |d| done(d))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    started.elapsed()
}

#[tokio::test]
async fn a_reallocated_case_leaves_the_old_workers_device_within_two_seconds() {
    let server = TestServer::start().await.unwrap();
    let (case, doc) = jos_own_case(&server).await;
    let jo = server.sign_in("worker.north1").await;
    let lee = server.sign_in("worker.north2").await;
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();
    assert!(device.holds(doc));

    let senior = server.sign_in("senior.north").await;
    let moved = server
        .post(
            &senior,
            &format!("/api/cases/{case}/reallocate"),
            &ReallocateRequest {
                worker: lee.me.id,
                reason: "Jo moves team".into(),
            },
        )
        .await;
    assert!(moved.status().is_success());
    let took = wait_until("the case to leave Jo's device", &mut device, |d| {
        !d.holds(doc)
    })
    .await;
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    assert!(
        !device.storage.contains_key(&doc),
        "nothing of the case is left in the device's storage"
    );
}

#[tokio::test]
async fn an_allocation_removed_straight_in_the_database_still_leaves_the_device_within_two_seconds()
{
    // Live connections re-derive access when the database's access-change counter moves,
    // which triggers do whatever writes the tables (an administrator's SQL included), not
    // only the server's own handlers.
    let server = TestServer::start().await.unwrap();
    let (case, doc) = jos_own_case(&server).await;
    let jo = server.sign_in("worker.north1").await;
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();
    assert!(device.holds(doc));
    // Long enough that the connection's own clock (a full re-check every 30 s) is not due.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    casebook_server::on_pool!(&server.db, pool => sqlx::query("delete from allocations where case_id = $1")
        .bind(case.to_string()).execute(pool).await.map(|_| ()))
    .unwrap();
    let took = wait_until("the case to leave Jo's device", &mut device, |d| {
        !d.holds(doc)
    })
    .await;
    assert!(took <= Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn every_table_access_is_derived_from_reports_its_changes_and_nothing_else_does() {
    let server = TestServer::start().await.unwrap();
    let (case, doc) = jos_own_case(&server).await;
    let jo = server.sign_in("worker.north1").await;
    let lee = server.sign_in("worker.north2").await;
    let db = &server.db;
    // What the server's connections are told (a counter on SQLite, notifications on
    // PostgreSQL), watched the same way.
    let watcher = casebook_server::access_changes::AccessChanges::new(db.clone());
    let mut changes = watcher.subscribe();
    tokio::time::sleep(Duration::from_millis(800)).await;
    changes.mark_unchanged();
    let run = |sql: &'static str, binds: Vec<String>| async move {
        casebook_server::on_pool!(db, pool => {
            let mut query = sqlx::query(sql);
            for b in &binds {
                query = query.bind(b.clone());
            }
            query.execute(pool).await.map(|_| ())
        })
        .unwrap();
    };
    let (case, doc, jo_id, lee_id) = (
        case.to_string(),
        doc.to_string(),
        jo.me.id.to_string(),
        lee.me.id.to_string(),
    );
    let team: (String,) = casebook_server::on_pool!(db, pool =>
        sqlx::query_as("select team_id from cases where id = $1").bind(&case).fetch_one(pool).await)
    .unwrap();
    // What happens all day without changing anyone's access is not reported.
    let quiet: Vec<(&str, &'static str, Vec<String>)> = vec![
        (
            "a device registered",
            "insert into devices (id, staff_id, first_seen_at, last_seen_at) values ('device-t', $1, 0, 0)",
            vec![jo_id.clone()],
        ),
        (
            "a session used",
            "update sessions set last_seen_at = last_seen_at + 1 where staff_id = $1",
            vec![jo_id.clone()],
        ),
        (
            "a device seen",
            "update devices set last_seen_at = 2 where id = 'device-t'",
            vec![],
        ),
        (
            "a password changed",
            "update staff set password_hash = password_hash where id = $1",
            vec![jo_id.clone()],
        ),
    ];
    for (what, sql, binds) in quiet {
        run(sql, binds).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!changes.has_changed().unwrap(), "{what} is not reported");
    }
    let reported: Vec<(&str, &'static str, Vec<String>)> = vec![
        (
            "allocation added",
            "insert into allocations (case_id, staff_id, relation) values ($1, $2, 'co-worker')",
            vec![case.clone(), lee_id.clone()],
        ),
        (
            "allocation removed",
            "delete from allocations where case_id = $1 and staff_id = $2",
            vec![case.clone(), lee_id.clone()],
        ),
        (
            "cover added",
            "insert into cover_assignments (id, case_id, staff_id, starts_at, ends_at, reason, created_by, created_at) values ('cover-t', $1, $2, 0, 1, 'test', $2, 0)",
            vec![case.clone(), lee_id.clone()],
        ),
        (
            "cover ended",
            "update cover_assignments set ends_at = 2 where id = 'cover-t'",
            vec![],
        ),
        (
            "cover removed",
            "delete from cover_assignments where id = 'cover-t'",
            vec![],
        ),
        (
            "case moved team",
            "update cases set team_id = $1 where id = $2",
            vec![team.0.clone(), case.clone()],
        ),
        (
            "record retired",
            "update documents set superseded_by = null where id = $1",
            vec![doc.clone()],
        ),
        (
            "account disabled",
            "update staff set disabled = false where id = $1",
            vec![lee_id.clone()],
        ),
        (
            "role changed",
            "update staff set role = role where id = $1",
            vec![lee_id.clone()],
        ),
        (
            "device revoked",
            "update devices set revoked_at = 1 where id = 'device-t'",
            vec![],
        ),
        (
            "sessions ended",
            "delete from sessions where staff_id = $1",
            vec![lee_id.clone()],
        ),
    ];
    for (what, sql, binds) in reported {
        run(sql, binds).await;
        tokio::time::timeout(Duration::from_secs(2), changes.changed())
            .await
            .unwrap_or_else(|_| panic!("{what} is reported"))
            .unwrap();
    }
}

#[tokio::test]
async fn cover_arrives_on_the_covering_device_and_leaves_when_it_ends() {
    let server = TestServer::start().await.unwrap();
    let (case, doc) = jos_own_case(&server).await;
    let cover_worker = server.sign_in("worker.south1").await;
    let mut device = NativeDevice::new(cover_worker.me.clone());
    device
        .connect(&server.ws_url(), &cover_worker.cookie)
        .await
        .unwrap();
    device.sync().await.unwrap();
    assert!(!device.holds(doc));

    let senior = server.sign_in("senior.north").await;
    let request = CoverRequest {
        worker: cover_worker.me.id,
        starts_at: now() - 1000,
        ends_at: now() + HOUR,
        reason: "Unplanned absence".into(),
    };
    let created: CoverCreated = server
        .post(&senior, &format!("/api/cases/{case}/cover"), &request)
        .await
        .json()
        .await
        .unwrap();
    wait_until("the covered case to arrive", &mut device, |d| {
        d.entries(doc).len() > 1
    })
    .await;
    server
        .post(&senior, &format!("/api/cover/{}/end", created.id), &())
        .await;
    let took = wait_until("the case to leave when cover ends", &mut device, |d| {
        !d.holds(doc)
    })
    .await;
    assert!(took <= Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn disabling_an_account_ends_its_live_connections() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();
    set_disabled(&server, "worker.north1", true).await;
    let started = Instant::now();
    let _ = device.pump_until(Duration::from_secs(3), |_| false).await;
    assert!(
        started.elapsed() <= Duration::from_millis(2_500),
        "the connection was ended"
    );
    assert!(
        device
            .errors
            .iter()
            .any(|(code, _)| *code == ErrorCode::SessionEnded)
    );
}

#[tokio::test]
async fn duty_access_is_shown_to_the_manager_with_its_reason() {
    let server = TestServer::start().await.unwrap();
    let (case, _) = jos_own_case(&server).await;
    let duty = server.sign_in("senior.south").await;
    let opened = server
        .post(
            &duty,
            &format!("/api/cases/{case}/duty-access"),
            &DutyAccessRequest {
                reason: "Breach reported at 2am".into(),
            },
        )
        .await;
    assert!(opened.status().is_success());
    let list = |who: Session| {
        let base = server.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/api/duty-access"))
                .header("cookie", &who.cookie)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        list(duty).await.status(),
        403,
        "only the manager reviews duty access"
    );
    let manager = server.sign_in("manager").await;
    let records: Vec<casebook_shared::api::DutyAccessRecord> =
        list(manager).await.json().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].senior_name.as_str(), records[0].reason.as_str()),
        ("Pat Boyd", "Breach reported at 2am")
    );
}
