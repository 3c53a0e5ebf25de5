//! Giving information out, and putting it together, both logged (s.62):
//!
//! - **The person's copy** (`POST /api/cases/{case}/persons-copy`): the chronology as the
//!   server holds it, without the entries withheld from the person, for a named recipient.
//!   Produced by the server from its own merged record, so what the log says was disclosed is
//!   what was disclosed. Logged as a *disclosure* with the recipient.
//! - **The person's copy of a record** (`POST /api/records/{doc}/persons-copy`): a plan,
//!   review or other record without the fields and items withheld from the person; logged
//!   the same way.
//! - **A combined chronology** (`POST /api/combined-chronology`): the entries of several
//!   cases the user may open, in one date order, for a stated purpose (for example a MAPPA
//!   meeting about linked cases). Logged as a *combination* on every case combined, naming the
//!   others.

use crate::access::{Basis, require_case};
use crate::audit::{self, Entry, Operation};
use crate::auth::AuthUser;
use crate::cases::{CaseRecord, case_record, parse_case};
use crate::http_error::{Error, Result};
use crate::{AppState, now_ms};
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use casebook_shared::api::{CombineRequest, Combined, CopyEntry, PersonsCopy, PersonsCopyRequest};
use casebook_shared::chronology::{self, ChronologyEntry};

/// Longest recipient or purpose accepted, in characters.
const MAX_NOTE_CHARS: usize = 300;
/// Most cases one combined chronology may hold.
const MAX_COMBINED_CASES: usize = 12;

/// Routes: `POST /api/cases/{case}/persons-copy`, `POST /api/records/{doc}/persons-copy`,
/// `POST /api/combined-chronology`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cases/{case}/persons-copy", post(persons_copy))
        .route("/api/combined-chronology", post(combined))
        .route("/api/records/{doc}/persons-copy", post(record_copy))
}

fn required_note(text: &str, what: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Invalid(format!("Say {what}.")));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::Invalid(format!(
            "Keep {what} under {MAX_NOTE_CHARS} characters."
        )));
    }
    Ok(text.to_owned())
}

fn copy_entry(reference: &str, entry: ChronologyEntry) -> CopyEntry {
    CopyEntry {
        reference: reference.to_owned(),
        event_date: entry.draft.event_date,
        date_approximate: entry.draft.date_approximate,
        category: entry.draft.category,
        what_happened: entry.draft.what_happened,
        source: entry.draft.source,
        action_taken: entry.draft.action_taken,
        withheld: entry.draft.withheld,
    }
}

/// The chronology entries of a case as the server holds them now.
async fn entries_of(state: &AppState, case: &CaseRecord) -> Result<Vec<ChronologyEntry>> {
    state
        .documents
        .read(case.chronology, chronology::entries)
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("reading a chronology: {e}")))
}

fn audit_entry(user: &AuthUser, case: &CaseRecord, basis: Basis, now: i64) -> Entry {
    Entry {
        staff_id: user.id.to_string(),
        role: user.role.clone(),
        case_id: case.id.to_string(),
        person_id: case.person_id.clone(),
        document_id: case.chronology.to_string(),
        basis: basis.as_str().to_owned(),
        occurred_at: now,
        received_at: now,
        ..Entry::default()
    }
}

async fn persons_copy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(case): Path<String>,
    Json(request): Json<PersonsCopyRequest>,
) -> Result<Json<PersonsCopy>> {
    let case = parse_case(&case)?;
    let now = now_ms();
    let basis = require_case(&state.db, &user, case, now).await?;
    let recipient = required_note(&request.recipient, "who receives the copy")?;
    let record = case_record(&state.db, case).await?;
    let entries: Vec<CopyEntry> = entries_of(&state, &record)
        .await?
        .into_iter()
        .filter(|e| !e.draft.withheld)
        .map(|e| copy_entry(&record.reference, e))
        .collect();
    // Logged before it is handed over: no copy leaves without its record.
    audit::record(
        &state.db,
        &Entry {
            operation: Operation::Disclosure.as_str().to_owned(),
            recipients: recipient.clone(),
            detail: format!("person's copy of the chronology: {} entries", entries.len()),
            ..audit_entry(&user, &record, basis, now)
        },
    )
    .await?;
    tracing::info!(%case, staff = %user.id, "person's copy produced");
    Ok(Json(PersonsCopy {
        person_name: record.person_name,
        reference: record.reference,
        recipient,
        produced_by: user.name.clone(),
        produced_at: now,
        entries,
    }))
}

async fn combined(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CombineRequest>,
) -> Result<Json<Combined>> {
    let purpose = required_note(&request.purpose, "why the chronologies are combined")?;
    let mut cases = request.cases.clone();
    cases.sort();
    cases.dedup();
    if cases.len() < 2 || cases.len() > MAX_COMBINED_CASES {
        return Err(Error::Invalid(format!(
            "Choose between 2 and {MAX_COMBINED_CASES} cases to combine."
        )));
    }
    let now = now_ms();
    let mut chosen = Vec::new();
    // Every case must be one the user may open; otherwise nothing is combined or logged.
    for case in &cases {
        let basis = require_case(&state.db, &user, *case, now).await?;
        chosen.push((case_record(&state.db, *case).await?, basis));
    }
    let mut entries = Vec::new();
    for (record, _) in &chosen {
        entries.extend(
            entries_of(&state, record)
                .await?
                .into_iter()
                .map(|e| copy_entry(&record.reference, e)),
        );
    }
    entries.sort_by(|a, b| {
        (a.event_date.as_str(), a.reference.as_str())
            .cmp(&(b.event_date.as_str(), b.reference.as_str()))
    });
    let records: Vec<Entry> = chosen
        .iter()
        .map(|(record, basis)| {
            let others: Vec<&str> = chosen
                .iter()
                .filter(|(r, _)| r.id != record.id)
                .map(|(r, _)| r.reference.as_str())
                .collect();
            Entry {
                operation: Operation::Combination.as_str().to_owned(),
                detail: format!("combined with {}; purpose: {purpose}", others.join(", ")),
                ..audit_entry(&user, record, *basis, now)
            }
        })
        .collect();
    audit::record_all(&state.db, &records).await?;
    tracing::info!(staff = %user.id, cases = cases.len(), "chronologies combined");
    Ok(Json(Combined { entries }))
}

async fn record_copy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(doc): Path<String>,
    Json(request): Json<PersonsCopyRequest>,
) -> Result<Json<casebook_shared::api::RecordCopy>> {
    let doc: casebook_shared::ids::DocumentId = doc
        .parse()
        .map_err(|_| Error::Invalid("That is not a record id.".into()))?;
    let row: Option<(String, String)> = crate::on_pool!(&state.db, pool => sqlx::query_as(
        "select case_id, kind from documents where id = $1 and superseded_by is null")
        .bind(doc.to_string()).fetch_optional(pool).await)?;
    let (case, kind) = row.ok_or(Error::Forbidden)?;
    let case = parse_case(&case)?;
    let now = now_ms();
    let basis = require_case(&state.db, &user, case, now).await?;
    let kind = casebook_shared::records::Kind::parse(&kind)
        .filter(|k| *k != casebook_shared::records::Kind::Chronology)
        .ok_or_else(|| Error::Invalid("Use the chronology's own person's copy.".into()))?;
    let recipient = required_note(&request.recipient, "who receives the copy")?;
    let record = case_record(&state.db, case).await?;
    let lines = state
        .documents
        .read(doc, |am| {
            casebook_shared::records::persons_copy(kind, &casebook_shared::records::read(am, kind))
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("reading a record: {e}")))?;
    audit::record(
        &state.db,
        &Entry {
            operation: Operation::Disclosure.as_str().to_owned(),
            recipients: recipient.clone(),
            detail: format!(
                "person's copy of a {}: {} lines",
                kind.as_str(),
                lines.len()
            ),
            document_id: doc.to_string(),
            ..audit_entry(&user, &record, basis, now)
        },
    )
    .await?;
    Ok(Json(casebook_shared::api::RecordCopy {
        title: kind.title().to_owned(),
        person_name: record.person_name,
        reference: record.reference,
        recipient,
        produced_by: user.name.clone(),
        produced_at: now,
        lines,
    }))
}
