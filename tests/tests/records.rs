//! Records beyond the chronology (visit notes, forms, plans, reviews): made on a device, offline
//! or not, registered to their case by the server, synced to co-workers, and checked against
//! their kind's schema like the chronology.

use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::{ClientMessage, DenyReason, ServerMessage};
use casebook_shared::records::{self, Kind};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::raw;
use casebook_tests::server::TestServer;
use std::time::Duration;

async fn online(server: &TestServer, who: &Session) -> NativeDevice {
    let mut device = NativeDevice::new(who.me.clone());
    device.connect(&server.ws_url(), &who.cookie).await.unwrap();
    device.sync().await.unwrap();
    device
}

async fn registered(server: &TestServer, doc: DocumentId) -> Option<(String, String)> {
    casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select case_id, kind from documents where id = $1")
        .bind(doc.to_string()).fetch_optional(pool).await)
    .unwrap()
}

#[tokio::test]
async fn a_visit_note_made_offline_survives_a_restart_registers_and_reaches_the_co_worker() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let mut jos = online(&server, &jo).await;
    let mut lees = online(&server, &lee).await;

    // Offline in the person's home: a new visit note.
    jos.disconnect().await;
    let note = jos
        .create_record(
            case.id,
            Kind::VisitNote,
            &[
                ("date", "2026-11-20"),
                ("contact_type", "Home visit"),
                ("discussed", "Housing and the new job"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(jos.pending_creations(), 1);
    // The tablet restarts before it has a signal again: nothing is lost.
    let mut jos = jos.restart().unwrap();
    assert_eq!(jos.pending_creations(), 1);
    jos.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    assert!(
        jos.holds(note),
        "the welcome does not drop a record not yet registered"
    );
    jos.sync().await.unwrap();
    assert_eq!(jos.pending_creations(), 0, "registered");
    assert_eq!(
        registered(&server, note).await,
        Some((case.id.to_string(), "visit-note".into()))
    );

    // The co-worker's device is told about it within 2 s and gets its content.
    lees.pump_until(Duration::from_secs(3), |d| {
        d.document(note).is_some_and(|am| {
            records::read(am, Kind::VisitNote).value("discussed") == "Housing and the new job"
        })
    })
    .await
    .unwrap();
    let record = records::read(lees.document(note).unwrap(), Kind::VisitNote);
    assert_eq!(record.value("contact_type"), "Home visit");
}

#[tokio::test]
async fn a_record_for_a_case_the_user_cannot_work_on_or_of_an_unknown_kind_is_refused() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let case = jo.cases().await.unwrap()[0].clone();
    let stranger = server.sign_in("worker.south1").await;
    let mut socket = raw::connect(&server, &stranger.cookie).await;
    raw::hello(&mut socket).await;
    for (kind, reason) in [
        ("visit-note", DenyReason::NoAccess),
        ("chronology", DenyReason::Rejected),
        ("spreadsheet", DenyReason::Rejected),
    ] {
        let doc = DocumentId(uuid::Uuid::new_v4());
        raw::send(
            &mut socket,
            &ClientMessage::Create {
                doc,
                case: case.id,
                kind: kind.into(),
            },
        )
        .await;
        assert_eq!(
            raw::next(&mut socket).await,
            Some(ServerMessage::Denied { doc, reason }),
            "{kind}"
        );
        assert_eq!(
            registered(&server, doc).await,
            None,
            "{kind}: nothing registered"
        );
    }

    // An id already used for another case is not taken over.
    let mut jos = online(&server, &jo).await;
    let note = jos
        .create_record(case.id, Kind::VisitNote, &[("location", "Office")])
        .await
        .unwrap();
    jos.sync().await.unwrap();
    let other_case = jo.cases().await.unwrap()[1].id;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    raw::send(
        &mut socket,
        &ClientMessage::Create {
            doc: note,
            case: other_case,
            kind: "visit-note".into(),
        },
    )
    .await;
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc: note,
            reason: DenyReason::NoAccess
        })
    );
    assert_eq!(
        registered(&server, note).await,
        Some((case.id.to_string(), "visit-note".into()))
    );
}

#[tokio::test]
async fn changes_that_break_a_records_schema_or_move_it_to_another_case_are_refused() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let cases = jo.cases().await.unwrap();
    let mut jos = online(&server, &jo).await;
    let note = jos
        .create_record(
            cases[0].id,
            Kind::VisitNote,
            &[("outcome", "Failed to attend")],
        )
        .await
        .unwrap();
    jos.sync().await.unwrap();
    let stored = server.stored_changes(note).await.unwrap();

    let other_case = cases[1].id.to_string();
    for (key, value) in [
        ("outcome", "Went fishing"),
        (records::CASE_KEY, other_case.as_str()),
        ("not_a_field", "x"),
    ] {
        let edit = |am: &mut automerge::AutoCommit| {
            use automerge::transaction::Transactable;
            am.put(automerge::ROOT, key, value).unwrap();
        };
        let mut device = online(&server, &jo).await;
        device.edit_raw(note, edit).await.unwrap();
        device
            .pump_until(Duration::from_secs(5), |d| !d.denied.is_empty())
            .await
            .unwrap();
        assert_eq!(device.denied, vec![(note, DenyReason::Rejected)]);
        assert_eq!(
            server.stored_changes(note).await.unwrap(),
            stored,
            "nothing of it stored"
        );
    }
}
