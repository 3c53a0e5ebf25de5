//! When live connections must re-derive their access: the database says when it changed.
//!
//! Every live connection must notice within a second or two when its session ends, its
//! device is revoked or the documents its user may hold change. Asking the database every
//! second from every connection cost five queries per connection per second (5,000 a second
//! with a thousand tablets connected) to learn, nearly always, that nothing had changed.
//!
//! Instead, triggers on every table access is derived from (`migrations/*/0014_access_changes.sql`:
//! sessions ended, accounts disabled or moved, devices revoked, allocations, cover, duty
//! access, cases and records) report every change, whichever instance or tool wrote it:
//! on SQLite by moving a counter, which each server process reads every [`POLL_EVERY`]; on
//! PostgreSQL by a notification on the `casebook_access` channel, which every instance
//! listens to (delivered on commit, and taking no row lock that other transactions would
//! wait on). [`AccessChanges::subscribe`] hands connections a value that moves with each
//! change; a connection re-derives its access when it moves, when a time-bound grant it
//! depends on starts or ends ([`crate::access::next_boundary`], the session's time-outs),
//! and at least every [`FULL_CHECK_EVERY_MS`] (which also keeps its session in use).

use crate::db::Db;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;

/// How often a server process on SQLite reads the counter.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// The PostgreSQL channel the triggers notify.
pub const CHANNEL: &str = "casebook_access";

/// The longest a live connection goes without re-deriving its access and re-checking its
/// session, whatever the database says (milliseconds of the server clock).
pub const FULL_CHECK_EVERY_MS: i64 = 30_000;

/// Access changes as this process learns of them, shared by its connections.
pub struct AccessChanges {
    db: Db,
    latest: OnceLock<watch::Receiver<u64>>,
}

impl AccessChanges {
    /// Watches `db` for access changes (from the first [`Self::subscribe`] on).
    pub fn new(db: Db) -> Self {
        Self {
            db,
            latest: OnceLock::new(),
        }
    }

    /// A receiver that sees a move for every access change from now on. The first call
    /// starts the watcher, which stops once this value and every receiver are dropped.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest
            .get_or_init(|| {
                let (sender, receiver) = watch::channel(0);
                tokio::spawn(watch_database(self.db.clone(), sender));
                receiver
            })
            .clone()
    }
}

/// Publishes a move for every access change `db` reports, until nobody listens.
async fn watch_database(db: Db, sender: watch::Sender<u64>) {
    let moved = |sender: &watch::Sender<u64>| sender.send_modify(|n| *n += 1);
    match db {
        Db::Sqlite(pool) => {
            let mut seen = None;
            let mut every = tokio::time::interval(POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = sender.closed() => return,
                    _ = every.tick() => {}
                }
                let read: Result<(i64,), _> =
                    sqlx::query_as("select counter from access_changes where id = 1")
                        .fetch_one(&pool)
                        .await;
                match read {
                    Ok((counter,)) => {
                        if seen.is_some_and(|s| s != counter) {
                            moved(&sender);
                        }
                        seen = Some(counter);
                    }
                    // Connections still re-check on their own clock; try again next time.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the access-change counter")
                    }
                }
            }
        }
        Db::Postgres(pool) => loop {
            let listening = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                _ = sender.closed() => return,
                listening = listening => match listening {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::warn!(error = %e, "access-change listener: retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            // Changes made while not listening were missed: count them as one.
            moved(&sender);
            loop {
                tokio::select! {
                    _ = sender.closed() => return,
                    notification = listener.recv() => match notification {
                        Ok(_) => moved(&sender),
                        Err(e) => {
                            tracing::warn!(error = %e, "access-change listener lost its connection");
                            break;
                        }
                    },
                }
            }
        },
    }
}
