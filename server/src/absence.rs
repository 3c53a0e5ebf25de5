//! Absence and cover for a whole caseload: a worker's planned absence (by the worker or a
//! senior), an unplanned one (by a senior of their team or the manager), and cover for every
//! case of the absent worker in one action, all in one transaction. Access follows the cover
//! dates exactly (`access.rs`), so live devices gain and lose the cases as cover starts and
//! ends.

use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use casebook_shared::api::{Absence, AbsenceRequest, BulkCoverCreated, BulkCoverRequest};
use casebook_shared::ids::{CaseId, StaffId};

/// Routes: `GET/POST /api/absences`, `POST /api/cover/bulk`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/absences", get(list).post(record))
        .route("/api/cover/bulk", post(bulk_cover))
}

/// A worker's role and team, if the account is active.
async fn worker(state: &AppState, staff: StaffId) -> Result<(String, Option<String>)> {
    let row: Option<(String, Option<String>, bool)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select role, team_id, disabled from staff where id = $1")
        .bind(staff.to_string()).fetch_optional(pool).await)?;
    match row {
        Some((role, team, false)) if role == "practitioner" || role == "senior" => Ok((role, team)),
        _ => Err(Error::Invalid("Choose an active worker.".into())),
    }
}

/// The manager, or a senior of `team`.
fn senior_for(user: &AuthUser, team: Option<&str>) -> bool {
    user.role == "manager"
        || (user.role == "senior" && user.team_id.as_deref() == team && team.is_some())
}

async fn record(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<AbsenceRequest>,
) -> Result<Json<String>> {
    let (_, team) = worker(&state, request.staff).await?;
    let own_planned = request.staff == user.id && request.planned;
    if !own_planned && !senior_for(&user, team.as_deref()) {
        return Err(Error::Forbidden);
    }
    if request.ends_at <= request.starts_at {
        return Err(Error::Invalid(
            "An absence must end after it starts.".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into absences (id, staff_id, starts_at, ends_at, planned, recorded_by, recorded_at)
         values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&id).bind(request.staff.to_string()).bind(request.starts_at).bind(request.ends_at)
        .bind(request.planned).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    tracing::info!(absence = %id, by = %user.id, "absence recorded");
    Ok(Json(id))
}

/// The cases `staff` works (allocated or co-worker).
async fn caseload(state: &AppState, staff: StaffId) -> Result<Vec<CaseId>> {
    let rows: Vec<(String,)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select case_id from allocations where staff_id = $1 order by case_id")
        .bind(staff.to_string()).fetch_all(pool).await)?;
    rows.into_iter()
        .map(|(c,)| {
            c.parse()
                .map_err(|e| Error::Internal(anyhow::anyhow!("case id: {e}")))
        })
        .collect()
}

async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<Absence>>> {
    type Row = (String, String, String, i64, i64, bool, Option<String>);
    let rows: Vec<Row> = on_pool!(&state.db, pool => sqlx::query_as(
        "select a.id, a.staff_id, s.name, a.starts_at, a.ends_at, a.planned, s.team_id
         from absences a join staff s on s.id = a.staff_id
         where a.ends_at > $1 order by a.starts_at")
        .bind(now_ms()).fetch_all(pool).await)?;
    let mut out = Vec::new();
    for (id, staff, name, starts_at, ends_at, planned, team) in rows {
        let staff: StaffId = staff
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("staff id: {e}")))?;
        if staff != user.id && !senior_for(&user, team.as_deref()) {
            continue;
        }
        let cases = caseload(&state, staff).await?;
        let (covered,): (i64,) = on_pool!(&state.db, pool => sqlx::query_as(
            "select count(distinct c.case_id) from cover_assignments c join allocations a on a.case_id = c.case_id
             where a.staff_id = $1 and c.staff_id <> $1 and c.starts_at <= $2 and c.ends_at >= $3")
            .bind(staff.to_string()).bind(starts_at).bind(ends_at).fetch_one(pool).await)?;
        out.push(Absence {
            id,
            staff,
            name,
            starts_at,
            ends_at,
            planned,
            cases: cases.len(),
            covered: covered as usize,
        });
    }
    Ok(Json(out))
}

async fn bulk_cover(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<BulkCoverRequest>,
) -> Result<Json<BulkCoverCreated>> {
    let (_, team) = worker(&state, request.absent).await?;
    if !senior_for(&user, team.as_deref()) {
        return Err(Error::Forbidden);
    }
    worker(&state, request.worker).await?;
    if request.worker == request.absent {
        return Err(Error::Invalid(
            "Choose someone other than the absent worker.".into(),
        ));
    }
    if request.ends_at <= request.starts_at {
        return Err(Error::Invalid("Cover must end after it starts.".into()));
    }
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 2_000 {
        return Err(Error::Invalid(
            "Give the reason for the cover (up to 2,000 characters).".into(),
        ));
    }
    let cases = caseload(&state, request.absent).await?;
    if cases.is_empty() {
        return Err(Error::Invalid("That worker has no cases to cover.".into()));
    }
    let now = now_ms();
    on_pool!(&state.db, pool => async {
        let mut tx = pool.begin().await?;
        for case in &cases {
            sqlx::query("insert into cover_assignments (id, case_id, staff_id, starts_at, ends_at, reason, created_by, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(uuid::Uuid::new_v4().to_string()).bind(case.to_string()).bind(request.worker.to_string())
                .bind(request.starts_at).bind(request.ends_at).bind(&reason).bind(user.id.to_string()).bind(now)
                .execute(&mut *tx).await?;
        }
        tx.commit().await
    }.await)?;
    tracing::info!(by = %user.id, cases = cases.len(), "cover assigned for a whole caseload");
    Ok(Json(BulkCoverCreated { cases }))
}
