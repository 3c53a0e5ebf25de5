//! Projections of record documents that the seniors' and manager's lists read: kept by the
//! server as documents change (after each stored sync message), so no list loads documents.
//!
//! - `record_projections`: each record's kind, case, whether it is complete, and a short
//!   summary (dates, choices, short lines).
//! - `senior_tasks`: a tool result at or above the high threshold in an identification form
//!   raises a task for a senior to discuss the case; it shows until a senior records the
//!   discussion (`hro::task_done`).

use crate::db::Db;
use crate::{now_ms, on_pool};
use casebook_shared::ids::DocumentId;
use casebook_shared::records::{self, Kind, Record};

/// A tool result at or above the high threshold, if the record holds one.
pub fn high_score(record: &Record) -> Option<String> {
    let lscmi = record.value("lscmi_level");
    if lscmi == "High" || lscmi == "Very high" {
        return Some(format!("LS/CMI level {lscmi}"));
    }
    let rm2000 = record.value("rm2000");
    if rm2000.to_lowercase().contains("high") {
        return Some(format!("RM2000 {rm2000}"));
    }
    None
}

/// Raises a task for a senior about `case`, unless one is already open for this record.
pub async fn raise_task(
    db: &Db,
    case: &str,
    doc: DocumentId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let open: Option<(String,)> = on_pool!(db, pool => sqlx::query_as(
        "select id from senior_tasks where case_id = $1 and document_id = $2 and done_at is null")
        .bind(case).bind(doc.to_string()).fetch_optional(pool).await)?;
    if open.is_none() {
        on_pool!(db, pool => sqlx::query(
            "insert into senior_tasks (id, case_id, document_id, reason, created_at) values ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::new_v4().to_string()).bind(case).bind(doc.to_string())
            .bind(format!("High risk score to discuss with a senior: {reason}")).bind(now_ms())
            .execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// Brings the projections of record `doc` up to date with its content.
pub async fn update(
    db: &Db,
    doc: DocumentId,
    case: &str,
    kind: Kind,
    record: &Record,
) -> Result<(), sqlx::Error> {
    if kind == Kind::Chronology {
        return Ok(());
    }
    let complete = records::missing(kind, record).is_empty();
    let summary = records::summary(kind, record);
    on_pool!(db, pool => sqlx::query(
        "insert into record_projections (document_id, case_id, kind, complete, summary, updated_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (document_id) do update set complete = excluded.complete, summary = excluded.summary,
           updated_at = excluded.updated_at")
        .bind(doc.to_string()).bind(case).bind(kind.as_str()).bind(complete).bind(&summary).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    if kind == Kind::Identification
        && let Some(reason) = high_score(record)
    {
        raise_task(db, case, doc, &reason).await?;
    }
    Ok(())
}
