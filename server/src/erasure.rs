//! The erasure path (`POST /api/cases/{case}/erasures`, managers only).
//!
//! Automerge keeps every version of everything, so deleting an entry in the document would
//! leave its text in the history on the server and on every device. Erasing instead:
//!
//! 1. rebuilds the chronology as a **new document** holding every other entry exactly as it
//!    reads now and none of the history ([`chronology::rebuild_without`]); each entry is
//!    written by the actor that created it, and the ledger attributes those changes to the same
//!    staff and devices as before, so authors stay verified;
//! 2. in one transaction: stores the new document, marks the old one superseded, **deletes the
//!    old document's content** (change rows and snapshot; the ledger keeps only hashes and who
//!    sent them), and appends the *erasure* record to the audit log (with the reason, never the
//!    content);
//! 3. retires the old document in memory, under its lock, so no change to it can be stored
//!    afterwards: its lineage is refused ([`crate::documents::SyncError::Retired`]);
//! 4. live devices get their new access list within a second: they drop the old document from
//!    their store (purging the erased text) and fetch the new one.
//!
//! Limit: changes to the old chronology still waiting on a device when the erasure happens are
//! refused; the manager's confirmation says so.

use crate::access::require_case;
use crate::audit::{Entry, Operation};
use crate::auth::AuthUser;
use crate::cases::{case_record, parse_case};
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use anyhow::Context;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use casebook_shared::api::{ErasureDone, ErasureRequest};
use casebook_shared::chronology;
use casebook_shared::ids::DocumentId;
use std::collections::HashMap;

/// Longest reason accepted, in characters.
const MAX_REASON_CHARS: usize = 300;

/// Routes: `POST /api/cases/{case}/erasures`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/cases/{case}/erasures", post(erase))
}

async fn erase(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<ErasureRequest>,
) -> Result<Json<ErasureDone>> {
    let case = parse_case(&case)?;
    if user.role != "manager" {
        tracing::warn!(%case, staff = %user.id, "erasure refused: not a manager");
        return Err(Error::Forbidden);
    }
    let now = now_ms();
    let basis = require_case(&state.db, &user, case, now).await?;
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::Invalid(format!(
            "Give the reason for the erasure (up to {MAX_REASON_CHARS} characters)."
        )));
    }
    let record = case_record(&state.db, case).await?;
    let old = record.chronology;
    let entry_id = request.entry_id.clone();
    let exists = state
        .documents
        .read(old, |am| {
            chronology::entries(am).iter().any(|e| e.id == entry_id)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("reading the chronology: {e}")))?;
    if !exists {
        return Err(Error::Invalid(
            "That entry is not in this chronology.".into(),
        ));
    }

    // Who sent each actor's changes to the old document: the rebuilt changes keep it.
    let senders: Vec<(Vec<u8>, String, String)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select distinct actor, staff_id, device_id from change_ledger where document_id = $1")
        .bind(old.to_string()).fetch_all(pool).await)?;
    let senders: HashMap<Vec<u8>, (String, String)> = senders
        .into_iter()
        .map(|(actor, staff, device)| (actor, (staff, device)))
        .collect();

    let new = DocumentId::from_random_bytes(rand::random());
    let audit = Entry {
        staff_id: user.id.to_string(),
        role: user.role.clone(),
        case_id: case.to_string(),
        person_id: record.person_id.clone(),
        document_id: old.to_string(),
        basis: basis.as_str().to_owned(),
        occurred_at: now,
        received_at: now,
        detail: format!(
            "chronology entry erased; the chronology was rebuilt as {new}; reason: {reason}"
        ),
        ..Entry::new(Operation::Erasure)
    };
    let db = state.db.clone();
    let manager = user.id.to_string();
    state
        .documents
        .retire(
            old,
            |am| {
                let mut rebuilt = chronology::rebuild_without(am, &request.entry_id)
                    .context("rebuilding the chronology")?;
                Ok(rebuilt.get_changes(&[]))
            },
            |changes| async move {
                on_pool!(&db, pool => {
                    let mut tx = pool.begin().await?;
                    sqlx::query("insert into documents (id, case_id, kind, created_at) values ($1, $2, 'chronology', $3)")
                        .bind(new.to_string()).bind(case.to_string()).bind(now)
                        .execute(&mut *tx).await?;
                    for mut change in changes {
                        let actor = change.actor_id().to_bytes().to_vec();
                        let (staff, device) = senders
                            .get(&actor)
                            .cloned()
                            .unwrap_or_else(|| (manager.clone(), "erasure".to_owned()));
                        let hash = change.hash().0.to_vec();
                        sqlx::query("insert into document_changes (document_id, hash, bytes) values ($1, $2, $3)")
                            .bind(new.to_string()).bind(&hash).bind(change.bytes().to_vec())
                            .execute(&mut *tx).await?;
                        sqlx::query("insert into change_ledger (document_id, hash, staff_id, device_id, actor, received_at)
                                     values ($1, $2, $3, $4, $5, $6)")
                            .bind(new.to_string()).bind(&hash).bind(&staff).bind(&device).bind(&actor).bind(now)
                            .execute(&mut *tx).await?;
                    }
                    sqlx::query("update documents set superseded_by = $1, erased_at = $2 where id = $3")
                        .bind(new.to_string()).bind(now).bind(old.to_string())
                        .execute(&mut *tx).await?;
                    sqlx::query("delete from document_changes where document_id = $1")
                        .bind(old.to_string()).execute(&mut *tx).await?;
                    sqlx::query("delete from document_snapshots where document_id = $1")
                        .bind(old.to_string()).execute(&mut *tx).await?;
                    crate::audit_append!(tx, std::slice::from_ref(&audit)).await?;
                    tx.commit().await
                })
                .context("storing the erasure")
            },
        )
        .await?;
    tracing::warn!(%case, %old, %new, staff = %user.id, "chronology entry erased");
    Ok(Json(ErasureDone { chronology: new }))
}
