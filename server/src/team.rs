//! Continuity views: the duty senior rota (who is on duty today, and the phone to reach
//! them), and a senior's view of their team: each worker's workload (cases, cover, absent
//! now) and every case with its allocation, cover, next review and last contact.

use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use casebook_shared::api::{DutyDay, SetDuty, TeamCase, TeamOverview, TeamWorker};
use casebook_shared::dates::Date;

/// Routes: `GET /api/duty`, `PUT /api/duty/{day}`, `GET /api/team`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/duty", get(duty))
        .route("/api/duty/{day}", put(set_duty))
        .route("/api/team", get(team))
}

/// Today and the next 13 days of the rota (everyone signed in may see who is on duty).
async fn duty(State(state): State<AppState>, _user: AuthUser) -> Result<Json<Vec<DutyDay>>> {
    let today = Date::from_unix_millis(now_ms());
    let rows: Vec<(String, String, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select d.day, d.staff_id, s.name, d.phone from duty_rota d join staff s on s.id = d.staff_id
         where d.day >= $1 and d.day <= $2 order by d.day")
        .bind(today.to_string()).bind(today.add_days(13).to_string())
        .fetch_all(pool).await)?;
    rows.into_iter()
        .map(|(day, staff, name, phone)| {
            Ok(DutyDay {
                day,
                staff: staff
                    .parse()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("staff id: {e}")))?,
                name,
                phone,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Json)
}

async fn set_duty(
    State(state): State<AppState>,
    user: AuthUser,
    Path(day): Path<String>,
    Json(request): Json<SetDuty>,
) -> Result<Json<()>> {
    if user.role != "senior" && user.role != "manager" {
        return Err(Error::Forbidden);
    }
    let day: Date = day
        .parse()
        .map_err(|_| Error::Invalid("Give the day as YYYY-MM-DD.".into()))?;
    let phone = request.phone.trim().to_owned();
    if phone.is_empty() || phone.len() > 40 {
        return Err(Error::Invalid("Give the duty phone number.".into()));
    }
    let role: Option<(String, bool)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select role, disabled from staff where id = $1").bind(request.staff.to_string()).fetch_optional(pool).await)?;
    if !matches!(role, Some((r, false)) if r == "senior") {
        return Err(Error::Invalid(
            "The duty senior must be an active senior.".into(),
        ));
    }
    on_pool!(&state.db, pool => sqlx::query(
        "insert into duty_rota (day, staff_id, phone, set_by, set_at) values ($1, $2, $3, $4, $5)
         on conflict (day) do update set staff_id = excluded.staff_id, phone = excluded.phone,
           set_by = excluded.set_by, set_at = excluded.set_at")
        .bind(day.to_string()).bind(request.staff.to_string()).bind(&phone).bind(user.id.to_string()).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    Ok(Json(()))
}

async fn team(State(state): State<AppState>, user: AuthUser) -> Result<Json<TeamOverview>> {
    let scope = match user.role.as_str() {
        "manager" => String::new(),
        "senior" => user.team_id.clone().ok_or(Error::Forbidden)?,
        _ => return Err(Error::Forbidden),
    };
    let now = now_ms();
    type WorkerRow = (String, String, i64, i64, i64);
    let workers: Vec<WorkerRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select s.id, s.name,
                (select count(*) from allocations a where a.staff_id = s.id),
                (select count(*) from cover_assignments c where c.staff_id = s.id and c.starts_at <= $2 and c.ends_at > $2),
                (select count(*) from absences b where b.staff_id = s.id and b.starts_at <= $2 and b.ends_at > $2)
         from staff s
         where s.role in ('practitioner', 'senior') and not s.disabled and ($1 = '' or s.team_id = $1)
         order by s.name")
        .bind(&scope).bind(now).fetch_all(pool).await)?;
    type CaseRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let cases: Vec<CaseRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select c.id, c.reference, p.name,
                (select s.name from allocations a join staff s on s.id = a.staff_id where a.case_id = c.id and a.relation = 'worker'),
                (select s.name from cover_assignments v join staff s on s.id = v.staff_id
                   where v.case_id = c.id and v.starts_at <= $2 and v.ends_at > $2 limit 1),
                (select r.next_review from hro_register r where r.case_id = c.id and r.ended_at is null),
                (select max(substr(x.summary, 1, 10)) from record_projections x where x.case_id = c.id and x.kind = 'visit-note')
         from cases c join people p on p.id = c.person_id
         where ($1 = '' or c.team_id = $1)
         order by c.reference")
        .bind(&scope).bind(now).fetch_all(pool).await)?;
    let co_workers: Vec<(String, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select a.case_id, s.id, s.name from allocations a join staff s on s.id = a.staff_id
         join cases c on c.id = a.case_id
         where a.relation = 'co-worker' and ($1 = '' or c.team_id = $1)")
        .bind(&scope).fetch_all(pool).await)?;
    Ok(Json(TeamOverview {
        workers: workers
            .into_iter()
            .filter_map(|(staff, name, cases, covering, absent)| {
                Some(TeamWorker {
                    staff: staff.parse().ok()?,
                    name,
                    cases: cases as usize,
                    covering: covering as usize,
                    absent: absent > 0,
                })
            })
            .collect(),
        cases: cases
            .into_iter()
            .filter_map(
                |(case, reference, person_name, worker, cover, next_review, last)| {
                    let co_workers = co_workers
                        .iter()
                        .filter(|(c, _, _)| *c == case)
                        .filter_map(|(_, staff, name)| Some((staff.parse().ok()?, name.clone())))
                        .collect();
                    Some(TeamCase {
                        case: case.parse().ok()?,
                        reference,
                        person_name,
                        worker: worker.unwrap_or_default(),
                        co_workers,
                        cover,
                        next_review,
                        last_contact: last.filter(|d| d.parse::<Date>().is_ok()),
                    })
                },
            )
            .collect(),
    }))
}
