//! The signed-in user's cases.

use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::{AppState, on_pool};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use casebook_shared::api::CaseSummary;
use casebook_shared::ids::{DocumentId, StaffId};

/// Routes: `GET /api/cases`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/cases", get(list))
}

type CaseRow = (String, String, String, String, String, String, String);

/// Cases allocated to `staff` (as worker or co-worker), with their chronology documents.
pub async fn allocated_cases(state: &AppState, staff: StaffId) -> Result<Vec<CaseSummary>> {
    let rows: Vec<CaseRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select c.id, p.name, c.reference, c.order_type, coalesce(w.name, ''), a.relation, d.id
         from allocations a
         join cases c on c.id = a.case_id
         join people p on p.id = c.person_id
         join documents d on d.case_id = c.id and d.kind = 'chronology'
         left join allocations wa on wa.case_id = c.id and wa.relation = 'worker'
         left join staff w on w.id = wa.staff_id
         where a.staff_id = $1
         order by p.name, c.reference")
        .bind(staff.to_string())
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(
            |(id, person_name, reference, order_type, worker_name, relation, doc)| {
                Ok(CaseSummary {
                    id: id
                        .parse()
                        .map_err(|e| Error::Internal(anyhow::anyhow!("case id: {e}")))?,
                    person_name,
                    reference,
                    order_type,
                    worker_name,
                    relation,
                    chronology: doc
                        .parse()
                        .map_err(|e| Error::Internal(anyhow::anyhow!("document id: {e}")))?,
                })
            },
        )
        .collect()
}

/// Every document the user may sync: those of the cases allocated to them.
pub async fn allowed_documents(state: &AppState, staff: StaffId) -> Result<Vec<DocumentId>> {
    let rows: Vec<(String,)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select d.id from allocations a join documents d on d.case_id = a.case_id
         where a.staff_id = $1 order by d.id")
        .bind(staff.to_string())
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(|(id,)| {
            id.parse()
                .map_err(|e| Error::Internal(anyhow::anyhow!("document id: {e}")))
        })
        .collect()
}

async fn list(State(state): State<AppState>, user: AuthUser) -> Result<impl IntoResponse> {
    Ok(Json(allocated_cases(&state, user.id).await?))
}
