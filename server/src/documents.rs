//! Documents on the server: their storage, and the live rooms that merge and fan out changes.
//!
//! A room ([`casebook_shared::sync::room::DocumentRoom`]) is loaded from storage the first time
//! a device sends the document something only the loaded document can answer, and dropped
//! once no device has used it for [`IDLE_AFTER`]: with no device in it, or with devices
//! still connected, which are then told to start their sessions again after its changes are
//! folded into a snapshot ([`DocumentHub::release_idle`], which also lets an idle quiet
//! document forget its snapshot's bytes until needed). Until then a document stored as one
//! snapshot is answered from that snapshot ([`QuietDocument`]): a device that holds nothing
//! of it is sent the snapshot as stored, a device already in step is told so, and neither
//! costs Automerge a load (which rebuilds every change of the document).
//!
//! Every message for a document is handled under that document's lock, in this order:
//! apply to the room, **commit the new changes** (bytes and ledger row, one transaction,
//! shared with whatever other documents' changes are waiting: see [`crate::change_writer`]),
//! then send answers, fan-out and, to the sender if it may not know them, the stored heads
//! (`Persisted`). Every sync message is so built from what is stored, and a device takes the
//! heads it carries as stored (see [`DocumentRoom::tell_stored`]). Stored changes are folded
//! into a snapshot once [`COMPACT_AFTER`] have gathered, in the transaction that deletes
//! them.

use crate::audit;
use crate::change_writer::{Batch, ChangeWriter};
use crate::db::Db;
use crate::{now_ms, on_pool};
use anyhow::Context;
use automerge::ChangeHash;
use casebook_shared::chronology;
use casebook_shared::ids::{DeviceId, DocumentId, StaffId};
use casebook_shared::protocol::ServerMessage;
use casebook_shared::records::{self, Kind};
use casebook_shared::sync::quiet::{self, QuietDocument};
use casebook_shared::sync::room::{DocumentRoom, Limits, PeerId, RoomError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// A room nobody has used for this long is dropped from memory.
pub const IDLE_AFTER: Duration = Duration::from_secs(60);
/// Stored changes of one document gathered before they are compacted into a snapshot.
pub const COMPACT_AFTER: usize = 500;

/// Sync messages at least this large are applied as heavy work (`DocumentHub::heavy`): a
/// catch-up's message of ten chronology entries is about 6 KB and takes Automerge a few
/// milliseconds to apply, where a single entry (under 1 KB) takes a fraction of one.
const HEAVY_MESSAGE_BYTES: usize = 4 * 1024;

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outbound {
    /// One binary frame.
    Frame(Vec<u8>),
    /// Close the WebSocket with this code and reason.
    Close(u16, &'static str),
}

/// Who sent a change: recorded in the change ledger with every change stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// The signed-in user.
    pub staff: StaffId,
    /// Their device.
    pub device: DeviceId,
}

/// One connected device, as the rooms see it.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    /// Connection id, unique in this process.
    pub id: PeerId,
    /// Who is sending through this connection.
    pub author: Author,
    /// Actor ids registered to this device and user: the only authors of changes accepted
    /// from this connection.
    pub actors: Arc<HashSet<Vec<u8>>>,
    outbox: mpsc::Sender<Outbound>,
    kick: Arc<Notify>,
    /// The device reads deflated frames (protocol version 2).
    deflate: bool,
}

impl PeerHandle {
    /// Queues a message. A device too slow to take its messages is disconnected (it will
    /// reconnect and catch up from storage) rather than letting its queue grow without end.
    pub fn send(&self, message: &ServerMessage) {
        if self
            .outbox
            .try_send(Outbound::Frame(message.encode_for(self.deflate)))
            .is_err()
        {
            self.kick.notify_one();
        }
    }
}

/// Why a sync message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The message was refused; nothing of it was stored.
    #[error("sync message refused: {0}")]
    Rejected(#[from] RoomError),
    /// A change's author is not an actor registered to the sending device and user;
    /// nothing of the message was stored.
    #[error("a change was written by an actor not registered to this device")]
    Unattributable,
    /// The merged document would no longer fit its schema; nothing of the message was
    /// stored.
    #[error("the document would no longer fit its schema: {0}")]
    Invalid(String),
    /// The document was retired (rebuilt after an erasure): its old lineage is refused.
    #[error("this record was replaced after an erasure")]
    Retired,
    /// Storage failed; nothing was acknowledged.
    #[error("storage failed: {0:#}")]
    Storage(anyhow::Error),
}

struct LiveRoom {
    room: DocumentRoom,
    peers: HashMap<PeerId, PeerHandle>,
    /// Who has the record open (presence; in memory only, never stored): peer to name.
    present: HashMap<PeerId, String>,
    uncompacted: usize,
    kind: Kind,
    case: String,
}

impl LiveRoom {
    /// Sends the room's owed sync messages (answers and fan-out) to their peers.
    fn send_outgoing(&mut self, doc: DocumentId) {
        for out in self.room.outgoing(now_ms() as u64) {
            if let Some(p) = self.peers.get(&out.peer) {
                p.send(&ServerMessage::Sync {
                    doc,
                    session: out.session,
                    data: out.data,
                });
            }
        }
    }

    /// Tells `peer` (with `Persisted`) the heads now stored, unless it knows them: the
    /// sync messages sent to it carry them (see [`DocumentRoom::tell_stored`]), so a
    /// co-worker passed a change needs no `Persisted` as well, which halves the frames of a
    /// busy room.
    fn tell_persisted(&mut self, doc: DocumentId, peer: PeerId) {
        if let (Some(handle), Some(heads)) = (self.peers.get(&peer), self.room.tell_stored(peer)) {
            handle.send(&ServerMessage::Persisted { doc, heads });
        }
    }
}

/// A stored document answered without loading it, and the devices it answered.
struct Quiet {
    doc: QuietDocument,
    peers: HashMap<PeerId, PeerHandle>,
    kind: Kind,
    case: String,
}

struct Slot {
    live: Option<LiveRoom>,
    /// Set instead of `live` while every device's messages could be answered from the
    /// snapshot.
    quiet: Option<Quiet>,
    last_used: Instant,
    /// Set when the sweeper took the slot out of the map; a task holding an old handle
    /// must look the document up again.
    removed: bool,
}

/// This process's mark on the change notices it sends (random per start).
fn instance_mark() -> &'static str {
    static MARK: OnceLock<String> = OnceLock::new();
    MARK.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The payload of the `casebook_changes` notice for `doc`: the document and this instance.
pub fn change_notice(doc: DocumentId) -> String {
    format!("{doc} {}", instance_mark())
}

/// The document a change notice names, unless this instance sent it.
fn others_change(payload: &str) -> Option<DocumentId> {
    let (doc, from) = payload.split_once(' ').unwrap_or((payload, ""));
    (from != instance_mark())
        .then(|| doc.parse().ok())
        .flatten()
}

/// All live rooms.
pub struct DocumentHub {
    db: Db,
    // std Mutex: held only to look up or insert, never across an await.
    rooms: Mutex<HashMap<DocumentId, Arc<tokio::sync::Mutex<Slot>>>>,
    limits: Limits,
    next_peer: AtomicU64,
    /// Stores changes with group commit; started on first use (inside the runtime).
    writer: OnceLock<ChangeWriter>,
    /// Turns for [`Self::heavy`] work: as many as the machine has cores.
    heavy_turns: tokio::sync::Semaphore,
}

impl DocumentHub {
    /// A hub with no rooms loaded.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            rooms: Mutex::new(HashMap::new()),
            limits: Limits::default(),
            next_peer: AtomicU64::new(1),
            writer: OnceLock::new(),
            heavy_turns: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
        }
    }

    /// Runs `work` (when `is_heavy`: milliseconds of Automerge applying a large message or
    /// loading a document) on this thread handed over to blocking work, at most one such
    /// job per core. Neither the work nor waiting for a turn holds one of the runtime's
    /// workers, so its other tasks (the group commit that acknowledges other documents,
    /// frames to other devices) keep moving, and documents come out one after another
    /// instead of all at the end. A reconnecting device's catch-up is twenty such messages
    /// at once: applied on the workers themselves, they held up the group commit between
    /// its statements (the first document's commit took 20 ms), and no document reached the
    /// co-worker's device until most were applied. Handed over without turns, all twenty
    /// ran at once on as many threads and finished together, later still. On a runtime
    /// with one thread (unit tests) it simply runs.
    async fn heavy<R>(&self, is_heavy: bool, work: impl FnOnce() -> R) -> R {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !(is_heavy && multi_thread) {
            return work();
        }
        let _turn = self.heavy_turns.acquire().await;
        tokio::task::block_in_place(work)
    }

    /// Registers a new connection.
    pub fn connect(
        &self,
        author: Author,
        actors: HashSet<Vec<u8>>,
        outbox: mpsc::Sender<Outbound>,
        kick: Arc<Notify>,
        deflate: bool,
    ) -> PeerHandle {
        let id = self.next_peer.fetch_add(1, Ordering::Relaxed);
        PeerHandle {
            id,
            author,
            actors: Arc::new(actors),
            outbox,
            kick,
            deflate,
        }
    }

    fn writer(&self) -> &ChangeWriter {
        self.writer
            .get_or_init(|| ChangeWriter::spawn(self.db.clone()))
    }

    /// How many documents are in memory (loaded into a room or answered quietly).
    pub fn loaded(&self) -> usize {
        self.rooms.lock().expect("rooms lock").len()
    }

    /// Whether `doc` is answered from its snapshot with the snapshot's bytes in memory (not
    /// loaded, and not forgotten by [`Self::release_idle`]).
    pub fn holds_snapshot(&self, doc: DocumentId) -> bool {
        let rooms = self.rooms.lock().expect("rooms lock");
        rooms.get(&doc).is_some_and(|slot| {
            slot.try_lock()
                .is_ok_and(|s| s.quiet.as_ref().is_some_and(|q| q.doc.snapshot().is_some()))
        })
    }

    /// Whether `doc` is loaded into a room (Automerge has loaded it), rather than answered
    /// from its snapshot alone or not in memory. A document busy at the moment of asking
    /// counts as loaded.
    pub fn is_live(&self, doc: DocumentId) -> bool {
        let rooms = self.rooms.lock().expect("rooms lock");
        rooms
            .get(&doc)
            .is_some_and(|slot| slot.try_lock().map_or(true, |s| s.live.is_some()))
    }

    fn slot(&self, doc: DocumentId) -> Arc<tokio::sync::Mutex<Slot>> {
        self.rooms
            .lock()
            .expect("rooms lock")
            .entry(doc)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    live: None,
                    quiet: None,
                    last_used: Instant::now(),
                    removed: false,
                }))
            })
            .clone()
    }

    /// Handles one sync message from `peer` for `doc` (already authorised by the caller).
    pub async fn sync(
        &self,
        peer: &PeerHandle,
        doc: DocumentId,
        session: u32,
        data: &[u8],
        audit: audit::Entry,
    ) -> Result<(), SyncError> {
        loop {
            let slot = self.slot(doc);
            // A tokio Mutex, held across the commit on purpose: it puts one document's
            // messages in a single order, so changes are stored before anything about them
            // is sent, and in the order they were applied.
            let mut slot = slot.lock().await;
            if slot.removed {
                continue;
            }
            if self
                .answer_quietly(&mut slot, peer, doc, session, data)
                .await?
            {
                return Ok(());
            }
            let live = self.make_live(&mut slot, doc).await?;
            live.peers.insert(peer.id, peer.clone());
            let limits = &self.limits;
            let received = match self
                .heavy(data.len() >= HEAVY_MESSAGE_BYTES, || {
                    live.room.receive(peer.id, session, data, limits)
                })
                .await
            {
                Ok(r) => r,
                Err(e @ (RoomError::Malformed | RoomError::OverLimits)) => return Err(e.into()),
                Err(e) => {
                    // The room may hold part of a message that was not stored: drop it, and
                    // the other devices' sessions with it.
                    self.evict(&mut slot, doc, peer.id);
                    return Err(e.into());
                }
            };
            if received.stale {
                return Ok(());
            }
            // The room applied the message to its in-memory copy; if any change's author is
            // not this device's, drop that copy (as if the message had gone to a scratch
            // copy) so nothing of it is kept, stored or sent.
            if received
                .new_changes
                .iter()
                .any(|c| !peer.actors.contains(c.actor_id().to_bytes()))
            {
                self.evict(&mut slot, doc, peer.id);
                return Err(SyncError::Unattributable);
            }
            // Check every record the message touched against the document kind's schema, on
            // the merged copy, before anything is stored.
            let live = slot.live.as_mut().expect("still loaded");
            let (am, kind, case) = (live.room.document(), live.kind, live.case.as_str());
            if let Some(problem) = received.touched_records.iter().find_map(|key| {
                match kind {
                    Kind::Chronology => chronology::check_entry(am, key),
                    other => records::check_key(am, other, case, key),
                }
                .err()
            }) {
                self.evict(&mut slot, doc, peer.id);
                return Err(SyncError::Invalid(problem));
            }
            let new = received.new_changes.len();
            let now = now_ms();
            let audit = audit::Entry {
                operation: if received.created_records > 0 {
                    audit::Operation::Collection
                } else {
                    audit::Operation::Alteration
                }
                .as_str()
                .to_owned(),
                occurred_at: now,
                received_at: now,
                change_hashes: received
                    .new_changes
                    .iter()
                    .map(|c| c.hash().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                ..audit
            };
            if new > 0
                && let Err(e) = self
                    .writer()
                    .store(Batch::new(
                        doc,
                        &peer.author,
                        received.new_changes,
                        Some(audit),
                    ))
                    .await
            {
                self.evict(&mut slot, doc, peer.id);
                return Err(SyncError::Storage(e));
            }
            let live = slot.live.as_mut().expect("still loaded");
            if new > 0 && live.kind != Kind::Chronology {
                // Keep the lists' projections in step. They are rebuilt from the document on
                // its next change if this fails; the changes themselves are already stored.
                let record = records::read(live.room.document(), live.kind);
                if let Err(e) =
                    crate::projections::update(&self.db, doc, &live.case, live.kind, &record).await
                {
                    tracing::warn!(%doc, error = %e, "could not update a record's projection");
                }
            }
            live.send_outgoing(doc);
            live.tell_persisted(doc, peer.id);
            live.uncompacted += new;
            tracing::debug!(%doc, new, uncompacted = live.uncompacted, "sync message handled");
            if live.uncompacted >= COMPACT_AFTER {
                match compact(&self.db, doc, &mut live.room).await {
                    Ok(()) => live.uncompacted = 0,
                    Err(e) => {
                        tracing::warn!(%doc, error = format!("{e:#}"), "compaction failed; will retry")
                    }
                }
            }
            return Ok(());
        }
    }

    /// Answers `data` from the stored snapshot if the document is not loaded and the
    /// message needs nothing more ([`QuietDocument`]); returns whether it did. Reads the
    /// document's rows the first time; a document with changes stored after its snapshot
    /// is loaded into a room straight from those rows.
    async fn answer_quietly(
        &self,
        slot: &mut Slot,
        peer: &PeerHandle,
        doc: DocumentId,
        session: u32,
        data: &[u8],
    ) -> Result<bool, SyncError> {
        loop {
            if slot.live.is_some() {
                return Ok(false);
            }
            slot.last_used = Instant::now();
            if slot.quiet.is_none() {
                let mut stored = read_stored(&self.db, doc).await?;
                let snapshot = if stored.changes.is_empty() {
                    stored.snapshot.take()
                } else {
                    None
                };
                match snapshot.map(QuietDocument::open) {
                    Some(Ok(quiet)) => {
                        slot.quiet = Some(Quiet {
                            doc: quiet,
                            peers: HashMap::new(),
                            kind: stored.kind,
                            case: stored.case,
                        })
                    }
                    not_quiet => {
                        stored.snapshot = match not_quiet {
                            Some(Err(bytes)) => Some(bytes),
                            _ => stored.snapshot,
                        };
                        slot.live = Some(stored.into_live()?);
                        return Ok(false);
                    }
                }
            }
            let quiet = slot.quiet.as_mut().expect("opened above");
            match quiet.doc.receive(peer.id, session, data) {
                quiet::Answer::Send(reply) => {
                    quiet.peers.insert(peer.id, peer.clone());
                    peer.send(&ServerMessage::Sync {
                        doc,
                        session,
                        data: reply,
                    });
                    peer.send(&ServerMessage::Persisted {
                        doc,
                        heads: quiet.doc.heads(),
                    });
                    return Ok(true);
                }
                quiet::Answer::Nothing | quiet::Answer::Stale => return Ok(true),
                quiet::Answer::Malformed => return Err(RoomError::Malformed.into()),
                // A device holding nothing while the snapshot is forgotten: read it back
                // and answer again.
                quiet::Answer::Load if quiet.doc.snapshot().is_none() => {
                    self.recall_snapshot(slot, doc).await?;
                }
                quiet::Answer::Load => return Ok(false),
            }
        }
    }

    /// Reads back the snapshot a quiet document forgot while idle ([`Self::release_idle`]).
    /// If what is stored is no longer that snapshot (another instance stored changes since),
    /// the quiet document is dropped and its devices are told to start again, against what
    /// is stored now.
    async fn recall_snapshot(&self, slot: &mut Slot, doc: DocumentId) -> Result<(), SyncError> {
        let Some(quiet) = slot.quiet.as_mut().filter(|q| q.doc.snapshot().is_none()) else {
            return Ok(());
        };
        let stored = read_stored(&self.db, doc).await?;
        let restored = match (stored.snapshot, stored.changes.is_empty()) {
            (Some(bytes), true) => quiet.doc.restore_snapshot(bytes).is_ok(),
            _ => false,
        };
        if !restored {
            let quiet = slot.quiet.take().expect("checked above");
            for peer in quiet.peers.values() {
                peer.send(&ServerMessage::Restart { doc });
            }
        }
        Ok(())
    }

    /// Loads the document into the slot if it is not in memory. A quiet document is loaded
    /// from the snapshot it holds, and the devices it answered carry on in the room from
    /// where they were (their messages replayed into it).
    async fn make_live<'a>(
        &self,
        slot: &'a mut Slot,
        doc: DocumentId,
    ) -> Result<&'a mut LiveRoom, SyncError> {
        slot.last_used = Instant::now();
        self.recall_snapshot(slot, doc).await?;
        if let Some(quiet) = slot.quiet.take() {
            let mut room = self
                .heavy(true, || DocumentRoom::load(quiet.doc.snapshot(), []))
                .await?;
            let mut peers = quiet.peers;
            for restart in quiet.doc.replay(&mut room, &self.limits, now_ms() as u64) {
                if let Some(p) = peers.remove(&restart) {
                    p.send(&ServerMessage::Restart { doc });
                }
            }
            slot.live = Some(LiveRoom {
                room,
                peers,
                present: HashMap::new(),
                uncompacted: 0,
                kind: quiet.kind,
                case: quiet.case,
            });
        }
        if slot.live.is_none() {
            let stored = read_stored(&self.db, doc).await?;
            slot.live = Some(self.heavy(true, || stored.into_live()).await?);
        }
        Ok(slot.live.as_mut().expect("loaded above"))
    }

    /// Runs `f` on the document as it is now (loading it if needed), under its lock.
    pub async fn read<R>(
        &self,
        doc: DocumentId,
        f: impl FnOnce(&automerge::AutoCommit) -> R,
    ) -> Result<R, SyncError> {
        loop {
            let slot = self.slot(doc);
            let mut slot = slot.lock().await;
            if slot.removed {
                continue;
            }
            let live = self.make_live(&mut slot, doc).await?;
            return Ok(f(live.room.document()));
        }
    }

    /// Retires `doc` for good (erasure): under its lock, `plan` sees the document as it is
    /// now and `commit` stores what replaces it; then the room is dropped. No change to `doc`
    /// can be stored after this, because [`load`] refuses a retired document.
    pub async fn retire<P, Fut>(
        &self,
        doc: DocumentId,
        plan: impl FnOnce(&automerge::AutoCommit) -> anyhow::Result<P>,
        commit: impl FnOnce(P) -> Fut,
    ) -> anyhow::Result<()>
    where
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        loop {
            let slot_handle = self.slot(doc);
            let mut slot = slot_handle.lock().await;
            if slot.removed {
                continue;
            }
            let live = self.make_live(&mut slot, doc).await?;
            let planned = plan(live.room.document())?;
            commit(planned).await?;
            slot.live = None;
            slot.removed = true;
            self.rooms.lock().expect("rooms lock").remove(&doc);
            return Ok(());
        }
    }

    /// Drops the room's in-memory copy (it may hold part of a refused message) and tells the
    /// other devices in it to start a new session, which the reloaded room will answer.
    fn evict(&self, slot: &mut Slot, doc: DocumentId, except: PeerId) {
        if let Some(live) = slot.live.take() {
            for (id, p) in live.peers {
                if id != except {
                    p.send(&ServerMessage::Restart { doc });
                }
            }
        }
    }

    /// A connection closed: take its peer out of the rooms it joined (and tell the others
    /// there that the person has left the record).
    pub async fn leave(&self, peer: PeerId, docs: impl IntoIterator<Item = DocumentId>) {
        for doc in docs {
            let slot = self.rooms.lock().expect("rooms lock").get(&doc).cloned();
            if let Some(slot) = slot {
                let mut slot = slot.lock().await;
                if let Some(quiet) = slot.quiet.as_mut() {
                    quiet.doc.leave(peer);
                    quiet.peers.remove(&peer);
                }
                if let Some(live) = slot.live.as_mut() {
                    if let (Some(name), Some(handle)) =
                        (live.present.remove(&peer), live.peers.get(&peer).cloned())
                    {
                        broadcast_presence(live, &handle, doc, name, String::new());
                    }
                    live.peers.remove(&peer);
                    live.room.leave(peer);
                }
            }
        }
    }

    /// Passes `peer`'s presence on `doc` ("" when they left it) to the others in its room.
    /// Presence is never stored.
    pub async fn presence(&self, peer: &PeerHandle, name: &str, doc: DocumentId, section: String) {
        let slot = self.rooms.lock().expect("rooms lock").get(&doc).cloned();
        let Some(slot) = slot else { return };
        let mut slot = slot.lock().await;
        if slot.removed || (slot.live.is_none() && slot.quiet.is_none()) {
            return;
        }
        // Presence goes to the devices in the room: a quiet document's are moved into one.
        let Ok(live) = self.make_live(&mut slot, doc).await else {
            return;
        };
        live.peers.entry(peer.id).or_insert_with(|| peer.clone());
        if section.is_empty() {
            live.present.remove(&peer.id);
        } else {
            live.present.insert(peer.id, name.to_owned());
        }
        broadcast_presence(live, peer, doc, name.to_owned(), section);
    }

    /// Drops rooms that have had no peers for [`IDLE_AFTER`].
    pub fn sweep_idle(&self, idle_after: Duration) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        rooms.retain(|_, slot| {
            let Ok(mut slot) = slot.try_lock() else {
                return true;
            };
            let unused = slot.live.as_ref().is_none_or(|l| l.peers.is_empty())
                && slot.quiet.as_ref().is_none_or(|q| q.peers.is_empty());
            if unused && slot.last_used.elapsed() >= idle_after {
                slot.removed = true;
                return false;
            }
            true
        });
    }

    /// Lets go of what documents nobody has written in for `idle_after` hold in memory
    /// though devices are still in them (tablets stay connected all day). A room (its
    /// document loaded: a few KB per chronology entry) has its changes folded into a
    /// snapshot and is dropped, and its devices are told to start their sessions again,
    /// which the snapshot answers without loading it ([`QuietDocument`]) until the next
    /// change; a room someone has open (presence) is kept, and so is one whose compaction
    /// fails (tried again next time). A document answered from its snapshot forgets the
    /// snapshot's bytes (its devices in step are answered from the heads; the bytes are
    /// read back when needed). Returns how many documents let go of something.
    pub async fn release_idle(&self, idle_after: Duration) -> usize {
        let rested = |slot: &Slot| !slot.removed && slot.last_used.elapsed() >= idle_after;
        let idle =
            |slot: &Slot| rested(slot) && slot.live.as_ref().is_some_and(|l| l.present.is_empty());
        let mut released = 0;
        // Documents busy at the moment of looking are not idle.
        let candidates: Vec<(DocumentId, Arc<tokio::sync::Mutex<Slot>>)> = self
            .rooms
            .lock()
            .expect("rooms lock")
            .iter()
            .filter(|(_, slot)| {
                let Ok(mut slot) = slot.try_lock() else {
                    return false;
                };
                if rested(&slot)
                    && let Some(quiet) = slot.quiet.as_mut()
                    && quiet.doc.snapshot().is_some()
                {
                    quiet.doc.forget_snapshot();
                    released += 1;
                }
                idle(&slot)
            })
            .map(|(doc, slot)| (*doc, slot.clone()))
            .collect();
        for (doc, handle) in candidates {
            let mut slot = handle.lock().await;
            if !idle(&slot) {
                continue;
            }
            let live = slot.live.as_mut().expect("idle rooms are loaded");
            if live.uncompacted > 0 {
                if let Err(e) = compact(&self.db, doc, &mut live.room).await {
                    tracing::warn!(%doc, error = format!("{e:#}"), "compaction failed; the idle room stays loaded");
                    continue;
                }
                live.uncompacted = 0;
            }
            let live = slot.live.take().expect("checked above");
            slot.removed = true;
            {
                let mut rooms = self.rooms.lock().expect("rooms lock");
                if rooms.get(&doc).is_some_and(|s| Arc::ptr_eq(s, &handle)) {
                    rooms.remove(&doc);
                }
            }
            for peer in live.peers.values() {
                peer.send(&ServerMessage::Restart { doc });
            }
            released += 1;
        }
        released
    }

    /// Another server instance stored changes to `doc`: if the document is live here, take
    /// them in from storage and pass them to this instance's devices (their sync messages
    /// carry the stored heads).
    /// Only the stored changes this room lacks are read (their hashes first); the snapshot
    /// only when a compaction may have taken rows this room never saw.
    pub async fn refresh(&self, doc: DocumentId) {
        let slot = self.rooms.lock().expect("rooms lock").get(&doc).cloned();
        let Some(slot) = slot else { return };
        let mut slot = slot.lock().await;
        let Db::Postgres(pool) = &self.db else {
            return; // several instances need PostgreSQL (NOTIFY)
        };
        if slot.removed || (slot.live.is_none() && slot.quiet.is_none()) {
            return;
        }
        // A quiet document's devices must hear of the change: load it (from the snapshot
        // it holds) and take in what was stored since, as for any room.
        let Ok(live) = self.make_live(&mut slot, doc).await else {
            tracing::warn!(%doc, "could not load a document another instance changed");
            return;
        };
        let id = doc.to_string();
        let hashes: Result<Vec<(Vec<u8>,)>, sqlx::Error> =
            sqlx::query_as("select hash from document_changes where document_id = $1")
                .bind(&id)
                .fetch_all(pool)
                .await;
        let Ok(hashes) = hashes else {
            tracing::warn!(%doc, "could not read changes another instance stored");
            return;
        };
        let stored: Vec<ChangeHash> = hashes
            .iter()
            .filter_map(|(h,)| <[u8; 32]>::try_from(h.as_slice()).ok().map(ChangeHash))
            .collect();
        let lacking = live.room.lacking(&stored);
        let changes: Result<Vec<(Vec<u8>,)>, sqlx::Error> = if lacking.is_empty() {
            Ok(Vec::new())
        } else {
            let wanted: Vec<Vec<u8>> = lacking.iter().map(|h| h.0.to_vec()).collect();
            sqlx::query_as(
                "select bytes from document_changes where document_id = $1 and hash = any($2)",
            )
            .bind(&id)
            .bind(&wanted)
            .fetch_all(pool)
            .await
        };
        let Ok(changes) = changes else {
            tracing::warn!(%doc, "could not read changes another instance stored");
            return;
        };
        let absorbed = live
            .room
            .absorb(None, changes.iter().map(|c| c.0.as_slice()));
        // Nothing new among the rows, or changes waiting for ones no longer in the rows: a
        // compaction took them into the snapshot.
        let mut gained = matches!(absorbed, Ok(true));
        if absorbed.is_err() || lacking.is_empty() || live.room.waiting_for_changes() {
            let snapshot: Result<Option<(Vec<u8>,)>, sqlx::Error> =
                sqlx::query_as("select bytes from document_snapshots where document_id = $1")
                    .bind(&id)
                    .fetch_optional(pool)
                    .await;
            match snapshot {
                Ok(Some((bytes,))) => match live.room.absorb(Some(&bytes), []) {
                    Ok(more) => gained |= more,
                    Err(e) => {
                        tracing::warn!(%doc, error = %e, "a stored snapshot did not apply")
                    }
                },
                Ok(None) => {}
                Err(_) => tracing::warn!(%doc, "could not read a stored snapshot"),
            }
        }
        if gained {
            // What was read is stored: the messages' heads tell the devices so.
            live.send_outgoing(doc);
        }
    }

    /// With PostgreSQL: listens for changes other instances store (`NOTIFY
    /// casebook_changes`, sent on commit) and refreshes the live rooms they concern.
    pub fn spawn_change_listener(self: &Arc<Self>) {
        let Db::Postgres(pool) = &self.db else {
            return;
        };
        let pool = pool.clone();
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    listener.listen("casebook_changes").await?;
                    Ok::<_, sqlx::Error>(listener)
                }
                .await;
                let mut listener = match listener {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener: retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    let notification = match listener.recv().await {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!(error = %e, "change listener lost its connection");
                            break;
                        }
                    };
                    let Some(hub) = hub.upgrade() else { return };
                    // This instance's own commits need no refresh; other documents'
                    // refreshes run side by side (each document's lock orders its own).
                    if let Some(doc) = others_change(notification.payload()) {
                        tokio::spawn(async move { hub.refresh(doc).await });
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Runs [`Self::sweep_idle`] and [`Self::release_idle`] every few seconds for as long as
    /// the hub lives.
    pub fn spawn_idle_sweeper(self: &Arc<Self>) {
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                hub.sweep_idle(IDLE_AFTER);
                hub.release_idle(IDLE_AFTER).await;
            }
        });
    }
}

fn broadcast_presence(
    live: &LiveRoom,
    from: &PeerHandle,
    doc: DocumentId,
    name: String,
    section: String,
) {
    let message = ServerMessage::Presence {
        doc,
        staff: from.author.staff,
        name,
        section,
    };
    for (id, p) in &live.peers {
        if *id != from.id {
            p.send(&message);
        }
    }
}

/// A document as stored: its registration, its snapshot and the changes stored after it.
struct Stored {
    kind: Kind,
    case: String,
    snapshot: Option<Vec<u8>>,
    changes: Vec<Vec<u8>>,
}

impl Stored {
    /// Its room, loaded.
    fn into_live(self) -> Result<LiveRoom, SyncError> {
        let room = DocumentRoom::load(
            self.snapshot.as_deref(),
            self.changes.iter().map(Vec::as_slice),
        )?;
        Ok(LiveRoom {
            room,
            peers: HashMap::new(),
            present: HashMap::new(),
            uncompacted: self.changes.len(),
            kind: self.kind,
            case: self.case,
        })
    }
}

/// Reads a document's registration and rows. Refuses a retired document (rebuilt after an
/// erasure).
async fn read_stored(db: &Db, doc: DocumentId) -> Result<Stored, SyncError> {
    let id = doc.to_string();
    type Rows = (Option<(Vec<u8>,)>, Vec<(Vec<u8>,)>);
    let registered: Result<Option<(Option<String>, String, String)>, sqlx::Error> = on_pool!(db, pool =>
        sqlx::query_as("select superseded_by, kind, case_id from documents where id = $1").bind(&id).fetch_optional(pool).await);
    let (kind, case) = match registered
        .context("loading a document")
        .map_err(SyncError::Storage)?
    {
        Some((Some(_), _, _)) => return Err(SyncError::Retired),
        Some((None, kind, case)) => (
            Kind::parse(&kind).ok_or_else(|| {
                SyncError::Storage(anyhow::anyhow!("unknown record kind {kind:?}"))
            })?,
            case,
        ),
        None => {
            return Err(SyncError::Storage(anyhow::anyhow!(
                "the document is not registered"
            )));
        }
    };
    let loaded: Result<Rows, sqlx::Error> = on_pool!(db, pool => async {
        let snapshot = sqlx::query_as("select bytes from document_snapshots where document_id = $1")
            .bind(&id).fetch_optional(pool).await?;
        let changes = sqlx::query_as("select bytes from document_changes where document_id = $1")
            .bind(&id).fetch_all(pool).await?;
        Ok((snapshot, changes))
    }.await);
    let (snapshot, changes) = loaded
        .context("loading a document")
        .map_err(SyncError::Storage)?;
    Ok(Stored {
        kind,
        case,
        snapshot: snapshot.map(|s| s.0),
        changes: changes.into_iter().map(|c| c.0).collect(),
    })
}

/// Folds every stored change the room holds into a snapshot, deleting those change rows in
/// the same transaction.
async fn compact(db: &Db, doc: DocumentId, room: &mut DocumentRoom) -> anyhow::Result<()> {
    let id = doc.to_string();
    let snapshot = room.save();
    let covered: std::collections::HashSet<[u8; 32]> =
        room.all_change_hashes().iter().map(|h| h.0).collect();
    let now = now_ms();
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into document_snapshots (document_id, bytes, updated_at) values ($1, $2, $3)
                     on conflict (document_id) do update set bytes = excluded.bytes, updated_at = excluded.updated_at")
            .bind(&id).bind(&snapshot).bind(now)
            .execute(&mut *tx).await?;
        let stored: Vec<(Vec<u8>,)> = sqlx::query_as("select hash from document_changes where document_id = $1")
            .bind(&id).fetch_all(&mut *tx).await?;
        for (hash,) in stored {
            if <[u8; 32]>::try_from(hash.as_slice()).is_ok_and(|h| covered.contains(&h)) {
                sqlx::query("delete from document_changes where document_id = $1 and hash = $2")
                    .bind(&id).bind(&hash).execute(&mut *tx).await?;
            }
        }
        tx.commit().await
    })
    .context("compacting a document")
}

/// Stores a document created on the server (the demo seed) as changes attributed to `author`.
pub async fn store_new_document(
    db: &Db,
    doc: DocumentId,
    author: &Author,
    mut am: automerge::AutoCommit,
) -> anyhow::Result<()> {
    let changes = am.get_changes(&[]);
    crate::change_writer::write(db, &[Batch::new(doc, author, changes, None)]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_ignores_its_own_change_notices_and_reads_the_others() {
        let doc = DocumentId(uuid::Uuid::new_v4());
        assert_eq!(others_change(&change_notice(doc)), None, "its own");
        assert_eq!(
            others_change(&format!("{doc} {}", uuid::Uuid::new_v4().simple())),
            Some(doc),
            "another instance's"
        );
        assert_eq!(others_change(&doc.to_string()), Some(doc), "unmarked");
        assert_eq!(others_change("not a document"), None);
    }
}
