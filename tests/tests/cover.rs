//! Continuity: absences, and cover for a whole caseload in one action, reaching the covering
//! worker's live device.

use casebook_shared::api::{Absence, AbsenceRequest, BulkCoverCreated, BulkCoverRequest};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;
use std::collections::BTreeSet;
use std::time::Duration;

const HOUR: i64 = 3_600_000;

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
        server
            .post(&jo, "/api/absences", &planned)
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
        server.post(&jo, "/api/absences", &for_lee).await.status(),
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
        server
            .post(&senior, "/api/absences", &sick)
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
        server.post(&lee, "/api/cover/bulk", &cover).await.status(),
        403
    );
    let south = server.sign_in("senior.south").await;
    assert_eq!(
        server
            .post(&south, "/api/cover/bulk", &cover)
            .await
            .status(),
        403
    );
    let made: BulkCoverCreated = server
        .post(&senior, "/api/cover/bulk", &cover)
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

#[tokio::test]
async fn the_duty_senior_of_the_day_is_shown_to_every_worker_and_seniors_see_their_teams_workload()
{
    use casebook_shared::api::{DutyDay, SetDuty, TeamOverview};
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let senior = server.sign_in("senior.north").await;
    let get = |who: &Session, path: &str| {
        reqwest::Client::new()
            .get(format!("{}{path}", server.base))
            .header("cookie", who.cookie.clone())
            .send()
    };
    let today =
        casebook_shared::dates::Date::from_unix_millis(casebook_server::now_ms()).to_string();
    let rota: Vec<DutyDay> = get(&jo, "/api/duty").await.unwrap().json().await.unwrap();
    assert_eq!(rota.first().map(|d| d.day.as_str()), Some(today.as_str()));
    assert!(!rota[0].phone.is_empty());

    // Seniors set the rota; workers cannot.
    let reqwest_put = |who: &Session, body: &SetDuty| {
        reqwest::Client::new()
            .put(format!("{}/api/duty/{today}", server.base))
            .header("cookie", who.cookie.clone())
            .json(body)
            .send()
    };
    let me = SetDuty {
        staff: senior.me.id,
        phone: "07700 900 555".into(),
    };
    assert_eq!(reqwest_put(&jo, &me).await.unwrap().status(), 403);
    assert!(
        reqwest_put(&senior, &me)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let rota: Vec<DutyDay> = get(&jo, "/api/duty").await.unwrap().json().await.unwrap();
    assert_eq!(
        (rota[0].staff, rota[0].phone.as_str()),
        (senior.me.id, "07700 900 555")
    );
    let not_senior = SetDuty {
        staff: jo.me.id,
        phone: "1".into(),
    };
    assert_eq!(
        reqwest_put(&senior, &not_senior).await.unwrap().status(),
        422
    );

    // The team view: workload per worker, and every case with its facts.
    assert_eq!(get(&jo, "/api/team").await.unwrap().status(), 403);
    let team: TeamOverview = get(&senior, "/api/team")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jos = team.workers.iter().find(|w| w.staff == jo.me.id).unwrap();
    assert_eq!(jos.cases, jo.cases().await.unwrap().len());
    assert!(!jos.absent);
    let registered = team
        .cases
        .iter()
        .filter(|c| c.next_review.is_some())
        .count();
    assert!(
        registered > 0,
        "the demo's HRO cases show their next review"
    );
    assert!(
        team.cases
            .iter()
            .filter(|c| c.next_review.is_some())
            .all(|c| c.last_contact.is_some())
    );
    let south = server.sign_in("senior.south").await;
    let theirs: TeamOverview = get(&south, "/api/team")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        theirs.workers.iter().all(|w| w.staff != jo.me.id),
        "a team's view only"
    );
}

#[tokio::test]
async fn reallocation_keeps_every_document_its_history_and_its_authors() {
    use casebook_shared::api::{ActorAuthor, ReallocateRequest};
    use casebook_shared::records::{self, Kind};
    let server = TestServer::start().await.unwrap();
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let senior = server.sign_in("senior.north").await;
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

    // Jo's work on the case: an entry, an edit, a visit note.
    let mut jos = NativeDevice::new(jo.me.clone());
    jos.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    jos.sync().await.unwrap();
    let entry = jos
        .add_entry(
            case.chronology,
            &casebook_tests::device::draft("Seen at home"),
        )
        .await
        .unwrap();
    let mut changed = casebook_tests::device::draft("Seen at home, sober");
    changed.source = "Home visit".into();
    jos.update_entry(case.chronology, &entry, &changed)
        .await
        .unwrap();
    let note = jos
        .create_record(
            case.id,
            Kind::VisitNote,
            &[("discussed", "Job interview on Friday")],
        )
        .await
        .unwrap();
    jos.sync().await.unwrap();
    let jos_heads = |d: &NativeDevice, doc| {
        d.document(doc)
            .map(|am| am.clone().get_heads())
            .unwrap_or_default()
    };
    let (chronology_heads, note_heads) = (jos_heads(&jos, case.chronology), jos_heads(&jos, note));

    let moved = server
        .post(
            &senior,
            &format!("/api/cases/{}/reallocate", case.id),
            &ReallocateRequest {
                worker: lee.me.id,
                reason: "Jo moves to the South team".into(),
            },
        )
        .await;
    assert!(moved.status().is_success());

    // Lee now holds both documents, whole: the same heads, every entry and the note.
    let mut lees_device = NativeDevice::new(lee.me.clone());
    lees_device
        .connect(&server.ws_url(), &lee.cookie)
        .await
        .unwrap();
    lees_device.sync().await.unwrap();
    assert_eq!(jos_heads(&lees_device, case.chronology), chronology_heads);
    assert_eq!(jos_heads(&lees_device, note), note_heads);
    let kept = lees_device
        .entries(case.chronology)
        .into_iter()
        .find(|e| e.id == entry)
        .unwrap();
    assert_eq!(kept.draft.what_happened, "Seen at home, sober");
    assert_eq!(
        records::read(lees_device.document(note).unwrap(), Kind::VisitNote).value("discussed"),
        "Job interview on Friday"
    );
    // Still attributed to Jo, whoever holds the case now; the history keeps the move.
    let authors: Vec<ActorAuthor> = reqwest::Client::new()
        .get(format!("{}/api/cases/{}/authors", server.base, case.id))
        .header("cookie", &lee.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        authors
            .iter()
            .any(|a| a.actor == kept.author_actor && a.staff == jo.me.id)
    );
    let (moves,): (i64,) = casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select count(*) from allocation_history where case_id = $1 and to_staff_id = $2 and reason = 'Jo moves to the South team'")
        .bind(case.id.to_string()).bind(lee.me.id.to_string()).fetch_one(pool).await)
    .unwrap();
    assert_eq!(moves, 1);
}

#[tokio::test]
async fn a_senior_adds_and_removes_a_co_worker_with_a_reason_and_the_history_keeps_both() {
    use casebook_shared::api::CoWorkerChange;
    let server = TestServer::start().await.unwrap();
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let senior = server.sign_in("senior.north").await;
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
    let change = CoWorkerChange {
        worker: lee.me.id,
        reason: "Joint visits from now on".into(),
    };
    let add = format!("/api/cases/{}/co-workers", case.id);
    let remove = format!("/api/cases/{}/co-workers/remove", case.id);

    assert_eq!(
        server.post(&jo, &add, &change).await.status(),
        403,
        "workers cannot"
    );
    assert!(
        server
            .post(&senior, &add, &change)
            .await
            .status()
            .is_success()
    );
    let listed = lee.cases().await.unwrap();
    assert_eq!(
        listed.iter().find(|c| c.id == case.id).unwrap().relation,
        "co-worker"
    );
    assert_eq!(
        server.post(&senior, &add, &change).await.status(),
        422,
        "already on it"
    );

    assert!(
        server
            .post(&senior, &remove, &change)
            .await
            .status()
            .is_success()
    );
    assert!(lee.cases().await.unwrap().iter().all(|c| c.id != case.id));
    let history: Vec<(String,)> = casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select relation from allocation_history where case_id = $1 order by decided_at, relation")
        .bind(case.id.to_string()).fetch_all(pool).await)
    .unwrap();
    let relations: Vec<&str> = history.iter().map(|h| h.0.as_str()).collect();
    assert!(relations.contains(&"co-worker added") && relations.contains(&"co-worker removed"));
}

#[tokio::test]
async fn the_duty_senior_finds_another_teams_case_by_reference_and_opens_it_with_a_reason() {
    use casebook_shared::api::DutyAccessRequest;
    use casebook_shared::ids::CaseId;
    let server = TestServer::start().await.unwrap();
    let south = server.sign_in("worker.south1").await;
    let theirs = south.cases().await.unwrap()[0].clone();
    let senior = server.sign_in("senior.north").await;
    let jo = server.sign_in("worker.north1").await;
    let find = |who: &Session| {
        reqwest::Client::new()
            .get(format!(
                "{}/api/case-by-reference/{}",
                server.base, theirs.reference
            ))
            .header("cookie", who.cookie.clone())
            .send()
    };
    assert_eq!(
        find(&jo).await.unwrap().status(),
        403,
        "workers cannot look cases up"
    );
    let found: CaseId = find(&senior).await.unwrap().json().await.unwrap();
    assert_eq!(found, theirs.id);
    assert!(
        senior.cases().await.unwrap().iter().all(|c| c.id != found),
        "finding is not opening"
    );
    let opened = server
        .post(
            &senior,
            &format!("/api/cases/{found}/duty-access"),
            &DutyAccessRequest {
                reason: "Police call about a breach, out of hours".into(),
            },
        )
        .await;
    assert!(opened.status().is_success());
    let row = senior
        .cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == found)
        .unwrap();
    assert_eq!(row.relation, "duty");
}
