//! The HRO process: a sweep, an identification form drafted offline on one device and decided
//! by a senior elsewhere, nil returns and outstanding returns, the register and its review
//! schedule, plan sign-off, tasks raised by high risk scores, and the authority each step needs.

use casebook_shared::api::{
    Deregister, HroOversight, IdentificationDecision, OpenSweep, RegisterEntry,
    SubmitIdentification, SweepStatus, TaskDone,
};
use casebook_shared::dates::Date;
use casebook_shared::ids::{CaseId, DocumentId};
use casebook_shared::records::Kind;
use casebook_shared::schedule::next_review;
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;

async fn get<T: serde::de::DeserializeOwned>(server: &TestServer, who: &Session, path: &str) -> T {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn message_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response
        .json::<casebook_shared::api::ApiError>()
        .await
        .map(|e| e.message)
        .unwrap_or_default();
    (status, text)
}

const COMPLETE_FORM: &[(&str, &str)] = &[
    ("index_offence", "Assault to severe injury"),
    ("convicted_on_indictment", "Yes"),
    ("criterion_a", "true"),
    ("part1_reasons", "Serious violent offence on indictment."),
    ("criterion_i", "true"),
    ("part2_evidence", "LS/CMI high; escalating threats."),
    ("lscmi_level", "High"),
    ("lscmi_date", "2026-10-01"),
    ("at_risk", "Known adult (ex-partner)"),
    ("proposed_route", "MAPPA"),
    ("mappa_category", "2"),
    ("mappa_level", "2"),
    ("caledonian", "true"),
];

async fn decisions_logged(server: &TestServer) -> i64 {
    let (n,): (i64,) = casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select count(*) from audit_log where detail like 'HRO identification approved%'
            or detail like 'HRO identification declined%' or detail like 'de-registered%'
            or detail like 'Risk Management Plan signed off%' or detail like '3-monthly review completed%'")
        .fetch_one(pool).await).unwrap();
    n
}

/// One of Jo's cases that is not on the register (the demo registers some) and has no
/// identification waiting.
async fn unregistered_case(server: &TestServer, jo: &Session) -> CaseId {
    let senior = server.sign_in("senior.north").await;
    let register: Vec<RegisterEntry> = get(server, &senior, "/api/register").await;
    let oversight: HroOversight = get(server, &senior, "/api/hro/oversight").await;
    jo.cases()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .find(|c| {
            register.iter().all(|r| r.case != *c)
                && oversight.pending_decisions.iter().all(|p| p.case != *c)
        })
        .expect("an unregistered case")
}

/// Jo drafts a complete identification form offline, syncs and submits it; returns the case
/// and the form.
async fn submitted_identification(server: &TestServer, jo: &Session) -> (CaseId, DocumentId) {
    let case = unregistered_case(server, jo).await;
    let mut tablet = NativeDevice::new(jo.me.clone());
    let form = tablet
        .create_record(case, Kind::Identification, COMPLETE_FORM)
        .await
        .unwrap();
    // Not on the server yet: it cannot be submitted.
    let submit = SubmitIdentification { document: form };
    let early = server.post(jo, "/api/identifications", &submit).await;
    assert_eq!(early.status(), 422);
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    tablet.sync().await.unwrap();
    let submitted = server.post(jo, "/api/identifications", &submit).await;
    assert!(
        submitted.status().is_success(),
        "{:?}",
        message_of(submitted).await
    );
    (case, form)
}

#[tokio::test]
async fn an_identification_drafted_offline_is_approved_by_a_senior_and_the_case_is_registered() {
    let server = TestServer::start().await.unwrap();
    let senior = server.sign_in("senior.north").await;
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let opened = server
        .post(
            &senior,
            "/api/sweeps",
            &OpenSweep {
                team: None,
                period: "January to March 2027".into(),
                due_on: "2027-03-15".into(),
            },
        )
        .await;
    assert!(opened.status().is_success());
    let sweep: String = opened.json().await.unwrap();

    let (case, form) = submitted_identification(&server, &jo).await;

    // The senior sees who has returned: Jo (a form), Lee not yet; then Lee makes a nil return.
    let returned = |sweeps: &[SweepStatus], who: &Session| {
        sweeps
            .iter()
            .find(|s| s.id == sweep)
            .unwrap()
            .workers
            .iter()
            .find(|w| w.staff == who.me.id)
            .unwrap()
            .returned
            .clone()
    };
    let sweeps: Vec<SweepStatus> = get(&server, &senior, "/api/sweeps").await;
    assert_eq!(returned(&sweeps, &jo).as_deref(), Some("1 form(s)"));
    assert_eq!(returned(&sweeps, &lee), None, "outstanding");
    let ours = sweeps.iter().find(|s| s.id == sweep).unwrap();
    assert!(ours.workers.iter().all(|w| w.team == "North"));
    let nil = server
        .post(&lee, &format!("/api/sweeps/{sweep}/nil-return"), &())
        .await;
    assert!(nil.status().is_success());
    let sweeps: Vec<SweepStatus> = get(&server, &senior, "/api/sweeps").await;
    assert_eq!(returned(&sweeps, &lee).as_deref(), Some("nil return"));

    // Pending for the senior, with a task for the high LS/CMI score.
    let oversight: HroOversight = get(&server, &senior, "/api/hro/oversight").await;
    assert!(
        oversight
            .pending_decisions
            .iter()
            .any(|p| p.document == form && p.case == case)
    );
    let task = oversight
        .tasks
        .iter()
        .find(|t| t.case == case)
        .expect("a task for the high score")
        .clone();
    assert!(task.reason.contains("LS/CMI level High"));

    // Workers cannot decide; nothing is decided or logged when they try.
    let approve = IdentificationDecision {
        decision: "approve".into(),
        rationale: "Meets parts 1(a) and 2(i).".into(),
    };
    let path = format!("/api/identifications/{form}/decision");
    let logged_before = decisions_logged(&server).await;
    for who in [&jo, &lee] {
        assert_eq!(server.post(who, &path, &approve).await.status(), 403);
    }
    assert_eq!(decisions_logged(&server).await, logged_before);
    let register: Vec<RegisterEntry> = get(&server, &senior, "/api/register").await;
    assert!(register.iter().all(|r| r.case != case));

    // The senior approves: the case is on the register, next review in three months.
    let approved = server.post(&senior, &path, &approve).await;
    assert!(approved.status().is_success());
    assert_eq!(decisions_logged(&server).await, logged_before + 1);
    let register: Vec<RegisterEntry> = get(&server, &senior, "/api/register").await;
    let entry = register
        .iter()
        .find(|r| r.case == case)
        .expect("on the register");
    assert_eq!(
        (
            entry.route.as_str(),
            entry.mappa_category.as_str(),
            entry.mappa_level.as_str()
        ),
        ("MAPPA", "2", "2")
    );
    assert!(entry.caledonian && !entry.csogp);
    let today = Date::from_unix_millis(casebook_server::now_ms());
    assert_eq!(entry.start_date, today.to_string());
    assert_eq!(entry.next_review, next_review(today).to_string());
    assert_eq!(entry.review_status, "scheduled");
    assert!(!entry.plan_signed);
    let oversight: HroOversight = get(&server, &senior, "/api/hro/oversight").await;
    assert!(
        oversight
            .pending_decisions
            .iter()
            .all(|p| p.document != form)
    );
    assert!(
        oversight.unsigned_plans.iter().any(|r| r.case == case),
        "every HRO without a signed plan is flagged"
    );

    // A second decision on the same form is refused.
    assert_eq!(server.post(&senior, &path, &approve).await.status(), 422);

    // The senior records the discussion of the high score; the task goes.
    let done_path = format!("/api/tasks/{}/done", task.id);
    let too_short = TaskDone {
        discussion: "x".into(),
    };
    assert_eq!(server.post(&jo, &done_path, &too_short).await.status(), 403);
    let discussion = TaskDone {
        discussion: "Discussed the LS/CMI result; contact increased to twice weekly.".into(),
    };
    assert!(
        server
            .post(&senior, &done_path, &discussion)
            .await
            .status()
            .is_success()
    );
    let oversight: HroOversight = get(&server, &senior, "/api/hro/oversight").await;
    assert!(oversight.tasks.iter().all(|t| t.id != task.id));

    // Another team's senior sees none of it.
    let south = server.sign_in("senior.south").await;
    let theirs: Vec<RegisterEntry> = get(&server, &south, "/api/register").await;
    assert!(theirs.iter().all(|r| r.case != case));
    let theirs: HroOversight = get(&server, &south, "/api/hro/oversight").await;
    assert!(theirs.tasks.iter().all(|t| t.case != case));
}

#[tokio::test]
async fn incomplete_forms_are_refused_with_every_missing_field_and_workers_cannot_sign_off_or_deregister()
 {
    let server = TestServer::start().await.unwrap();
    let senior = server.sign_in("senior.north").await;
    let jo = server.sign_in("worker.north1").await;
    let case = jo.cases().await.unwrap()[0].id;
    let mut tablet = NativeDevice::new(jo.me.clone());
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    let draft = tablet
        .create_record(
            case,
            Kind::Identification,
            &[("index_offence", "Breach of the peace")],
        )
        .await
        .unwrap();
    let review = tablet
        .create_record(case, Kind::Review, &[("held_on", "2026-11-30")])
        .await
        .unwrap();
    let plan = tablet
        .create_record(case, Kind::RiskPlan, &[("risks", "Domestic abuse")])
        .await
        .unwrap();
    tablet.sync().await.unwrap();

    let (status, message) = message_of(
        server
            .post(
                &jo,
                "/api/identifications",
                &SubmitIdentification { document: draft },
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    for needed in [
        "“Why these criteria apply”",
        "“The evidence”",
        "“Proposed route”",
        "(a), (b) or (c)",
    ] {
        assert!(message.contains(needed), "{needed} in: {message}");
    }
    let (status, message) = message_of(
        server
            .post(&senior, &format!("/api/reviews/{review}/complete"), &())
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        message.contains("“The person's view of how supervision is working”"),
        "{message}"
    );

    // Workers may not sign off, complete a review or de-register.
    for path in [
        format!("/api/plans/{plan}/sign-off"),
        format!("/api/reviews/{review}/complete"),
    ] {
        assert_eq!(server.post(&jo, &path, &()).await.status(), 403, "{path}");
    }
    assert_eq!(
        server
            .post(
                &jo,
                &format!("/api/register/{case}/deregister"),
                &Deregister { reason: "x".into() }
            )
            .await
            .status(),
        403
    );
    assert_eq!(decisions_logged(&server).await, 0);
    // Each refused attempt is in the audit log, with who tried what on which case.
    let refusals: Vec<(String, String)> =
        casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select case_id, detail from audit_log where operation = 'refused' and staff_id = $1")
        .bind(jo.me.id.to_string()).fetch_all(pool).await)
        .unwrap();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals.iter().all(|(c, _)| *c == case.to_string()));
    for what in ["sign off a plan", "complete a review", "de-register"] {
        assert!(refusals.iter().any(|(_, d)| d.contains(what)), "{what}");
    }
}

#[tokio::test]
async fn completing_a_review_sets_the_next_due_date_and_deregistration_keeps_the_history() {
    let server = TestServer::start().await.unwrap();
    let senior = server.sign_in("senior.north").await;
    let jo = server.sign_in("worker.north1").await;
    let (case, form) = submitted_identification(&server, &jo).await;
    let approve = IdentificationDecision {
        decision: "approve".into(),
        rationale: "Meets the definition.".into(),
    };
    assert!(
        server
            .post(
                &senior,
                &format!("/api/identifications/{form}/decision"),
                &approve
            )
            .await
            .status()
            .is_success()
    );

    let mut tablet = NativeDevice::new(jo.me.clone());
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    let review = tablet
        .create_record(
            case,
            Kind::Review,
            &[
                ("held_on", "2026-11-30"),
                ("attendees", "Jo Ritchie, Sam Kerr (SSW)"),
                ("ssw_present", "true"),
                ("person_present", "Yes"),
                ("action_progress", "All actions in progress."),
                ("persons_view", "Supervision helps; travel is a barrier."),
                ("service_improvement", "Evening appointments."),
                ("decision", "Continue"),
            ],
        )
        .await
        .unwrap();
    tablet.sync().await.unwrap();
    let completed = server
        .post(&senior, &format!("/api/reviews/{review}/complete"), &())
        .await;
    assert!(completed.status().is_success());
    let register: Vec<RegisterEntry> = get(&server, &senior, "/api/register").await;
    let entry = register.iter().find(|r| r.case == case).unwrap();
    assert_eq!(
        entry.next_review, "2027-02-28",
        "three months on, at the month's end"
    );

    // De-registration needs a reason, and keeps the register's history.
    let path = format!("/api/register/{case}/deregister");
    assert_eq!(
        server
            .post(&senior, &path, &Deregister { reason: " ".into() })
            .await
            .status(),
        422
    );
    let ended = server
        .post(
            &senior,
            &path,
            &Deregister {
                reason: "Order completed.".into(),
            },
        )
        .await;
    assert!(ended.status().is_success());
    let register: Vec<RegisterEntry> = get(&server, &senior, "/api/register").await;
    assert!(register.iter().all(|r| r.case != case));
    let (rows, ended): (i64, i64) = casebook_server::on_pool!(&server.db, pool => sqlx::query_as(
        "select count(*), count(ended_at) from hro_register where case_id = $1")
        .bind(case.to_string()).fetch_one(pool).await)
    .unwrap();
    assert_eq!(
        (rows, ended),
        (1, 1),
        "the registration is ended, not deleted"
    );
}

#[tokio::test]
async fn a_review_filled_in_offline_reaches_the_seniors_list_after_reconnecting() {
    let server = TestServer::start().await.unwrap();
    let senior = server.sign_in("senior.north").await;
    let jo = server.sign_in("worker.north1").await;
    let case = jo.cases().await.unwrap()[0].id;
    let mut tablet = NativeDevice::new(jo.me.clone());
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    tablet.sync().await.unwrap();
    tablet.disconnect().await;
    // In the person's home, no signal: a first part, then the rest.
    let review = tablet
        .create_record(
            case,
            Kind::Review,
            &[("held_on", "2026-11-30"), ("attendees", "Jo, SSW")],
        )
        .await
        .unwrap();
    let oversight: HroOversight = get(&server, &senior, "/api/hro/oversight").await;
    assert!(
        oversight.reviews_ready.iter().all(|r| r.document != review),
        "nothing has reached the server"
    );
    tablet
        .edit_raw(review, |am| {
            for (key, value) in [
                ("ssw_present", "true"),
                ("person_present", "Yes"),
                ("action_progress", "On track."),
                ("persons_view", "Helpful."),
                ("service_improvement", "Evening appointments."),
                ("decision", "Continue"),
            ] {
                casebook_shared::records::set(am, Kind::Review, key, value).unwrap();
            }
        })
        .await
        .unwrap();

    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    tablet.sync().await.unwrap();
    let oversight: HroOversight = get(&server, &senior, "/api/hro/oversight").await;
    let ready = oversight
        .reviews_ready
        .iter()
        .find(|r| r.document == review)
        .expect("the review is ready for the senior");
    assert_eq!((ready.document, ready.case), (review, case));
    assert!(ready.summary.contains("2026-11-30") && ready.summary.contains("Continue"));
    // Another team's senior does not see it.
    let south = server.sign_in("senior.south").await;
    let theirs: HroOversight = get(&server, &south, "/api/hro/oversight").await;
    assert!(theirs.reviews_ready.iter().all(|r| r.document != review));
}
