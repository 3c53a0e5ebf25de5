//! Several server instances on one PostgreSQL database: devices connected to different
//! instances converge (instances tell each other about stored changes with LISTEN/NOTIFY),
//! and killing one instance loses nothing it acknowledged. (SQLite is one instance by design:
//! on that engine this test has nothing to check and says so.)

use casebook_tests::database::{TestDatabase, engine};
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::server::{ServerProcess, TestServer, ws_url};
use std::time::Duration;

#[tokio::test]
async fn devices_on_two_instances_converge_and_killing_one_loses_nothing_acknowledged() {
    if engine() != "postgres" {
        eprintln!("several instances need PostgreSQL: run with CASEBOOK_TEST_ENGINE=postgres");
        return;
    }
    let database = TestDatabase::new().await.unwrap();
    let binary = env!("CARGO_BIN_EXE_casebook-server-under-test");
    // The first instance creates the demo service; the second joins the same database.
    let a = ServerProcess::start(binary, &database.url, "127.0.0.1:0")
        .await
        .unwrap();
    let b = ServerProcess::start(binary, &database.url, "127.0.0.1:0")
        .await
        .unwrap();
    let jo = a.sign_in("worker.north1").await;
    let lee = b.sign_in("worker.north2").await;
    let lees: Vec<_> = lee
        .cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let case = jo
        .cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| lees.contains(&c.id))
        .unwrap();
    let doc = case.chronology;

    let mut on_a = NativeDevice::new(jo.me.clone());
    on_a.connect(&ws_url(&a.base), &jo.cookie).await.unwrap();
    on_a.sync().await.unwrap();
    let mut on_b = NativeDevice::new(lee.me.clone());
    on_b.connect(&ws_url(&b.base), &lee.cookie).await.unwrap();
    on_b.sync().await.unwrap();

    // Jo writes through A; Lee's device on B receives it, and the other way round.
    let from_a = on_a
        .add_entry(doc, &draft("Written through instance A"))
        .await
        .unwrap();
    on_a.sync().await.unwrap();
    on_b.pump_until(Duration::from_secs(5), |d| {
        d.entries(doc).iter().any(|e| e.id == from_a)
    })
    .await
    .unwrap();
    let from_b = on_b
        .add_entry(doc, &draft("Written through instance B"))
        .await
        .unwrap();
    on_b.sync().await.unwrap();
    on_a.pump_until(Duration::from_secs(5), |d| {
        d.entries(doc).iter().any(|e| e.id == from_b)
    })
    .await
    .unwrap();

    // Jo keeps writing through A, which is killed part-way; everything A acknowledged is on
    // B, and reaches Lee's device there.
    let mut written = Vec::new();
    for n in 0..20 {
        written.push(
            on_a.add_entry(doc, &draft(&format!("burst {n}")))
                .await
                .unwrap(),
        );
        if n % 4 == 0 {
            let _ = on_a.pump_until(Duration::from_millis(30), |_| false).await;
        }
    }
    let _ = on_a.pump_until(Duration::from_millis(30), |_| false).await;
    a.kill().await.unwrap();
    let acknowledged: Vec<String> = on_a
        .acknowledged_entries(doc)
        .unwrap()
        .into_iter()
        .filter(|id| written.contains(id))
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "A acknowledged some of the burst before it died"
    );
    on_b.pump_until(Duration::from_secs(5), |d| {
        let held: Vec<String> = d.entries(doc).into_iter().map(|e| e.id).collect();
        acknowledged.iter().all(|id| held.contains(id))
    })
    .await
    .unwrap();
    // A fresh device on B sees them too, from storage.
    let mut fresh = NativeDevice::new(lee.me.clone());
    fresh.connect(&ws_url(&b.base), &lee.cookie).await.unwrap();
    fresh.sync().await.unwrap();
    let held: Vec<String> = fresh.entries(doc).into_iter().map(|e| e.id).collect();
    assert!(acknowledged.iter().all(|id| held.contains(id)));
}

/// A document one instance answers from its snapshot, with the snapshot's bytes let go
/// while idle, is changed through another instance: when the first hears of it, what is
/// stored is no longer that snapshot, so its devices start again against storage and get
/// the change.
#[tokio::test]
async fn a_change_through_another_instance_reaches_devices_of_a_document_idle_here() {
    if engine() != "postgres" {
        eprintln!("several instances need PostgreSQL: run with CASEBOOK_TEST_ENGINE=postgres");
        return;
    }
    let here = TestServer::start().await.unwrap();
    let binary = env!("CARGO_BIN_EXE_casebook-server-under-test");
    let there = ServerProcess::start(binary, here.database_url(), "127.0.0.1:0")
        .await
        .unwrap();
    // Sessions live in the shared database: Lee's works on the other instance too.
    let (jo, lee, case) = Session::co_workers(&here.base).await.unwrap();
    let doc = case.chronology;
    let mut on_here = NativeDevice::new(jo.me.clone());
    on_here.connect(&here.ws_url(), &jo.cookie).await.unwrap();
    on_here.sync().await.unwrap();
    on_here
        .add_entry(doc, &draft("Before the quiet"))
        .await
        .unwrap();
    on_here.sync().await.unwrap();
    // Idle: the room goes (its changes folded into a snapshot), the device restarts and is
    // answered from the snapshot; idle still, the snapshot's bytes go.
    let hub = &here.state.documents;
    assert!(hub.release_idle(Duration::ZERO).await >= 1);
    let _ = on_here
        .pump_until(Duration::from_millis(500), |_| false)
        .await;
    assert!(hub.holds_snapshot(doc));
    assert!(hub.release_idle(Duration::ZERO).await >= 1);
    assert!(!hub.holds_snapshot(doc) && !hub.is_live(doc));

    let mut on_there = NativeDevice::new(lee.me.clone());
    on_there
        .connect(&ws_url(&there.base), &lee.cookie)
        .await
        .unwrap();
    on_there.sync().await.unwrap();
    let from_there = on_there
        .add_entry(doc, &draft("Written through the other instance"))
        .await
        .unwrap();
    on_there.sync().await.unwrap();
    // The notice of it (LISTEN/NOTIFY in a running server).
    hub.refresh(doc).await;
    on_here
        .pump_until(Duration::from_secs(10), |d| {
            d.entries(doc).iter().any(|e| e.id == from_there)
        })
        .await
        .unwrap();
    assert_eq!(on_here.entries(doc), on_there.entries(doc));
}
