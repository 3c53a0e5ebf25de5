//! Cover across time, with a controllable clock (`casebook_server::clock`, process-wide, so
//! this file holds a single test): before it starts the covering worker has no access; during
//! it, full access and the case's documents on their device; after it ends, refused and
//! removed; an audit record for each step.

use casebook_shared::api::{CoverCreated, CoverRequest};
use casebook_shared::protocol::{ClientMessage, DenyReason, ServerMessage};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::raw;
use casebook_tests::server::TestServer;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

/// Moves the clock on by `ms` in steps shorter than the sessions' 30-minute idle timeout,
/// letting the live connection's once-a-second session check see each step (as a person
/// working through the day would keep their session alive).
async fn advance(ms: i64) {
    let step = 20 * 60 * 1000;
    let mut left = ms;
    while left > 0 {
        casebook_server::clock::advance(left.min(step));
        left -= step;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
}

async fn operations(server: &TestServer, case: &str) -> Vec<(String, String, String)> {
    casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select operation, basis, detail from audit_log where case_id = $1 order by seq")
        .bind(case).fetch_all(pool).await)
    .unwrap()
}

#[tokio::test]
async fn cover_gives_access_only_between_its_start_and_end() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let senior = server.sign_in("senior.north").await;
    // A case of Jo's that Lee does not co-work.
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
        .find(|c| !lees.contains(&c.id))
        .unwrap();
    let doc = case.chronology;
    let now = casebook_server::now_ms();
    let created: CoverCreated = reqwest::Client::new()
        .post(format!("{}/api/cases/{}/cover", server.base, case.id))
        .header("cookie", &senior.cookie)
        .json(&CoverRequest {
            worker: lee.me.id,
            starts_at: now + HOUR,
            ends_at: now + 3 * HOUR,
            reason: "Jo on leave".into(),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!created.id.is_empty());
    let mut tablet = NativeDevice::new(lee.me.clone());
    tablet.connect(&server.ws_url(), &lee.cookie).await.unwrap();
    tablet.sync().await.unwrap();
    let lists = |who: &Session| {
        let who_cookie = who.cookie.clone();
        let base = server.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/api/cases"))
                .header("cookie", who_cookie)
                .send()
                .await
                .unwrap()
                .json::<Vec<casebook_shared::api::CaseSummary>>()
                .await
                .unwrap()
        }
    };

    // Before the start: nothing.
    assert!(lists(&lee).await.iter().all(|c| c.id != case.id));
    assert!(!tablet.holds(doc));

    // An hour on: the case is Lee's to work, on the live tablet within 2 s.
    advance(HOUR + 1_000).await;
    tablet
        .pump_until(Duration::from_secs(3), |d| d.core.document(doc).is_some())
        .await
        .unwrap();
    tablet.sync().await.unwrap();
    let listed = lists(&lee).await;
    let row = listed
        .iter()
        .find(|c| c.id == case.id)
        .expect("listed during cover");
    assert_eq!(row.relation, "cover");
    tablet.view(doc).await.unwrap();
    tablet
        .pump_until(Duration::from_secs(3), |d| d.pending_views() == 0)
        .await
        .unwrap();

    // Past the end: refused and removed from the tablet within 2 s.
    advance(2 * HOUR).await;
    tablet
        .pump_until(Duration::from_secs(3), |d| !d.holds(doc))
        .await
        .unwrap();
    assert!(lists(&lee).await.iter().all(|c| c.id != case.id));
    let mut socket = raw::connect(&server, &lee.cookie).await;
    raw::hello(&mut socket).await;
    raw::send(
        &mut socket,
        &ClientMessage::Sync {
            doc,
            session: 1,
            data: raw::empty_sync_message(),
        },
    )
    .await;
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc,
            reason: DenyReason::NoAccess
        })
    );

    // The audit log: the cover assigned, and Lee's view on the basis of cover.
    let log = operations(&server, &case.id.to_string()).await;
    assert!(
        log.iter().any(
            |(op, _, detail)| op == "access-granted" && detail.starts_with("cover assigned to")
        )
    );
    assert!(
        log.iter()
            .any(|(op, basis, _)| op == "consultation" && basis == "cover")
    );
}
