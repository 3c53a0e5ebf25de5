//! The cases the signed-in user may open.

use crate::access::{DocumentAccess, accessible_cases, accessible_documents};
use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use casebook_shared::api::CaseSummary;
use casebook_shared::ids::DocumentId;
use std::collections::BTreeMap;

/// Routes: `GET /api/cases`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/cases", get(list))
}

type CaseRow = (String, String, String, String, String, String);

/// Cases `user` may open now, with their chronology documents, by the person's name.
pub async fn case_list(state: &AppState, user: &AuthUser) -> Result<Vec<CaseSummary>> {
    let access = accessible_cases(&state.db, user, now_ms()).await?;
    if access.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<CaseRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select c.id, p.name, c.reference, c.order_type, coalesce(w.name, ''), d.id
         from cases c
         join people p on p.id = c.person_id
         join documents d on d.case_id = c.id and d.kind = 'chronology'
         left join allocations wa on wa.case_id = c.id and wa.relation = 'worker'
         left join staff w on w.id = wa.staff_id
         order by p.name, c.reference")
        .fetch_all(pool)
        .await)?;
    let mut cases = Vec::new();
    for (id, person_name, reference, order_type, worker_name, doc) in rows {
        let id = id
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("case id: {e}")))?;
        let Some(basis) = access.get(&id) else {
            continue;
        };
        cases.push(CaseSummary {
            id,
            person_name,
            reference,
            order_type,
            worker_name,
            relation: basis.as_str().to_owned(),
            chronology: doc
                .parse()
                .map_err(|e| Error::Internal(anyhow::anyhow!("document id: {e}")))?,
        });
    }
    Ok(cases)
}

/// Every document the user may sync now, with the case, person and basis for each.
pub async fn allowed_documents(
    state: &AppState,
    user: &AuthUser,
) -> Result<BTreeMap<DocumentId, DocumentAccess>> {
    accessible_documents(&state.db, user, now_ms()).await
}

async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<CaseSummary>>> {
    Ok(Json(case_list(&state, &user).await?))
}
