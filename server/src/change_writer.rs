//! Group commit: every batch of changes the rooms store goes through one writer task, which
//! puts all the batches waiting at that moment into one transaction. A change is still
//! acknowledged only after the transaction holding it commits; under load one commit (one
//! fsync) covers many documents' and devices' changes instead of one each.
//!
//! Batches waiting is not enough on its own: a commit of one change takes the writer well
//! under a millisecond, so at 400 changes a second (one every 2.5 ms) nearly every change
//! had a commit, and an fsync, to itself (3,825 fsyncs in 10 s, measured on the live load),
//! and SQLite's worker thread was a fifth of the server's CPU at 500/s. So once changes come
//! quickly (a group starting within [`QUICK`] of the one before: about a hundred changes a
//! second or more), a group is held open for [`LINGER`] after its first batch, much as
//! PostgreSQL's `commit_delay` waits only while enough transactions are active; a change
//! arriving after a pause is committed at once. At 400/s that halved the fsyncs (1,899 in
//! 10 s) and the server's context switches, and at 500/s the server's CPU went from about
//! 100% of a core to 75-90% (`bench/method.md`).
//!
//! If a group's transaction fails, each batch in it is tried again in a transaction of its
//! own, so one batch's failure is reported to its own connection only.

use crate::audit;
use crate::db::Db;
use crate::documents::Author;
use crate::{now_ms, on_pool};
use anyhow::{Context, anyhow};
use automerge::Change;
use casebook_shared::ids::DocumentId;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Batches waiting beyond this many go into the next transaction.
const MAX_GROUP: usize = 256;
/// How long a group is held open for more batches once changes come quickly.
const LINGER: Duration = Duration::from_millis(2);
/// Groups starting closer together than this mean changes come quickly.
const QUICK: Duration = Duration::from_millis(10);
/// Batches that may wait for the writer before senders wait for room.
const QUEUE: usize = 4096;
/// Changes per multi-row insert (6 bound values each in the ledger: well under either
/// engine's limit per statement).
const ROWS_PER_INSERT: usize = 1000;

/// New changes of one document from one device, with the audit record of the batch.
pub struct Batch {
    doc: DocumentId,
    author: Author,
    /// Each change as stored: hash, actor, bytes (Automerge's encoding, uncompressed:
    /// Automerge deflates a change of over 256 bytes on asking, setting up a compressor
    /// for each one, which cost the server more than the storage it saved; snapshots are
    /// compressed, and frames over 1 KiB are deflated on the wire).
    changes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    audit: Option<audit::Entry>,
}

impl Batch {
    /// `changes` of `doc` sent by `author`; `audit` is appended in the same transaction.
    pub fn new(
        doc: DocumentId,
        author: &Author,
        changes: Vec<Change>,
        audit: Option<audit::Entry>,
    ) -> Self {
        let changes = changes
            .into_iter()
            .map(|c| {
                let hash = c.hash().0.to_vec();
                let actor = c.actor_id().to_bytes().to_vec();
                (hash, actor, c.raw_bytes().to_vec())
            })
            .collect();
        Self {
            doc,
            author: author.clone(),
            changes,
            audit,
        }
    }
}

type Request = (Batch, oneshot::Sender<Result<(), String>>);

/// The handle to the writer task.
pub struct ChangeWriter {
    queue: mpsc::Sender<Request>,
}

impl ChangeWriter {
    /// Starts the writer task on `db`.
    pub fn spawn(db: Db) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, requests));
        Self { queue }
    }

    /// Stores `batch`; returns once it is committed.
    pub async fn store(&self, batch: Batch) -> anyhow::Result<()> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send((batch, done))
            .await
            .map_err(|_| anyhow!("the change writer has stopped"))?;
        committed
            .await
            .map_err(|_| anyhow!("the change writer has stopped"))?
            .map_err(|e| anyhow!(e))
    }
}

/// Whether changes come quickly: when the group before this one started within [`QUICK`].
#[derive(Default)]
struct Pace {
    last_start: Option<Instant>,
}

impl Pace {
    /// A group starts at `now`: until when to hold it open, if at all.
    fn starting(&mut self, now: Instant) -> Option<Instant> {
        let quick = self
            .last_start
            .is_some_and(|last| now.duration_since(last) < QUICK);
        self.last_start = Some(now);
        quick.then_some(now + LINGER)
    }
}

/// A group to commit: `first`, the batches that arrive until `until` (if given), and those
/// waiting then; at most [`MAX_GROUP`].
async fn gather<T>(requests: &mut mpsc::Receiver<T>, first: T, until: Option<Instant>) -> Vec<T> {
    let mut group = vec![first];
    if let Some(until) = until {
        while group.len() < MAX_GROUP {
            match tokio::time::timeout_at(until, requests.recv()).await {
                Ok(Some(next)) => group.push(next),
                _ => break,
            }
        }
    }
    // Those waiting when the linger ends (`recv` may have stopped short on tokio's
    // cooperative budget, `try_recv` does not), or all of them when there was none.
    while group.len() < MAX_GROUP {
        match requests.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    group
}

async fn run(db: Db, mut requests: mpsc::Receiver<Request>) {
    let mut pace = Pace::default();
    while let Some(first) = requests.recv().await {
        let until = pace.starting(Instant::now());
        let group = gather(&mut requests, first, until).await;
        let (batches, replies): (Vec<Batch>, Vec<_>) = group.into_iter().unzip();
        match write(&db, &batches).await {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if batches.len() == 1 => {
                for reply in replies {
                    let _ = reply.send(Err(format!("{e:#}")));
                }
            }
            Err(_) => {
                for (batch, reply) in batches.iter().zip(replies) {
                    let alone = write(&db, std::slice::from_ref(batch)).await;
                    let _ = reply.send(alone.map_err(|e| format!("{e:#}")));
                }
            }
        }
    }
}

/// Stores `batches` in one transaction: each change's bytes and ledger row (who sent it),
/// and each batch's audit record.
pub async fn write(db: &Db, batches: &[Batch]) -> anyhow::Result<()> {
    let now = now_ms();
    // With PostgreSQL, other server instances hear of the stored changes on commit.
    let notify = matches!(db, Db::Postgres(_));
    let mut notified = std::collections::HashSet::new();
    // One row per change in each table, written with multi-row inserts (one statement per
    // few hundred changes rather than two per change).
    struct Row<'a> {
        doc: &'a str,
        staff: &'a str,
        device: &'a str,
        hash: &'a [u8],
        actor: &'a [u8],
        bytes: &'a [u8],
    }
    let senders: Vec<(String, String, String)> = batches
        .iter()
        .map(|b| {
            (
                b.doc.to_string(),
                b.author.staff.to_string(),
                b.author.device.to_string(),
            )
        })
        .collect();
    let rows: Vec<Row> = batches
        .iter()
        .zip(&senders)
        .flat_map(|(batch, (doc, staff, device))| {
            batch.changes.iter().map(move |(hash, actor, bytes)| Row {
                doc,
                staff,
                device,
                hash,
                actor,
                bytes,
            })
        })
        .collect();
    let audit: Vec<audit::Entry> = batches.iter().filter_map(|b| b.audit.clone()).collect();
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for batch in batches {
            if notify && notified.insert(batch.doc) {
                let payload = crate::documents::change_notice(batch.doc);
                sqlx::query("select pg_notify('casebook_changes', $1)").bind(&payload).execute(&mut *tx).await?;
            }
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut changes = sqlx::QueryBuilder::new("insert into document_changes (document_id, hash, bytes) ");
            changes.push_values(chunk, |mut row, r| {
                row.push_bind(r.doc).push_bind(r.hash).push_bind(r.bytes);
            });
            changes.push(" on conflict do nothing");
            changes.build().execute(&mut *tx).await?;
            let mut ledger = sqlx::QueryBuilder::new(
                "insert into change_ledger (document_id, hash, staff_id, device_id, actor, received_at) ",
            );
            ledger.push_values(chunk, |mut row, r| {
                row.push_bind(r.doc).push_bind(r.hash).push_bind(r.staff)
                    .push_bind(r.device).push_bind(r.actor).push_bind(now);
            });
            ledger.push(" on conflict do nothing");
            ledger.build().execute(&mut *tx).await?;
        }
        crate::audit_append!(tx, &audit).await?;
        tx.commit().await
    })
    .context("storing changes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `values` at the given offsets from now (milliseconds), on a task of its own.
    fn send_at(queue: mpsc::Sender<u32>, plan: &[(u64, u32)]) {
        let start = Instant::now();
        let plan = plan.to_vec();
        tokio::spawn(async move {
            for (at, value) in plan {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                queue.send(value).await.unwrap();
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_held_open_takes_what_arrives_within_the_linger_and_no_more() {
        let (queue, mut requests) = mpsc::channel(16);
        send_at(queue, &[(1, 2), (3, 3)]);
        let until = Some(Instant::now() + LINGER);
        assert_eq!(gather(&mut requests, 1, until).await, vec![1, 2]);
        let next = requests.recv().await.unwrap();
        assert_eq!(gather(&mut requests, next, None).await, vec![3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_not_held_open_takes_only_what_already_waits() {
        let (queue, mut requests) = mpsc::channel(16);
        queue.send(2).await.unwrap();
        send_at(queue, &[(1, 3)]);
        assert_eq!(gather(&mut requests, 1, None).await, vec![1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_holds_no_more_than_the_most_a_transaction_takes() {
        let (queue, mut requests) = mpsc::channel(MAX_GROUP + 8);
        for n in 0..MAX_GROUP as u32 + 4 {
            queue.send(n).await.unwrap();
        }
        let until = Some(Instant::now() + LINGER);
        let group = gather(&mut requests, 999, until).await;
        assert_eq!(group.len(), MAX_GROUP);
        assert_eq!(requests.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn groups_are_held_open_only_while_changes_come_quickly() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        assert_eq!(
            pace.starting(t0),
            None,
            "the first change is committed at once"
        );
        let t1 = t0 + Duration::from_millis(4);
        assert_eq!(pace.starting(t1), Some(t1 + LINGER));
        let t2 = t1 + QUICK;
        assert_eq!(
            pace.starting(t2),
            None,
            "a change after a pause is committed at once"
        );
    }
}
