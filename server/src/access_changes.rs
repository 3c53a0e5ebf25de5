//! When live connections must re-derive their access: the database's access-change counter.
//!
//! Every live connection must notice within a second or two when its session ends, its
//! device is revoked or the documents its user may hold change. Asking the database every
//! second from every connection cost five queries per connection per second (5,000 a second
//! with a thousand tablets connected) to learn, nearly always, that nothing had changed.
//!
//! Instead, triggers on every table access is derived from (`migrations/*/0014_access_changes.sql`:
//! sessions ended, accounts disabled or moved, devices revoked, allocations, cover, duty
//! access, cases and records) move one counter, whichever instance or tool wrote. Each
//! server process reads it every [`POLL_EVERY`] ([`AccessChanges::subscribe`]); a connection
//! re-derives its access when the counter moved, when a time-bound grant it depends on
//! starts or ends ([`crate::access::next_boundary`], the session's time-outs), and at least
//! every [`FULL_CHECK_EVERY_MS`] (which also keeps its session in use, as before).

use crate::db::Db;
use crate::on_pool;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::watch;

/// How often each server process reads the counter.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// The longest a live connection goes without re-deriving its access and re-checking its
/// session, whatever the counter says (milliseconds of the server clock).
pub const FULL_CHECK_EVERY_MS: i64 = 30_000;

/// The counter as this process last read it, shared by its connections.
pub struct AccessChanges {
    db: Db,
    latest: OnceLock<watch::Receiver<i64>>,
}

impl AccessChanges {
    /// Watches the counter in `db` (read from the first [`Self::subscribe`] on).
    pub fn new(db: Db) -> Self {
        Self {
            db,
            latest: OnceLock::new(),
        }
    }

    /// A receiver that sees every move of the counter from now on. The first call starts the
    /// reader, which stops once this value and every receiver are dropped.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest
            .get_or_init(|| {
                let (sender, receiver) = watch::channel(0);
                tokio::spawn(read_counter(self.db.clone(), sender));
                receiver
            })
            .clone()
    }
}

/// Reads the counter every [`POLL_EVERY`] and publishes each new value.
async fn read_counter(db: Db, sender: watch::Sender<i64>) {
    let mut every = tokio::time::interval(POLL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sender.closed() => return,
            _ = every.tick() => {}
        }
        match counter(&db).await {
            Ok(value) => {
                sender.send_if_modified(|seen| std::mem::replace(seen, value) != value);
            }
            // Connections still re-check on their own clock; try again next time.
            Err(e) => tracing::warn!(error = %e, "could not read the access-change counter"),
        }
    }
}

/// The counter's value now.
pub async fn counter(db: &Db) -> Result<i64, sqlx::Error> {
    let (value,): (i64,) = on_pool!(db, pool =>
        sqlx::query_as("select counter from access_changes where id = 1").fetch_one(pool).await)?;
    Ok(value)
}
