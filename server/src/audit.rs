//! The audit log (DPA 2018 s.62): collection, alteration, consultation, disclosure,
//! combination and erasure, with who, which case, person and record, when (on the device and
//! at the server), on what basis, recipients of a disclosure and the hashes of changed
//! content. Never the content itself.
//!
//! Records are append-only and chained: each stores the SHA-256 of the previous record's hash
//! and its own fields. The `audit_head` row is updated in the same transaction as every append,
//! which orders appends (across server instances too). [`verify`] walks the chain and names
//! the first record that does not match. Reading the log is itself logged.

use crate::db::Db;
use crate::on_pool;
use sha2::{Digest, Sha256};

/// What happened, in the words of s.62.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// New information recorded (a new record, such as a chronology entry).
    Collection,
    /// Existing information changed.
    Alteration,
    /// A case or record opened (viewed).
    Consultation,
    /// Information given to someone (an export, the person's copy).
    Disclosure,
    /// Information combined with other information.
    Combination,
    /// Information erased.
    Erasure,
    /// Out-of-allocation access opened (duty senior, with a reason).
    AccessGranted,
    /// The audit log itself was searched.
    AuditRead,
    /// An action that needs authority was refused (for example a worker trying to approve).
    Refused,
}

impl Operation {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Collection => "collection",
            Operation::Alteration => "alteration",
            Operation::Consultation => "consultation",
            Operation::Disclosure => "disclosure",
            Operation::Combination => "combination",
            Operation::Erasure => "erasure",
            Operation::AccessGranted => "access-granted",
            Operation::AuditRead => "audit-read",
            Operation::Refused => "refused",
        }
    }
}

/// One record to append (empty strings where a field does not apply).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Operation name ([`Operation::as_str`]).
    pub operation: String,
    /// Who.
    pub staff_id: String,
    /// Their role at the time.
    pub role: String,
    /// Their device, if the event came through one.
    pub device_id: String,
    /// The case.
    pub case_id: String,
    /// The person the case is about.
    pub person_id: String,
    /// The record (document).
    pub document_id: String,
    /// The basis for access (`worker`, `co-worker`, `cover`, `senior`, `manager`, `duty`).
    pub basis: String,
    /// When it happened on the device (Unix ms).
    pub occurred_at: i64,
    /// When the server received it (Unix ms).
    pub received_at: i64,
    /// Recipients of a disclosure.
    pub recipients: String,
    /// Hex hashes of the changes an alteration or collection stored, comma-separated.
    pub change_hashes: String,
    /// Anything else that is not content (for example the reason given for duty access).
    pub detail: String,
}

impl Entry {
    /// A new entry for `operation`.
    pub fn new(operation: Operation) -> Self {
        Self {
            operation: operation.as_str().to_owned(),
            ..Self::default()
        }
    }

    /// The chained hash of this entry after `prev_hash`, at position `seq`.
    pub fn hash(&self, seq: i64, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            &seq.to_string(),
            prev_hash,
            &self.operation,
            &self.staff_id,
            &self.role,
            &self.device_id,
            &self.case_id,
            &self.person_id,
            &self.document_id,
            &self.basis,
            &self.occurred_at.to_string(),
            &self.received_at.to_string(),
            &self.recipients,
            &self.change_hashes,
            &self.detail,
        ] {
            // Length-prefixed, so no two different records hash the same way.
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Rows of one multi-row insert into the audit log (16 values each, well under either
/// engine's limit on bound values per statement).
pub const AUDIT_ROWS_PER_INSERT: usize = 500;

/// Appends `$entries` (a slice of [`Entry`], in order) inside the open transaction `$tx` (of
/// either engine), chaining each record's hash to the one before. Takes the head's lock
/// once and writes the records with multi-row inserts. Expands to a future returning
/// `Result<(), sqlx::Error>`.
#[macro_export]
macro_rules! audit_append {
    ($tx:expr, $entries:expr) => {
        async {
            let entries: &[$crate::audit::Entry] = $entries;
            if entries.is_empty() {
                return Ok::<(), sqlx::Error>(());
            }
            // Updating the head first takes its lock: appends happen one group at a time.
            sqlx::query("update audit_head set seq = seq + $1 where id = 1")
                .bind(entries.len() as i64)
                .execute(&mut *$tx)
                .await?;
            let (last, mut prev): (i64, String) =
                sqlx::query_as("select seq, hash from audit_head where id = 1").fetch_one(&mut *$tx).await?;
            let first = last - entries.len() as i64 + 1;
            let mut rows = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let seq = first + i as i64;
                let hash = entry.hash(seq, &prev);
                rows.push((seq, entry, std::mem::replace(&mut prev, hash.clone()), hash));
            }
            for chunk in rows.chunks($crate::audit::AUDIT_ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "insert into audit_log (seq, operation, staff_id, role, device_id, case_id, person_id, document_id,
                     basis, occurred_at, received_at, recipients, change_hashes, detail, prev_hash, hash) ",
                );
                insert.push_values(chunk, |mut row, (seq, entry, prev, hash)| {
                    row.push_bind(*seq).push_bind(&entry.operation).push_bind(&entry.staff_id)
                        .push_bind(&entry.role).push_bind(&entry.device_id).push_bind(&entry.case_id)
                        .push_bind(&entry.person_id).push_bind(&entry.document_id).push_bind(&entry.basis)
                        .push_bind(entry.occurred_at).push_bind(entry.received_at).push_bind(&entry.recipients)
                        .push_bind(&entry.change_hashes).push_bind(&entry.detail).push_bind(prev).push_bind(hash);
                });
                insert.build().execute(&mut *$tx).await?;
            }
            sqlx::query("update audit_head set hash = $1 where id = 1").bind(&prev).execute(&mut *$tx).await?;
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// Appends one record in its own transaction.
pub async fn record(db: &Db, entry: &Entry) -> Result<(), sqlx::Error> {
    on_pool!(db, pool => async {
        let mut tx = pool.begin().await?;
        audit_append!(tx, std::slice::from_ref(entry)).await?;
        tx.commit().await
    }.await)
}

/// Appends several records in one transaction (all or none).
pub async fn record_all(db: &Db, entries: &[Entry]) -> Result<(), sqlx::Error> {
    on_pool!(db, pool => async {
        let mut tx = pool.begin().await?;
        audit_append!(tx, entries).await?;
        tx.commit().await
    }.await)
}

/// Whether the log shows `staff` holding `document` before (a view, a change): the basis for
/// logging a view reported after their access ended.
pub async fn has_held(db: &Db, staff: &str, document: &str) -> Result<bool, sqlx::Error> {
    let (n,): (i64,) = on_pool!(db, pool => sqlx::query_as(
        "select count(*) from audit_log where staff_id = $1 and document_id = $2
           and operation in ('consultation', 'collection', 'alteration')")
        .bind(staff).bind(document).fetch_one(pool).await)?;
    Ok(n > 0)
}

/// A stored record.
pub type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
);

fn entry_of(row: &Row) -> Entry {
    Entry {
        operation: row.1.clone(),
        staff_id: row.2.clone(),
        role: row.3.clone(),
        device_id: row.4.clone(),
        case_id: row.5.clone(),
        person_id: row.6.clone(),
        document_id: row.7.clone(),
        basis: row.8.clone(),
        occurred_at: row.9,
        received_at: row.10,
        recipients: row.11.clone(),
        change_hashes: row.12.clone(),
        detail: row.13.clone(),
    }
}

const COLUMNS: &str = "seq, operation, staff_id, role, device_id, case_id, person_id, document_id, basis, \
occurred_at, received_at, recipients, change_hashes, detail, prev_hash, hash";

/// What [`verify`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record chains to the one before, and the head matches the last.
    Intact {
        /// Records checked.
        records: i64,
    },
    /// The first record that does not match.
    Broken {
        /// Its position.
        seq: i64,
        /// What is wrong.
        problem: String,
    },
}

/// Walks the whole chain.
pub async fn verify(db: &Db) -> Result<Verdict, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("select {COLUMNS} from audit_log order by seq"));
    let rows: Vec<Row> = on_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
    let mut prev = "0".repeat(64);
    let mut expected_seq = 1;
    for row in &rows {
        let (seq, stored_prev, stored_hash) = (row.0, &row.14, &row.15);
        if seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                problem: format!("record {expected_seq} is missing"),
            });
        }
        if *stored_prev != prev {
            return Ok(Verdict::Broken {
                seq,
                problem: "it does not point to the record before it".into(),
            });
        }
        let hash = entry_of(row).hash(seq, &prev);
        if hash != *stored_hash {
            return Ok(Verdict::Broken {
                seq,
                problem: "its contents do not match its hash".into(),
            });
        }
        prev = hash;
        expected_seq += 1;
    }
    let (head_seq, head_hash): (i64, String) = on_pool!(db, pool => sqlx::query_as("select seq, hash from audit_head where id = 1").fetch_one(pool).await)?;
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Ok(Verdict::Broken {
            seq: expected_seq,
            problem: "records after this one were removed".into(),
        });
    }
    Ok(Verdict::Intact {
        records: rows.len() as i64,
    })
}

/// Search filters (all optional; every filter given must match).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Search {
    /// Case id.
    pub case: Option<String>,
    /// Person id.
    pub person: Option<String>,
    /// Staff id.
    pub staff: Option<String>,
    /// From (Unix ms, received at, inclusive).
    pub from: Option<i64>,
    /// To (Unix ms, received at, exclusive).
    pub to: Option<i64>,
}

/// Records matching `search`, newest first (at most 1,000).
pub async fn search(db: &Db, search: &Search) -> Result<Vec<Row>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from audit_log
         where ($1 = '' or case_id = $1) and ($2 = '' or person_id = $2) and ($3 = '' or staff_id = $3)
           and received_at >= $4 and received_at < $5
         order by seq desc limit 1000"
    ));
    on_pool!(db, pool => sqlx::query_as(sql)
        .bind(search.case.clone().unwrap_or_default())
        .bind(search.person.clone().unwrap_or_default())
        .bind(search.staff.clone().unwrap_or_default())
        .bind(search.from.unwrap_or(0))
        .bind(search.to.unwrap_or(i64::MAX))
        .fetch_all(pool).await)
}

/// One record as the API returns it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Position in the chain.
    pub seq: i64,
    /// The record's fields.
    #[serde(flatten)]
    pub entry: Entry,
}

impl From<Row> for Record {
    fn from(row: Row) -> Self {
        Record {
            seq: row.0,
            entry: entry_of(&row),
        }
    }
}

/// Routes: `GET /api/audit?case=&person=&staff=&from=&to=` (managers only; logged).
pub fn router() -> axum::Router<crate::AppState> {
    axum::Router::new().route("/api/audit", axum::routing::get(search_api))
}

async fn search_api(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    user: crate::auth::AuthUser,
    axum::extract::Query(filters): axum::extract::Query<Search>,
) -> crate::http_error::Result<axum::Json<Vec<Record>>> {
    if user.role != "manager" {
        return Err(crate::http_error::Error::Forbidden);
    }
    let now = crate::now_ms();
    let entry = Entry {
        staff_id: user.id.to_string(),
        role: user.role.clone(),
        case_id: filters.case.clone().unwrap_or_default(),
        person_id: filters.person.clone().unwrap_or_default(),
        basis: "manager".into(),
        occurred_at: now,
        received_at: now,
        detail: format!(
            "search staff={} from={} to={}",
            filters.staff.as_deref().unwrap_or("any"),
            filters.from.map_or("any".into(), |f| f.to_string()),
            filters.to.map_or("any".into(), |t| t.to_string())
        ),
        ..Entry::new(Operation::AuditRead)
    };
    record(&state.db, &entry).await?;
    let rows = search(&state.db, &filters).await?;
    Ok(axum::Json(rows.into_iter().map(Record::from).collect()))
}
