//! The device side of sync: every document the device holds, and its conversation with the
//! server.
//!
//! The runtime adapter calls [`ClientCore::connected`] when the WebSocket opens,
//! [`ClientCore::receive`] for every frame, [`ClientCore::disconnected`] when it closes,
//! [`ClientCore::edit`] to change a document and [`ClientCore::tick`] now and then. Each call
//! returns an [`Output`]: frames to send and documents to save to local storage (through
//! [`ClientCore::save`], which hands out incremental chunks, and a whole document now and
//! then, so a save costs what changed rather than the whole document).
//!
//! A change counts as *waiting* until the server reports heads that include it as stored:
//! with `Persisted`, or with a `Sync` message whose heads the device holds once it has
//! taken it in (the server builds every message from what it has stored, so those heads
//! are stored; it sends `Persisted` only to the device whose message it answers, when no
//! message to it carried the heads). Waiting changes survive restarts because the persisted
//! heads are saved with the document. Until then the device also keeps them in memory as
//! Automerge encoded them when they were made (at most 1,000 changes or 512 KiB a document,
//! [`Recent`]), and sends and saves them from those bytes rather than extracting them from
//! the document again.
//! A new session starts from the persisted heads, so its first message carries the waiting
//! changes (`resume_from` in `message.rs`).

use super::content::Content;
use super::message::Recent;
use super::receive::Sharing;
use super::{heads_from_wire, heads_to_wire};
use crate::ids::{CaseId, DeviceId, DocumentId};
use crate::protocol::{ClientMessage, DenyReason, ErrorCode, Head, ServerMessage};
use automerge::sync;
use automerge::{ActorId, AutoCommit, ChangeHash};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How long a document may go without hearing from the server, while it is not known to be
/// in step and the connection has brought no answer about any document either, before the
/// device starts a fresh sync session for it.
pub const RESYNC_AFTER_MS: u64 = 5_000;

/// How many incremental chunks a document may gather in local storage before the next save
/// writes the whole document again in one chunk.
pub const CHUNKS_BEFORE_COMPACTION: usize = 64;

/// A piece of a document to write to local storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Append this to the document's stored chunks.
    Incremental(Vec<u8>),
    /// Replace all of the document's stored chunks with this one.
    Full(Vec<u8>),
}

/// What to write to local storage for one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentSave {
    /// New document content, if any changed since the last save.
    pub chunk: Option<Chunk>,
    /// Heads the server last said it had stored (small; always rewritten).
    pub persisted: Vec<Head>,
}

/// Something went wrong on the device side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A stored document did not load.
    #[error("a stored document is damaged")]
    Storage,
    /// The server sent a sync message that did not apply.
    #[error("the server sent a sync message that does not apply")]
    BadSync,
    /// The document is not on this device.
    #[error("that document is not on this device")]
    UnknownDocument,
    /// A new document's id is already taken on this device.
    #[error("a document with that id is already on this device")]
    DuplicateDocument,
}

/// What the adapter must do after a call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Messages to send, in order (only while connected).
    pub send: Vec<ClientMessage>,
    /// Documents whose stored form changed: write [`ClientCore::save`] for each.
    pub save: BTreeSet<DocumentId>,
    /// Documents the server refused.
    pub denied: Vec<(DocumentId, DenyReason)>,
    /// Documents this device may no longer hold: already dropped from the core; delete them
    /// from local storage.
    pub removed: Vec<DocumentId>,
    /// The pending views changed: write [`ClientCore::pending_views`] to local storage.
    pub views_changed: bool,
    /// The pending creations changed: write [`ClientCore::pending_creations`] to local
    /// storage.
    pub creations_changed: bool,
    /// The server revoked this device: every document and view is already dropped from the
    /// core; delete all local storage and sign out.
    pub wipe: bool,
    /// A protocol error the server reported (it closes the connection after it).
    pub error: Option<(ErrorCode, String)>,
    /// Others' presence on records: (record, staff, name, section; "" when they left).
    pub presence: Vec<(DocumentId, crate::ids::StaffId, String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Offline,
    AwaitingWelcome,
    Online,
}

struct DeviceDocument {
    /// Loaded into Automerge only when something needs more than its heads.
    content: Content,
    saved_heads: Vec<ChangeHash>,
    /// A whole document the server sent to this empty document, with the heads it brought:
    /// stored as it came rather than encoded again (see [`ClientCore::save`]).
    arrived_whole: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// Changes that arrived onto the document as last saved, as they came, with the heads
    /// after them: saved as they are rather than extracted from the document again (see
    /// [`ClientCore::save`]).
    arrived: Option<Arrived>,
    /// This device's own changes that the server has not confirmed storing, as encoded
    /// when they were made: sent and saved from these bytes rather than extracted from the
    /// document again (see [`DeviceDocument::keep_own`]).
    own: Recent,
    chunks: usize,
    sync: sync::State,
    session: u32,
    persisted: Vec<ChangeHash>,
    /// The server has reported its stored heads in the current session (a `Persisted`, or
    /// a `Sync` message whose heads the document then held).
    confirmed: bool,
    /// Heads up to which everything held either is stored on the server or came from it:
    /// the heads after the last message from the server that arrived while nothing of this
    /// device's was waiting. What the server sends is not this device's work to deliver, so
    /// it is not counted as waiting while the server's report of it is on the way (see
    /// [`DeviceDocument::waiting`]); usually the message's own heads are that report. Not
    /// kept across restarts: until the server's next report, a restored document counts
    /// what arrived as waiting, which errs the safe way.
    from_server: Vec<ChangeHash>,
    last_heard_ms: u64,
    denied: bool,
    /// The last count of waiting changes, with the heads and persisted heads it was for
    /// (counting walks the change graph; the badge asks after every message).
    waiting_memo: Option<(Vec<ChangeHash>, Vec<ChangeHash>, usize)>,
}

impl DeviceDocument {
    fn new(mut content: Content, persisted: Vec<ChangeHash>, chunks: usize) -> Self {
        let saved_heads = content.heads();
        Self {
            content,
            saved_heads,
            chunks,
            sync: sync::State::new(),
            session: 0,
            persisted,
            confirmed: false,
            from_server: Vec::new(),
            last_heard_ms: 0,
            denied: false,
            waiting_memo: None,
            arrived_whole: None,
            arrived: None,
            own: Recent::default(),
        }
    }

    /// Keeps the changes made here since `before` as Automerge encoded them, until the
    /// server has stored them. Extracting a change from a document is a pass over it; this
    /// is the one extraction of a change made here, where without it every message carrying
    /// it and every save of it made another (a day's entries made offline were all
    /// extracted again, one document after another, at the moment of reconnecting).
    fn keep_own(&mut self, before: &[ChangeHash]) {
        let doc = self.content.doc();
        if doc.get_heads() == before {
            return;
        }
        for change in doc.get_changes(before) {
            self.content.added(change.raw_bytes());
            self.own.add(change.hash(), change.raw_bytes().to_vec());
        }
    }

    /// The server reports `heads` stored (with `Persisted`, or as the heads of a sync
    /// message, all held here): everything they include no longer waits.
    fn stored_up_to(&mut self, heads: Vec<ChangeHash>, online: bool) {
        if self.persisted != heads {
            self.persisted = heads;
            self.forget_stored_own();
        }
        self.confirmed = online;
    }

    /// Whether every one of `hashes` is held here (without loading a document not loaded:
    /// then only what it is known to hold counts).
    fn holds_all(&mut self, hashes: &[ChangeHash]) -> bool {
        if self.content.known_to_hold(hashes) {
            return true;
        }
        if let Some(heads) = self.content.unloaded_heads() {
            return hashes.iter().all(|h| heads.contains(h));
        }
        let missing = self.content.doc().get_missing_deps(hashes);
        hashes.iter().all(|h| !missing.contains(h))
    }

    /// Forgets the kept changes of this device's that the server has now stored.
    fn forget_stored_own(&mut self) {
        if self.own.is_empty() {
            return;
        }
        let heads = self.content.heads();
        if super::message::same_heads(&self.persisted, &heads) {
            self.own.clear();
            return;
        }
        let stored = self.stored_heads();
        // A change the stored heads name is stored. One that is still a head here, and not
        // among them, is not: a head has nothing here depending on it, and every stored head
        // is held here, so none can have it as an ancestor. Only the rest (changes of ours
        // that later ones build on) need a walk of the change graph; while the server is
        // busy, a device's kept changes are usually just its newest, still a head.
        self.own.retain(|h| !stored.contains(h));
        if self.own.hashes().all(|h| heads.contains(h)) {
            return;
        }
        let unstored: BTreeSet<ChangeHash> = self
            .content
            .doc()
            .get_changes_meta(&stored)
            .iter()
            .map(|c| c.hash)
            .collect();
        self.own.retain(|h| unstored.contains(h));
    }

    /// The changes new since the last save, if every one of them is a change made here and
    /// kept: their bytes, which load onto what is stored to give the document now.
    fn own_since_saved(&mut self) -> Option<Vec<u8>> {
        if self.own.is_empty() {
            return None;
        }
        let since = self.content.doc().get_changes_meta(&self.saved_heads);
        let mut bytes = Vec::new();
        for change in &since {
            bytes.extend_from_slice(self.own.get(&change.hash)?);
        }
        Some(bytes)
    }

    /// Those of the heads the server last reported stored that this document holds.
    fn stored_heads(&mut self) -> Vec<ChangeHash> {
        // Those a document not loaded knows it holds are held.
        if self.content.known_to_hold(&self.persisted) {
            return self.persisted.clone();
        }
        let missing = self.content.doc().get_missing_deps(&self.persisted);
        self.persisted
            .iter()
            .filter(|h| !missing.contains(h))
            .copied()
            .collect()
    }

    /// Notes `bytes` (changes as they came in one message, taken in onto the document as
    /// last saved, with nothing held back for want of an earlier change) as what is new
    /// since that save, if the document now holds all of them: nothing held back after
    /// either. Only one message is kept, and only when the document was saved just before
    /// it, so a holder that does not save (the load benchmarks' devices) keeps nothing.
    fn note_arrival(&mut self, bytes: Vec<u8>) {
        if let Some(after) = self.content.unloaded_heads() {
            // Taken in from heads: every change applied, none held back.
            self.arrived = Some(Arrived {
                after: after.to_vec(),
                bytes,
            });
            return;
        }
        let doc = self.content.doc();
        let after = doc.get_heads();
        self.arrived = doc
            .get_missing_deps(&[])
            .is_empty()
            .then_some(Arrived { after, bytes });
    }

    /// Changes made on this device that the server has not confirmed storing: those held
    /// beyond both the heads the server reported stored and what it sent (`from_server`).
    fn waiting(&mut self) -> usize {
        let heads = self.content.heads();
        if let Some(n) = self.remembered(&heads) {
            return n;
        }
        let n = match self.covered_unless_all(&heads) {
            None => 0,
            Some(covered) => self.content.doc().get_changes_meta(&covered).len(),
        };
        self.waiting_memo = Some((heads, self.persisted.clone(), n));
        n
    }

    /// Whether any change of this device's waits (whether [`Self::waiting`] is above
    /// zero), without counting them.
    fn anything_waiting(&mut self) -> bool {
        let heads = self.content.heads();
        match self.remembered(&heads) {
            Some(n) => n > 0,
            None => self.covered_unless_all(&heads).is_some(),
        }
    }

    /// The last count of waiting changes, if it was for these heads and the stored heads now.
    fn remembered(&self, heads: &[ChangeHash]) -> Option<usize> {
        self.waiting_memo
            .as_ref()
            .filter(|(h, p, _)| h == heads && *p == self.persisted)
            .map(|(_, _, n)| *n)
    }

    /// The heads up to which everything is stored or came from the server (the stored heads
    /// held here, and `from_server`), or `None` when that is everything held (`heads` are
    /// this document's). Everything is covered exactly when each of our heads is one of
    /// those: every change held is an ancestor of one of our heads, and a head has nothing
    /// held depending on it, so no other held change can cover it. No walk of the change
    /// graph is needed to tell.
    fn covered_unless_all(&mut self, heads: &[ChangeHash]) -> Option<Vec<ChangeHash>> {
        // In step, or nothing new since the server's last message: the usual cases once a
        // message settles.
        if super::message::same_heads(&self.persisted, heads)
            || super::message::same_heads(&self.from_server, heads)
        {
            return None;
        }
        let mut covered = self.stored_heads();
        covered.extend_from_slice(&self.from_server);
        covered.sort_unstable();
        covered.dedup();
        (!heads.iter().all(|h| covered.binary_search(h).is_ok())).then_some(covered)
    }

    fn in_step(&mut self) -> bool {
        if !self.confirmed {
            return false;
        }
        let ours = self.content.heads();
        super::message::same_heads(&self.persisted, &ours)
    }

    fn start_session(&mut self, now_ms: u64) {
        self.session += 1;
        self.sync = sync::State::new();
        self.confirmed = false;
        self.last_heard_ms = now_ms;
        // The server has said which heads it stored, so the session starts from there: the
        // first message carries the changes made since (offline), rather than a round trip
        // spent learning what the server has, and summarises only those, not the whole
        // history. The server answers with what it has beyond them.
        let stored = self.stored_heads();
        super::message::resume_from(&mut self.sync, stored);
    }

    fn next_message(&mut self, id: DocumentId) -> Option<ClientMessage> {
        // A document not loaded is owed nothing or acknowledges from its heads alone.
        let content = &self.content;
        let decided = content.unloaded_heads().and_then(|heads| {
            super::message::by_heads(&mut self.sync, heads, |h| content.known_to_hold(h))
        });
        let message = match decided {
            Some(message) => message?,
            // A whole encoding made for the server is not kept on a device: no `saved`.
            None => super::message::next_message_kept(
                self.content.doc(),
                &mut self.sync,
                &mut None,
                &self.own,
            )?,
        };
        Some(ClientMessage::Sync {
            doc: id,
            session: self.session,
            data: message.encode(),
        })
    }
}

/// Changes taken in from the server onto the document as last saved, as they came. It is
/// cleared by every save, so it always follows the saved heads.
struct Arrived {
    after: Vec<ChangeHash>,
    bytes: Vec<u8>,
}

/// A record made on this device that the server has not yet registered to its case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Creation {
    /// The new document.
    pub doc: DocumentId,
    /// Its case.
    pub case: CaseId,
    /// Its kind (`crate::records::Kind`).
    pub kind: String,
}

impl Creation {
    fn message(&self) -> ClientMessage {
        ClientMessage::Create {
            doc: self.doc,
            case: self.case,
            kind: self.kind.clone(),
        }
    }
}

/// Every document on one device and its sync with the server.
pub struct ClientCore {
    device: DeviceId,
    actor: ActorId,
    /// Actors this device wrote with in earlier runs (their unsynced changes still need them
    /// declared).
    past_actors: Vec<ActorId>,
    link: Link,
    docs: BTreeMap<DocumentId, DeviceDocument>,
    /// Records opened and not yet in the server's audit log: (document, device time ms).
    views: Vec<(DocumentId, i64)>,
    /// Records made here and not yet registered by the server. Kept whatever the server's
    /// document list says, and announced on every connection until `Created`.
    creations: Vec<Creation>,
    /// When the connection last brought an answer about documents (milliseconds): see
    /// [`Self::tick`].
    last_frame_ms: u64,
    /// How changes are taken in and documents loaded (see [`Sharing`]).
    sharing: Option<Arc<dyn Sharing>>,
}

impl ClientCore {
    /// A device with no documents. `actor` is the Automerge actor id this device writes with
    /// in this run (a fresh random id per run, so two tabs never share one).
    pub fn new(device: DeviceId, actor: Vec<u8>) -> Self {
        Self {
            device,
            actor: ActorId::from(actor),
            past_actors: Vec::new(),
            link: Link::Offline,
            docs: BTreeMap::new(),
            views: Vec::new(),
            creations: Vec::new(),
            last_frame_ms: 0,
            sharing: None,
        }
    }

    /// Takes in the changes the server sends and loads documents with `sharing` from now
    /// on, or as Automerge does with `None` (see [`Sharing`]).
    pub fn set_sharing(&mut self, sharing: Option<Arc<dyn Sharing>>) {
        self.sharing = sharing;
    }

    /// How this device takes in changes and loads documents, when not as Automerge does.
    pub fn sharing(&self) -> Option<&Arc<dyn Sharing>> {
        self.sharing.as_ref()
    }

    /// Views recorded in earlier runs and not yet logged by the server.
    pub fn with_pending_views(mut self, views: Vec<(DocumentId, i64)>) -> Self {
        self.views = views;
        self
    }

    /// Views not yet logged by the server (keep them in local storage).
    pub fn pending_views(&self) -> &[(DocumentId, i64)] {
        &self.views
    }

    /// The person opened record `doc` at `viewed_at` (device time): it goes to the audit log
    /// now, or on the next connection.
    pub fn record_view(&mut self, doc: DocumentId, viewed_at: i64) -> Output {
        self.views.push((doc, viewed_at));
        let mut out = Output {
            views_changed: true,
            ..Output::default()
        };
        if self.link == Link::Online {
            out.send.push(ClientMessage::Viewed { doc, viewed_at });
        }
        out
    }

    /// Restores records made on this device that the server has not yet registered (kept in
    /// local storage by the adapter).
    pub fn with_pending_creations(mut self, creations: Vec<Creation>) -> Self {
        self.creations = creations;
        self
    }

    /// Records made on this device that the server has not yet registered.
    pub fn pending_creations(&self) -> &[Creation] {
        &self.creations
    }

    /// Makes a new record (document) for a case, written by `init`, on the device at once,
    /// online or not. The server is asked to register it now if connected, else on the next
    /// connection.
    pub fn create<R>(
        &mut self,
        creation: Creation,
        init: impl FnOnce(&mut AutoCommit) -> R,
    ) -> Result<(R, Output), ClientError> {
        let id = creation.doc;
        if self.docs.contains_key(&id) {
            return Err(ClientError::DuplicateDocument);
        }
        let doc = AutoCommit::new().with_actor(self.actor.clone());
        self.docs
            .insert(id, DeviceDocument::new(Content::loaded(doc), Vec::new(), 0));
        let mut out = Output {
            creations_changed: true,
            ..Output::default()
        };
        if self.link == Link::Online {
            out.send.push(creation.message());
        }
        self.creations.push(creation);
        let (result, edited) = self.edit(id, init)?;
        out.send.extend(edited.send);
        out.save.extend(edited.save);
        Ok((result, out))
    }

    /// Actor ids this device wrote with in earlier runs. `Hello` declares those that wrote
    /// changes still waiting, so the server accepts them as this device's.
    pub fn with_past_actors(mut self, actors: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.past_actors = actors
            .into_iter()
            .map(ActorId::from)
            .filter(|a| *a != self.actor)
            .collect();
        self
    }

    /// Actors to declare in `Hello`: this run's, and earlier runs' that wrote waiting changes.
    fn actors_to_declare(&mut self) -> Vec<Vec<u8>> {
        let mut authors = std::collections::BTreeSet::new();
        // Past actors that wrote changes the server has not stored. The change graph says
        // who wrote what (extracting the changes themselves would be a pass over each
        // document, which made connecting with many waiting changes slow).
        for d in self
            .docs
            .values_mut()
            .filter(|_| !self.past_actors.is_empty())
        {
            let stored = d.stored_heads();
            // Nothing beyond what is stored: no walk (and no load of a document not loaded).
            if super::message::same_heads(&stored, &d.content.heads()) {
                continue;
            }
            for change in d.content.doc().get_changes_meta(&stored) {
                authors.insert(change.actor.into_owned());
            }
        }
        let mut actors = vec![self.actor.to_bytes().to_vec()];
        actors.extend(
            self.past_actors
                .iter()
                .filter(|a| authors.contains(*a))
                .take(crate::protocol::MAX_DECLARED_ACTORS - 1)
                .map(|a| a.to_bytes().to_vec()),
        );
        actors
    }

    /// The device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Whether this device wrote with the actor `hex` (in this run or an earlier one).
    pub fn wrote_with(&self, hex: &str) -> bool {
        self.actor.to_hex_string() == hex
            || self.past_actors.iter().any(|a| a.to_hex_string() == hex)
    }

    /// The Automerge actor id this device writes with in this run.
    pub fn actor(&self) -> &[u8] {
        self.actor.to_bytes()
    }

    /// Takes a document from local storage: its stored chunks in order, and the heads the
    /// server last confirmed. A document stored as one whole save is kept unloaded until
    /// something needs it (see [`Content`]); others are loaded now.
    pub fn restore(
        &mut self,
        id: DocumentId,
        chunks: &[Vec<u8>],
        persisted: &[Head],
    ) -> Result<(), ClientError> {
        let content = match chunks {
            [whole] => Content::unloaded(
                whole.clone(),
                self.actor.clone(),
                self.sharing.clone().map(|s| (s, id)),
            )
            .ok(),
            _ => None,
        };
        let content = match content {
            Some(content) => content,
            None => {
                let mut doc = AutoCommit::new();
                for chunk in chunks {
                    doc.load_incremental(chunk)
                        .map_err(|_| ClientError::Storage)?;
                }
                super::forget_patches(&mut doc);
                Content::loaded(doc.with_actor(self.actor.clone()))
            }
        };
        self.docs.insert(
            id,
            DeviceDocument::new(content, heads_from_wire(persisted), chunks.len()),
        );
        Ok(())
    }

    /// What to write to local storage for a document (named in [`Output::save`]).
    pub fn save(&mut self, id: DocumentId) -> Option<DocumentSave> {
        let d = self.docs.get_mut(&id)?;
        let heads = d.content.heads();
        let arrived = d.arrived.take();
        let chunk = if heads == d.saved_heads && d.chunks > 0 {
            None
        } else if d.chunks == 0
            || d.chunks >= CHUNKS_BEFORE_COMPACTION
            // Nothing of it saved yet (a document just arrived): the whole document is far
            // smaller and quicker to write as one compressed save than change by change.
            || d.saved_heads.is_empty()
        {
            d.chunks = 1;
            Some(Chunk::Full(match d.arrived_whole.take() {
                // Exactly what arrived, unchanged since: the server's own saved form.
                Some((arrived, bytes)) if arrived == heads => bytes,
                _ => d.content.doc().save(),
            }))
        } else {
            d.chunks += 1;
            Some(Chunk::Incremental(match arrived {
                // Exactly what arrived since the last save, and nothing made here since:
                // the bytes as they came load onto what is stored to give the document now.
                Some(arrived) if arrived.after == heads => arrived.bytes,
                // Only changes made here since, kept as they were made.
                _ => match d.own_since_saved() {
                    Some(bytes) => bytes,
                    None => d.content.doc().save_after(&d.saved_heads),
                },
            }))
        };
        d.saved_heads = heads;
        Some(DocumentSave {
            chunk,
            persisted: heads_to_wire(&d.persisted),
        })
    }

    /// Makes sure the device holds `id` (empty until synced). Returns whether it was new.
    pub fn track(&mut self, id: DocumentId) -> bool {
        if self.docs.contains_key(&id) {
            return false;
        }
        let doc = AutoCommit::new().with_actor(self.actor.clone());
        self.docs
            .insert(id, DeviceDocument::new(Content::loaded(doc), Vec::new(), 0));
        true
    }

    /// A document, for reading.
    pub fn document(&self, id: DocumentId) -> Option<&AutoCommit> {
        self.docs.get(&id).map(|d| d.content.read())
    }

    /// Whether document `id` is loaded into Automerge (see [`Content`]).
    pub fn is_loaded(&self, id: DocumentId) -> bool {
        self.docs.get(&id).is_some_and(|d| d.content.is_loaded())
    }

    /// Puts document `id` back to bytes, out of Automerge, once nothing of this device's
    /// waits in it (see [`Content::close`]): as when its record is closed. Changes that
    /// follow it are then added to the bytes as they come, and the next read or edit loads
    /// it again. Returns whether it is now not loaded (`false` while something of this
    /// device's, or a change waiting for a dependency, is held in it, or it is empty).
    pub fn close(&mut self, id: DocumentId) -> bool {
        let Some(d) = self.docs.get_mut(&id) else {
            return false;
        };
        if !d.content.is_loaded() {
            return true;
        }
        !d.anything_waiting() && d.content.close()
    }

    /// Whether document `id` holds change `hash`. A document not loaded answers without
    /// loading, from what it knows it holds: the changes that came or were made since it
    /// was first kept as bytes, and its heads (so an older change may be answered `false`).
    pub fn holds(&mut self, id: DocumentId, hash: &ChangeHash) -> bool {
        self.docs
            .get_mut(&id)
            .is_some_and(|d| d.holds_all(std::slice::from_ref(hash)))
    }

    /// The documents on the device.
    pub fn documents(&self) -> impl Iterator<Item = DocumentId> + '_ {
        self.docs.keys().copied()
    }

    /// Whether the connection is open and the server has welcomed the device.
    pub fn is_online(&self) -> bool {
        self.link == Link::Online
    }

    /// Changes on this device not yet confirmed stored by the server, over all documents.
    pub fn waiting(&mut self) -> usize {
        self.docs.values_mut().map(DeviceDocument::waiting).sum()
    }

    /// Changes of one document not yet confirmed stored by the server.
    pub fn waiting_in(&mut self, id: DocumentId) -> usize {
        self.docs.get_mut(&id).map_or(0, DeviceDocument::waiting)
    }

    /// The heads the server last said it had stored for a document.
    pub fn persisted_heads(&self, id: DocumentId) -> Vec<ChangeHash> {
        self.docs
            .get(&id)
            .map(|d| d.persisted.clone())
            .unwrap_or_default()
    }

    /// Whether document `id` is on the device and known to be identical to the server's
    /// stored copy (so it opens with no network as the server has it).
    pub fn in_step(&mut self, id: DocumentId) -> bool {
        self.docs.get_mut(&id).is_some_and(DeviceDocument::in_step)
    }

    /// The heads of document `id` on the device (without loading it into Automerge).
    pub fn heads(&mut self, id: DocumentId) -> Option<Vec<ChangeHash>> {
        self.docs.get_mut(&id).map(|d| d.content.heads())
    }

    /// Whether every document is known to be identical to the server's stored copy.
    pub fn all_in_step(&mut self) -> bool {
        self.docs.values_mut().all(|d| d.denied || d.in_step())
    }

    /// The connection opened: introduce the device.
    pub fn connected(&mut self, now_ms: u64) -> Output {
        self.link = Link::AwaitingWelcome;
        self.last_frame_ms = now_ms;
        let actors = self.actors_to_declare();
        Output {
            send: vec![ClientMessage::Hello {
                device: self.device,
                actors,
            }],
            ..Output::default()
        }
    }

    /// The connection closed.
    pub fn disconnected(&mut self) {
        self.link = Link::Offline;
    }

    /// Handles one message from the server.
    pub fn receive(&mut self, now_ms: u64, message: ServerMessage) -> Result<Output, ClientError> {
        // Answers about documents count as the connection working through what was asked
        // of it; presence (repeated every few seconds while a co-worker has a record open)
        // does not, or it would hold off every restart.
        if matches!(
            message,
            ServerMessage::Welcome { .. }
                | ServerMessage::Sync { .. }
                | ServerMessage::Persisted { .. }
        ) {
            self.last_frame_ms = now_ms;
        }
        let mut out = Output::default();
        match message {
            ServerMessage::Welcome { documents } => {
                self.link = Link::Online;
                self.hold_exactly(&documents, &mut out);
                // Registration first: the server handles a connection's messages in order.
                out.send
                    .extend(self.creations.iter().map(Creation::message));
                for (&id, d) in self.docs.iter_mut() {
                    d.denied = false;
                    d.start_session(now_ms);
                    out.send.extend(d.next_message(id));
                }
                out.send.extend(
                    self.views
                        .iter()
                        .map(|&(doc, viewed_at)| ClientMessage::Viewed { doc, viewed_at }),
                );
            }
            ServerMessage::ViewLogged { doc, viewed_at } => {
                let before = self.views.len();
                self.views.retain(|v| *v != (doc, viewed_at));
                out.views_changed = self.views.len() != before;
            }
            ServerMessage::Access { documents } => {
                for id in self.hold_exactly(&documents, &mut out) {
                    if let Some(d) = self.docs.get_mut(&id) {
                        d.start_session(now_ms);
                        out.send.extend(d.next_message(id));
                    }
                }
            }
            ServerMessage::Sync { doc, session, data } => {
                let Some(d) = self.docs.get_mut(&doc) else {
                    return Ok(out);
                };
                if session != d.session || self.link != Link::Online {
                    return Ok(out); // an answer to a session this device has abandoned
                }
                let message = sync::Message::decode(&data).map_err(|_| ClientError::BadSync)?;
                // The server builds every message from what it has stored, and a message
                // carries the heads it was built at.
                let mut server_heads = message.heads.clone();
                server_heads.sort_unstable();
                // A fresh device is sent each document whole, as one saved document.
                let whole = match message.changes.iter().next() {
                    Some(chunk)
                        if message.changes.len() == 1
                            && super::chunk::is_whole_document(chunk)
                            && d.content.heads().is_empty()
                            && d.content.doc().get_missing_deps(&[]).is_empty() =>
                    {
                        Some(chunk.to_vec())
                    }
                    _ => None,
                };
                // Changes taken in onto the document as saved are kept as they came, to be
                // stored so (see `note_arrival`).
                // (A document not loaded holds no change waiting for a dependency.)
                let arriving = (whole.is_none()
                    && !message.changes.is_empty()
                    && d.content.heads() == d.saved_heads
                    && (d.content.unloaded_heads().is_some()
                        || d.content.doc().get_missing_deps(&[]).is_empty()))
                .then(|| {
                    message
                        .changes
                        .iter()
                        .flatten()
                        .copied()
                        .collect::<Vec<u8>>()
                });
                d.arrived = None;
                // With nothing of this device's waiting, everything held after this message
                // is stored on the server or came from it.
                let nothing_waited = !d.anything_waiting();
                // A whole document onto an empty one, and a message to a document not
                // loaded bringing nothing or changes that follow its heads, are taken in
                // from heads, leaving (or keeping) the document unloaded; only what needs
                // the document loads it. (With nothing of ours waiting, the server holds
                // all we hold, which taking in by heads relies on.)
                let by_heads = match &whole {
                    Some(bytes) => match Content::unloaded(
                        bytes.clone(),
                        self.actor.clone(),
                        self.sharing.clone().map(|s| (s, doc)),
                    ) {
                        Ok(content) => {
                            let heads = content.unloaded_heads().unwrap_or_default().to_vec();
                            super::receive::receive_by_heads(
                                &[],
                                Some(heads),
                                &|_| false,
                                &mut d.sync,
                                message,
                            )
                            .map(|()| d.content = content)
                        }
                        Err(_) => Err(message),
                    },
                    None => match d.content.unloaded_heads().map(<[_]>::to_vec) {
                        Some(ours) if nothing_waited => {
                            // Changes onto what it holds, each depending only on our heads,
                            // the changes before it or changes known held: their bytes are
                            // added to what is kept.
                            let bytes: Vec<u8> =
                                message.changes.iter().flatten().copied().collect();
                            let content = &d.content;
                            let known =
                                |h: &ChangeHash| content.known_to_hold(std::slice::from_ref(h));
                            let after = if message.changes.is_empty() {
                                Some((None, Vec::new()))
                            } else {
                                let headers = match &self.sharing {
                                    Some(sharing) => sharing.checked_headers(&bytes),
                                    None => super::receive::checked_headers(&bytes),
                                };
                                headers.and_then(|headers| {
                                    let after =
                                        super::receive::heads_after(&ours, &headers, &known)?;
                                    let hashes = headers.into_iter().map(|(h, _)| h).collect();
                                    Some((Some(after), hashes))
                                })
                            };
                            match after {
                                Some((after, hashes)) => super::receive::receive_by_heads(
                                    &ours,
                                    after.clone(),
                                    &known,
                                    &mut d.sync,
                                    message,
                                )
                                .map(|()| {
                                    if let Some(after) = after {
                                        d.content.append(&bytes, hashes, after);
                                    }
                                }),
                                None => Err(message),
                            }
                        }
                        _ => Err(message),
                    },
                };
                if let Err(message) = by_heads {
                    let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
                    super::receive::receive_with(
                        d.content.doc(),
                        &mut d.sync,
                        message,
                        self.sharing.as_deref(),
                    )
                    .map_err(|_| ClientError::BadSync)?;
                    d.content.added(&joined);
                }
                if nothing_waited {
                    d.from_server = d.content.heads();
                    d.waiting_memo = None;
                }
                // The heads the server built its message at are stored there: once held
                // here, they tell the device so, as a `Persisted` with them would.
                if d.holds_all(&server_heads) {
                    d.stored_up_to(server_heads, true);
                }
                if let Some(bytes) = whole {
                    d.arrived_whole = Some((d.content.heads(), bytes));
                }
                if let Some(bytes) = arriving {
                    d.note_arrival(bytes);
                }
                d.last_heard_ms = now_ms;
                out.save.insert(doc);
                out.send.extend(d.next_message(doc));
            }
            ServerMessage::Persisted { doc, heads } => {
                if let Some(d) = self.docs.get_mut(&doc) {
                    d.stored_up_to(heads_from_wire(&heads), self.link == Link::Online);
                    d.last_heard_ms = now_ms;
                    out.save.insert(doc);
                }
            }
            ServerMessage::Denied { doc, reason } => {
                if let Some(d) = self.docs.get_mut(&doc) {
                    d.denied = true;
                }
                out.denied.push((doc, reason));
            }
            ServerMessage::Restart { doc } => {
                if let Some(d) = self.docs.get_mut(&doc)
                    && self.link == Link::Online
                    && !d.denied
                {
                    d.start_session(now_ms);
                    out.send.extend(d.next_message(doc));
                }
            }
            ServerMessage::Created { doc } => {
                let before = self.creations.len();
                self.creations.retain(|c| c.doc != doc);
                out.creations_changed = self.creations.len() != before;
                if let Some(d) = self.docs.get_mut(&doc)
                    && self.link == Link::Online
                {
                    d.denied = false;
                    d.start_session(now_ms);
                    out.send.extend(d.next_message(doc));
                }
            }
            ServerMessage::Wipe => {
                self.docs.clear();
                self.views.clear();
                self.creations.clear();
                self.link = Link::Offline;
                out.wipe = true;
            }
            ServerMessage::Error { code, message } => out.error = Some((code, message)),
            ServerMessage::Presence {
                doc,
                staff,
                name,
                section,
            } => out.presence.push((doc, staff, name, section)),
        }
        Ok(out)
    }

    /// Keeps exactly `documents` (and records made here, not yet registered) on the device:
    /// drops the others (named in `out.removed`) and starts tracking new ones. Returns the
    /// new ones.
    fn hold_exactly(&mut self, documents: &[DocumentId], out: &mut Output) -> Vec<DocumentId> {
        let mut allowed: BTreeSet<DocumentId> = documents.iter().copied().collect();
        // A record made here is never dropped before the server has registered it.
        allowed.extend(self.creations.iter().map(|c| c.doc));
        let gone: Vec<DocumentId> = self
            .docs
            .keys()
            .filter(|id| !allowed.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.docs.remove(&id);
            out.save.remove(&id);
            out.removed.push(id);
        }
        let mut new = Vec::new();
        for id in documents {
            if self.track(*id) {
                out.save.insert(*id);
                new.push(*id);
            }
        }
        new
    }

    /// Changes document `id` with `change`, then saves and (when online) syncs it.
    pub fn edit<R>(
        &mut self,
        id: DocumentId,
        change: impl FnOnce(&mut AutoCommit) -> R,
    ) -> Result<(R, Output), ClientError> {
        let d = self.docs.get_mut(&id).ok_or(ClientError::UnknownDocument)?;
        let doc = d.content.doc();
        let before = doc.get_heads();
        let result = change(doc);
        doc.commit();
        super::forget_patches(doc);
        d.keep_own(&before);
        let mut out = Output::default();
        out.save.insert(id);
        if self.link == Link::Online && !d.denied {
            out.send.extend(d.next_message(id));
        }
        Ok((result, out))
    }

    /// Tells the others who have record `doc` open where this person is in it ("" when
    /// leaving). Presence is live only: nothing is sent or kept while offline.
    pub fn presence(&self, doc: DocumentId, section: &str) -> Output {
        let mut out = Output::default();
        if self.link == Link::Online && self.docs.contains_key(&doc) {
            out.send.push(ClientMessage::Presence {
                doc,
                section: section
                    .chars()
                    .take(crate::protocol::MAX_SECTION_BYTES / 4)
                    .collect(),
            });
        }
        out
    }

    /// Passes time: restarts the sync session of any document that is not known to be in
    /// step and has heard nothing for [`RESYNC_AFTER_MS`], once the connection has brought
    /// no answer about any document for that long either (a lost or stalled exchange). An
    /// exchange lost while the connection stays busy with other documents is restarted when
    /// it quietens.
    pub fn tick(&mut self, now_ms: u64) -> Output {
        let mut out = Output::default();
        // A connection still bringing answers is working through what was asked of it (a
        // caseload being picked up can take longer than the wait): a document further back
        // in its queue is not lost. Restarting it would have the server send it again and
        // the device drop the answer already on its way.
        if self.link != Link::Online || now_ms.saturating_sub(self.last_frame_ms) < RESYNC_AFTER_MS
        {
            return out;
        }
        for (&id, d) in self.docs.iter_mut() {
            if d.denied || now_ms.saturating_sub(d.last_heard_ms) < RESYNC_AFTER_MS || d.in_step() {
                continue;
            }
            d.start_session(now_ms);
            out.send.extend(d.next_message(id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::room::{DocumentRoom, Limits};
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;

    fn server_document(entries: usize) -> AutoCommit {
        let mut doc = AutoCommit::new();
        for i in 0..entries {
            let text = doc
                .put_object(automerge::ROOT, format!("e{i}"), automerge::ObjType::Text)
                .unwrap();
            doc.splice_text(&text, 0, 0, "a synthetic entry").unwrap();
            doc.commit();
        }
        doc
    }

    /// A fresh device is sent a document whole; it stores those very bytes (no second
    /// encoding), and they load back to the server's heads.
    #[test]
    fn a_document_sent_whole_is_stored_as_it_came() {
        let id = DocumentId(uuid::Uuid::from_u128(7));
        let mut server_doc = server_document(40);
        let mut room = DocumentRoom::load(Some(&server_doc.save()), []).unwrap();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        let (_, to_device) = sync_with_room(&mut core, &mut room, id, true);
        assert!(core.in_step(id));
        let sent_whole = to_device
            .iter()
            .filter_map(|m| m.changes.iter().next())
            .find(|c| super::super::chunk::is_whole_document(c))
            .expect("the room sent the document whole")
            .to_vec();
        assert!(
            core.docs[&id]
                .arrived_whole
                .as_ref()
                .is_some_and(|(_, bytes)| *bytes == sent_whole),
            "the device kept what arrived, to store it without encoding it again"
        );
        let Some(Chunk::Full(stored)) = core.save(id).and_then(|s| s.chunk) else {
            panic!("a fresh document is saved whole");
        };
        assert_eq!(stored, sent_whole, "stored as it came");
        let mut reloaded = AutoCommit::load(&stored).unwrap();
        assert_eq!(reloaded.get_heads(), server_doc.get_heads());
    }

    /// A caseload sent whole is taken in without loading a document into Automerge: in
    /// step, nothing waiting, stored as it came, and in step again after a restart from
    /// storage and a new session. Reading loads it, and an edit then reaches the server.
    #[test]
    fn a_document_sent_whole_is_loaded_only_when_read_or_edited() {
        let id = DocumentId(uuid::Uuid::from_u128(8));
        let mut server_doc = server_document(40);
        let mut room = DocumentRoom::load(Some(&server_doc.save()), []).unwrap();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        sync_with_room(&mut core, &mut room, id, true);
        assert!(core.in_step(id));
        assert_eq!(core.waiting_in(id), 0);
        let Some(Chunk::Full(stored)) = core.save(id).and_then(|s| s.chunk) else {
            panic!("a fresh document is saved whole");
        };
        assert!(
            !core.is_loaded(id),
            "taken in, acknowledged and saved unloaded"
        );

        // The app restarts: restored from storage, still unloaded, and a new session with
        // the server settles from heads alone.
        let mut restarted = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![2; 16]);
        let persisted = room.heads();
        restarted.restore(id, &[stored], &persisted).unwrap();
        assert!(!restarted.is_loaded(id));
        sync_with_room(&mut restarted, &mut room, id, true);
        assert!(restarted.in_step(id));
        assert_eq!(restarted.waiting_in(id), 0);
        assert!(!restarted.is_loaded(id), "in step without loading");

        // A co-worker's entry arrives: it follows our heads, so it is added to what is
        // kept, still without loading, and saved as it came.
        let mut other = ClientCore::new(DeviceId(uuid::Uuid::from_u128(2)), vec![3; 16]);
        sync_with_room(&mut other, &mut room, id, true);
        eprintln!("other before {:?}", other.heads(id));
        other
            .edit(id, |doc| {
                doc.put(automerge::ROOT, "from a co-worker", 1).unwrap();
            })
            .unwrap();
        sync_with_room(&mut other, &mut room, id, true);
        sync_with_room(&mut restarted, &mut room, id, true);
        assert!(
            !restarted.is_loaded(id),
            "the entry taken in without loading"
        );
        assert!(restarted.in_step(id));
        assert_eq!(restarted.waiting_in(id), 0);
        assert!(matches!(
            restarted.save(id).and_then(|s| s.chunk),
            Some(Chunk::Incremental(_))
        ));

        // Reading it loads it, with the server's content.
        let read = restarted.document(id).expect("on the device");
        use automerge::ReadDoc;
        let text = |doc: &AutoCommit| {
            let (_, obj) = doc.get(automerge::ROOT, "e0").unwrap().unwrap();
            doc.text(&obj).unwrap()
        };
        assert_eq!(text(read), text(&server_doc));
        assert!(
            read.get(automerge::ROOT, "from a co-worker")
                .unwrap()
                .is_some()
        );
        assert!(restarted.is_loaded(id));
        restarted
            .edit(id, |doc| doc.put(automerge::ROOT, "made here", 1).unwrap())
            .unwrap();
        assert_eq!(restarted.waiting_in(id), 1);
        sync_with_room(&mut restarted, &mut room, id, true);
        assert_eq!(restarted.waiting_in(id), 0);
        let in_room = AutoCommit::load(&room.save()).unwrap();
        assert!(in_room.get(automerge::ROOT, "made here").unwrap().is_some());
    }

    /// A worker writes in a record and closes it once the entry is stored: the document
    /// goes back to bytes, a co-worker's entry is then added to them without loading, and
    /// reopening gives the document a device that kept it open would hold, writing on as
    /// this device.
    #[test]
    fn a_closed_record_takes_changes_in_as_bytes_and_reopens_as_if_kept_open() {
        use automerge::ReadDoc;
        let id = DocumentId(uuid::Uuid::from_u128(14));
        let (mut room, mut core) = room_and_synced_device(id, 20, true);
        core.edit(id, |doc| doc.put(automerge::ROOT, "mine", 1).unwrap())
            .unwrap();
        assert!(!core.close(id), "not closed while the entry waits");
        assert!(core.is_loaded(id));
        sync_with_room(&mut core, &mut room, id, true);
        assert_eq!(core.waiting_in(id), 0);
        let mine = core.heads(id).unwrap()[0];
        assert!(core.close(id));
        assert!(!core.is_loaded(id));
        assert!(core.holds(id, &mine), "its own entry, known held unloaded");
        assert!(core.in_step(id));

        // A co-worker, who keeps the record open, writes.
        let mut other = ClientCore::new(DeviceId(uuid::Uuid::from_u128(2)), vec![2; 16]);
        sync_as(&mut other, 2, &mut room, id, true);
        other
            .edit(id, |doc| doc.put(automerge::ROOT, "theirs", 2).unwrap())
            .unwrap();
        sync_as(&mut other, 2, &mut room, id, true);
        let theirs = other.heads(id).unwrap()[0];
        assert!(!core.holds(id, &theirs));
        sync_with_room(&mut core, &mut room, id, true);
        assert!(!core.is_loaded(id), "taken in without loading");
        assert!(core.holds(id, &theirs));
        assert!(core.in_step(id));
        assert_eq!(core.waiting_in(id), 0);

        let mut open = other.document(id).unwrap().clone();
        let mut reopened = core.document(id).unwrap().clone();
        assert_eq!(reopened.get_heads(), open.get_heads());
        assert_eq!(
            reopened.get_changes_meta(&[]).len(),
            open.get_changes_meta(&[]).len()
        );
        for key in ["mine", "theirs", "e19"] {
            assert!(
                reopened.get(automerge::ROOT, key).unwrap().is_some(),
                "{key}"
            );
        }
        assert_eq!(reopened.get_actor(), &ActorId::from(vec![1; 16]));
        core.edit(id, |doc| doc.put(automerge::ROOT, "again", 3).unwrap())
            .unwrap();
        sync_with_room(&mut core, &mut room, id, true);
        assert_eq!(core.waiting_in(id), 0);
        let in_room = AutoCommit::load(&room.save()).unwrap();
        assert!(in_room.get(automerge::ROOT, "again").unwrap().is_some());
    }

    /// Lets two devices (the room's peers 1 and 2, connected already) and `room` exchange
    /// messages about `id` for ten rounds, starting with what each has to send, without
    /// reconnecting; the first closes the record whenever it can.
    fn exchange(
        devices: [&mut ClientCore; 2],
        room: &mut DocumentRoom,
        id: DocumentId,
        mut to_server: [Vec<ClientMessage>; 2],
    ) {
        let [first, second] = devices;
        for _ in 0..10 {
            for (peer, messages) in (1..).zip(to_server.iter_mut()) {
                for message in messages.drain(..) {
                    if let ClientMessage::Sync { session, data, .. } = message {
                        room.receive(peer, session, &data, &Limits::default())
                            .unwrap();
                    }
                }
            }
            for out in room.outgoing(0) {
                let answer = ServerMessage::Sync {
                    doc: id,
                    session: out.session,
                    data: out.data,
                };
                let (core, sends) = match out.peer {
                    1 => (&mut *first, &mut to_server[0]),
                    _ => (&mut *second, &mut to_server[1]),
                };
                sends.extend(core.receive(0, answer).unwrap().send);
            }
            first.close(id);
        }
    }

    /// Within one session, a device that wrote and then closed the record goes on taking in
    /// what a co-worker writes, and the co-worker what it writes.
    #[test]
    fn a_record_closed_after_writing_goes_on_taking_in_within_the_session() {
        let id = DocumentId(uuid::Uuid::from_u128(17));
        let mut room = DocumentRoom::load(Some(&server_document(20).save()), []).unwrap();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        let mut other = ClientCore::new(DeviceId(uuid::Uuid::from_u128(2)), vec![2; 16]);
        let welcome = |core: &mut ClientCore| {
            core.connected(0);
            core.receive(
                0,
                ServerMessage::Welcome {
                    documents: vec![id],
                },
            )
            .unwrap()
            .send
        };
        let sends = [welcome(&mut core), welcome(&mut other)];
        exchange([&mut core, &mut other], &mut room, id, sends);
        assert_eq!(core.heads(id), other.heads(id));
        for round in 0..3 {
            let (_, out) = core
                .edit(id, |doc| {
                    doc.put(automerge::ROOT, format!("mine{round}"), 1).unwrap()
                })
                .unwrap();
            exchange(
                [&mut core, &mut other],
                &mut room,
                id,
                [out.send, Vec::new()],
            );
            assert!(!core.is_loaded(id), "closed once stored");
            assert_eq!(core.heads(id), other.heads(id), "round {round}");
            for k in 0..2 {
                let (_, out) = other
                    .edit(id, |doc| {
                        doc.put(automerge::ROOT, format!("theirs{round}{k}"), 1)
                            .unwrap()
                    })
                    .unwrap();
                exchange(
                    [&mut core, &mut other],
                    &mut room,
                    id,
                    [Vec::new(), out.send],
                );
                assert_eq!(core.heads(id), other.heads(id), "round {round}, entry {k}");
                assert!(!core.is_loaded(id), "taken in as bytes");
            }
        }
    }

    /// A record made here, never held as bytes, closes with a save and reopens the same.
    #[test]
    fn a_record_made_here_closes_and_reopens_the_same() {
        let id = DocumentId(uuid::Uuid::from_u128(15));
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        core.restore(id, &[], &[]).unwrap();
        assert!(!core.close(id), "an empty record stays as it is");
        for key in ["first", "second"] {
            core.edit(id, |doc| doc.put(automerge::ROOT, key, 1).unwrap())
                .unwrap();
        }
        let heads = core.heads(id).unwrap();
        assert!(!core.close(id), "its entries wait for the server");
        // The server reports them stored.
        core.receive(
            0,
            ServerMessage::Persisted {
                doc: id,
                heads: heads_to_wire(&heads),
            },
        )
        .unwrap();
        assert!(core.close(id));
        assert!(!core.is_loaded(id));
        assert_eq!(core.heads(id).unwrap(), heads);
        let mut reopened = core.document(id).unwrap().clone();
        assert_eq!(reopened.get_changes_meta(&[]).len(), 2);
    }

    /// A sharing that keeps what it is given and counts what it is asked.
    #[derive(Default)]
    struct Kept {
        docs: std::sync::Mutex<std::collections::HashMap<Vec<ChangeHash>, AutoCommit>>,
        kept: std::sync::atomic::AtomicUsize,
        copied: std::sync::atomic::AtomicUsize,
    }

    impl Sharing for Kept {
        fn apply(
            &self,
            doc: &mut AutoCommit,
            bytes: &[u8],
        ) -> Result<(), automerge::AutomergeError> {
            doc.load_incremental(bytes).map(|_| ())
        }

        fn copy_at(&self, _: DocumentId, heads: &[ChangeHash]) -> Option<AutoCommit> {
            let copy = self.docs.lock().unwrap().get(heads).cloned();
            if copy.is_some() {
                self.copied
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            copy
        }

        fn keep(&self, _: DocumentId, heads: Vec<ChangeHash>, doc: AutoCommit) {
            self.kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.docs.lock().unwrap().insert(heads, doc);
        }
    }

    /// With a sharing, a document loaded from its bytes is left for the others, one closed
    /// is handed over, and one reopened at heads the sharing has is a copy of that, taken
    /// as this device's.
    #[test]
    fn a_sharing_is_left_what_is_loaded_or_closed_and_copies_what_it_has() {
        use automerge::ReadDoc;
        use std::sync::atomic::Ordering::Relaxed;
        let id = DocumentId(uuid::Uuid::from_u128(16));
        let kept = Arc::new(Kept::default());
        let mut room = DocumentRoom::load(Some(&server_document(20).save()), []).unwrap();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        core.set_sharing(Some(kept.clone()));
        sync_with_room(&mut core, &mut room, id, true);
        assert!(!core.is_loaded(id));
        let at_first = core.heads(id).unwrap();
        core.document(id).unwrap();
        assert_eq!(
            kept.kept.load(Relaxed),
            1,
            "loaded from the bytes, then left"
        );
        assert!(kept.docs.lock().unwrap().contains_key(&at_first));
        core.edit(id, |doc| doc.put(automerge::ROOT, "mine", 1).unwrap())
            .unwrap();
        sync_with_room(&mut core, &mut room, id, true);
        let heads = core.heads(id).unwrap();
        assert!(core.close(id));
        assert_eq!(kept.kept.load(Relaxed), 2, "handed over on closing");
        assert!(kept.docs.lock().unwrap().contains_key(&heads));

        let mut reopened = core.document(id).unwrap().clone();
        assert_eq!(
            kept.copied.load(Relaxed),
            1,
            "a copy of what was handed over"
        );
        assert_eq!(kept.kept.load(Relaxed), 2, "not loaded from the bytes");
        assert_eq!(reopened.get_heads(), heads);
        assert_eq!(reopened.get_actor(), &ActorId::from(vec![1; 16]));

        // Closed again, a co-worker's two entries are added to the bytes; the sharing has
        // no document at the heads they bring, but has one at the heads before them: that,
        // with the two applied.
        assert!(core.close(id));
        let mut other = ClientCore::new(DeviceId(uuid::Uuid::from_u128(2)), vec![2; 16]);
        sync_as(&mut other, 2, &mut room, id, true);
        for key in ["theirs", "theirs again"] {
            other
                .edit(id, |doc| doc.put(automerge::ROOT, key, 2).unwrap())
                .unwrap();
        }
        sync_as(&mut other, 2, &mut room, id, true);
        sync_with_room(&mut core, &mut room, id, true);
        assert!(!core.is_loaded(id));
        let now = core.heads(id).unwrap();
        assert_eq!(now, other.heads(id).unwrap());
        assert!(!kept.docs.lock().unwrap().contains_key(&now));
        let (copied, kept_before) = (kept.copied.load(Relaxed), kept.kept.load(Relaxed));
        let mut reopened = core.document(id).unwrap().clone();
        assert_eq!(
            kept.copied.load(Relaxed),
            copied + 1,
            "from the earlier heads"
        );
        assert_eq!(
            kept.kept.load(Relaxed),
            kept_before + 1,
            "and left for others"
        );
        assert_eq!(reopened.get_heads(), now);
        assert!(
            reopened
                .get(automerge::ROOT, "theirs again")
                .unwrap()
                .is_some()
        );
        assert_eq!(reopened.get_actor(), &ActorId::from(vec![1; 16]));
    }

    /// Connects `core` and lets it and `room` exchange messages about `id` for ten rounds,
    /// telling the device the room's heads as stored after each round if `tell_persisted`.
    /// Returns the sync messages sent each way: (to the server, to the device).
    /// A room over [`server_document`] of `entries` entries, and device 1 synced with it
    /// ([`sync_with_room`]).
    fn room_and_synced_device(
        id: DocumentId,
        entries: usize,
        told: bool,
    ) -> (DocumentRoom, ClientCore) {
        let mut room = DocumentRoom::load(Some(&server_document(entries).save()), []).unwrap();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        sync_with_room(&mut core, &mut room, id, told);
        (room, core)
    }

    fn sync_with_room(
        core: &mut ClientCore,
        room: &mut DocumentRoom,
        id: DocumentId,
        tell_persisted: bool,
    ) -> (Vec<sync::Message>, Vec<sync::Message>) {
        sync_as(core, 1, room, id, tell_persisted)
    }

    /// [`sync_with_room`] for the device that is the room's peer `peer` (messages the room
    /// has for other peers meanwhile are dropped).
    fn sync_as(
        core: &mut ClientCore,
        peer: u64,
        room: &mut DocumentRoom,
        id: DocumentId,
        tell_persisted: bool,
    ) -> (Vec<sync::Message>, Vec<sync::Message>) {
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        let mut to_server = core.connected(0).send;
        to_server.extend(
            core.receive(
                0,
                ServerMessage::Welcome {
                    documents: vec![id],
                },
            )
            .unwrap()
            .send,
        );
        for _ in 0..10 {
            let mut answers = Vec::new();
            for message in to_server.drain(..) {
                if let ClientMessage::Sync { session, data, .. } = message {
                    sent.push(sync::Message::decode(&data).unwrap());
                    room.receive(peer, session, &data, &Limits::default())
                        .unwrap();
                }
            }
            for out in room.outgoing(0).into_iter().filter(|o| o.peer == peer) {
                received.push(sync::Message::decode(&out.data).unwrap());
                answers.push(ServerMessage::Sync {
                    doc: id,
                    session: out.session,
                    data: out.data,
                });
            }
            if tell_persisted {
                answers.push(ServerMessage::Persisted {
                    doc: id,
                    heads: room.heads(),
                });
            }
            for answer in answers {
                to_server.extend(core.receive(0, answer).unwrap().send);
            }
        }
        (sent, received)
    }

    /// A device that has restored document `id` as the server holds it (20 entries, all
    /// reported stored). Returns the device, the server's document and the bytes held.
    fn device_holding(id: DocumentId) -> (ClientCore, AutoCommit, Vec<u8>) {
        let mut server_doc = server_document(20);
        let held = server_doc.save();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        core.restore(
            id,
            std::slice::from_ref(&held),
            &heads_to_wire(&server_doc.get_heads()),
        )
        .unwrap();
        (core, server_doc, held)
    }

    /// Connects `core` and welcomes it with `id`: the one sync message it then sends for
    /// that document, as its session and bytes.
    fn first_message(core: &mut ClientCore, id: DocumentId) -> (u32, Vec<u8>) {
        core.connected(0);
        let out = core
            .receive(
                0,
                ServerMessage::Welcome {
                    documents: vec![id],
                },
            )
            .unwrap();
        let [ClientMessage::Sync { session, data, .. }] = &out.send[..] else {
            panic!("one sync message for the document held");
        };
        (*session, data.clone())
    }

    /// A device reconnecting with changes made offline sends them in its first message
    /// (the server told it which heads it stored), not after a round trip; the room takes
    /// them from that message, and the two end in step.
    #[test]
    fn a_reconnecting_device_sends_its_waiting_changes_at_once() {
        let id = DocumentId(uuid::Uuid::from_u128(12));
        let (mut core, _, held) = device_holding(id);
        let made = edit_offline(&mut core, id, 3);
        let (session, data) = first_message(&mut core, id);
        let first = sync::Message::decode(&data).unwrap();
        let carried: Vec<u8> = first.changes.iter().flatten().copied().collect();
        assert_eq!(
            carried,
            made.concat(),
            "the three changes, in the first message"
        );
        let mut room = DocumentRoom::load(Some(&held), []).unwrap();
        let received = room.receive(1, session, &data, &Limits::default()).unwrap();
        assert_eq!(received.new_changes.len(), 3);
        sync_with_room(&mut core, &mut room, id, true);
        assert!(core.in_step(id));
        assert_eq!(core.waiting_in(id), 0);
    }

    /// A device that believes the server stored more than the server now holds (restored
    /// from an older backup, say) still gets everything through: the server asks for what
    /// it lacks.
    #[test]
    fn a_server_lacking_what_it_reported_stored_is_brought_up_to_date() {
        let id = DocumentId(uuid::Uuid::from_u128(13));
        let mut server_doc = server_document(20);
        let older = server_doc.save();
        // The server stored one more change and said so; then lost it.
        let text = server_doc
            .put_object(automerge::ROOT, "lost", automerge::ObjType::Text)
            .unwrap();
        server_doc
            .splice_text(&text, 0, 0, "stored, then lost")
            .unwrap();
        server_doc.commit();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![1; 16]);
        core.restore(
            id,
            &[server_doc.save()],
            &heads_to_wire(&server_doc.get_heads()),
        )
        .unwrap();
        edit_offline(&mut core, id, 2);
        let mut room = DocumentRoom::load(Some(&older), []).unwrap();
        let (sent, _) = sync_with_room(&mut core, &mut room, id, true);
        assert_eq!(sent[0].changes.len(), 2, "the two new changes, at once");
        let device_heads = core.docs.get_mut(&id).unwrap().content.heads();
        assert_eq!(room.change_hashes(), device_heads, "the room has it all");
        assert!(core.in_step(id));
    }

    /// Makes `n` entries on the device, offline, saving each (as the change made: an
    /// increment of exactly its bytes); returns each change's bytes.
    fn edit_offline(core: &mut ClientCore, id: DocumentId, n: usize) -> Vec<Vec<u8>> {
        let mut made = Vec::new();
        for i in 0..n {
            let before = core.docs.get_mut(&id).unwrap().content.heads();
            core.edit(id, |doc| {
                let text = doc
                    .put_object(
                        automerge::ROOT,
                        format!("mine{i}"),
                        automerge::ObjType::Text,
                    )
                    .unwrap();
                doc.splice_text(&text, 0, 0, "written in a client's home, offline")
            })
            .unwrap()
            .0
            .unwrap();
            let d = core.docs.get_mut(&id).unwrap();
            let change = d.content.doc().get_changes(&before).pop().unwrap();
            made.push(change.raw_bytes().to_vec());
            let Some(Chunk::Incremental(stored)) = core.save(id).and_then(|s| s.chunk) else {
                panic!("an edit is saved as an increment");
            };
            assert_eq!(stored, made[i], "saved as made");
        }
        made
    }

    /// A device holding a document restarts, reconnects and is sent `added` new changes
    /// by the server. Returns the device, the id, the bytes it held, and the message.
    fn sent_new_changes(added: usize) -> (ClientCore, DocumentId, Vec<u8>, sync::Message) {
        let id = DocumentId(uuid::Uuid::from_u128(9));
        let (mut core, mut server_doc, held) = device_holding(id);
        let (_, data) = first_message(&mut core, id);
        // Nothing waits here: the first message summarises nothing beyond what the server
        // stored (no summary of the whole history), and the server answers with the rest.
        let first = sync::Message::decode(&data).unwrap();
        assert_eq!(first.have[0].last_sync, server_doc.get_heads());
        assert!(first.changes.is_empty());
        for i in 0..added {
            let text = server_doc
                .put_object(automerge::ROOT, format!("new{i}"), automerge::ObjType::Text)
                .unwrap();
            server_doc
                .splice_text(&text, 0, 0, "entered by a co-worker")
                .unwrap();
            server_doc.commit();
        }
        let mut state = sync::State::new();
        server_doc
            .sync()
            .receive_sync_message(&mut state, sync::Message::decode(&data).unwrap())
            .unwrap();
        let message = server_doc
            .sync()
            .generate_sync_message(&mut state)
            .expect("the server has changes for the device");
        assert!(!message.changes.is_empty());
        (core, id, held, message)
    }

    /// Hands the device `message` as the server's answer in its first session for `id`.
    fn from_server(core: &mut ClientCore, id: DocumentId, message: sync::Message) -> Output {
        let data = message.encode();
        core.receive(
            0,
            ServerMessage::Sync {
                doc: id,
                session: 1,
                data,
            },
        )
        .unwrap()
    }

    /// Changes that arrive are saved as the bytes that came, not extracted from the
    /// document again (extraction is a pass over the whole document), and load back.
    #[test]
    fn changes_that_arrive_are_stored_as_they_came() {
        let (mut core, id, held, mut message) = sent_new_changes(3);
        // The message also carries a change the device already has (taken in once): an
        // extraction would not write it, so what is stored shows where it came from.
        let mut came = AutoCommit::load(&held).unwrap().get_changes(&[])[0]
            .raw_bytes()
            .to_vec();
        came.extend(message.changes.iter().flatten());
        message.changes = came.clone().into();
        let out = from_server(&mut core, id, message);
        assert!(out.save.contains(&id));
        let Some(Chunk::Incremental(stored)) = core.save(id).and_then(|s| s.chunk) else {
            panic!("new changes are saved as an increment");
        };
        assert_eq!(stored, came, "stored as it came");
        let mut reloaded = AutoCommit::load(&held).unwrap();
        reloaded.load_incremental(&stored).unwrap();
        assert_eq!(
            reloaded.get_heads(),
            core.docs.get_mut(&id).unwrap().content.heads()
        );
        assert_eq!(reloaded.get_changes(&[]).len(), 20 + 3);
    }

    /// A holder that does not save (the load benchmarks' devices) keeps nothing of the
    /// messages after the first: what arrives is not gathered without bound.
    #[test]
    fn changes_are_kept_only_onto_the_document_as_saved() {
        let (mut core, id, _, message) = sent_new_changes(2);
        let data = message.encode();
        let sync = |data: Vec<u8>| ServerMessage::Sync {
            doc: id,
            session: 1,
            data,
        };
        core.receive(0, sync(data.clone())).unwrap();
        assert!(
            core.docs[&id].arrived.is_some(),
            "taken in onto the saved document"
        );
        core.receive(0, sync(data)).unwrap();
        assert!(
            core.docs[&id].arrived.is_none(),
            "not saved since the last message: nothing kept"
        );
    }

    /// An edit made here between the arrival and the save is saved too.
    #[test]
    fn an_edit_after_changes_arrive_is_saved_with_them() {
        let (mut core, id, held, message) = sent_new_changes(2);
        from_server(&mut core, id, message);
        let (put, _) = core
            .edit(id, |doc| doc.put(automerge::ROOT, "local", "kept"))
            .unwrap();
        put.unwrap();
        let Some(Chunk::Incremental(stored)) = core.save(id).and_then(|s| s.chunk) else {
            panic!("saved as an increment");
        };
        let mut reloaded = AutoCommit::load(&held).unwrap();
        reloaded.load_incremental(&stored).unwrap();
        let mut here = core.docs.get_mut(&id).unwrap().content.doc().clone();
        assert_eq!(reloaded.get_heads(), here.get_heads());
        assert_eq!(reloaded.get_changes(&[]).len(), 20 + 2 + 1);
    }

    /// Changes made here are kept as they were made until the server has stored them: they
    /// are saved and sent from those bytes, and forgotten once stored, those the server has
    /// not stored yet staying kept.
    #[test]
    fn own_changes_are_kept_until_the_server_has_stored_them() {
        let id = DocumentId(uuid::Uuid::from_u128(11));
        let (mut core, _, held) = device_holding(id);
        // Offline: three entries, each saved as made.
        let made = edit_offline(&mut core, id, 3);
        assert_eq!(core.docs[&id].own.len(), 3, "all three kept");

        // Reconnecting: the server (a room over what it stored) is sent the three changes,
        // and its answer, built at heads that include them, reports them stored.
        let mut room = DocumentRoom::load(Some(&held), []).unwrap();
        let (to_server, _) = sync_with_room(&mut core, &mut room, id, false);
        let carried: Vec<u8> = to_server
            .iter()
            .flat_map(|m| m.changes.iter().flatten().copied())
            .collect();
        assert_eq!(carried, made.concat(), "the three changes, as made");
        assert_eq!(
            core.waiting_in(id),
            0,
            "the server's answer reported them stored"
        );
        assert!(core.docs[&id].own.is_empty(), "all stored: none kept");

        // Again offline, three more; the server reports the first two stored: the third
        // stays kept.
        let (mut core, _, held) = device_holding(id);
        let made = edit_offline(&mut core, id, 3);
        let mut first_two = AutoCommit::load(&held).unwrap();
        first_two.load_incremental(&made[..2].concat()).unwrap();
        core.receive(
            0,
            ServerMessage::Persisted {
                doc: id,
                heads: heads_to_wire(&first_two.get_heads()),
            },
        )
        .unwrap();
        assert_eq!(core.waiting_in(id), 1);
        let d = core.docs.get_mut(&id).unwrap();
        let third = d.content.heads()[0];
        assert_eq!(d.own.len(), 1);
        assert!(d.own.get(&third).is_some(), "the one not stored");
        let mut all_three = first_two;
        all_three.load_incremental(&made[2]).unwrap();
        core.receive(
            0,
            ServerMessage::Persisted {
                doc: id,
                heads: heads_to_wire(&all_three.get_heads()),
            },
        )
        .unwrap();
        assert_eq!(core.waiting_in(id), 0);
        assert!(core.docs[&id].own.is_empty(), "all stored: none kept");
    }

    /// What the server sends is not work of this device's waiting to reach the server, even
    /// before the server says it stored it: a cover worker's fresh device taking in a
    /// caseload shows nothing waiting (it showed "500 changes waiting" as each chronology
    /// arrived, and a sign-out then would have kept the device's data as unsynced work and
    /// refused the next person's sign-in on it).
    #[test]
    fn what_the_server_sends_is_not_counted_as_waiting() {
        // A fresh device sent a whole document, and no `Persisted`.
        let id = DocumentId(uuid::Uuid::from_u128(14));
        let (mut room, mut core) = room_and_synced_device(id, 40, false);
        assert_eq!(
            core.docs.get_mut(&id).unwrap().content.heads(),
            room.change_hashes()
        );
        assert!(
            core.in_step(id),
            "the server's answer carried its stored heads, which the device now holds"
        );
        assert_eq!(core.waiting_in(id), 0, "nothing of this device's waits");

        // A device holding a document is sent a co-worker's new changes.
        let (mut core, id, _, message) = sent_new_changes(3);
        from_server(&mut core, id, message);
        assert_eq!(core.waiting_in(id), 0);
        // An edit made here after them waits, and only it.
        core.edit(id, |doc| doc.put(automerge::ROOT, "local", "mine"))
            .unwrap()
            .0
            .unwrap();
        assert_eq!(core.waiting_in(id), 1);
    }

    /// Whether anything of this device's waits is told from the heads, without counting,
    /// and agrees with the count: through changes from the server, edits made on top of
    /// them, and the server reporting them stored one at a time. The kept changes of this
    /// device's follow the same reports.
    #[test]
    fn whether_anything_waits_is_told_without_counting() {
        fn both(core: &mut ClientCore, id: DocumentId) -> (bool, usize) {
            let d = core.docs.get_mut(&id).unwrap();
            d.waiting_memo = None;
            let any = d.anything_waiting();
            d.waiting_memo = None;
            (any, d.waiting())
        }
        fn stored(core: &mut ClientCore, id: DocumentId, heads: &[ChangeHash]) {
            core.receive(
                0,
                ServerMessage::Persisted {
                    doc: id,
                    heads: heads_to_wire(heads),
                },
            )
            .unwrap();
        }
        let (mut core, id, _, message) = sent_new_changes(2);
        assert_eq!(both(&mut core, id), (false, 0));
        from_server(&mut core, id, message);
        assert_eq!(both(&mut core, id), (false, 0), "what came is not waiting");
        core.save(id);
        edit_offline(&mut core, id, 1);
        let first = core.heads(id).unwrap();
        edit_offline(&mut core, id, 1);
        let second = core.heads(id).unwrap();
        assert_eq!(both(&mut core, id), (true, 2));
        assert_eq!(core.docs[&id].own.len(), 2);

        stored(&mut core, id, &first);
        assert_eq!(both(&mut core, id), (true, 1), "the newer still waits");
        let own: Vec<ChangeHash> = core.docs[&id].own.hashes().copied().collect();
        assert_eq!(own, second, "only the newer is kept");

        stored(&mut core, id, &second);
        assert_eq!(both(&mut core, id), (false, 0));
        assert!(core.docs[&id].own.is_empty());
    }

    /// Every sync message the server sends is built from what it has stored and carries its
    /// heads: a device that then holds those heads knows that everything they include is
    /// stored, as a `Persisted` would have told it (the server no longer sends one to
    /// every device in the room after every change). It keeps them as its stored heads,
    /// across a restart too.
    #[test]
    fn a_server_message_whose_heads_the_device_reaches_tells_it_they_are_stored() {
        let (mut core, id, held, message) = sent_new_changes(3);
        let server_heads = message.heads.clone();
        from_server(&mut core, id, message);
        assert_eq!(core.persisted_heads(id), server_heads);
        assert!(core.in_step(id), "in step without a `Persisted`");
        assert_eq!(core.waiting_in(id), 0);
        let save = core.save(id).expect("something to save");
        assert_eq!(save.persisted, heads_to_wire(&server_heads));
        let Some(Chunk::Incremental(arrived)) = save.chunk else {
            panic!("what arrived is saved as an increment");
        };
        let mut restarted = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![2; 16]);
        restarted
            .restore(id, &[held, arrived], &save.persisted)
            .unwrap();
        assert_eq!(restarted.waiting_in(id), 0, "stored, and remembered so");
    }

    /// Work of this device's still counts as waiting when the server's changes arrive on
    /// top of it, and only it: the device holds the heads the message was built at, so
    /// what the server sent is taken as stored (as a `Persisted` of those heads would say),
    /// across a restart too; the entries made offline wait until the server reports heads
    /// that include them.
    #[test]
    fn own_waiting_work_is_counted_whatever_arrives() {
        let (mut core, id, held, message) = sent_new_changes(2);
        let mut server_heads = message.heads.clone();
        server_heads.sort();
        let mut saved = vec![held];
        saved.extend(edit_offline(&mut core, id, 2));
        assert_eq!(core.waiting_in(id), 2);
        from_server(&mut core, id, message);
        assert_eq!(
            core.persisted_heads(id),
            server_heads,
            "the message's heads"
        );
        assert_eq!(
            core.waiting_in(id),
            2,
            "the two entries made offline still wait"
        );
        assert!(!core.in_step(id), "the server has not yet stored them");
        let save = core.save(id).expect("something to save");
        let Some(Chunk::Incremental(arrived)) = save.chunk else {
            panic!("what arrived is saved as an increment");
        };
        saved.push(arrived);
        let mut restarted = ClientCore::new(DeviceId(uuid::Uuid::from_u128(1)), vec![2; 16]);
        restarted.restore(id, &saved, &save.persisted).unwrap();
        assert_eq!(restarted.waiting_in(id), 2, "only the entries made offline");
    }

    /// A device taking in a caseload (a cover worker's pickup) can take longer than
    /// [`RESYNC_AFTER_MS`] to work through the server's answers. While answers keep coming,
    /// the documents further back in the queue are not started afresh (each restart had the
    /// server send the document whole again and the device drop the answer already on its
    /// way, so a slow device fell further behind); once the connection goes quiet, a
    /// document still not in step is.
    #[test]
    fn documents_queued_behind_a_busy_connection_are_not_restarted() {
        let ids: Vec<DocumentId> = (1..=3u128)
            .map(|n| DocumentId(uuid::Uuid::from_u128(n)))
            .collect();
        let mut rooms: Vec<DocumentRoom> = (0..3)
            .map(|_| DocumentRoom::load(Some(&server_document(5).save()), []).unwrap())
            .collect();
        let mut core = ClientCore::new(DeviceId(uuid::Uuid::from_u128(9)), vec![9; 16]);
        core.connected(0);
        let first = core
            .receive(
                0,
                ServerMessage::Welcome {
                    documents: ids.clone(),
                },
            )
            .unwrap()
            .send;
        assert_eq!(first.len(), 3, "one first message a document");
        // The server answers all three; the device is slow to take them in.
        let mut answers = Vec::new();
        for (i, message) in first.into_iter().enumerate() {
            let ClientMessage::Sync { session, data, .. } = message else {
                panic!("a sync message");
            };
            rooms[i]
                .receive(1, session, &data, &Limits::default())
                .unwrap();
            for out in rooms[i].outgoing(0) {
                answers.push(ServerMessage::Sync {
                    doc: ids[i],
                    session: out.session,
                    data: out.data,
                });
            }
            answers.push(ServerMessage::Persisted {
                doc: ids[i],
                heads: rooms[i].heads(),
            });
        }
        let mut answers = answers.into_iter();
        let mut take_in = |core: &mut ClientCore, now: u64, n: usize| {
            for answer in answers.by_ref().take(n) {
                let out = core.receive(now, answer).unwrap();
                assert!(
                    out.send
                        .iter()
                        .all(|m| matches!(m, ClientMessage::Sync { session: 1, .. })),
                    "answers within the first session"
                );
            }
        };
        take_in(&mut core, 4_000, 2); // the first document, whole, and its stored heads
        assert!(
            core.tick(6_000).send.is_empty(),
            "answers are still coming: nothing is started afresh"
        );
        take_in(&mut core, 7_000, 2);
        assert!(core.tick(8_000).send.is_empty());
        take_in(&mut core, 9_000, 2);
        assert!(core.all_in_step());
        assert_eq!(core.docs[&ids[2]].session, 1, "still the first session");

        // A lost exchange: an edit whose message never reaches the server.
        core.edit(ids[0], |doc| {
            doc.put(automerge::ROOT, "lost", "on the way").unwrap();
        })
        .unwrap();
        // A co-worker's presence, repeated every few seconds, is not an answer.
        for at in [11_000, 13_000] {
            core.receive(
                at,
                ServerMessage::Presence {
                    doc: ids[1],
                    staff: crate::ids::StaffId(uuid::Uuid::from_u128(5)),
                    name: "Lee".into(),
                    section: String::new(),
                },
            )
            .unwrap();
        }
        assert!(core.tick(9_000 + RESYNC_AFTER_MS - 1).send.is_empty());
        let restarted = core.tick(9_000 + RESYNC_AFTER_MS).send;
        assert!(
            matches!(&restarted[..], [ClientMessage::Sync { doc, session: 2, .. }] if *doc == ids[0]),
            "a quiet connection and a document not in step: started afresh"
        );
    }
}
