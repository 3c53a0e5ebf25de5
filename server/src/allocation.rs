//! Decisions about who works a case: reallocation, cover, and a senior's duty access. Each is
//! an HTTP call checked on the server by role and team; the change reaches live sync
//! connections within about a second (they re-derive their documents when the database reports
//! an access change: [`crate::access_changes`]).

use crate::auth::AuthUser;
use crate::cases::parse_case;
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use casebook_shared::api::{
    CoverCreated, CoverRequest, DutyAccessRecord, DutyAccessRequest, ReallocateRequest,
};
use casebook_shared::ids::{CaseId, StaffId};

/// How long a senior's duty access to a case lasts.
pub const DUTY_ACCESS_MS: i64 = 12 * 60 * 60 * 1000;
/// Shortest reason accepted, in characters.
const MIN_REASON_CHARS: usize = 5;

/// Routes for allocation decisions.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cases/{case}/duty-access", post(duty_access))
        .route("/api/cases/{case}/reallocate", post(reallocate))
        .route("/api/cases/{case}/co-workers", post(add_co_worker))
        .route(
            "/api/cases/{case}/co-workers/remove",
            post(remove_co_worker),
        )
        .route("/api/cases/{case}/cover", post(cover))
        .route("/api/cover/{id}/end", post(end_cover))
        .route("/api/duty-access", axum::routing::get(list_duty_access))
        .route(
            "/api/case-by-reference/{reference}",
            axum::routing::get(case_by_reference),
        )
}

fn reason(text: &str) -> Result<String> {
    let text = text.trim();
    if text.chars().count() < MIN_REASON_CHARS {
        return Err(Error::Invalid(
            "give a reason (a few words at least)".into(),
        ));
    }
    if text.chars().count() > 2_000 {
        return Err(Error::Invalid(
            "keep the reason under 2,000 characters".into(),
        ));
    }
    Ok(text.to_owned())
}

/// Only the manager, or a senior of the team holding the case, decides its allocation.
async fn require_allocating_authority(
    state: &AppState,
    user: &AuthUser,
    case: CaseId,
) -> Result<()> {
    crate::access::require_senior_of_case(&state.db, user, case).await
}

/// A practitioner who can be given work (active, a practitioner or senior).
async fn require_worker(state: &AppState, worker: StaffId) -> Result<()> {
    let row: Option<(String, bool)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select role, disabled from staff where id = $1").bind(worker.to_string()).fetch_optional(pool).await)?;
    match row {
        Some((role, false)) if role == "practitioner" || role == "senior" => Ok(()),
        _ => Err(Error::Invalid("choose an active worker".into())),
    }
}

async fn duty_access(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<DutyAccessRequest>,
) -> Result<Json<()>> {
    let case = parse_case(&case)?;
    if user.role != "senior" {
        return Err(Error::Forbidden);
    }
    let reason = reason(&request.reason)?;
    crate::access::case_team(&state.db, case).await?; // the case exists
    let now = now_ms();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into duty_access (id, case_id, staff_id, reason, opened_at, expires_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(uuid::Uuid::new_v4().to_string()).bind(case.to_string()).bind(user.id.to_string())
        .bind(&reason).bind(now).bind(now + DUTY_ACCESS_MS)
        .execute(pool).await.map(|_| ()))?;
    let person: (String,) = on_pool!(&state.db, pool =>
        sqlx::query_as("select person_id from cases where id = $1").bind(case.to_string()).fetch_one(pool).await)?;
    let entry = crate::audit::Entry {
        staff_id: user.id.to_string(),
        role: user.role.clone(),
        case_id: case.to_string(),
        person_id: person.0,
        basis: "duty".into(),
        occurred_at: now,
        received_at: now,
        // The reason for out-of-allocation access is part of the record (it is why, not what).
        detail: reason,
        ..crate::audit::Entry::new(crate::audit::Operation::AccessGranted)
    };
    crate::audit::record(&state.db, &entry).await?;
    tracing::info!(staff = %user.id, %case, "duty access opened");
    Ok(Json(()))
}

async fn reallocate(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<ReallocateRequest>,
) -> Result<Json<()>> {
    let case = parse_case(&case)?;
    require_allocating_authority(&state, &user, case).await?;
    let reason = reason(&request.reason)?;
    require_worker(&state, request.worker).await?;
    let (case_id, to, now) = (case.to_string(), request.worker.to_string(), now_ms());
    on_pool!(&state.db, pool => async {
        let mut tx = pool.begin().await?;
        let from: Option<(String,)> = sqlx::query_as("select staff_id from allocations where case_id = $1 and relation = 'worker'")
            .bind(&case_id).fetch_optional(&mut *tx).await?;
        sqlx::query("delete from allocations where case_id = $1 and (relation = 'worker' or staff_id = $2)")
            .bind(&case_id).bind(&to).execute(&mut *tx).await?;
        sqlx::query("insert into allocations (case_id, staff_id, relation) values ($1, $2, 'worker')")
            .bind(&case_id).bind(&to).execute(&mut *tx).await?;
        sqlx::query("insert into allocation_history (id, case_id, from_staff_id, to_staff_id, reason, decided_by, decided_at)
                     values ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::new_v4().to_string()).bind(&case_id).bind(from.map(|f| f.0)).bind(&to)
            .bind(&reason).bind(user.id.to_string()).bind(now)
            .execute(&mut *tx).await?;
        tx.commit().await
    }.await)?;
    tracing::info!(staff = %user.id, %case, "case reallocated");
    Ok(Json(()))
}

async fn add_co_worker(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<casebook_shared::api::CoWorkerChange>,
) -> Result<Json<()>> {
    change_co_worker(state, user, case, request, true).await
}

async fn remove_co_worker(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<casebook_shared::api::CoWorkerChange>,
) -> Result<Json<()>> {
    change_co_worker(state, user, case, request, false).await
}

/// Adds or removes a co-worker, keeping the history; access follows at once (live devices
/// within a second).
async fn change_co_worker(
    state: AppState,
    user: AuthUser,
    case: String,
    request: casebook_shared::api::CoWorkerChange,
    add: bool,
) -> Result<Json<()>> {
    let case = parse_case(&case)?;
    require_allocating_authority(&state, &user, case).await?;
    let reason = reason(&request.reason)?;
    if add {
        require_worker(&state, request.worker).await?;
    }
    let (case_id, staff, now) = (case.to_string(), request.worker.to_string(), now_ms());
    let changed = on_pool!(&state.db, pool => async {
        let mut tx = pool.begin().await?;
        let current: Option<(String,)> = sqlx::query_as("select relation from allocations where case_id = $1 and staff_id = $2")
            .bind(&case_id).bind(&staff).fetch_optional(&mut *tx).await?;
        let changed = match (add, current.as_ref().map(|c| c.0.as_str())) {
            (true, None) => {
                sqlx::query("insert into allocations (case_id, staff_id, relation) values ($1, $2, 'co-worker')")
                    .bind(&case_id).bind(&staff).execute(&mut *tx).await?;
                true
            }
            (false, Some("co-worker")) => {
                sqlx::query("delete from allocations where case_id = $1 and staff_id = $2 and relation = 'co-worker'")
                    .bind(&case_id).bind(&staff).execute(&mut *tx).await?;
                true
            }
            _ => false,
        };
        if changed {
            sqlx::query("insert into allocation_history (id, case_id, from_staff_id, to_staff_id, reason, decided_by, decided_at, relation)
                         values ($1, $2, null, $3, $4, $5, $6, $7)")
                .bind(uuid::Uuid::new_v4().to_string()).bind(&case_id).bind(&staff).bind(&reason)
                .bind(user.id.to_string()).bind(now).bind(if add { "co-worker added" } else { "co-worker removed" })
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(changed)
    }.await)?;
    if !changed {
        return Err(Error::Invalid(if add {
            "That worker already works this case.".into()
        } else {
            "That worker is not a co-worker of this case.".into()
        }));
    }
    Ok(Json(()))
}

async fn cover(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<CoverRequest>,
) -> Result<Json<CoverCreated>> {
    let case = parse_case(&case)?;
    require_allocating_authority(&state, &user, case).await?;
    let reason = reason(&request.reason)?;
    require_worker(&state, request.worker).await?;
    if request.ends_at <= request.starts_at {
        return Err(Error::Invalid("cover must end after it starts".into()));
    }
    let id = uuid::Uuid::new_v4().to_string();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into cover_assignments (id, case_id, staff_id, starts_at, ends_at, reason, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&id).bind(case.to_string()).bind(request.worker.to_string())
        .bind(request.starts_at).bind(request.ends_at).bind(&reason).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    log_cover(
        &state,
        &user,
        case,
        format!(
            "cover assigned to {} from {} to {}",
            request.worker, request.starts_at, request.ends_at
        ),
    )
    .await?;
    Ok(Json(CoverCreated { id }))
}

async fn end_cover(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<()>> {
    let row: Option<(String, i64)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select case_id, starts_at from cover_assignments where id = $1").bind(&id).fetch_optional(pool).await)?;
    let Some((case, starts_at)) = row else {
        return Err(Error::Forbidden);
    };
    let case = parse_case(&case)?;
    require_allocating_authority(&state, &user, case).await?;
    let now = now_ms();
    if starts_at > now {
        // Cover that has not started is simply cancelled.
        on_pool!(&state.db, pool => sqlx::query("delete from cover_assignments where id = $1")
            .bind(&id).execute(pool).await.map(|_| ()))?;
    } else {
        // Ending cover ends access at once.
        let end = now.max(starts_at + 1);
        on_pool!(&state.db, pool => sqlx::query("update cover_assignments set ends_at = $1 where id = $2 and ends_at > $1")
            .bind(end).bind(&id).execute(pool).await.map(|_| ()))?;
    }
    log_cover(&state, &user, case, format!("cover {id} ended")).await?;
    Ok(Json(()))
}

/// A senior on duty finds a case outside their team by its reference (only its id: nothing
/// about the person until they open it with a reason, which is logged).
async fn case_by_reference(
    State(state): State<AppState>,
    user: AuthUser,
    Path(reference): Path<String>,
) -> Result<Json<CaseId>> {
    if user.role != "senior" && user.role != "manager" {
        return Err(Error::Forbidden);
    }
    let row: Option<(String,)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select id from cases where reference = $1").bind(reference.trim()).fetch_optional(pool).await)?;
    let (id,) = row.ok_or_else(|| Error::Invalid("No case has that reference.".into()))?;
    Ok(Json(parse_case(&id)?))
}

/// Records a change of cover in the audit log (who may see the case changed).
async fn log_cover(state: &AppState, user: &AuthUser, case: CaseId, detail: String) -> Result<()> {
    let record = crate::cases::case_record(&state.db, case).await?;
    let now = now_ms();
    crate::audit::record(
        &state.db,
        &crate::audit::Entry {
            staff_id: user.id.to_string(),
            role: user.role.clone(),
            case_id: case.to_string(),
            person_id: record.person_id,
            basis: user.role.clone(),
            occurred_at: now,
            received_at: now,
            detail,
            ..crate::audit::Entry::new(crate::audit::Operation::AccessGranted)
        },
    )
    .await?;
    Ok(())
}

/// Out-of-allocation accesses of the last 90 days, newest first: for the manager to review.
async fn list_duty_access(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<DutyAccessRecord>>> {
    if user.role != "manager" {
        return Err(Error::Forbidden);
    }
    let since = now_ms() - 90 * 24 * 60 * 60 * 1000;
    let rows: Vec<(String, String, String, i64, i64)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select s.name, c.reference, d.reason, d.opened_at, d.expires_at
         from duty_access d join staff s on s.id = d.staff_id join cases c on c.id = d.case_id
         where d.opened_at >= $1 order by d.opened_at desc")
        .bind(since).fetch_all(pool).await)?;
    Ok(Json(
        rows.into_iter()
            .map(
                |(senior_name, case_reference, reason, opened_at, expires_at)| DutyAccessRecord {
                    senior_name,
                    case_reference,
                    reason,
                    opened_at,
                    expires_at,
                },
            )
            .collect(),
    ))
}
