//! The HRO process on the server: identification sweeps and returns, the senior's decision,
//! the register (its history kept: rows are ended, never deleted), plan sign-off, review
//! completion and the schedule it sets, and tasks for seniors raised by high risk scores.
//!
//! The forms are documents edited on devices (`casebook_shared::records`); every decision
//! that needs authority is a call here, checked by role and team, refused (and logged) for
//! anyone else, and recorded in the audit log. The lists seniors and the manager work from
//! are read from these tables, never by loading every document.

use crate::access::{Basis, accessible_cases, require_case, require_senior_of_case};
use crate::audit::{self, Entry, Operation};
use crate::auth::AuthUser;
use crate::cases::{case_record, parse_case};
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use casebook_shared::api::{
    Deregister, HroOversight, IdentificationDecision, OpenSweep, PendingDecision, ReadyRecord,
    RegisterEntry, SeniorTask, SubmitIdentification, SweepStatus, SweepWorker, TaskDone,
};
use casebook_shared::dates::Date;
use casebook_shared::ids::{CaseId, DocumentId};
use casebook_shared::records::{self, Kind, Record};
use casebook_shared::schedule::{ReviewStatus, next_review};

/// Routes of the HRO process.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sweeps", get(list_sweeps).post(open_sweep))
        .route("/api/sweeps/{id}/nil-return", post(nil_return))
        .route("/api/identifications", post(submit_identification))
        .route("/api/identifications/{doc}/decision", post(decide))
        .route("/api/register", get(register))
        .route("/api/register/{case}/deregister", post(deregister))
        .route("/api/plans/{doc}/sign-off", post(sign_off_plan))
        .route("/api/reviews/{doc}/complete", post(complete_review))
        .route("/api/hro/oversight", get(oversight))
        .route("/api/tasks/{id}/done", post(task_done))
}

fn today() -> Date {
    Date::from_unix_millis(now_ms())
}

fn required(text: &str, what: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 2_000 {
        return Err(Error::Invalid(format!(
            "Give {what} (up to 2,000 characters)."
        )));
    }
    Ok(text.to_owned())
}

fn refused(user: &AuthUser, what: &str) -> Error {
    tracing::warn!(staff = %user.id, role = %user.role, action = what, "refused: needs a senior or the manager");
    Error::Forbidden
}

/// Checks the user is the manager or a senior of the case's team; otherwise records the
/// refused attempt in the audit log (who, which case, what they tried) and refuses.
async fn require_authority(
    state: &AppState,
    user: &AuthUser,
    case: CaseId,
    what: &str,
) -> Result<()> {
    if require_senior_of_case(&state.db, user, case).await.is_ok() {
        return Ok(());
    }
    let now = now_ms();
    let person = case_record(&state.db, case)
        .await
        .map(|r| r.person_id)
        .unwrap_or_default();
    audit::record(
        &state.db,
        &Entry {
            staff_id: user.id.to_string(),
            role: user.role.clone(),
            case_id: case.to_string(),
            person_id: person,
            occurred_at: now,
            received_at: now,
            detail: format!("refused: {what} needs a senior of the team or the manager"),
            ..Entry::new(Operation::Refused)
        },
    )
    .await?;
    Err(refused(user, what))
}

/// A record's kind and case, and its fields as the server holds them now.
async fn read_record(state: &AppState, doc: DocumentId, kind: Kind) -> Result<(CaseId, Record)> {
    let row: Option<(String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select case_id, kind from documents where id = $1 and superseded_by is null")
        .bind(doc.to_string()).fetch_optional(pool).await)?;
    let Some((case, stored_kind)) = row else {
        return Err(Error::Invalid(
            "That record is not on the server yet: sync first.".into(),
        ));
    };
    if stored_kind != kind.as_str() {
        return Err(Error::Invalid(format!(
            "That record is not a {}.",
            kind.title()
        )));
    }
    let record = state
        .documents
        .read(doc, |am| records::read(am, kind))
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("reading a record: {e}")))?;
    Ok((parse_case(&case)?, record))
}

/// Refuses a record with required fields missing, naming each.
fn require_complete(kind: Kind, record: &Record) -> Result<()> {
    let missing = records::missing(kind, record);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.into_iter().map(|m| m.message).collect();
    Err(Error::Invalid(format!(
        "This {} is not complete: {}",
        kind.title().to_lowercase(),
        list.join(" ")
    )))
}

async fn log(
    state: &AppState,
    user: &AuthUser,
    case: CaseId,
    doc: Option<DocumentId>,
    basis: Basis,
    detail: String,
) -> Result<()> {
    let record = case_record(&state.db, case).await?;
    let now = now_ms();
    audit::record(
        &state.db,
        &Entry {
            staff_id: user.id.to_string(),
            role: user.role.clone(),
            case_id: case.to_string(),
            person_id: record.person_id,
            document_id: doc.map(|d| d.to_string()).unwrap_or_default(),
            basis: basis.as_str().to_owned(),
            occurred_at: now,
            received_at: now,
            detail,
            ..Entry::new(Operation::Collection)
        },
    )
    .await?;
    Ok(())
}

// --- Sweeps --------------------------------------------------------------------------------

async fn open_sweep(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<OpenSweep>,
) -> Result<Json<String>> {
    let team_id = match (
        user.role.as_str(),
        request.team.as_deref().filter(|t| !t.is_empty()),
    ) {
        ("manager", None) => None,
        ("manager", Some(team)) => {
            let row: Option<(String,)> = on_pool!(&state.db, pool =>
                sqlx::query_as("select id from teams where name = $1").bind(team).fetch_optional(pool).await)?;
            Some(
                row.ok_or_else(|| Error::Invalid("There is no team of that name.".into()))?
                    .0,
            )
        }
        ("senior", _) => Some(user.team_id.clone().ok_or(Error::Forbidden)?),
        _ => return Err(refused(&user, "open a sweep")),
    };
    let period = required(&request.period, "the period the sweep covers")?;
    let due: Date = request
        .due_on
        .parse()
        .map_err(|_| Error::Invalid("Give the date returns are due, as YYYY-MM-DD.".into()))?;
    let id = uuid::Uuid::new_v4().to_string();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into sweeps (id, team_id, period, due_on, opened_by, opened_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(&id).bind(&team_id).bind(&period).bind(due.to_string()).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    tracing::info!(sweep = %id, by = %user.id, "sweep opened");
    Ok(Json(id))
}

/// Open sweeps that cover `team_id` (or every sweep, for `None`).
async fn sweeps_for(
    state: &AppState,
    team_id: Option<&str>,
) -> Result<Vec<(String, Option<String>, String, String)>> {
    let rows: Vec<(String, Option<String>, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select id, team_id, period, due_on from sweeps where closed_at is null order by opened_at desc")
        .fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .filter(|(_, t, _, _)| team_id.is_none() || t.is_none() || t.as_deref() == team_id)
        .collect())
}

async fn list_sweeps(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<SweepStatus>>> {
    let scope = match user.role.as_str() {
        "manager" => None,
        "senior" | "practitioner" => Some(user.team_id.clone().ok_or(Error::Forbidden)?),
        _ => return Err(Error::Forbidden),
    };
    let mut out = Vec::new();
    for (id, team_id, period, due_on) in sweeps_for(&state, scope.as_deref()).await? {
        type WorkerRow = (String, String, String, Option<bool>, i64);
        let workers: Vec<WorkerRow> = on_pool!(&state.db, pool => sqlx::query_as(
            "select s.id, s.name, t.name, r.nil_return,
                    (select count(*) from identifications i where i.sweep_id = $1 and i.submitted_by = s.id)
             from staff s join teams t on t.id = s.team_id
             left join sweep_returns r on r.sweep_id = $1 and r.staff_id = s.id
             where s.role = 'practitioner' and not s.disabled and ($2 = '' or s.team_id = $2)
             order by t.name, s.name")
            .bind(&id).bind(team_id.clone().unwrap_or_default())
            .fetch_all(pool).await)?;
        let team = match &team_id {
            None => "Every team".to_owned(),
            Some(_) => workers.first().map(|w| w.2.clone()).unwrap_or_default(),
        };
        let workers = workers
            .into_iter()
            .filter(|w| {
                scope.is_none() || user.role != "practitioner" || w.0 == user.id.to_string()
            })
            .map(|(staff, name, team, nil, forms)| SweepWorker {
                staff: staff.parse().unwrap_or(user.id),
                name,
                team,
                returned: match (nil, forms) {
                    (Some(true), _) => Some("nil return".into()),
                    (_, n) if n > 0 => Some(format!("{n} form(s)")),
                    _ => None,
                },
            })
            .collect();
        out.push(SweepStatus {
            id,
            team,
            period,
            due_on,
            workers,
        });
    }
    Ok(Json(out))
}

async fn nil_return(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<()>> {
    if user.role != "practitioner" {
        return Err(Error::Invalid(
            "Nil returns are made by workers for their own caseload.".into(),
        ));
    }
    let in_scope = sweeps_for(&state, user.team_id.as_deref())
        .await?
        .into_iter()
        .any(|(sweep, ..)| sweep == id);
    if !in_scope {
        return Err(Error::Invalid(
            "That sweep is not open for your team.".into(),
        ));
    }
    on_pool!(&state.db, pool => sqlx::query(
        "insert into sweep_returns (sweep_id, staff_id, nil_return, returned_at) values ($1, $2, true, $3)
         on conflict (sweep_id, staff_id) do update set nil_return = true, returned_at = excluded.returned_at")
        .bind(&id).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    Ok(Json(()))
}

// --- Identification and the register -------------------------------------------------------

async fn submit_identification(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<SubmitIdentification>,
) -> Result<Json<()>> {
    let (case, record) = read_record(&state, request.document, Kind::Identification).await?;
    let basis = require_case(&state.db, &user, case, now_ms()).await?;
    require_complete(Kind::Identification, &record)?;
    let record_team = crate::access::case_team(&state.db, case).await?;
    let sweep = sweeps_for(&state, Some(&record_team))
        .await?
        .into_iter()
        .next()
        .map(|s| s.0);
    let doc = request.document.to_string();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into identifications (document_id, case_id, sweep_id, submitted_by, submitted_at, status)
         values ($1, $2, $3, $4, $5, 'submitted')
         on conflict (document_id) do update set status = 'submitted', submitted_at = excluded.submitted_at,
           decided_by = null, decided_at = null, rationale = null
         where identifications.status in ('submitted', 'more-information')")
        .bind(&doc).bind(case.to_string()).bind(&sweep).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    if let Some(sweep) = &sweep {
        on_pool!(&state.db, pool => sqlx::query(
            "insert into sweep_returns (sweep_id, staff_id, nil_return, returned_at) values ($1, $2, false, $3)
             on conflict (sweep_id, staff_id) do update set nil_return = false")
            .bind(sweep).bind(user.id.to_string()).bind(now_ms())
            .execute(pool).await.map(|_| ()))?;
    }
    crate::projections::update(
        &state.db,
        request.document,
        &case.to_string(),
        Kind::Identification,
        &record,
    )
    .await?;
    log(
        &state,
        &user,
        case,
        Some(request.document),
        basis,
        "HRO identification submitted for a decision".into(),
    )
    .await?;
    Ok(Json(()))
}

/// The record `doc` of `kind` for an action that needs the manager or a senior of the case's
/// team: refused (and logged) for anyone else; returns the case, the record and the basis.
async fn senior_action(
    state: &AppState,
    user: &AuthUser,
    doc: &str,
    kind: Kind,
    what: &str,
) -> Result<(DocumentId, CaseId, Record, Basis)> {
    let doc: DocumentId = doc
        .parse()
        .map_err(|_| Error::Invalid("That is not a record id.".into()))?;
    let (case, record) = read_record(state, doc, kind).await?;
    require_authority(state, user, case, what).await?;
    let basis = require_case(&state.db, user, case, now_ms()).await?;
    Ok((doc, case, record, basis))
}

async fn decide(
    State(state): State<AppState>,
    user: AuthUser,
    Path(doc): Path<String>,
    Json(request): Json<IdentificationDecision>,
) -> Result<Json<()>> {
    let (doc, case, record, basis) = senior_action(
        &state,
        &user,
        &doc,
        Kind::Identification,
        "decide an identification",
    )
    .await?;
    let rationale = required(&request.rationale, "the rationale for the decision")?;
    let status = match request.decision.as_str() {
        "approve" => "approved",
        "decline" => "declined",
        "more-information" => "more-information",
        _ => {
            return Err(Error::Invalid(
                "Decide approve, decline or more-information.".into(),
            ));
        }
    };
    let pending: Option<(String,)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select status from identifications where document_id = $1").bind(doc.to_string()).fetch_optional(pool).await)?;
    if pending.as_ref().map(|p| p.0.as_str()) != Some("submitted") {
        return Err(Error::Invalid(
            "That identification is not waiting for a decision.".into(),
        ));
    }
    let now = now_ms();
    let start = today();
    on_pool!(&state.db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query("update identifications set status = $1, decided_by = $2, decided_at = $3, rationale = $4 where document_id = $5")
            .bind(status).bind(user.id.to_string()).bind(now).bind(&rationale).bind(doc.to_string())
            .execute(&mut *tx).await?;
        if status == "approved" {
            let active: Option<(String,)> = sqlx::query_as("select id from hro_register where case_id = $1 and ended_at is null")
                .bind(case.to_string()).fetch_optional(&mut *tx).await?;
            if active.is_none() {
                sqlx::query("insert into hro_register (id, case_id, route, mappa_category, mappa_level, caledonian, csogp,
                             start_date, next_review, identification_id, registered_by, registered_at)
                             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(uuid::Uuid::new_v4().to_string()).bind(case.to_string())
                    .bind(record.value("proposed_route")).bind(record.value("mappa_category")).bind(record.value("mappa_level"))
                    .bind(record.yes("caledonian")).bind(record.yes("csogp"))
                    .bind(start.to_string()).bind(next_review(start).to_string())
                    .bind(doc.to_string()).bind(user.id.to_string()).bind(now)
                    .execute(&mut *tx).await?;
            }
        }
        tx.commit().await
    }.await)?;
    log(
        &state,
        &user,
        case,
        Some(doc),
        basis,
        format!("HRO identification {status}; rationale recorded"),
    )
    .await?;
    Ok(Json(()))
}

async fn deregister(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<Deregister>,
) -> Result<Json<()>> {
    let case = parse_case(&case)?;
    require_authority(&state, &user, case, "de-register").await?;
    let basis = require_case(&state.db, &user, case, now_ms()).await?;
    let reason = required(&request.reason, "the reason for de-registration")?;
    end_registration(&state, &user, case, &reason).await?;
    log(
        &state,
        &user,
        case,
        None,
        basis,
        "de-registered from the HRO register".into(),
    )
    .await?;
    Ok(Json(()))
}

async fn end_registration(
    state: &AppState,
    user: &AuthUser,
    case: CaseId,
    reason: &str,
) -> Result<()> {
    let ended = on_pool!(&state.db, pool => sqlx::query(
        "update hro_register set ended_at = $1, ended_by = $2, end_reason = $3 where case_id = $4 and ended_at is null")
        .bind(now_ms()).bind(user.id.to_string()).bind(reason).bind(case.to_string())
        .execute(pool).await.map(|r| r.rows_affected()))?;
    if ended == 0 {
        return Err(Error::Invalid("That case is not on the register.".into()));
    }
    Ok(())
}

// --- Plans and reviews -----------------------------------------------------------------------

async fn sign_off_plan(
    State(state): State<AppState>,
    user: AuthUser,
    Path(doc): Path<String>,
) -> Result<Json<()>> {
    let (doc, case, record, basis) =
        senior_action(&state, &user, &doc, Kind::RiskPlan, "sign off a plan").await?;
    require_complete(Kind::RiskPlan, &record)?;
    on_pool!(&state.db, pool => sqlx::query(
        "insert into plan_signoffs (document_id, case_id, signed_by, signed_at) values ($1, $2, $3, $4)
         on conflict (document_id) do nothing")
        .bind(doc.to_string()).bind(case.to_string()).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    log(
        &state,
        &user,
        case,
        Some(doc),
        basis,
        "Risk Management Plan signed off".into(),
    )
    .await?;
    Ok(Json(()))
}

async fn complete_review(
    State(state): State<AppState>,
    user: AuthUser,
    Path(doc): Path<String>,
) -> Result<Json<String>> {
    // The senior's attendance is required: a senior (or the manager) completes it.
    let (doc, case, record, basis) =
        senior_action(&state, &user, &doc, Kind::Review, "complete a review").await?;
    require_complete(Kind::Review, &record)?;
    let held: Date = record
        .value("held_on")
        .parse()
        .map_err(|_| Error::Invalid("Give the date the review was held.".into()))?;
    let next = next_review(held);
    let decision = record.value("decision").to_owned();
    on_pool!(&state.db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into review_completions (document_id, case_id, held_on, decision, next_review, completed_by, completed_at)
                     values ($1, $2, $3, $4, $5, $6, $7) on conflict (document_id) do nothing")
            .bind(doc.to_string()).bind(case.to_string()).bind(held.to_string()).bind(&decision)
            .bind(next.to_string()).bind(user.id.to_string()).bind(now_ms())
            .execute(&mut *tx).await?;
        sqlx::query("update hro_register set next_review = $1 where case_id = $2 and ended_at is null")
            .bind(next.to_string()).bind(case.to_string())
            .execute(&mut *tx).await?;
        tx.commit().await
    }.await)?;
    if decision == "De-register" {
        let reason = format!("Review decision: {}", record.value("decision_reason"));
        let _ = end_registration(&state, &user, case, &reason).await;
    }
    log(
        &state,
        &user,
        case,
        Some(doc),
        basis,
        format!("3-monthly review completed; decision: {decision}"),
    )
    .await?;
    Ok(Json(next.to_string()))
}

// --- Lists -----------------------------------------------------------------------------------

async fn register_entries(state: &AppState, user: &AuthUser) -> Result<Vec<RegisterEntry>> {
    let cases = accessible_cases(&state.db, user, now_ms()).await?;
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        bool,
        bool,
        String,
        String,
        i64,
    );
    let rows: Vec<Row> = on_pool!(&state.db, pool => sqlx::query_as(
        "select c.id, c.reference, p.name, t.name, r.route, r.mappa_category, r.mappa_level, r.caledonian, r.csogp,
                r.start_date, r.next_review,
                (select count(*) from plan_signoffs s where s.case_id = c.id)
         from hro_register r
         join cases c on c.id = r.case_id
         join people p on p.id = c.person_id
         join teams t on t.id = c.team_id
         where r.ended_at is null
         order by r.next_review, c.reference")
        .fetch_all(pool).await)?;
    let today = today();
    Ok(rows
        .into_iter()
        .filter_map(
            |(
                case,
                reference,
                person_name,
                team,
                route,
                mappa_category,
                mappa_level,
                caledonian,
                csogp,
                start_date,
                next,
                signed,
            )| {
                let case: CaseId = case.parse().ok()?;
                // Seniors see their team's cases and managers every case (both are in their access).
                cases.contains_key(&case).then(|| RegisterEntry {
                    case,
                    reference,
                    person_name,
                    team,
                    route,
                    mappa_category,
                    mappa_level,
                    caledonian,
                    csogp,
                    start_date,
                    review_status: match next
                        .parse::<Date>()
                        .map(|due| ReviewStatus::of(due, today))
                    {
                        Ok(ReviewStatus::Overdue { .. }) => "overdue",
                        Ok(ReviewStatus::DueSoon { .. }) => "due-soon",
                        _ => "scheduled",
                    }
                    .to_owned(),
                    next_review: next,
                    plan_signed: signed > 0,
                })
            },
        )
        .collect())
}

async fn register(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<RegisterEntry>>> {
    Ok(Json(register_entries(&state, &user).await?))
}

async fn oversight(State(state): State<AppState>, user: AuthUser) -> Result<Json<HroOversight>> {
    if user.role != "senior" && user.role != "manager" {
        return Err(Error::Forbidden);
    }
    let register = register_entries(&state, &user).await?;
    let cases = accessible_cases(&state.db, &user, now_ms()).await?;
    let pending: Vec<(String, String, String, String, String, i64)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select i.document_id, c.id, c.reference, p.name, s.name, i.submitted_at
         from identifications i join cases c on c.id = i.case_id join people p on p.id = c.person_id
         join staff s on s.id = i.submitted_by
         where i.status = 'submitted' order by i.submitted_at")
        .fetch_all(pool).await)?;
    let tasks: Vec<(String, String, String, String, i64)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select t.id, c.id, c.reference, t.reason, t.created_at
         from senior_tasks t join cases c on c.id = t.case_id
         where t.done_at is null order by t.created_at")
        .fetch_all(pool).await)?;
    let ready: Vec<(String, String, String, String, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select r.document_id, r.kind, c.id, c.reference, p.name, r.summary
         from record_projections r join cases c on c.id = r.case_id join people p on p.id = c.person_id
         join documents d on d.id = r.document_id
         where r.complete and d.superseded_by is null
           and ((r.kind = 'review' and not exists (select 1 from review_completions x where x.document_id = r.document_id))
             or (r.kind = 'risk-plan' and not exists (select 1 from plan_signoffs x where x.document_id = r.document_id)))
         order by r.updated_at")
        .fetch_all(pool).await)?;
    let mine = |case: &str| {
        case.parse::<CaseId>()
            .ok()
            .filter(|c| cases.contains_key(c))
    };
    let ready_of = |kind: &str| -> Vec<ReadyRecord> {
        ready
            .iter()
            .filter(|r| r.1 == kind)
            .filter_map(|(doc, _, case, reference, person_name, summary)| {
                Some(ReadyRecord {
                    document: doc.parse().ok()?,
                    case: mine(case)?,
                    reference: reference.clone(),
                    person_name: person_name.clone(),
                    summary: summary.clone(),
                })
            })
            .collect()
    };
    Ok(Json(HroOversight {
        reviews_ready: ready_of("review"),
        plans_ready: ready_of("risk-plan"),
        overdue_reviews: register
            .iter()
            .filter(|r| r.review_status == "overdue")
            .cloned()
            .collect(),
        unsigned_plans: register
            .iter()
            .filter(|r| !r.plan_signed)
            .cloned()
            .collect(),
        pending_decisions: pending
            .into_iter()
            .filter_map(
                |(doc, case, reference, person_name, submitted_by, submitted_at)| {
                    Some(PendingDecision {
                        document: doc.parse().ok()?,
                        case: mine(&case)?,
                        reference,
                        person_name,
                        submitted_by,
                        submitted_at,
                    })
                },
            )
            .collect(),
        tasks: tasks
            .into_iter()
            .filter_map(|(id, case, reference, reason, created_at)| {
                Some(SeniorTask {
                    id,
                    case: mine(&case)?,
                    reference,
                    reason,
                    created_at,
                })
            })
            .collect(),
    }))
}

async fn task_done(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<TaskDone>,
) -> Result<Json<()>> {
    let row: Option<(String,)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select case_id from senior_tasks where id = $1 and done_at is null").bind(&id).fetch_optional(pool).await)?;
    let case = parse_case(
        &row.ok_or_else(|| Error::Invalid("That task is not open.".into()))?
            .0,
    )?;
    require_authority(&state, &user, case, "record a senior discussion").await?;
    let basis = require_case(&state.db, &user, case, now_ms()).await?;
    let discussion = required(&request.discussion, "what was discussed")?;
    on_pool!(&state.db, pool => sqlx::query(
        "update senior_tasks set done_by = $1, done_at = $2, discussion = $3 where id = $4")
        .bind(user.id.to_string()).bind(now_ms()).bind(&discussion).bind(&id)
        .execute(pool).await.map(|_| ()))?;
    log(
        &state,
        &user,
        case,
        None,
        basis,
        "high risk score discussed with a senior".into(),
    )
    .await?;
    Ok(Json(()))
}
