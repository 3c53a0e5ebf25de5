//! Continuity: absences, and cover for a whole caseload in one action, reaching the covering
//! worker's live device.

use casebook_shared::api::{Absence, AbsenceRequest, BulkCoverCreated, BulkCoverRequest};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;
use std::collections::BTreeSet;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

async fn post<T: serde::Serialize>(
    server: &TestServer,
    who: &Session,
    path: &str,
    body: &T,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("cookie", &who.cookie)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_senior_covers_an_absent_workers_whole_caseload_in_one_action() {
    let server = TestServer::start().await.unwrap();
    let senior = server.sign_in("senior.north").await;
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let now = casebook_server::now_ms();

    // Jo may record a planned absence of their own, not an unplanned one for Lee.
    let planned = AbsenceRequest {
        staff: jo.me.id,
        starts_at: now + 24 * HOUR,
        ends_at: now + 48 * HOUR,
        planned: true,
    };
    assert!(
        post(&server, &jo, "/api/absences", &planned)
            .await
            .status()
            .is_success()
    );
    let for_lee = AbsenceRequest {
        staff: lee.me.id,
        starts_at: now,
        ends_at: now + HOUR,
        planned: false,
    };
    assert_eq!(
        post(&server, &jo, "/api/absences", &for_lee).await.status(),
        403
    );
    // Jo is off sick today: the senior records it.
    let sick = AbsenceRequest {
        staff: jo.me.id,
        starts_at: now - 1_000,
        ends_at: now + 8 * HOUR,
        planned: false,
    };
    assert!(
        post(&server, &senior, "/api/absences", &sick)
            .await
            .status()
            .is_success()
    );

    let mut lees_tablet = NativeDevice::new(lee.me.clone());
    lees_tablet
        .connect(&server.ws_url(), &lee.cookie)
        .await
        .unwrap();
    lees_tablet.sync().await.unwrap();
    let jos_cases: BTreeSet<_> = jo
        .cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.chronology))
        .collect();

    // Only a senior of the team (or the manager) covers a caseload.
    let cover = BulkCoverRequest {
        absent: jo.me.id,
        worker: lee.me.id,
        starts_at: now - 1_000,
        ends_at: now + 8 * HOUR,
        reason: "Jo off sick today".into(),
    };
    assert_eq!(
        post(&server, &lee, "/api/cover/bulk", &cover)
            .await
            .status(),
        403
    );
    let south = server.sign_in("senior.south").await;
    assert_eq!(
        post(&server, &south, "/api/cover/bulk", &cover)
            .await
            .status(),
        403
    );
    let made: BulkCoverCreated = post(&server, &senior, "/api/cover/bulk", &cover)
        .await
        .json()
        .await
        .unwrap();
    let covered: BTreeSet<_> = made.cases.iter().copied().collect();
    assert_eq!(
        covered,
        jos_cases.iter().map(|c| c.0).collect(),
        "every one of Jo's cases, in one action"
    );

    // Lee's list and live tablet have every one of them within 2 s.
    let lees: BTreeSet<_> = lee
        .cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert!(covered.is_subset(&lees));
    lees_tablet
        .pump_until(Duration::from_secs(3), |d| {
            jos_cases
                .iter()
                .all(|(_, doc)| d.core.document(*doc).is_some())
        })
        .await
        .unwrap();

    // The senior's absence list shows the caseload covered.
    let absences: Vec<Absence> = reqwest::Client::new()
        .get(format!("{}/api/absences", server.base))
        .header("cookie", &senior.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let today = absences
        .iter()
        .find(|a| a.staff == jo.me.id && !a.planned)
        .unwrap();
    assert_eq!(
        (today.cases, today.covered),
        (jos_cases.len(), jos_cases.len())
    );
    let tomorrow = absences
        .iter()
        .find(|a| a.staff == jo.me.id && a.planned)
        .unwrap();
    assert_eq!(tomorrow.covered, 0, "tomorrow's absence has no cover yet");
}
