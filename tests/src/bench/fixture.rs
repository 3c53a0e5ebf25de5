//! Bench data written straight into a database before the server starts: staff, sessions,
//! cases and documents at sizes the demo never reaches. Documents are stored as a server
//! holds them after compaction (one snapshot, and a ledger row for every change). Every word
//! is synthetic.

use anyhow::Context;
use automerge::{AutoCommit, ReadDoc};
use casebook_server::db::Db;
use casebook_server::{demo, now_ms, on_pool};
use casebook_shared::api::Me;
use casebook_shared::chronology::{self, EntryDraft, Recorder};
use casebook_shared::ids::{CaseId, DocumentId, StaffId};
use casebook_shared::records::{self, Kind};

/// A database being filled for a bench run.
pub struct Fixture {
    /// The database.
    pub db: Db,
    team: String,
    password_hash: String,
    now: i64,
    cases: usize,
}

/// A document to store.
pub struct SeedDocument {
    /// Its id.
    pub id: DocumentId,
    /// Its case.
    pub case: CaseId,
    /// What it is.
    pub kind: Kind,
    /// Who wrote it (attribution of every change).
    pub author: StaffId,
    /// Its content.
    pub am: AutoCommit,
}

impl Fixture {
    /// Opens (migrating) the database at `url` and seeds the demo service into it.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let db = Db::connect(url).await?;
        demo::seed_if_empty(&db).await?;
        let (team,): (String,) = on_pool!(&db, pool =>
            sqlx::query_as("select id from teams where name = 'North'").fetch_one(pool).await)?;
        let (password_hash,): (String,) = on_pool!(&db, pool =>
            sqlx::query_as("select password_hash from staff where username = 'worker.north1'")
                .fetch_one(pool).await)?;
        Ok(Self {
            db,
            team,
            password_hash,
            now: now_ms(),
            cases: 0,
        })
    }

    /// Adds practitioners `{prefix}.1` .. `{prefix}.{count}` to the North team (demo password).
    pub async fn staff(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<StaffId>> {
        let ids: Vec<StaffId> = (0..count).map(|_| StaffId(uuid::Uuid::new_v4())).collect();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (n, id) in ids.iter().enumerate() {
                sqlx::query("insert into staff (id, username, name, role, team_id, password_hash, disabled, created_at)
                             values ($1, $2, $3, 'practitioner', $4, $5, false, $6)")
                    .bind(id.to_string()).bind(format!("{prefix}.{}", n + 1))
                    .bind(format!("Bench Worker {}", n + 1)).bind(&self.team)
                    .bind(&self.password_hash).bind(self.now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("adding bench staff")?;
        Ok(ids)
    }

    /// A signed-in session for each of `staff`, as `Cookie` header values (signing in a
    /// thousand devices over HTTP would spend minutes hashing passwords).
    pub async fn sessions(&self, staff: &[StaffId]) -> anyhow::Result<Vec<String>> {
        let tokens: Vec<String> = staff
            .iter()
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        let now = now_ms();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (id, token) in staff.iter().zip(&tokens) {
                sqlx::query("insert into sessions (token_hash, staff_id, created_at, last_seen_at) values ($1, $2, $3, $3)")
                    .bind(casebook_server::auth::token_hash(token)).bind(id.to_string()).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("adding bench sessions")?;
        Ok(tokens
            .into_iter()
            .map(|t| format!("{}={t}", casebook_server::auth::SESSION_COOKIE))
            .collect())
    }

    /// Adds `count` cases in the North team, each worked by `workers(n)` (the first as its
    /// worker, the rest as co-workers).
    pub async fn cases(
        &mut self,
        count: usize,
        workers: impl Fn(usize) -> Vec<StaffId>,
    ) -> anyhow::Result<Vec<CaseId>> {
        let first = self.cases;
        self.cases += count;
        let cases: Vec<CaseId> = (0..count).map(|_| CaseId(uuid::Uuid::new_v4())).collect();
        let team = self.team.clone();
        let now = self.now;
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (k, case) in cases.iter().enumerate() {
                let n = first + k;
                let person = uuid::Uuid::new_v4().to_string();
                sqlx::query("insert into people (id, name, date_of_birth) values ($1, $2, '1980-01-01')")
                    .bind(&person).bind(format!("Bench Person {}", n + 1))
                    .execute(&mut *tx).await?;
                sqlx::query("insert into cases (id, person_id, reference, order_type, team_id, created_at)
                             values ($1, $2, $3, 'Community Payback Order', $4, $5)")
                    .bind(case.to_string()).bind(&person).bind(format!("BENCH-{:06}", n + 1))
                    .bind(&team).bind(now)
                    .execute(&mut *tx).await?;
                for (w, staff) in workers(k).iter().enumerate() {
                    sqlx::query("insert into allocations (case_id, staff_id, relation) values ($1, $2, $3)")
                        .bind(case.to_string()).bind(staff.to_string())
                        .bind(if w == 0 { "worker" } else { "co-worker" })
                        .execute(&mut *tx).await?;
                }
            }
            tx.commit().await
        })
        .context("adding bench cases")?;
        Ok(cases)
    }

    /// Stores documents as compacted snapshots with a ledger row per change.
    pub async fn documents(&self, documents: Vec<SeedDocument>) -> anyhow::Result<()> {
        let now = self.now;
        let device = uuid::Uuid::new_v4().to_string();
        let rows: Vec<_> = documents
            .into_iter()
            .map(|mut d| {
                let changes: Vec<_> =
                    d.am.get_changes(&[])
                        .into_iter()
                        .map(|c| (c.hash().0.to_vec(), c.actor_id().to_bytes().to_vec()))
                        .collect();
                (d.id, d.case, d.kind, d.author, d.am.save(), changes)
            })
            .collect();
        // Multi-row inserts: a hundred thousand documents is a million rows.
        let ledger: Vec<(String, &Vec<u8>, String, &Vec<u8>)> = rows
            .iter()
            .flat_map(|(id, _, _, author, _, changes)| {
                changes
                    .iter()
                    .map(move |(hash, actor)| (id.to_string(), hash, author.to_string(), actor))
            })
            .collect();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(200) {
                sqlx::QueryBuilder::new("insert into documents (id, case_id, kind, created_at) ")
                    .push_values(chunk, |mut b, (id, case, kind, _, _, _)| {
                        b.push_bind(id.to_string()).push_bind(case.to_string())
                            .push_bind(kind.as_str()).push_bind(now);
                    })
                    .build().execute(&mut *tx).await?;
                sqlx::QueryBuilder::new("insert into document_snapshots (document_id, bytes, updated_at) ")
                    .push_values(chunk, |mut b, (id, _, _, _, snapshot, _)| {
                        b.push_bind(id.to_string()).push_bind(snapshot).push_bind(now);
                    })
                    .build().execute(&mut *tx).await?;
            }
            for chunk in ledger.chunks(500) {
                sqlx::QueryBuilder::new(
                    "insert into change_ledger (document_id, hash, staff_id, device_id, actor, received_at) ")
                    .push_values(chunk, |mut b, (id, hash, author, actor)| {
                        b.push_bind(id).push_bind(*hash).push_bind(author).push_bind(&device)
                            .push_bind(*actor).push_bind(now);
                    })
                    .build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("storing bench documents")
    }
}

/// The signed-in user behind bench staff `username` (added by [`Fixture::staff`], so a
/// North practitioner called "Bench Worker N").
pub fn practitioner(id: StaffId, username: &str) -> Me {
    let n = username.rsplit('.').next().unwrap_or_default();
    Me {
        id,
        username: username.to_owned(),
        name: format!("Bench Worker {n}"),
        role: "practitioner".into(),
        team: "North".into(),
    }
}

/// Words synthetic chronology text is drawn from (so it compresses like prose, not like
/// one sentence repeated).
const WORDS: [&str; 64] = [
    "visit",
    "home",
    "office",
    "telephone",
    "discussed",
    "reviewed",
    "licence",
    "order",
    "conditions",
    "programme",
    "session",
    "attended",
    "missed",
    "housing",
    "tenancy",
    "rent",
    "arrears",
    "employment",
    "college",
    "course",
    "police",
    "partner",
    "former",
    "contact",
    "children",
    "school",
    "health",
    "GP",
    "appointment",
    "alcohol",
    "drugs",
    "testing",
    "negative",
    "positive",
    "concerns",
    "none",
    "reported",
    "agreed",
    "plan",
    "actions",
    "next",
    "week",
    "month",
    "review",
    "senior",
    "informed",
    "risk",
    "factors",
    "stable",
    "settled",
    "anxious",
    "calm",
    "cooperative",
    "brother",
    "mother",
    "support",
    "benefits",
    "letter",
    "court",
    "report",
    "unpaid",
    "work",
    "hours",
    "completed",
];

/// About 200 bytes of synthetic chronology text, different for every `n` (the same words as
/// the automerge-repo driver's `entryText`, `bench/automerge-repo/common.mjs`).
pub fn entry_text(n: usize) -> String {
    let mut x = (n as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut out = format!("Contact {n}:");
    while out.len() < 190 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push(' ');
        out.push_str(WORDS[((x >> 33) % WORDS.len() as u64) as usize]);
    }
    out.push('.');
    out
}

/// A chronology of `entries` entries, one change each, written by `author`.
pub fn chronology(entries: usize, author: StaffId) -> anyhow::Result<AutoCommit> {
    let mut am = AutoCommit::new();
    let recorder = Recorder {
        staff: author,
        name: "Bench Worker".into(),
        now_ms: now_ms(),
    };
    for n in 0..entries {
        let draft = EntryDraft {
            event_date: format!("2026-{:02}-{:02}", n % 12 + 1, n % 28 + 1),
            what_happened: entry_text(n),
            source: "Case worker".into(),
            category: "Supervision contact".into(),
            ..Default::default()
        };
        chronology::add_entry(&mut am, &format!("bench-{n}"), &draft, &recorder)?;
        am.commit();
    }
    Ok(am)
}

/// A filled-in record of `kind` for `case`: one change per field as typed on a device, or
/// (`one_change`) all of it in one.
pub fn record(
    kind: Kind,
    case: CaseId,
    values: &[(&str, &str)],
    one_change: bool,
) -> anyhow::Result<AutoCommit> {
    let mut am = AutoCommit::new();
    records::start(&mut am, kind, &case.to_string())?;
    for (key, value) in values {
        if !one_change {
            am.commit();
        }
        records::set(&mut am, kind, key, value)?;
    }
    am.commit();
    Ok(am)
}

/// A visit note's fields (synthetic).
pub const VISIT_NOTE: &[(&str, &str)] = &[
    ("date", "2026-05-14"),
    ("contact_type", "Home visit"),
    ("planned", "Planned"),
    ("location", "The person's home"),
    ("workers_present", "Bench Worker"),
    ("children_seen", "No children in the household"),
    (
        "discussed",
        "Progress on the order, work search, contact with family and the programme sessions.",
    ),
    (
        "observations",
        "Home tidy and settled. No visitors present. No acute risk factors observed.",
    ),
];

/// A risk management plan's fields (synthetic).
pub const RISK_PLAN: &[(&str, &str)] = &[
    ("risks", "General violence"),
    (
        "scenarios",
        "Conflict with a former partner when drinking, in the evening, at her address.",
    ),
    ("who_at_risk", "Former partner."),
    ("nature", "Physical and emotional harm."),
    (
        "increases",
        "Alcohol use, unemployment, loss of accommodation.",
    ),
    (
        "reduces",
        "Stable tenancy, work, attendance at the programme.",
    ),
    (
        "strengths",
        "Supportive sibling; motivated to keep the tenancy.",
    ),
    ("review_date", "2026-09-01"),
];

/// Whether `am` contains `hash` (a change a device is waiting to see). Asks the change
/// graph only: fetching the change itself would encode it.
pub fn has_change(am: &AutoCommit, hash: &automerge::ChangeHash) -> bool {
    !ReadDoc::get_missing_deps(am, std::slice::from_ref(hash)).contains(hash)
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_text_matches_the_automerge_repo_driver() {
        // The same strings as `entryText(0)` and `entryText(7)` in common.mjs.
        assert_eq!(
            super::entry_text(0),
            "Contact 0: conditions employment cooperative informed GP benefits order negative GP rent college licence work cooperative drugs programme college GP none risk brother rent month housing report."
        );
        assert!(super::entry_text(7).starts_with("Contact 7: completed settled employment week"));
    }
}
