//! Disclosure, combination and erasure: the person's copy leaves out withheld entries and is
//! logged with its recipient; a combined chronology needs access to every case and is logged
//! on each; an erasure rebuilds the chronology without the entry, deletes the old content from
//! the server, refuses the old lineage, purges live devices and is logged.

use casebook_server::audit::Entry;
use casebook_shared::api::{
    ActorAuthor, CaseSummary, CombineRequest, Combined, ErasureDone, ErasureRequest, PersonsCopy,
    PersonsCopyRequest,
};
use casebook_shared::protocol::{ClientMessage, DenyReason, ServerMessage};
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::raw;
use casebook_tests::server::TestServer;
use std::time::Duration;

/// Audit records of `operation`, oldest first.
async fn audit_records(server: &TestServer, operation: &str) -> Vec<Entry> {
    let rows: Vec<(String, String, String, String, String, String, String)> =
        casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select staff_id, case_id, person_id, document_id, basis, recipients, detail from audit_log
         where operation = $1 order by seq")
        .bind(operation).fetch_all(pool).await)
        .unwrap();
    rows.into_iter()
        .map(
            |(staff_id, case_id, person_id, document_id, basis, recipients, detail)| Entry {
                operation: operation.into(),
                staff_id,
                case_id,
                person_id,
                document_id,
                basis,
                recipients,
                detail,
                ..Entry::default()
            },
        )
        .collect()
}

/// Whether any stored document content (change rows, snapshots) holds `text`: every
/// document's stored rows loaded and written out uncompressed with their whole history.
async fn stored_content_holds(server: &TestServer, text: &str) -> bool {
    let rows: Vec<(String, Vec<u8>)> =
        casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select document_id, bytes from document_snapshots
         union all select document_id, bytes from document_changes")
        .fetch_all(pool).await)
        .unwrap();
    let mut documents: std::collections::BTreeMap<String, automerge::AutoCommit> =
        Default::default();
    for (doc, bytes) in rows {
        documents
            .entry(doc)
            .or_default()
            .load_incremental(&bytes)
            .unwrap();
    }
    documents.values_mut().any(|am| {
        am.save_nocompress()
            .windows(text.len())
            .any(|w| w == text.as_bytes())
    })
}

async fn online_device(server: &TestServer, who: &Session) -> NativeDevice {
    let mut device = NativeDevice::new(who.me.clone());
    device.connect(&server.ws_url(), &who.cookie).await.unwrap();
    device.sync().await.unwrap();
    device
}

#[tokio::test]
async fn the_persons_copy_leaves_out_withheld_entries_and_is_logged_as_a_disclosure() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let case: CaseSummary = jo.cases().await.unwrap()[0].clone();
    let mut device = online_device(&server, &jo).await;
    device
        .add_entry(case.chronology, &draft("Attended the group session"))
        .await
        .unwrap();
    let mut withheld = draft("Partner disclosed new concerns");
    withheld.withheld = true;
    device.add_entry(case.chronology, &withheld).await.unwrap();
    device.sync().await.unwrap();

    let path = format!("/api/cases/{}/persons-copy", case.id);
    let blank = PersonsCopyRequest {
        recipient: " ".into(),
    };
    assert_eq!(server.post(&jo, &path, &blank).await.status(), 422);
    let request = PersonsCopyRequest {
        recipient: "The person, at the office".into(),
    };
    let stranger = server.sign_in("worker.south1").await;
    assert_eq!(server.post(&stranger, &path, &request).await.status(), 403);
    assert!(
        audit_records(&server, "disclosure").await.is_empty(),
        "nothing refused is logged"
    );

    let copy: PersonsCopy = server
        .post(&jo, &path, &request)
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = copy
        .entries
        .iter()
        .map(|e| e.what_happened.as_str())
        .collect();
    assert!(texts.contains(&"Attended the group session"));
    assert!(
        !texts.contains(&"Partner disclosed new concerns"),
        "withheld entries are left out"
    );
    assert!(copy.entries.iter().all(|e| !e.withheld));
    assert_eq!(copy.person_name, case.person_name);

    let logged = audit_records(&server, "disclosure").await;
    assert_eq!(logged.len(), 1);
    let record = &logged[0];
    assert_eq!(record.recipients, "The person, at the office");
    assert_eq!(record.case_id, case.id.to_string());
    assert_eq!(record.document_id, case.chronology.to_string());
    assert_eq!(record.staff_id, jo.me.id.to_string());
    assert_eq!(record.basis, "worker");
    assert!(!record.person_id.is_empty());
    assert!(
        !record.detail.contains("group session"),
        "no content in the log"
    );
}

#[tokio::test]
async fn a_combined_chronology_needs_access_to_every_case_and_is_logged_on_each() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let cases = jo.cases().await.unwrap();
    let (a, b) = (cases[0].clone(), cases[1].clone());
    let mut device = online_device(&server, &jo).await;
    device
        .add_entry(a.chronology, &draft("Case A: home visit"))
        .await
        .unwrap();
    device
        .add_entry(b.chronology, &draft("Case B: home visit"))
        .await
        .unwrap();
    device.sync().await.unwrap();

    let south = server.sign_in("worker.south1").await;
    let theirs = south.cases().await.unwrap()[0].id;
    let purpose = "MAPPA level 2 meeting: shared address".to_owned();
    let not_mine = CombineRequest {
        cases: vec![a.id, theirs],
        purpose: purpose.clone(),
    };
    assert_eq!(
        server
            .post(&jo, "/api/combined-chronology", &not_mine)
            .await
            .status(),
        403
    );
    let one = CombineRequest {
        cases: vec![a.id],
        purpose: purpose.clone(),
    };
    assert_eq!(
        server
            .post(&jo, "/api/combined-chronology", &one)
            .await
            .status(),
        422
    );
    assert!(audit_records(&server, "combination").await.is_empty());

    let both = CombineRequest {
        cases: vec![a.id, b.id],
        purpose: purpose.clone(),
    };
    let combined: Combined = server
        .post(&jo, "/api/combined-chronology", &both)
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = combined
        .entries
        .iter()
        .map(|e| e.what_happened.as_str())
        .collect();
    assert!(texts.contains(&"Case A: home visit") && texts.contains(&"Case B: home visit"));
    let dates: Vec<&str> = combined
        .entries
        .iter()
        .map(|e| e.event_date.as_str())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "one date order");
    assert!(combined.entries.iter().any(|e| e.reference == a.reference));
    assert!(combined.entries.iter().any(|e| e.reference == b.reference));

    let logged = audit_records(&server, "combination").await;
    assert_eq!(logged.len(), 2, "one record on each case");
    for (record, other) in [(a.id, &b.reference), (b.id, &a.reference)] {
        let entry = logged
            .iter()
            .find(|r| r.case_id == record.to_string())
            .unwrap();
        assert!(entry.detail.contains(other.as_str()) && entry.detail.contains(&purpose));
        assert_eq!(entry.staff_id, jo.me.id.to_string());
    }
}

#[tokio::test]
async fn an_erasure_rebuilds_the_chronology_purges_devices_and_refuses_the_old_lineage() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let old = case.chronology;
    let mut jos_device = online_device(&server, &jo).await;
    let mut lees_device = online_device(&server, &lee).await;
    let secret = "Victim now lives at 14 Birch Lane";
    let erased = jos_device.add_entry(old, &draft(secret)).await.unwrap();
    let kept = jos_device
        .add_entry(old, &draft("Attended supervision"))
        .await
        .unwrap();
    jos_device.sync().await.unwrap();
    lees_device
        .pump_until(Duration::from_secs(5), |d| {
            d.entries(old).iter().any(|e| e.id == erased)
        })
        .await
        .unwrap();
    assert!(
        stored_content_holds(&server, secret).await,
        "the control: stored before"
    );

    let path = format!("/api/cases/{}/erasures", case.id);
    let request = ErasureRequest {
        entry_id: erased.clone(),
        reason: "Third-party details recorded in error (data protection request 2026/17)".into(),
    };
    // Only a manager may erase; a refused request changes nothing.
    assert_eq!(server.post(&jo, &path, &request).await.status(), 403);
    let manager = server.sign_in("manager").await;
    let missing = ErasureRequest {
        entry_id: "no-such-entry".into(),
        reason: "test".into(),
    };
    assert_eq!(server.post(&manager, &path, &missing).await.status(), 422);
    assert!(stored_content_holds(&server, secret).await);

    let done: ErasureDone = server
        .post(&manager, &path, &request)
        .await
        .json()
        .await
        .unwrap();
    let new = done.chronology;
    assert_ne!(new, old);
    assert!(
        !stored_content_holds(&server, secret).await,
        "the erased text is gone from the server's stored content"
    );

    // Live devices drop the old document and pick up the rebuilt one within 2 s.
    for device in [&mut jos_device, &mut lees_device] {
        device
            .pump_until(Duration::from_secs(2), |d| {
                !d.core.documents().any(|x| x == old) && d.core.document(new).is_some()
            })
            .await
            .unwrap();
        device.sync().await.unwrap();
        assert!(
            !device.storage.contains_key(&old),
            "the old document is purged"
        );
        let ids: Vec<String> = device.entries(new).into_iter().map(|e| e.id).collect();
        assert!(ids.contains(&kept) && !ids.contains(&erased));
    }
    assert_eq!(
        jo.cases()
            .await
            .unwrap()
            .iter()
            .find(|c| c.id == case.id)
            .unwrap()
            .chronology,
        new
    );

    // The kept entry is still attributed to Jo.
    let authors: Vec<ActorAuthor> = reqwest::Client::new()
        .get(format!("{}/api/cases/{}/authors", server.base, case.id))
        .header("cookie", &lee.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = jos_device
        .entries(new)
        .into_iter()
        .find(|e| e.id == kept)
        .unwrap();
    assert!(
        authors
            .iter()
            .any(|a| a.actor == entry.author_actor && a.staff == jo.me.id)
    );

    // The old lineage is refused.
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    raw::send(
        &mut socket,
        &ClientMessage::Sync {
            doc: old,
            session: 1,
            data: raw::empty_sync_message(),
        },
    )
    .await;
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc: old,
            reason: DenyReason::NoAccess
        })
    );

    let logged = audit_records(&server, "erasure").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].document_id, old.to_string());
    assert_eq!(logged[0].staff_id, manager.me.id.to_string());
    assert!(logged[0].detail.contains("data protection request 2026/17"));
    assert!(!logged[0].detail.contains("Birch"), "no content in the log");
}

#[tokio::test]
async fn the_persons_copy_of_a_plan_leaves_out_withheld_fields_and_items_and_is_logged() {
    use casebook_shared::api::RecordCopy;
    use casebook_shared::records::{self, Kind};
    use std::collections::BTreeMap;
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let case = jo.cases().await.unwrap()[0].clone();
    let mut device = online_device(&server, &jo).await;
    let plan = device
        .create_record(
            case.id,
            Kind::RiskPlan,
            &[("risks", "Domestic abuse"), ("strengths", "Steady job")],
        )
        .await
        .unwrap();
    device
        .edit_raw(plan, |am| {
            records::set(
                am,
                Kind::RiskPlan,
                "who_at_risk",
                "Ex-partner at 3 Oak Lane",
            )
            .unwrap();
            records::set_withheld(am, Kind::RiskPlan, "who_at_risk", true).unwrap();
            let item = |action: &str| {
                BTreeMap::from([
                    ("area".to_owned(), "Supervision".to_owned()),
                    ("action".to_owned(), action.to_owned()),
                ])
            };
            records::set_item(
                am,
                Kind::RiskPlan,
                "actions",
                "a",
                &item("Weekly home visits"),
                Some(false),
            )
            .unwrap();
            records::set_item(
                am,
                Kind::RiskPlan,
                "actions",
                "b",
                &item("Liaise with the victim's advocate"),
                Some(true),
            )
            .unwrap();
        })
        .await
        .unwrap();
    device.sync().await.unwrap();

    let path = format!("/api/records/{plan}/persons-copy");
    let request = PersonsCopyRequest {
        recipient: "The person, at review".into(),
    };
    let stranger = server.sign_in("worker.south1").await;
    assert_eq!(server.post(&stranger, &path, &request).await.status(), 403);
    let copy: RecordCopy = server
        .post(&jo, &path, &request)
        .await
        .json()
        .await
        .unwrap();
    let text: String = copy
        .lines
        .iter()
        .map(|l| format!("{}: {}\n", l.label, l.value))
        .collect();
    assert!(text.contains("Domestic abuse") && text.contains("Weekly home visits"));
    assert!(!text.contains("Oak Lane"), "a withheld field is left out");
    assert!(!text.contains("advocate"), "a withheld item is left out");
    let logged = audit_records(&server, "disclosure").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].document_id, plan.to_string());
    assert_eq!(logged[0].recipients, "The person, at review");
}
