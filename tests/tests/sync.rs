//! Sync end to end against a real server and database (SQLite or PostgreSQL, as chosen by
//! `CASEBOOK_TEST_ENGINE`), with native clients built on the app's protocol core.

use casebook_tests::database::TestDatabase;
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::server::{ServerProcess, TestServer, ws_url};
use std::collections::BTreeSet;
use std::time::Duration;

async fn online_device(server: &TestServer, session: &Session) -> NativeDevice {
    let mut device = NativeDevice::new(session.me.clone());
    device
        .connect(&server.ws_url(), &session.cookie)
        .await
        .unwrap();
    device.sync().await.unwrap();
    device
}

/// Whose offline edits reach the server first when two co-workers come back online.
#[derive(Clone, Copy)]
enum Return {
    /// Both reconnect at once; the server takes their first messages in either order.
    Together,
    /// Lee reconnects and is in step before Jo comes back: Lee, still connected, hears
    /// Jo's edits by fan-out.
    LeeFirst,
}

#[tokio::test]
async fn two_co_workers_editing_offline_end_identical() {
    co_workers_edit_offline_and_reconnect(Return::Together).await;
}

#[tokio::test]
async fn a_co_worker_back_online_first_hears_the_others_offline_edits() {
    co_workers_edit_offline_and_reconnect(Return::LeeFirst).await;
}

/// Jo (`a`) and Lee (`b`) each add an entry to a shared chronology offline and both change
/// one existing entry (Jo its text, Lee its source); once they are back, both devices hold
/// both entries and the merged edit, and end identical.
async fn co_workers_edit_offline_and_reconnect(order: Return) {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut a = online_device(&server, &jo).await;
    let mut b = online_device(&server, &lee).await;
    let shared_entry = a.entries(doc)[0].clone();
    assert_eq!(
        b.entries(doc),
        a.entries(doc),
        "both start from the server's copy"
    );

    a.disconnect().await;
    b.disconnect().await;
    let from_a = a
        .add_entry(doc, &draft("Home visit: kitchen tidy, new dog"))
        .await
        .unwrap();
    let from_b = b
        .add_entry(doc, &draft("Phone call from SOLO about address"))
        .await
        .unwrap();
    // Both edit the same entry: one appends to the text, the other changes the source.
    let mut edit_a = shared_entry.draft.clone();
    edit_a.what_happened.push_str(" Follow-up booked.");
    a.update_entry(doc, &shared_entry.id, &edit_a)
        .await
        .unwrap();
    let mut edit_b = shared_entry.draft.clone();
    edit_b.source = "Police Scotland (named person)".into();
    b.update_entry(doc, &shared_entry.id, &edit_b)
        .await
        .unwrap();
    assert!(
        a.core.waiting() > 0 && b.core.waiting() > 0,
        "offline edits wait"
    );

    match order {
        Return::Together => {
            a.connect(&server.ws_url(), &jo.cookie).await.unwrap();
            b.connect(&server.ws_url(), &lee.cookie).await.unwrap();
            a.sync().await.unwrap();
            b.sync().await.unwrap();
        }
        Return::LeeFirst => {
            b.connect(&server.ws_url(), &lee.cookie).await.unwrap();
            b.sync().await.unwrap();
            assert!(
                !b.entries(doc).iter().any(|e| e.id == from_a),
                "Jo is still offline"
            );
            a.connect(&server.ws_url(), &jo.cookie).await.unwrap();
            a.sync().await.unwrap();
        }
    }
    // Both sides' edits are stored now. Each device hears the other's by fan-out, without
    // asking. (A device in step has everything the server last told it of; the other's
    // changes may still be on their way to it, so wait for them, not for `sync`.)
    let holds_both = |d: &mut NativeDevice| {
        let entries = d.entries(doc);
        let has = |id: &str| entries.iter().any(|e| e.id == id);
        has(&from_a)
            && has(&from_b)
            && entries.iter().any(|e| {
                e.id == shared_entry.id
                    && e.draft.what_happened.ends_with("Follow-up booked.")
                    && e.draft.source == "Police Scotland (named person)"
            })
    };
    for device in [&mut a, &mut b] {
        device
            .pump_until(Duration::from_secs(10), holds_both)
            .await
            .unwrap();
        device.sync().await.unwrap();
    }

    assert_eq!(
        a.entries(doc),
        b.entries(doc),
        "both devices show the same chronology"
    );
    assert_eq!(a.core.waiting(), 0);
    assert_eq!(b.core.waiting(), 0);
}

/// Writes an entry on `from`, syncs it, and waits until each of `to` holds it.
async fn write_and_wait(
    from: &mut NativeDevice,
    to: &mut [&mut NativeDevice],
    doc: casebook_shared::ids::DocumentId,
    text: &str,
) {
    let id = from.add_entry(doc, &draft(text)).await.unwrap();
    from.sync().await.unwrap();
    for device in to.iter_mut() {
        device
            .pump_until(Duration::from_secs(10), |d| {
                d.entries(doc).iter().any(|e| e.id == id)
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_change_reaches_a_connected_co_worker_without_reconnecting() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut a = online_device(&server, &jo).await;
    let mut b = online_device(&server, &lee).await;
    write_and_wait(&mut a, &mut [&mut b], doc, "Fan-out check").await;
}

/// Every sync message the server sends is built from what it has stored, so a co-worker
/// passed a change learns from that message that it is stored: it is in step and counts the
/// change as acknowledged without a `Persisted` frame of its own (one went to every device
/// in the room after every change, twice the frames of the change itself).
#[tokio::test]
async fn a_co_worker_passed_a_change_knows_it_is_stored_without_being_told_separately() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut a = online_device(&server, &jo).await;
    let mut b = online_device(&server, &lee).await;
    b.listen_for(Duration::from_millis(300)).await.unwrap();
    let told_before = b.persisted_frames;
    for n in 0..3 {
        let id = a
            .add_entry(doc, &draft(&format!("Stored heads check {n}")))
            .await
            .unwrap();
        a.sync().await.unwrap();
        assert!(a.acknowledged_entries(doc).unwrap().contains(&id));
        b.pump_until(Duration::from_secs(10), |d| {
            d.entries(doc).iter().any(|e| e.id == id) && d.core.in_step(doc)
        })
        .await
        .unwrap();
        assert!(
            b.acknowledged_entries(doc).unwrap().contains(&id),
            "the co-worker counts the change as stored"
        );
        assert_eq!(b.core.waiting_in(doc), 0);
    }
    b.listen_for(Duration::from_millis(500)).await.unwrap();
    assert_eq!(b.persisted_frames, told_before, "no `Persisted` was needed");
    assert_eq!(b.core.persisted_heads(doc), a.core.persisted_heads(doc));
}

#[tokio::test]
async fn every_change_is_stored_with_who_sent_it_before_it_is_acknowledged() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut a = online_device(&server, &jo).await;
    let before = server.stored_changes(doc).await.unwrap();
    a.add_entry(doc, &draft("Attribution check")).await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(server.stored_changes(doc).await.unwrap(), before + 1);
    let (staff, device): (String, String) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select staff_id, device_id from change_ledger where document_id = $1 order by received_at desc limit 1")
            .bind(doc.to_string()).fetch_one(pool).await).unwrap();
    assert_eq!(staff, jo.me.id.to_string());
    assert_eq!(device, a.core.device().to_string());
}

/// The server reads a device's frames through a small buffer (8 KiB) that grows for a
/// larger frame: a catch-up several times that size arrives whole and reaches a co-worker.
#[tokio::test]
async fn a_catch_up_frame_larger_than_the_read_buffer_arrives_whole() {
    use rand::Rng;
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut a = online_device(&server, &jo).await;
    let mut b = online_device(&server, &lee).await;
    a.disconnect().await;
    // Random text barely compresses, so the catch-up message stays large once deflated.
    let mut rng = rand::rng();
    let mut written = BTreeSet::new();
    for _ in 0..200 {
        let text: String = (0..240)
            .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
            .collect();
        written.insert(a.add_entry(doc, &draft(&text)).await.unwrap());
    }
    let saved = a.document(doc).unwrap().clone().save().len();
    assert!(saved > 24 * 1024, "the offline work is {saved} bytes");
    a.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(a.core.waiting(), 0, "the server acknowledged all of it");
    b.pump_until(Duration::from_secs(10), |d| {
        let held: BTreeSet<_> = d.entries(doc).into_iter().map(|e| e.id).collect();
        written.is_subset(&held)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_device_restarted_from_its_storage_still_sends_what_it_had_not_synced() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut a = online_device(&server, &jo).await;
    a.disconnect().await;
    let id = a
        .add_entry(doc, &draft("Written offline before a restart"))
        .await
        .unwrap();
    let mut a = a.restart().unwrap();
    assert_eq!(
        a.core.waiting(),
        1,
        "the restarted device still counts the unsynced change"
    );
    a.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    a.sync().await.unwrap();
    let mut fresh = online_device(&server, &jo).await;
    fresh.sync().await.unwrap();
    assert!(fresh.entries(doc).iter().any(|e| e.id == id));
}

#[tokio::test]
async fn idle_documents_leave_memory_and_load_again_intact() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut a = online_device(&server, &jo).await;
    let id = a
        .add_entry(doc, &draft("Before the room was dropped"))
        .await
        .unwrap();
    a.sync().await.unwrap();
    assert!(server.state.documents.loaded() > 0);
    a.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.state.documents.sweep_idle(Duration::ZERO);
    assert_eq!(
        server.state.documents.loaded(),
        0,
        "no document stays in memory without a device"
    );
    let b = online_device(&server, &jo).await;
    assert!(b.entries(doc).iter().any(|e| e.id == id));
}

/// A co-worked record both tablets stay connected to all day is not held loaded all day:
/// once nobody has written in it for a while, the server folds its changes into a snapshot,
/// lets the room go and has the devices start their sessions again, which the snapshot
/// answers without loading it; later it lets the snapshot's bytes go too. A fresh tablet
/// still gets the record whole, the next change loads it, and everyone carries on.
#[tokio::test]
async fn a_room_left_idle_with_its_devices_connected_leaves_memory_and_they_carry_on() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut a = online_device(&server, &jo).await;
    let mut b = online_device(&server, &lee).await;
    write_and_wait(&mut a, &mut [&mut b], doc, "Before the quiet").await;
    assert!(server.state.documents.is_live(doc));
    assert!(rows_of(&server, "document_changes", doc).await > 0);

    let released = server.state.documents.release_idle(Duration::ZERO).await;
    assert!(released >= 1, "the idle room was let go");
    assert!(!server.state.documents.is_live(doc));
    assert_eq!(
        rows_of(&server, "document_changes", doc).await,
        0,
        "its changes were folded into the snapshot first"
    );
    // Both devices are told to start again, and are answered from the snapshot.
    for device in [&mut a, &mut b] {
        let _ = device
            .pump_until(Duration::from_millis(500), |_| false)
            .await;
        assert!(device.core.all_in_step());
    }
    assert!(
        !server.state.documents.is_live(doc),
        "answered without loading it"
    );
    assert!(server.state.documents.holds_snapshot(doc));

    // Still idle: the snapshot's bytes go too. The devices in step need only its heads; a
    // fresh tablet is sent it whole, read back from storage.
    assert!(server.state.documents.release_idle(Duration::ZERO).await >= 1);
    assert!(!server.state.documents.holds_snapshot(doc));
    let mut c = online_device(&server, &lee).await;
    assert_eq!(
        c.entries(doc),
        a.entries(doc),
        "the fresh tablet holds it all"
    );
    assert!(!server.state.documents.is_live(doc));

    write_and_wait(&mut a, &mut [&mut b, &mut c], doc, "After the quiet").await;
    write_and_wait(&mut b, &mut [&mut a], doc, "And back").await;
    assert_eq!(a.entries(doc), b.entries(doc));
    assert_eq!(a.entries(doc).len(), b.entries(doc).len());
    assert!(server.stored_changes(doc).await.unwrap() >= 3);
}

/// A device of `session` that wrote enough entries to `doc` offline for the server to fold
/// them into a snapshot once they are synced, connected and synced.
async fn wrote_past_compaction(
    server: &TestServer,
    session: &Session,
    doc: casebook_shared::ids::DocumentId,
) -> NativeDevice {
    let mut a = online_device(server, session).await;
    a.disconnect().await;
    for n in 0..casebook_server::documents::COMPACT_AFTER + 20 {
        a.add_entry(doc, &draft(&format!("entry {n}")))
            .await
            .unwrap();
    }
    a.connect(&server.ws_url(), &session.cookie).await.unwrap();
    a.sync().await.unwrap();
    a
}

/// Rows of `table` (`document_snapshots` or `document_changes`) for `doc`.
async fn rows_of(server: &TestServer, table: &str, doc: casebook_shared::ids::DocumentId) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} where document_id = $1"
    ));
    let (n,): (i64,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as(sql).bind(doc.to_string()).fetch_one(pool).await)
    .unwrap();
    n
}

#[tokio::test]
async fn many_stored_changes_are_compacted_into_a_snapshot_without_loss() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut a = wrote_past_compaction(&server, &jo, doc).await;
    // Compaction runs just after the acknowledgement: give it a moment.
    let mut snapshots = 0;
    for _ in 0..100 {
        snapshots = rows_of(&server, "document_snapshots", doc).await;
        if snapshots > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = rows_of(&server, "document_changes", doc).await;
    assert_eq!(snapshots, 1);
    assert!(
        rows < casebook_server::documents::COMPACT_AFTER as i64,
        "compacted rows were deleted ({rows} left)"
    );
    assert!(
        server.stored_changes(doc).await.unwrap()
            > casebook_server::documents::COMPACT_AFTER as i64,
        "the ledger keeps every change"
    );
    a.disconnect().await;
    server.state.documents.sweep_idle(Duration::ZERO);
    let fresh = online_device(&server, &jo).await;
    assert_eq!(fresh.entries(doc), a.entries(doc));
}

/// A document stored as one snapshot is opened by devices without the server loading it
/// (a fresh device is sent the snapshot, a device in step is told so); the first change
/// loads it, and every device carries on from where it was.
#[tokio::test]
async fn a_stored_document_is_opened_without_loading_it_and_changes_still_reach_everyone() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    // Enough entries for the server to fold them all into a snapshot.
    let mut a = wrote_past_compaction(&server, &jo, doc).await;
    for _ in 0..100 {
        if rows_of(&server, "document_changes", doc).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        rows_of(&server, "document_changes", doc).await,
        0,
        "every change is in the snapshot"
    );
    a.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.state.documents.sweep_idle(Duration::ZERO);
    assert_eq!(server.state.documents.loaded(), 0);

    // A co-worker's fresh device, and the first device back in step: neither loads it.
    let mut b = online_device(&server, &lee).await;
    assert_eq!(
        b.entries(doc),
        a.entries(doc),
        "the fresh device holds it all"
    );
    a.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    a.sync().await.unwrap();
    assert!(
        !server.state.documents.is_live(doc),
        "answered from the snapshot"
    );

    // A change loads it; both devices, answered quietly until now, hear of every change.
    write_and_wait(&mut a, &mut [&mut b], doc, "After the quiet").await;
    write_and_wait(&mut b, &mut [&mut a], doc, "And back").await;
    assert!(server.state.documents.is_live(doc));
    assert_eq!(a.entries(doc), b.entries(doc));
}

#[tokio::test]
async fn a_server_killed_mid_sync_loses_nothing_it_acknowledged() {
    let database = TestDatabase::new().await.unwrap();
    let binary = env!("CARGO_BIN_EXE_casebook-server-under-test");
    let server = ServerProcess::start(binary, &database.url, "127.0.0.1:0")
        .await
        .unwrap();
    let base = server.base.clone();
    let jo = Session::sign_in(&base, "worker.north1").await.unwrap();
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut a = NativeDevice::new(jo.me.clone());
    a.connect(&ws_url(&base), &jo.cookie).await.unwrap();
    a.sync().await.unwrap();

    // Write steadily while the server is killed part-way through.
    let mut written = Vec::new();
    for n in 0..40 {
        written.push(
            a.add_entry(doc, &draft(&format!("entry {n}")))
                .await
                .unwrap(),
        );
        if n % 4 == 0 {
            let _ = a.pump_until(Duration::from_millis(30), |_| false).await;
        }
    }
    let _ = a.pump_until(Duration::from_millis(20), |_| false).await;
    server.kill().await.unwrap();
    let acknowledged = a.acknowledged_entries(doc).unwrap();
    let acknowledged_new: Vec<&String> = acknowledged
        .iter()
        .filter(|id| written.contains(id))
        .collect();
    assert!(
        !acknowledged_new.is_empty(),
        "some entries were acknowledged before the kill"
    );

    // The restarted server has every acknowledged change, before the device reconnects.
    let server = ServerProcess::start(binary, &database.url, "127.0.0.1:0")
        .await
        .unwrap();
    let jo_again = server.sign_in("worker.north1").await;
    let mut witness = NativeDevice::new(jo_again.me.clone());
    witness
        .connect(&ws_url(&server.base), &jo_again.cookie)
        .await
        .unwrap();
    witness.sync().await.unwrap();
    let on_server: BTreeSet<String> = witness.entries(doc).into_iter().map(|e| e.id).collect();
    for id in &acknowledged {
        assert!(on_server.contains(id), "acknowledged entry {id} was lost");
    }

    // And once the writer reconnects, nothing at all is lost.
    let mut a = a.restart().unwrap();
    a.connect(&ws_url(&server.base), &jo_again.cookie)
        .await
        .unwrap();
    a.sync().await.unwrap();
    witness.sync().await.unwrap();
    witness
        .listen_for(Duration::from_millis(300))
        .await
        .unwrap();
    let on_server: BTreeSet<String> = witness.entries(doc).into_iter().map(|e| e.id).collect();
    for id in &written {
        assert!(
            on_server.contains(id),
            "entry {id} never reached the server"
        );
    }
    server.kill().await.unwrap();
}

/// Large frames travel deflated (protocol version 2) to a device that said hello in version
/// 2, and never to an older app that said hello in version 1; both read the same document.
#[tokio::test]
async fn large_frames_are_deflated_only_for_devices_that_read_them() {
    use casebook_shared::protocol::{
        ClientMessage, DEFLATED_VERSION, ServerMessage, frame_version,
    };
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::start().await.unwrap();
    let (jo, _, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    // A chronology big enough that its sync messages are well over a kilobyte.
    let mut writer = NativeDevice::new(jo.me.clone());
    writer.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    writer.sync().await.unwrap();
    for n in 0..30 {
        writer
            .add_entry(doc, &draft(&format!("Entry {n}: home visit, all well.")))
            .await
            .unwrap();
    }
    writer.sync().await.unwrap();

    for deflating in [true, false] {
        let mut socket = casebook_tests::raw::connect(&server, &jo.cookie).await;
        let hello = ClientMessage::Hello {
            device: casebook_shared::ids::DeviceId(uuid::Uuid::new_v4()),
            actors: vec![uuid::Uuid::new_v4().as_bytes().to_vec()],
        };
        let frame = if deflating {
            hello.encode()
        } else {
            hello.encode_plain()
        };
        socket.send(Message::Binary(frame.into())).await.unwrap();
        let mut doc_state = automerge::AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let mut versions = Vec::new();
        let mut first = true;
        loop {
            let frame = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => b,
                other => panic!("expected a frame, got {other:?}"),
            };
            versions.push(frame_version(&frame));
            match ServerMessage::decode(&frame).unwrap() {
                ServerMessage::Welcome { .. } if first => {
                    first = false;
                    use automerge::sync::SyncDoc;
                    let message = doc_state.sync().generate_sync_message(&mut state).unwrap();
                    let sync = ClientMessage::Sync {
                        doc,
                        session: 1,
                        data: message.encode(),
                    };
                    socket
                        .send(Message::Binary(sync.encode_plain().into()))
                        .await
                        .unwrap();
                }
                ServerMessage::Sync { data, .. } => {
                    use automerge::sync::SyncDoc;
                    let message = automerge::sync::Message::decode(&data).unwrap();
                    doc_state
                        .sync()
                        .receive_sync_message(&mut state, message)
                        .unwrap();
                    if casebook_shared::chronology::entries(&doc_state).len() >= 30 {
                        break;
                    }
                    if let Some(reply) = doc_state.sync().generate_sync_message(&mut state) {
                        let sync = ClientMessage::Sync {
                            doc,
                            session: 1,
                            data: reply.encode(),
                        };
                        socket
                            .send(Message::Binary(sync.encode_plain().into()))
                            .await
                            .unwrap();
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            versions.contains(&DEFLATED_VERSION),
            deflating,
            "deflating={deflating}: frame versions {versions:?}"
        );
    }
}
