//! The cases the signed-in user may open, and the verified authors of their records.

use crate::access::{
    DocumentAccess, accessible_cases, accessible_documents, documents_of, require_case,
};
use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use casebook_shared::api::{ActorAuthor, CaseSummary, HroStatus};
use casebook_shared::ids::{CaseId, DocumentId};
use std::collections::{BTreeMap, HashMap};

/// Routes: `GET /api/cases`, `GET /api/cases/{case}/authors`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cases", get(list))
        .route("/api/cases/{case}/authors", get(authors))
}

/// A case id from a path, or a clear refusal.
pub fn parse_case(text: &str) -> Result<CaseId> {
    text.parse()
        .map_err(|_| Error::Invalid("that is not a case id".into()))
}

/// A case's identifying facts and its current chronology.
#[derive(Clone, Debug)]
pub struct CaseRecord {
    /// The case.
    pub id: CaseId,
    /// The person it is about.
    pub person_id: String,
    /// Their name.
    pub person_name: String,
    /// Case reference.
    pub reference: String,
    /// Its chronology document (the current one, after any erasure).
    pub chronology: DocumentId,
}

/// The facts of `case` (which must exist).
pub async fn case_record(db: &crate::db::Db, case: CaseId) -> Result<CaseRecord> {
    let row: Option<(String, String, String, String)> = on_pool!(db, pool => sqlx::query_as(
        "select c.person_id, p.name, c.reference, d.id
         from cases c
         join people p on p.id = c.person_id
         join documents d on d.case_id = c.id and d.kind = 'chronology' and d.superseded_by is null
         where c.id = $1")
        .bind(case.to_string())
        .fetch_optional(pool)
        .await)?;
    let (person_id, person_name, reference, doc) = row.ok_or(Error::Forbidden)?;
    Ok(CaseRecord {
        id: case,
        person_id,
        person_name,
        reference,
        chronology: doc
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("document id: {e}")))?,
    })
}

/// Who each actor that wrote to the case's records is, from the server's own ledger.
async fn authors(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
) -> Result<Json<Vec<ActorAuthor>>> {
    let case = parse_case(&case)?;
    require_case(&state.db, &user, case, now_ms()).await?;
    let rows: Vec<(Vec<u8>, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select distinct l.actor, l.staff_id, s.name
         from change_ledger l
         join documents d on d.id = l.document_id
         join staff s on s.id = l.staff_id
         where d.case_id = $1")
        .bind(case.to_string())
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(|(actor, staff, name)| {
            Ok(ActorAuthor {
                actor: hex::encode(actor),
                staff: staff
                    .parse()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("staff id: {e}")))?,
                name,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Json)
}

type CaseRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Cases `user` may open now, with their chronology and every record of theirs the user's
/// device syncs, by the person's name.
pub async fn case_list(state: &AppState, user: &AuthUser) -> Result<Vec<CaseSummary>> {
    let access = accessible_cases(&state.db, user, now_ms()).await?;
    if access.is_empty() {
        return Ok(Vec::new());
    }
    let mut records: HashMap<String, Vec<DocumentId>> = HashMap::new();
    for (doc, reach) in documents_of(&state.db, &access).await? {
        records.entry(reach.case).or_default().push(doc);
    }
    let rows: Vec<CaseRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select c.id, p.name, c.reference, c.order_type, coalesce(w.name, ''), d.id,
                r.route, r.mappa_category, r.mappa_level, r.start_date, r.next_review
         from cases c
         left join hro_register r on r.case_id = c.id and r.ended_at is null
         join people p on p.id = c.person_id
         join documents d on d.case_id = c.id and d.kind = 'chronology' and d.superseded_by is null
         left join allocations wa on wa.case_id = c.id and wa.relation = 'worker'
         left join staff w on w.id = wa.staff_id
         order by p.name, c.reference")
        .fetch_all(pool)
        .await)?;
    let mut cases = Vec::new();
    for (
        id,
        person_name,
        reference,
        order_type,
        worker_name,
        doc,
        route,
        category,
        level,
        start,
        next,
    ) in rows
    {
        let records = records.remove(&id).unwrap_or_default();
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
            records,
            hro: route.map(|route| HroStatus {
                route,
                mappa_category: category.unwrap_or_default(),
                mappa_level: level.unwrap_or_default(),
                start_date: start.unwrap_or_default(),
                next_review: next.unwrap_or_default(),
            }),
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
