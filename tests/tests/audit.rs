//! The s.62 audit log: a scripted session leaves a record of each operation with the required
//! fields and no content; an offline view is uploaded with both times; searching the log is
//! itself logged; `casebook-server audit verify` finds an edited or removed record.

use casebook_server::audit::{Entry, Record};
use casebook_shared::api::DutyAccessRequest;
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;
use std::process::Command;
use std::time::Duration;

async fn audit_search(server: &TestServer, who: &Session, query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/api/audit?{query}", server.base))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
}

fn verify(server: &TestServer) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_casebook-server-under-test"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", server.database_url())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_scripted_session_is_logged_without_content_and_the_search_is_logged_too() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let case = jo.cases().await.unwrap()[0].clone();
    let doc = case.chronology;
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();

    // Consultation (online), collection, alteration.
    device.view(doc).await.unwrap();
    let secret = "Visited at the new flat with the dog";
    let id = device.add_entry(doc, &draft(secret)).await.unwrap();
    device.sync().await.unwrap();
    let mut changed = draft(secret);
    changed.source = "Neighbour".into();
    device.update_entry(doc, &id, &changed).await.unwrap();
    device.sync().await.unwrap();
    device
        .pump_until(Duration::from_secs(5), |d| d.pending_views() == 0)
        .await
        .unwrap();

    // A view made offline, uploaded on the next connection with both times.
    device.disconnect().await;
    device.view(doc).await.unwrap();
    let offline_view_at = casebook_server::now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut device = device.restart().unwrap();
    assert_eq!(
        device.pending_views(),
        1,
        "the offline view survives a restart"
    );
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device
        .pump_until(Duration::from_secs(5), |d| d.pending_views() == 0)
        .await
        .unwrap();

    // Out-of-allocation access by a senior of another team, with a reason.
    let duty = server.sign_in("senior.south").await;
    let opened = reqwest::Client::new()
        .post(format!("{}/api/cases/{}/duty-access", server.base, case.id))
        .header("cookie", &duty.cookie)
        .json(&DutyAccessRequest {
            reason: "Police call out of hours".into(),
        })
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success());

    // Disclosure (the person's copy), combination (with another of Jo's cases) and erasure
    // (by the manager, of the entry written above).
    let post = |who: &Session, path: String, body: serde_json::Value| {
        reqwest::Client::new()
            .post(format!("{}{path}", server.base))
            .header("cookie", who.cookie.clone())
            .json(&body)
            .send()
    };
    let copy = post(
        &jo,
        format!("/api/cases/{}/persons-copy", case.id),
        serde_json::json!({ "recipient": "The person" }),
    )
    .await
    .unwrap();
    assert!(copy.status().is_success());
    let other = jo.cases().await.unwrap()[1].id;
    let combined = post(
        &jo,
        "/api/combined-chronology".into(),
        serde_json::json!({ "cases": [case.id, other], "purpose": "Linked cases review" }),
    )
    .await
    .unwrap();
    assert!(combined.status().is_success());
    let manager = server.sign_in("manager").await;
    let erased = post(
        &manager,
        format!("/api/cases/{}/erasures", case.id),
        serde_json::json!({ "entry_id": id, "reason": "Recorded on the wrong case" }),
    )
    .await
    .unwrap();
    assert!(erased.status().is_success());

    // Only a manager may search; the search is itself logged.
    assert_eq!(
        audit_search(&server, &jo, &format!("case={}", case.id))
            .await
            .status(),
        403
    );
    let records: Vec<Record> = audit_search(&server, &manager, &format!("case={}", case.id))
        .await
        .json()
        .await
        .unwrap();
    let latest_seq = records.iter().map(|r| r.seq).max().unwrap();
    let records: Vec<Entry> = records.into_iter().map(|r| r.entry).collect();
    let ops: Vec<&str> = records.iter().map(|r| r.operation.as_str()).collect();
    for op in [
        "consultation",
        "collection",
        "alteration",
        "disclosure",
        "combination",
        "erasure",
        "access-granted",
        "audit-read",
    ] {
        assert!(ops.contains(&op), "a {op} record in {ops:?}");
    }
    let person = records
        .iter()
        .find(|r| r.operation == "collection")
        .unwrap()
        .person_id
        .clone();
    for r in records
        .iter()
        .filter(|r| ["consultation", "collection", "alteration"].contains(&r.operation.as_str()))
    {
        assert_eq!(r.staff_id, jo.me.id.to_string());
        assert_eq!(r.role, "practitioner");
        assert_eq!(r.case_id, case.id.to_string());
        assert_eq!(r.person_id, person);
        assert_eq!(r.document_id, doc.to_string());
        assert_eq!(r.basis, "worker");
        assert!(!r.device_id.is_empty());
        assert!(r.occurred_at > 0 && r.received_at >= r.occurred_at);
    }
    let alteration = records
        .iter()
        .find(|r| r.operation == "alteration")
        .unwrap();
    assert_eq!(
        alteration.change_hashes.len(),
        64,
        "one change, by its hash"
    );
    let offline = records
        .iter()
        .filter(|r| r.operation == "consultation")
        .max_by_key(|r| r.received_at)
        .unwrap();
    assert!(
        offline.occurred_at <= offline_view_at && offline.received_at > offline.occurred_at,
        "both times kept"
    );
    let granted = records
        .iter()
        .find(|r| r.operation == "access-granted")
        .unwrap();
    assert_eq!(
        (granted.basis.as_str(), granted.detail.as_str()),
        ("duty", "Police call out of hours")
    );
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains("new flat"), "no content in the audit log");

    // The search was logged (a second search sees the first).
    let again: Vec<Record> = audit_search(&server, &manager, &format!("staff={}", manager.me.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .filter(|r| r.entry.operation == "audit-read")
            .count()
            >= 2
    );
    assert!(
        again.iter().any(|r| r.seq > latest_seq),
        "the second search sees newer records"
    );
    let (ok, text) = verify(&server);
    assert!(ok, "{text}");
}

#[tokio::test]
async fn audit_verify_names_the_first_edited_or_missing_record() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();
    for n in 0..3 {
        device
            .add_entry(doc, &draft(&format!("entry {n}")))
            .await
            .unwrap();
        device.sync().await.unwrap();
    }
    let (ok, text) = verify(&server);
    assert!(ok && text.contains("intact: 3 records"), "{text}");

    casebook_server::on_pool!(&server.db, pool => sqlx::query("update audit_log set staff_id = 'someone else' where seq = 2")
        .execute(pool).await.map(|_| ())).unwrap();
    let (ok, text) = verify(&server);
    assert!(!ok && text.contains("record 2"), "{text}");

    casebook_server::on_pool!(&server.db, pool => sqlx::query("update audit_log set staff_id = $1 where seq = 2")
        .bind(jo.me.id.to_string()).execute(pool).await.map(|_| ())).unwrap();
    assert!(verify(&server).0, "restored");
    casebook_server::on_pool!(&server.db, pool => sqlx::query("delete from audit_log where seq = 3")
        .execute(pool).await.map(|_| ())).unwrap();
    let (ok, text) = verify(&server);
    assert!(!ok && text.contains("record 3"), "{text}");
}

#[tokio::test]
async fn a_view_of_a_record_never_held_is_refused_and_not_logged() {
    use casebook_shared::protocol::{ClientMessage, DenyReason, ServerMessage};
    use casebook_tests::raw;

    let server = TestServer::start().await.unwrap();
    let stranger = server.sign_in("worker.south1").await;
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut socket = raw::connect(&server, &stranger.cookie).await;
    raw::hello(&mut socket).await;
    raw::send(&mut socket, &ClientMessage::Viewed { doc, viewed_at: 1 }).await;
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc,
            reason: DenyReason::NoAccess
        })
    );
    let (n,): (i64,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select count(*) from audit_log where staff_id = $1").bind(stranger.me.id.to_string()).fetch_one(pool).await).unwrap();
    assert_eq!(n, 0, "nothing logged for a record the user never held");
}
