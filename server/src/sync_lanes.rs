//! One connection's `Sync` messages, in one lane per document: messages about the same
//! document are handled one after another, in the order they arrived, while different
//! documents proceed side by side. A device catching up on twenty documents has them merged
//! and stored together (their changes share a commit, see [`crate::change_writer`]) instead
//! of one after another.
//!
//! A lane runs only while its document has messages waiting ([`Waiting`]): a device
//! connected all day holds nothing for the documents it synced once (a cover worker's
//! tablet picks up a thousand). Each lane holds at most [`LANE_DEPTH`] waiting messages; a device that sends faster than
//! its documents are stored waits for room (backpressure on its socket). At most
//! [`IN_FLIGHT`] of a connection's messages are handled at once, and only while its queue of
//! answers has room ([`HEADROOM`]): a device that reads slowly slows its own answers down.

use crate::AppState;
use crate::audit;
use crate::documents::{Outbound, PeerHandle, SyncError};
use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::{DenyReason, ErrorCode, ServerMessage};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// A message waiting in a lane. The audit entry is boxed: it is twelve strings, and a lane
/// queue holds its messages inline.
struct Job {
    session: u32,
    data: Vec<u8>,
    audit: Box<audit::Entry>,
}

/// The messages waiting, document by document. A document has an entry exactly while a
/// lane runs for it: the lane takes its messages one at a time and, finding none left,
/// removes the entry and ends, under the same lock as [`Waiting::push`] adds to it. So a
/// document has at most one lane, its messages are handled in the order they came, none is
/// left behind by a lane ending, and a document the device has gone quiet on holds nothing
/// (a device picking up a caseload syncs a thousand documents, then a few).
struct Waiting<J> {
    queues: Mutex<HashMap<DocumentId, VecDeque<J>>>,
    /// Told each time a lane takes a message (room for one more).
    room: Notify,
}

/// What [`Waiting::push`] did with a message.
#[derive(Debug, PartialEq, Eq)]
enum Queued<J> {
    /// Queued for the lane running for its document.
    Behind,
    /// Queued; no lane runs for the document: start one.
    StartLane,
    /// The document's lane has [`LANE_DEPTH`] waiting: try again when there is room.
    Full(J),
}

impl<J> Waiting<J> {
    fn new() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
            room: Notify::new(),
        }
    }

    fn push(&self, doc: DocumentId, job: J) -> Queued<J> {
        let mut queues = self.queues.lock().expect("lane queues");
        match queues.entry(doc) {
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::from([job]));
                Queued::StartLane
            }
            Entry::Occupied(mut queue) if queue.get().len() < LANE_DEPTH => {
                queue.get_mut().push_back(job);
                Queued::Behind
            }
            Entry::Occupied(_) => Queued::Full(job),
        }
    }

    /// The next message for `doc`'s lane; `None` when there is none, and the lane ends.
    fn next(&self, doc: DocumentId) -> Option<J> {
        let mut queues = self.queues.lock().expect("lane queues");
        let job = queues.get_mut(&doc).and_then(VecDeque::pop_front);
        if job.is_some() {
            self.room.notify_one();
        } else {
            queues.remove(&doc);
        }
        job
    }

    /// Drops what waits for `doc` and ends its lane (its connection is ending).
    fn abandon(&self, doc: DocumentId) {
        self.queues.lock().expect("lane queues").remove(&doc);
        self.room.notify_one();
    }

    /// Documents with a lane running.
    #[cfg(test)]
    fn lanes(&self) -> usize {
        self.queues.lock().expect("lane queues").len()
    }
}

/// What every lane of one connection shares.
struct Shared {
    state: AppState,
    outlet: Outlet,
    failed: Arc<Notify>,
    in_flight: Semaphore,
    waiting: Waiting<Job>,
}

/// The lanes of one connection.
pub struct Lanes {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl Lanes {
    /// No lanes yet.
    pub fn new(state: AppState, outlet: Outlet) -> Self {
        Self {
            shared: Arc::new(Shared {
                state,
                outlet,
                failed: Arc::new(Notify::new()),
                in_flight: Semaphore::new(IN_FLIGHT),
                waiting: Waiting::new(),
            }),
            tasks: JoinSet::new(),
        }
    }

    /// Notified when storage failed: the connection must end (the lane has told the device).
    pub fn failed(&self) -> Arc<Notify> {
        self.shared.failed.clone()
    }

    /// Queues a `Sync` message for `doc` (already authorised) in its lane, starting one if
    /// none runs for it; waits while the lane has [`LANE_DEPTH`] messages waiting.
    pub async fn dispatch(
        &mut self,
        peer: &PeerHandle,
        doc: DocumentId,
        session: u32,
        data: Vec<u8>,
        audit: audit::Entry,
    ) {
        // Lanes that ended are let go of (a finished task is kept until joined).
        while self.tasks.try_join_next().is_some() {}
        let mut job = Job {
            session,
            data,
            audit: Box::new(audit),
        };
        loop {
            let room = self.shared.waiting.room.notified();
            match self.shared.waiting.push(doc, job) {
                Queued::Behind => return,
                Queued::StartLane => {
                    self.tasks
                        .spawn(lane(self.shared.clone(), peer.clone(), doc));
                    return;
                }
                Queued::Full(back) => {
                    job = back;
                    room.await;
                }
            }
        }
    }

    /// Lets every lane finish what it holds (up to `grace`), then stops them.
    pub async fn finish(&mut self, grace: Duration) {
        let tasks = &mut self.tasks;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        self.tasks.abort_all();
    }
}

/// Handles `doc`'s messages one after another until none waits.
async fn lane(shared: Arc<Shared>, peer: PeerHandle, doc: DocumentId) {
    let Shared {
        state,
        outlet,
        failed,
        in_flight,
        waiting,
    } = &*shared;
    while let Some(job) = waiting.next(doc) {
        let Ok(_permit) = in_flight.acquire().await else {
            waiting.abandon(doc);
            return;
        };
        while outlet.outbox.capacity() < HEADROOM && !outlet.outbox.is_closed() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let denied = |reason| ServerMessage::Denied { doc, reason };
        // Boxed: the handling's state (about 10 KB) is held only while a message is being
        // handled, not for as long as the lane runs.
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
                // Nothing after it is handled: the connection ends, and the device sends
                // again what was not acknowledged.
                waiting.abandon(doc);
                failed.notify_one();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn of three arguments returns.
    fn future_size3<A, B, C, F: FnOnce(A, B, C) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// What a connection keeps for as long as it is open (its task), and what each document
    /// keeps while a message about it waits or is handled (a lane's task, the message).
    /// With the handling inline they were about 12 KB, 10.6 KB and 11 KB (a thousand
    /// devices on five documents each: over 100 MB, when lanes lasted as long as the
    /// connection).
    #[test]
    fn a_connection_and_its_lanes_hold_little_memory() {
        let connection = future_size3(crate::sync_socket::connection);
        let lane = future_size3(super::lane);
        let job = std::mem::size_of::<super::Job>();
        assert!(
            connection <= 4096,
            "a connection's task is {connection} bytes"
        );
        assert!(lane <= 2048, "a lane's task is {lane} bytes");
        assert!(job <= 64, "a waiting message is {job} bytes");
    }

    fn doc(n: u128) -> DocumentId {
        DocumentId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_document_has_one_lane_which_takes_its_messages_in_order_and_ends_when_none_wait() {
        let waiting = Waiting::new();
        assert_eq!(waiting.push(doc(1), "a1"), Queued::StartLane);
        assert_eq!(waiting.push(doc(1), "a2"), Queued::Behind);
        assert_eq!(waiting.push(doc(2), "b1"), Queued::StartLane);
        assert_eq!(waiting.lanes(), 2);
        assert_eq!(waiting.next(doc(1)), Some("a1"));
        // Taken but still being handled: the lane runs on, so nothing new starts one.
        assert_eq!(waiting.next(doc(1)), Some("a2"));
        assert_eq!(waiting.push(doc(1), "a3"), Queued::Behind);
        assert_eq!(waiting.next(doc(1)), Some("a3"));
        assert_eq!(waiting.next(doc(1)), None, "the lane ends");
        assert_eq!(waiting.lanes(), 1, "and its document holds nothing");
        assert_eq!(
            waiting.push(doc(1), "a4"),
            Queued::StartLane,
            "the next message starts a lane again"
        );
        assert_eq!(waiting.next(doc(2)), Some("b1"));
        assert_eq!(waiting.next(doc(2)), None);
        assert_eq!(waiting.next(doc(1)), Some("a4"));
        assert_eq!(waiting.next(doc(1)), None);
        assert_eq!(waiting.lanes(), 0);
    }

    #[tokio::test]
    async fn a_full_lane_takes_more_once_it_has_taken_one() {
        let waiting = Waiting::new();
        for n in 0..LANE_DEPTH {
            assert_ne!(waiting.push(doc(1), n), Queued::Full(n));
        }
        assert_eq!(waiting.push(doc(1), LANE_DEPTH), Queued::Full(LANE_DEPTH));
        assert_eq!(waiting.push(doc(2), 0), Queued::StartLane, "others go on");
        let room = waiting.room.notified();
        assert_eq!(waiting.next(doc(1)), Some(0));
        tokio::time::timeout(Duration::from_secs(5), room)
            .await
            .expect("told of the room");
        assert_eq!(waiting.push(doc(1), LANE_DEPTH), Queued::Behind);
        let taken: Vec<usize> = std::iter::from_fn(|| waiting.next(doc(1))).collect();
        assert_eq!(taken, (1..=LANE_DEPTH).collect::<Vec<_>>(), "in order");
    }

    #[test]
    fn an_abandoned_lane_drops_what_waits() {
        let waiting = Waiting::new();
        assert_eq!(waiting.push(doc(1), 1), Queued::StartLane);
        assert_eq!(waiting.push(doc(1), 2), Queued::Behind);
        waiting.abandon(doc(1));
        assert_eq!(waiting.lanes(), 0);
        assert_eq!(waiting.next(doc(1)), None);
        assert_eq!(waiting.push(doc(1), 3), Queued::StartLane);
    }
}
