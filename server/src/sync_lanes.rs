//! One connection's `Sync` messages, in one lane per document: messages about the same
//! document are handled one after another, in the order they arrived, while different
//! documents proceed side by side. A device catching up on twenty documents has them merged
//! and stored together (their changes share a commit, see [`crate::change_writer`]) instead
//! of one after another.
//!
//! Each lane holds at most [`LANE_DEPTH`] waiting messages; a device that sends faster than
//! its documents are stored waits for room (backpressure on its socket). At most
//! [`IN_FLIGHT`] of a connection's messages are handled at once, and only while its queue of
//! answers has room ([`HEADROOM`]): a device that reads slowly slows its own answers down.

use crate::AppState;
use crate::audit;
use crate::documents::{Outbound, PeerHandle, SyncError};
use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::{DenyReason, ErrorCode, ServerMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;

/// Messages one document's lane may hold waiting.
const LANE_DEPTH: usize = 64;
/// Messages of one connection handled at the same time (over all its lanes).
const IN_FLIGHT: usize = 32;
/// A lane takes its next message only while the connection's queue of frames to write has
/// at least this much room: a device that reads slower than the server answers slows its
/// own answers down instead of being disconnected for a full queue.
const HEADROOM: usize = 256;

/// Where a connection's answers go.
#[derive(Clone)]
pub struct Outlet {
    /// The connection's queue of frames to write.
    pub outbox: mpsc::Sender<Outbound>,
    /// Disconnects the device (it read nothing for too long).
    pub kick: Arc<Notify>,
    /// How long a frame may wait for room before the device counts as stalled.
    pub stalled_after: Duration,
    /// The device reads deflated frames (it sent its `Hello` as protocol version 2).
    pub deflate: Arc<AtomicBool>,
}

impl Outlet {
    /// Queues an answer. Waiting for room in the queue (rather than dropping the device, as
    /// fan-out does) slows down reading from a device that sends faster than it reads its
    /// answers; a device that reads nothing for a long while is let go.
    pub async fn send(&self, message: &ServerMessage) {
        let queued = tokio::time::timeout(
            self.stalled_after,
            self.outbox.send(Outbound::Frame(
                message.encode_for(self.deflate.load(Ordering::Relaxed)),
            )),
        )
        .await;
        if queued.is_err() {
            self.kick.notify_one();
        }
    }

    /// Sends an `Error`.
    pub async fn error(&self, code: ErrorCode, message: &str) {
        self.send(&ServerMessage::Error {
            code,
            message: message.to_owned(),
        })
        .await;
    }
}

/// A message waiting in a lane. The audit entry is boxed: a lane's queue is allocated in
/// blocks of 32 slots, and with the entry inline (twelve strings) every lane of every
/// connection held about 11 KB of empty slots.
struct Job {
    session: u32,
    data: Vec<u8>,
    audit: Box<audit::Entry>,
}

/// The lanes of one connection.
pub struct Lanes {
    state: AppState,
    outlet: Outlet,
    senders: HashMap<DocumentId, mpsc::Sender<Job>>,
    tasks: JoinSet<()>,
    failed: Arc<Notify>,
    in_flight: Arc<Semaphore>,
}

impl Lanes {
    /// No lanes yet.
    pub fn new(state: AppState, outlet: Outlet) -> Self {
        Self {
            state,
            outlet,
            senders: HashMap::new(),
            tasks: JoinSet::new(),
            failed: Arc::new(Notify::new()),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Notified when storage failed: the connection must end (the lane has told the device).
    pub fn failed(&self) -> Arc<Notify> {
        self.failed.clone()
    }

    /// Queues a `Sync` message for `doc` (already authorised) in its lane.
    pub async fn dispatch(
        &mut self,
        peer: &PeerHandle,
        doc: DocumentId,
        session: u32,
        data: Vec<u8>,
        audit: audit::Entry,
    ) {
        let job = Job {
            session,
            data,
            audit: Box::new(audit),
        };
        let sender = match self.senders.get(&doc) {
            Some(s) if !s.is_closed() => s.clone(),
            _ => {
                let (sender, jobs) = mpsc::channel(LANE_DEPTH);
                self.tasks.spawn(lane(
                    Lane {
                        state: self.state.clone(),
                        peer: peer.clone(),
                        doc,
                        outlet: self.outlet.clone(),
                        failed: self.failed.clone(),
                        in_flight: self.in_flight.clone(),
                    },
                    jobs,
                ));
                self.senders.insert(doc, sender.clone());
                sender
            }
        };
        let _ = sender.send(job).await;
    }

    /// Lets every lane finish what it holds (up to `grace`), then stops them.
    pub async fn finish(&mut self, grace: Duration) {
        self.senders.clear();
        let tasks = &mut self.tasks;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        self.tasks.abort_all();
    }
}

struct Lane {
    state: AppState,
    peer: PeerHandle,
    doc: DocumentId,
    outlet: Outlet,
    failed: Arc<Notify>,
    in_flight: Arc<Semaphore>,
}

async fn lane(lane: Lane, mut jobs: mpsc::Receiver<Job>) {
    let Lane {
        state,
        peer,
        doc,
        outlet,
        failed,
        in_flight,
    } = lane;
    while let Some(job) = jobs.recv().await {
        let Ok(_permit) = in_flight.acquire().await else {
            return;
        };
        while outlet.outbox.capacity() < HEADROOM && !outlet.outbox.is_closed() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let denied = |reason| ServerMessage::Denied { doc, reason };
        // Boxed: the handling's state (about 10 KB) is held only while a message is being
        // handled, not for as long as the lane lives (one per document a device syncs).
        match Box::pin(
            state
                .documents
                .sync(&peer, doc, job.session, &job.data, *job.audit),
        )
        .await
        {
            Ok(()) => {}
            Err(SyncError::Retired) => {
                // Rebuilt after an erasure: the old lineage is refused; the device drops it
                // when its access list arrives.
                outlet.send(&denied(DenyReason::NoAccess)).await;
            }
            Err(SyncError::Invalid(problem)) => {
                tracing::info!(%doc, problem, "refused changes that break the schema");
                outlet.send(&denied(DenyReason::Rejected)).await;
            }
            Err(SyncError::Unattributable) => {
                tracing::warn!(%doc, staff = %peer.author.staff, "refused changes from an unregistered actor");
                outlet.send(&denied(DenyReason::Rejected)).await;
            }
            Err(SyncError::Rejected(e)) => {
                tracing::info!(%doc, error = %e, "refused a sync message");
                outlet.send(&denied(DenyReason::Rejected)).await;
            }
            Err(SyncError::Storage(e)) => {
                tracing::error!(%doc, error = format!("{e:#}"), "could not store changes");
                outlet
                    .error(
                        ErrorCode::StorageFailed,
                        "the server could not store changes; nothing was acknowledged",
                    )
                    .await;
                failed.notify_one();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn of two (or three) arguments returns.
    fn future_size2<A, B, F: FnOnce(A, B) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }
    fn future_size3<A, B, C, F: FnOnce(A, B, C) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// What every connection keeps for as long as it is open: its task, a task per document
    /// it synced, and a queue per document. With the handling inline they were about 12 KB,
    /// 10.6 KB and 11 KB (a thousand devices on five documents each: over 100 MB).
    #[test]
    fn an_idle_connection_holds_little_memory() {
        let connection = future_size3(crate::sync_socket::connection);
        let lane = future_size2(super::lane);
        let queue_block = 32 * std::mem::size_of::<super::Job>();
        assert!(
            connection <= 4096,
            "a connection's task is {connection} bytes"
        );
        assert!(lane <= 2048, "a lane's task is {lane} bytes");
        assert!(
            queue_block <= 2048,
            "a lane's queue block is {queue_block} bytes"
        );
    }
}
