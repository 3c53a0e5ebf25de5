//! Who may open which case, derived on the server from its own tables. Deny by default.
//!
//! | basis | who |
//! |---|---|
//! | `worker` | the allocated worker |
//! | `co-worker` | a co-worker on the case |
//! | `cover` | a worker covering the case, from its start (inclusive) to its end (exclusive) |
//! | `senior` | a senior of the team holding the case |
//! | `manager` | the service manager (every case) |
//! | `duty` | a senior who opened the case outside their team after giving a reason |
//!
//! Admins manage accounts and see no cases. Every HTTP request and every sync message is
//! checked against this, and live connections re-derive it when it may have changed
//! ([`crate::access_changes`]).

use crate::auth::AuthUser;
use crate::http_error::{Error, Result};
use crate::on_pool;
use casebook_shared::ids::{CaseId, DocumentId};
use std::collections::BTreeMap;

/// Why a user may open a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    /// The allocated worker.
    Worker,
    /// A co-worker.
    CoWorker,
    /// Active cover.
    Cover,
    /// A senior of the case's team.
    Senior,
    /// The service manager.
    Manager,
    /// A senior's out-of-allocation access, with a reason.
    Duty,
    /// No current access: an event reported after access ended (a view made offline).
    Ended,
}

impl Basis {
    /// The name used in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Worker => "worker",
            Basis::CoWorker => "co-worker",
            Basis::Cover => "cover",
            Basis::Senior => "senior",
            Basis::Manager => "manager",
            Basis::Duty => "duty",
            Basis::Ended => "access-ended",
        }
    }
}

fn parse_case(id: &str) -> Result<CaseId> {
    id.parse()
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored case id: {e}")))
}

/// Every case `user` may open at `now`, with the strongest basis for each.
pub async fn accessible_cases(
    db: &crate::db::Db,
    user: &AuthUser,
    now: i64,
) -> Result<BTreeMap<CaseId, Basis>> {
    let staff = user.id.to_string();
    let mut cases: BTreeMap<CaseId, Basis> = BTreeMap::new();
    let mut grant = |id: &str, basis: Basis| -> Result<()> {
        let id = parse_case(id)?;
        let entry = cases.entry(id).or_insert(basis);
        *entry = (*entry).min(basis);
        Ok(())
    };
    let allocated: Vec<(String, String)> = on_pool!(db, pool =>
        sqlx::query_as("select case_id, relation from allocations where staff_id = $1")
            .bind(&staff).fetch_all(pool).await)?;
    for (case, relation) in &allocated {
        grant(
            case,
            if relation == "worker" {
                Basis::Worker
            } else {
                Basis::CoWorker
            },
        )?;
    }
    let covered: Vec<(String,)> = on_pool!(db, pool =>
        sqlx::query_as("select case_id from cover_assignments where staff_id = $1 and starts_at <= $2 and ends_at > $2")
            .bind(&staff).bind(now).fetch_all(pool).await)?;
    for (case,) in &covered {
        grant(case, Basis::Cover)?;
    }
    match (user.role.as_str(), &user.team_id) {
        ("senior", Some(team)) => {
            let team_cases: Vec<(String,)> = on_pool!(db, pool =>
                sqlx::query_as("select id from cases where team_id = $1").bind(team).fetch_all(pool).await)?;
            for (case,) in &team_cases {
                grant(case, Basis::Senior)?;
            }
        }
        ("manager", _) => {
            let all: Vec<(String,)> =
                on_pool!(db, pool => sqlx::query_as("select id from cases").fetch_all(pool).await)?;
            for (case,) in &all {
                grant(case, Basis::Manager)?;
            }
        }
        _ => {}
    }
    if user.role == "senior" {
        let duty: Vec<(String,)> = on_pool!(db, pool =>
            sqlx::query_as("select case_id from duty_access where staff_id = $1 and expires_at > $2")
                .bind(&staff).bind(now).fetch_all(pool).await)?;
        for (case,) in &duty {
            grant(case, Basis::Duty)?;
        }
    }
    Ok(cases)
}

/// The next moment after `now` at which what `user` may open changes by itself: a cover of
/// theirs starting or ending, or a duty access of theirs expiring. Live connections
/// re-derive their access then (changes people make to the tables are reported by the database
/// instead: [`crate::access_changes`]).
pub async fn next_boundary(db: &crate::db::Db, user: &AuthUser, now: i64) -> Result<Option<i64>> {
    let staff = user.id.to_string();
    let (next,): (Option<i64>,) = on_pool!(db, pool => sqlx::query_as(
        "select min(t) from (
             select starts_at as t from cover_assignments where staff_id = $1 and starts_at > $2
             union all select ends_at from cover_assignments where staff_id = $1 and ends_at > $2
             union all select expires_at from duty_access where staff_id = $1 and expires_at > $2
         ) boundaries")
        .bind(&staff).bind(now).fetch_one(pool).await)?;
    Ok(next)
}

/// The basis on which `user` may open `case` now, or `Forbidden`.
pub async fn require_case(
    db: &crate::db::Db,
    user: &AuthUser,
    case: CaseId,
    now: i64,
) -> Result<Basis> {
    accessible_cases(db, user, now)
        .await?
        .get(&case)
        .copied()
        .ok_or(Error::Forbidden)
}

/// The case and person a document belongs to, if it exists.
pub async fn document_case(
    db: &crate::db::Db,
    doc: DocumentId,
) -> Result<Option<(String, String)>> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "select d.case_id, c.person_id from documents d join cases c on c.id = d.case_id where d.id = $1")
        .bind(doc.to_string()).fetch_optional(pool).await)?)
}

/// Why and through which case a user may hold a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentAccess {
    /// The case the document belongs to.
    pub case: String,
    /// The person the case is about.
    pub person: String,
    /// The basis for access.
    pub basis: Basis,
}

/// The documents of the cases `user` may open now.
pub async fn accessible_documents(
    db: &crate::db::Db,
    user: &AuthUser,
    now: i64,
) -> Result<BTreeMap<DocumentId, DocumentAccess>> {
    let cases = accessible_cases(db, user, now).await?;
    documents_of(db, &cases).await
}

/// The documents of `cases` (as [`accessible_cases`] gives them), with each one's access.
pub async fn documents_of(
    db: &crate::db::Db,
    cases: &BTreeMap<CaseId, Basis>,
) -> Result<BTreeMap<DocumentId, DocumentAccess>> {
    if cases.is_empty() {
        return Ok(BTreeMap::new());
    }
    // Only the documents of these cases: a worker's few cases must not cost a read of the
    // whole service's documents (every live connection asks this when access may have
    // changed).
    let ids: Vec<String> = cases.keys().map(ToString::to_string).collect();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for chunk in ids.chunks(500) {
        let part: Vec<(String, String, String)> = on_pool!(db, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select d.id, d.case_id, c.person_id from documents d join cases c on c.id = d.case_id
                 where d.superseded_by is null and d.case_id in (",
            );
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.extend(part);
    }
    let mut documents = BTreeMap::new();
    for (doc, case, person) in rows {
        if let Some(basis) = cases.get(&parse_case(&case)?) {
            let doc: DocumentId = doc
                .parse()
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored document id: {e}")))?;
            documents.insert(
                doc,
                DocumentAccess {
                    case,
                    person,
                    basis: *basis,
                },
            );
        }
    }
    Ok(documents)
}

/// Registers a record (document) a device made for `case`, if `user` may work on the case
/// now; returns its access, or `None` when refused (no access to the case, or the id is
/// already another case's or kind's record, or retired). Idempotent.
pub async fn register_document(
    db: &crate::db::Db,
    user: &AuthUser,
    doc: DocumentId,
    case: CaseId,
    kind: casebook_shared::records::Kind,
) -> Result<Option<DocumentAccess>> {
    let cases = accessible_cases(db, user, crate::now_ms()).await?;
    let Some(basis) = cases.get(&case).copied() else {
        return Ok(None);
    };
    let (doc_text, case_text) = (doc.to_string(), case.to_string());
    let row: Option<(String, String, Option<String>, String)> = on_pool!(db, pool => async {
        sqlx::query("insert into documents (id, case_id, kind, created_at) values ($1, $2, $3, $4)
                     on conflict (id) do nothing")
            .bind(&doc_text).bind(&case_text).bind(kind.as_str()).bind(crate::now_ms())
            .execute(pool).await?;
        sqlx::query_as("select d.case_id, d.kind, d.superseded_by, c.person_id
                        from documents d join cases c on c.id = d.case_id where d.id = $1")
            .bind(&doc_text).fetch_optional(pool).await
    }.await)?;
    Ok(match row {
        Some((stored_case, stored_kind, None, person))
            if stored_case == case_text && stored_kind == kind.as_str() =>
        {
            Some(DocumentAccess {
                case: stored_case,
                person,
                basis,
            })
        }
        _ => None,
    })
}

/// The team holding a case.
pub async fn case_team(db: &crate::db::Db, case: CaseId) -> Result<String> {
    let row: Option<(String,)> = on_pool!(db, pool =>
        sqlx::query_as("select team_id from cases where id = $1").bind(case.to_string()).fetch_optional(pool).await)?;
    row.map(|r| r.0).ok_or(Error::Forbidden)
}

/// The manager, or a senior of the team holding the case: the authority for decisions on it
/// (allocation, HRO decisions, sign-offs). Everyone else is refused.
pub async fn require_senior_of_case(
    db: &crate::db::Db,
    user: &AuthUser,
    case: CaseId,
) -> Result<()> {
    let team = case_team(db, case).await?;
    match user.role.as_str() {
        "manager" => Ok(()),
        "senior" if user.team_id.as_deref() == Some(team.as_str()) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}
