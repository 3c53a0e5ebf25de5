//! One document on the server, with the sync state of every peer connected to it.
//!
//! The server calls [`DocumentRoom::receive`] with a peer's sync message, stores the
//! changes it returns in one transaction, and only then calls [`DocumentRoom::outgoing`] to
//! answer the sender and fan the new changes out to every other peer. Nothing leaves the
//! room about a change before the server has committed it, so a device never hears that the
//! server "has" a change the server could still lose.
//!
//! If `receive` fails the room may hold part of a message that was not stored: the server
//! must drop the room and load it again from storage.

use super::message::{Kept, Saved};
use crate::protocol::Head;
use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use std::collections::{BTreeSet, HashMap};

/// Identifies one connection (peer) to the room. Assigned by the server.
pub type PeerId = u64;

/// Caps applied to each incoming sync message.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most changes one message may bring.
    pub max_changes_per_message: usize,
    /// Most bytes of changes one message may bring.
    pub max_change_bytes_per_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_changes_per_message: 5_000,
            max_change_bytes_per_message: 4 * 1024 * 1024,
        }
    }
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The bytes are not a sync message.
    #[error("malformed sync message")]
    Malformed,
    /// The message brings more than [`Limits`] allow (checked before it is applied).
    #[error("sync message over the limits")]
    OverLimits,
    /// Applying the message added more changes than [`Limits`] allow (a compressed chunk can
    /// hold many). The room has applied them: it must be dropped and reloaded.
    #[error("sync message brought too many changes")]
    TooManyChanges,
    /// Automerge refused the message's changes.
    #[error("changes refused: {0}")]
    Refused(#[from] automerge::AutomergeError),
    /// Stored data did not load.
    #[error("stored document does not load: {0}")]
    Load(String),
}

struct PeerState {
    session: u32,
    sync: sync::State,
    /// When the peer was sent changes it has not answered yet (milliseconds).
    awaiting_since: Option<u64>,
    /// The stored heads the peer knows, once it has been told them in this session (see
    /// [`DocumentRoom::tell_stored`]).
    told: Option<Vec<ChangeHash>>,
}

impl PeerState {
    fn new(session: u32) -> Self {
        Self {
            session,
            sync: sync::State::new(),
            awaiting_since: None,
            told: None,
        }
    }
}

/// How long a peer that was sent changes is left to answer before it is sent more without
/// its answer (a device answers every message that brings it changes; this bounds the wait
/// if one does not).
pub const ACK_WAIT_MS: u64 = 3_000;

/// What one received message did.
#[derive(Debug, Default)]
pub struct Received {
    /// Changes that are new to the document, in an order that respects dependencies. The
    /// server must store all of them before calling [`DocumentRoom::outgoing`].
    pub new_changes: Vec<Change>,
    /// The message belonged to an older session of the peer and was ignored.
    pub stale: bool,
    /// How many new records (top-level entries) the changes created; zero means they only
    /// altered existing ones.
    pub created_records: usize,
    /// Keys of the top-level records the message added, changed or removed.
    pub touched_records: BTreeSet<String>,
}

/// A message to send to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The peer.
    pub peer: PeerId,
    /// The peer's session the message belongs to.
    pub session: u32,
    /// The encoded sync message.
    pub data: Vec<u8>,
}

/// A document and its connected peers.
pub struct DocumentRoom {
    doc: AutoCommit,
    peers: HashMap<PeerId, PeerState>,
    /// Peers that may be owed a message: the sender of the last message, and every peer
    /// once the document changed. A peer's sync state and the document both unchanged
    /// since its last message means it is owed nothing new, so [`Self::outgoing`] does not
    /// ask (asking every peer after every message cost a document with 25 devices 25
    /// message generations per acknowledgement).
    due: BTreeSet<PeerId>,
    /// The changes the last message added, kept until [`Self::outgoing`] passes them on.
    fresh: Option<Fresh>,
    /// Messages built by [`pass_on`] rather than by Automerge (for tests).
    passed_on: usize,
    /// Messages whose changes were parsed here rather than by Automerge (for tests).
    parsed_once: usize,
    /// The whole document encoded while it is unchanged (the snapshot it was loaded from, or
    /// the last encoding made), sent to a device that holds nothing of it (picking up a case)
    /// rather than a fresh encoding; and the changes that arrived recently, sent to devices
    /// behind rather than extracted from the document again for each.
    kept: Kept,
}

/// Changes just added to the document, as they arrived.
struct Fresh {
    /// The document's heads before them (sorted).
    before: Vec<ChangeHash>,
    hashes: Vec<ChangeHash>,
    bytes: Vec<Vec<u8>>,
}

/// The message `generate_sync_message` would produce for a peer that was in step with the
/// document just before `fresh` arrived (it had, and knew we had, exactly those heads): our
/// heads, a bloom filter of the fresh changes, and the fresh changes themselves, with the
/// peer's sync state updated the same way. Built from the changes as they arrived, where
/// Automerge would extract each of them again from the whole document for every peer (with
/// 25 devices on a chronology that was most of the server's work). `None` for any other
/// peer: those get Automerge's own message.
fn pass_on(
    state: &mut sync::State,
    fresh: &Fresh,
    heads: &[ChangeHash],
    changes_in_doc: usize,
) -> Option<sync::Message> {
    use super::message::same_heads;
    let in_step = state
        .their_heads
        .as_deref()
        .is_some_and(|h| same_heads(h, &fresh.before))
        && same_heads(&state.shared_heads, &fresh.before)
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
        && state.their_have.is_some()
        && !state.needs_reset
        && !state.read_only
        && !state.is_peer_read_only()
        // Automerge sends the whole document instead when a third of it is new.
        && fresh.hashes.len() * 3 <= changes_in_doc
        && fresh.hashes.iter().all(|h| !state.sent_hashes.contains(h));
    if !in_step {
        return None;
    }
    // As Automerge does: one chunk of the changes back to back for a peer that reads
    // version 2 messages, one chunk per change otherwise.
    let version = super::message::version_for(state);
    let changes = match version {
        sync::MessageVersion::V2 => vec![fresh.bytes.concat()],
        sync::MessageVersion::V1 => fresh.bytes.clone(),
    };
    super::message::mark_sent(state, heads, &fresh.hashes);
    Some(super::message::build(
        heads,
        fresh.before.clone(),
        &fresh.hashes,
        changes,
        version,
    ))
}

/// The changes the document gained since `before`, in an order that respects their
/// dependencies: the `parsed` changes the message brought when they are every one of them,
/// which saves Automerge extracting them again with a pass over the document; otherwise (a
/// change that waited for one of these, a whole document) extracted.
fn arrived(doc: &mut AutoCommit, before: &[ChangeHash], parsed: Vec<Change>) -> Vec<Change> {
    if doc.get_heads() == before {
        return Vec::new();
    }
    let gained: Vec<ChangeHash> = doc
        .get_changes_meta(before)
        .iter()
        .map(|c| c.hash)
        .collect();
    let mut by_hash: HashMap<ChangeHash, Change> =
        parsed.into_iter().map(|c| (c.hash(), c)).collect();
    gained
        .iter()
        .map(|h| by_hash.remove(h))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_else(|| doc.get_changes(before))
}

/// Keys of the top-level records `patches` add, change or remove, so the caller can check
/// just those against the document's schema before storing anything.
fn touched(patches: Vec<automerge::Patch>) -> BTreeSet<String> {
    patches
        .into_iter()
        .filter_map(|patch| match (patch.path.first(), &patch.action) {
            (Some((_, automerge::Prop::Map(key))), _) => Some(key.clone()),
            (
                None,
                automerge::PatchAction::PutMap { key, .. }
                | automerge::PatchAction::DeleteMap { key },
            ) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

impl DocumentRoom {
    /// A room over an empty document.
    pub fn empty() -> Self {
        Self {
            doc: AutoCommit::new(),
            peers: HashMap::new(),
            due: BTreeSet::new(),
            fresh: None,
            passed_on: 0,
            parsed_once: 0,
            kept: Kept::default(),
        }
    }

    /// A room over a stored document: an optional snapshot plus the changes stored after it.
    pub fn load<'a>(
        snapshot: Option<&[u8]>,
        changes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, RoomError> {
        let mut doc = match snapshot {
            Some(bytes) => AutoCommit::load(bytes).map_err(|e| RoomError::Load(e.to_string()))?,
            None => AutoCommit::new(),
        };
        let changes = changes
            .into_iter()
            .map(|bytes| Change::from_bytes(bytes.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RoomError::Load(e.to_string()))?;
        let mut kept = Kept {
            saved: match (snapshot, changes.is_empty()) {
                (Some(bytes), true) => Some(Saved::new(doc.get_heads(), bytes.to_vec())),
                _ => None,
            },
            ..Kept::default()
        };
        for change in &changes {
            kept.recent.add(change.hash(), change.raw_bytes().to_vec());
        }
        doc.apply_changes(changes)
            .map_err(|e| RoomError::Load(e.to_string()))?;
        super::forget_patches(&mut doc);
        Ok(Self {
            doc,
            peers: HashMap::new(),
            due: BTreeSet::new(),
            fresh: None,
            passed_on: 0,
            parsed_once: 0,
            kept,
        })
    }

    /// Takes in what another server instance stored (a snapshot and change rows read back
    /// from the shared database); returns whether the document gained anything. The peers'
    /// sync states then produce the new changes for them through [`DocumentRoom::outgoing`].
    pub fn absorb<'a>(
        &mut self,
        snapshot: Option<&[u8]>,
        changes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<bool, RoomError> {
        let before = self.doc.get_heads();
        if let Some(bytes) = snapshot {
            self.doc
                .load_incremental(bytes)
                .map_err(|e| RoomError::Load(e.to_string()))?;
        }
        let changes = changes
            .into_iter()
            .map(|bytes| Change::from_bytes(bytes.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RoomError::Load(e.to_string()))?;
        self.doc
            .apply_changes(changes)
            .map_err(|e| RoomError::Load(e.to_string()))?;
        super::forget_patches(&mut self.doc);
        let gained = self.doc.get_heads() != before;
        if gained {
            self.kept.saved = None;
            self.due.extend(self.peers.keys().copied());
            // Changes alone (no snapshot) are passed on to peers in step like changes a peer
            // sent: one extraction here rather than one per peer.
            self.fresh = if snapshot.is_none() {
                let new = self.doc.get_changes(&before);
                self.keep_recent(&new);
                let mut before = before;
                before.sort();
                Some(Fresh {
                    before,
                    hashes: new.iter().map(Change::hash).collect(),
                    bytes: new.iter().map(|c| c.raw_bytes().to_vec()).collect(),
                })
            } else {
                None
            };
        }
        Ok(gained)
    }

    /// Applies one sync message from `peer` in its `session`.
    pub fn receive(
        &mut self,
        peer: PeerId,
        session: u32,
        data: &[u8],
        limits: &Limits,
    ) -> Result<Received, RoomError> {
        let message = sync::Message::decode(data).map_err(|_| RoomError::Malformed)?;
        let bytes: usize = message.changes.iter().map(|c| c.len()).sum();
        if bytes > limits.max_change_bytes_per_message
            || message.changes.len() > limits.max_changes_per_message
        {
            return Err(RoomError::OverLimits);
        }
        let state = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerState::new(session));
        if session < state.session {
            return Ok(Received {
                stale: true,
                ..Received::default()
            });
        }
        if session > state.session {
            *state = PeerState::new(session);
        }
        state.awaiting_since = None;
        if message.changes.is_empty() {
            // Most messages: an answer to ours, with no change and so nothing to check.
            super::receive::receive(&mut self.doc, &mut state.sync, message)?;
            self.due.insert(peer);
            return Ok(Received::default());
        }
        let before = self.doc.get_heads();
        let records_before = automerge::ReadDoc::length(&self.doc, automerge::ROOT);
        let (new_changes, touched_records) =
            match super::chunk::parse_changes(message.changes.iter()) {
                // Changes (as devices send them): parsed once, here, and applied as parsed.
                Some(parsed) => {
                    self.parsed_once += 1;
                    self.doc.update_diff_cursor();
                    let taken = super::receive::receive_parsed(
                        &mut self.doc,
                        &mut state.sync,
                        message,
                        parsed.clone(),
                    );
                    let patches = self.doc.diff_incremental();
                    super::forget_patches(&mut self.doc);
                    taken?;
                    (arrived(&mut self.doc, &before, parsed), touched(patches))
                }
                // Anything else (a whole document): Automerge takes it in.
                None => {
                    let mut patches = automerge::PatchLog::active();
                    self.doc.sync().receive_sync_message_log_patches(
                        &mut state.sync,
                        message,
                        &mut patches,
                    )?;
                    let patches = self.doc.make_patches(&mut patches);
                    (
                        arrived(&mut self.doc, &before, Vec::new()),
                        touched(patches),
                    )
                }
            };
        if new_changes.len() > limits.max_changes_per_message {
            return Err(RoomError::TooManyChanges);
        }
        let created_records =
            automerge::ReadDoc::length(&self.doc, automerge::ROOT).saturating_sub(records_before);
        self.due.insert(peer);
        if !new_changes.is_empty() {
            self.kept.saved = None;
            self.keep_recent(&new_changes);
            self.due.extend(self.peers.keys().copied());
            let mut before = before;
            before.sort();
            self.fresh = Some(Fresh {
                before,
                hashes: new_changes.iter().map(Change::hash).collect(),
                bytes: new_changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
            });
        }
        Ok(Received {
            new_changes,
            stale: false,
            created_records,
            touched_records,
        })
    }

    /// Sync messages owed to peers now (answers and fan-out), at `now_ms`. Call after
    /// storing what [`Self::receive`] returned.
    ///
    /// A peer that was sent changes and has not answered yet is sent nothing more until it
    /// answers (or [`ACK_WAIT_MS`] pass): then one message brings it everything new since.
    /// Under load this is the backpressure: a device that falls behind gets fewer, larger
    /// messages instead of a queue of one message per change.
    pub fn outgoing(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let fresh = self.fresh.take();
        let heads = self.doc.get_heads();
        let changes_in_doc = automerge::ReadDoc::stats(&self.doc).num_changes as usize;
        let mut held = BTreeSet::new();
        for peer in std::mem::take(&mut self.due) {
            let Some(state) = self.peers.get_mut(&peer) else {
                continue;
            };
            if state
                .awaiting_since
                .is_some_and(|since| now_ms.saturating_sub(since) < ACK_WAIT_MS)
            {
                held.insert(peer);
                continue;
            }
            let message = match &fresh {
                Some(fresh) => pass_on(&mut state.sync, fresh, &heads, changes_in_doc)
                    .inspect(|_| self.passed_on += 1),
                None => None,
            }
            .or_else(|| {
                super::message::next_message_kept(
                    &mut self.doc,
                    &mut state.sync,
                    &mut self.kept.saved,
                    &self.kept.recent,
                )
            });
            if let Some(message) = message {
                // Changes that move the peer to new heads: it answers once it has them.
                let moves_peer = state
                    .sync
                    .their_heads
                    .as_deref()
                    .is_none_or(|theirs| !super::message::same_heads(theirs, &heads));
                if !message.changes.is_empty() && moves_peer {
                    state.awaiting_since = Some(now_ms);
                }
                // The message carries our heads, which the server has stored by now.
                if state.told.is_some() {
                    state.told = Some(heads.clone());
                }
                out.push(Outgoing {
                    peer,
                    session: state.session,
                    data: message.encode(),
                });
            }
        }
        // Still owed: asked again when they answer, or once the wait is over.
        self.due.extend(held);
        out
    }

    /// Keeps the bytes of changes that just arrived, for peers that are behind.
    fn keep_recent(&mut self, changes: &[Change]) {
        for change in changes {
            self.kept
                .recent
                .add(change.hash(), change.raw_bytes().to_vec());
        }
    }

    /// The document's heads, if `peer` is to be told they are stored (with `Persisted`):
    /// unless it knows them already. Call after storing and sending [`Self::outgoing`].
    ///
    /// Every sync message the server sends is built from what it has stored, and carries
    /// the heads it was built at; a device that then holds those heads takes them as
    /// stored. So a peer told once in its session learns the stored heads from the sync
    /// messages that follow, and needs `Persisted` only when none sent to it carried these
    /// heads (a sender's message is answered whenever Automerge has anything to say, and it
    /// has nothing to say only when the peer was last sent these heads: in practice this
    /// leaves once a session). The first telling of each session is always a `Persisted`,
    /// so a device that reads only `Persisted` still learns the stored heads once a session.
    pub fn tell_stored(&mut self, peer: PeerId) -> Option<Vec<Head>> {
        let heads = self.doc.get_heads();
        let state = self.peers.get_mut(&peer)?;
        if state.told.as_ref() == Some(&heads) {
            return None;
        }
        let wire = super::heads_to_wire(&heads);
        state.told = Some(heads);
        Some(wire)
    }

    /// Removes a peer (its connection closed).
    pub fn leave(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        self.due.remove(&peer);
    }

    /// Those of `hashes` the document does not hold (a lookup in its change graph).
    pub fn lacking(&mut self, hashes: &[ChangeHash]) -> Vec<ChangeHash> {
        let missing: BTreeSet<ChangeHash> = self.doc.get_missing_deps(hashes).into_iter().collect();
        hashes
            .iter()
            .filter(|h| missing.contains(h))
            .copied()
            .collect()
    }

    /// Whether the document holds changes it cannot apply yet (their dependencies are
    /// missing).
    pub fn waiting_for_changes(&mut self) -> bool {
        !self.doc.get_missing_deps(&[]).is_empty()
    }

    /// The sync session `peer` is in, if it has sent a message.
    pub fn session(&self, peer: PeerId) -> Option<u32> {
        self.peers.get(&peer).map(|p| p.session)
    }

    /// Peers currently in the room.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// The document's heads, in wire form.
    pub fn heads(&mut self) -> Vec<Head> {
        super::heads_to_wire(&self.doc.get_heads())
    }

    /// The document's heads.
    pub fn change_hashes(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The whole document, compacted, for a snapshot.
    pub fn save(&mut self) -> Vec<u8> {
        let bytes = self.doc.save();
        self.kept.saved = Some(Saved::new(self.doc.get_heads(), bytes.clone()));
        bytes
    }

    /// Every change hash in the document (what a snapshot taken now covers).
    pub fn all_change_hashes(&mut self) -> Vec<ChangeHash> {
        self.doc.get_changes(&[]).iter().map(|c| c.hash()).collect()
    }

    /// A peer's sync state (for tests).
    #[cfg(test)]
    pub(crate) fn peer_state(&self, peer: PeerId) -> Option<&sync::State> {
        self.peers.get(&peer).map(|p| &p.sync)
    }

    /// Read access to the document (for projections and tests).
    pub fn document(&self) -> &AutoCommit {
        &self.doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn message_with_changes(n: usize) -> Vec<u8> {
        let mut doc = AutoCommit::new();
        for i in 0..n {
            doc.put(automerge::ROOT, format!("k{i}"), i as i64).unwrap();
            doc.commit();
        }
        let mut state = sync::State::new();
        // First message advertises heads; answer as an empty peer would, then take the changes.
        let mut empty = AutoCommit::new();
        let mut empty_state = sync::State::new();
        let first = doc.sync().generate_sync_message(&mut state).unwrap();
        empty
            .sync()
            .receive_sync_message(&mut empty_state, first)
            .unwrap();
        let reply = empty
            .sync()
            .generate_sync_message(&mut empty_state)
            .unwrap();
        doc.sync().receive_sync_message(&mut state, reply).unwrap();
        doc.sync()
            .generate_sync_message(&mut state)
            .unwrap()
            .encode()
    }

    /// A device: its document and its sync state with the room.
    struct Device {
        doc: AutoCommit,
        state: sync::State,
    }

    impl Device {
        /// A device holding nothing.
        fn fresh() -> Self {
            Device {
                doc: AutoCommit::new(),
                state: sync::State::new(),
            }
        }

        /// Takes in one message from the room.
        fn hear(&mut self, data: &[u8]) {
            let m = sync::Message::decode(data).unwrap();
            self.doc
                .sync()
                .receive_sync_message(&mut self.state, m)
                .unwrap();
        }

        /// Its next message, encoded.
        fn say(&mut self) -> Vec<u8> {
            self.doc
                .sync()
                .generate_sync_message(&mut self.state)
                .unwrap()
                .encode()
        }
    }

    /// Exchanges messages between the room and `devices` until nobody has more to say.
    fn settle(room: &mut DocumentRoom, devices: &mut [Device]) {
        for _ in 0..20 {
            let mut quiet = true;
            for (i, d) in devices.iter_mut().enumerate() {
                if let Some(m) = d.doc.sync().generate_sync_message(&mut d.state) {
                    quiet = false;
                    room.receive(i as PeerId, 1, &m.encode(), &Limits::default())
                        .unwrap();
                }
            }
            for out in room.outgoing(0) {
                quiet = false;
                devices[out.peer as usize].hear(&out.data);
            }
            if quiet {
                return;
            }
        }
        panic!("the room and its devices never settled");
    }

    #[test]
    fn a_change_is_passed_on_to_peers_in_step_exactly_as_automerge_would_send_it() {
        let mut room = DocumentRoom::empty();
        let mut devices: Vec<Device> = (0..3).map(|_| Device::fresh()).collect();
        for n in 0..5 {
            devices[0]
                .doc
                .put(automerge::ROOT, format!("k{n}"), n)
                .unwrap();
            devices[0].doc.commit();
        }
        settle(&mut room, &mut devices);
        // Device 0 writes again; the others were in step.
        devices[0].doc.put(automerge::ROOT, "b", 2).unwrap();
        devices[0].doc.commit();
        let writer = &mut devices[0];
        let m = writer
            .doc
            .sync()
            .generate_sync_message(&mut writer.state)
            .unwrap();
        room.receive(0, 1, &m.encode(), &Limits::default()).unwrap();
        // What Automerge itself would send to device 1, from a copy of its state.
        let mut copy = room.peers[&1].sync.clone();
        let expected = room.doc.sync().generate_sync_message(&mut copy).unwrap();
        let out = room.outgoing(0);
        assert_eq!(room.passed_on, 2, "devices 1 and 2 were in step");
        let to_1 = out
            .iter()
            .find(|o| o.peer == 1)
            .expect("device 1 is sent the change");
        assert_eq!(to_1.data, expected.encode());
        assert_eq!(room.peers[&1].sync.sent_hashes, copy.sent_hashes);
        assert_eq!(room.peers[&1].sync.last_sent_heads, copy.last_sent_heads);
        for out in out {
            devices[out.peer as usize].hear(&out.data);
        }
        settle(&mut room, &mut devices);
        for d in &mut devices {
            assert_eq!(d.doc.get_heads(), room.doc.get_heads());
        }
    }

    #[test]
    fn a_device_holding_nothing_is_sent_the_stored_snapshot_as_it_is() {
        let mut source = AutoCommit::new();
        for n in 0..30 {
            source.put(automerge::ROOT, format!("k{n}"), n).unwrap();
            source.commit();
        }
        // Bytes that load to the same document but are not what `save()` makes now: the
        // room must send these, not a fresh encoding.
        let mut stored = source.save();
        stored.extend(source.save_after(&[]));
        assert_ne!(stored, source.save());
        let mut room = DocumentRoom::load(Some(&stored), std::iter::empty()).unwrap();
        let mut fresh = Device::fresh();
        room.receive(1, 1, &fresh.say(), &Limits::default())
            .unwrap();
        let out = room.outgoing(0);
        let message = sync::Message::decode(&out[0].data).unwrap();
        assert_eq!(message.changes.len(), 1);
        assert_eq!(message.changes.iter().next().unwrap(), &stored[..]);
        fresh
            .doc
            .sync()
            .receive_sync_message(&mut fresh.state, message)
            .unwrap();
        let mut devices = vec![Device::fresh(), fresh];
        settle(&mut room, &mut devices);
        assert_eq!(devices[1].doc.get_heads(), source.get_heads());

        // Once the document changes, the next fresh device gets a fresh encoding of it.
        devices[1].doc.put(automerge::ROOT, "later", 1).unwrap();
        devices[1].doc.commit();
        settle(&mut room, &mut devices);
        let mut late = Device::fresh();
        room.receive(2, 1, &late.say(), &Limits::default()).unwrap();
        let mut copy = room.peers[&2].sync.clone();
        let expected = room.doc.sync().generate_sync_message(&mut copy).unwrap();
        let out = room.outgoing(0);
        assert_eq!(out[0].data, expected.encode(), "as Automerge would send it");
        assert_eq!(room.peers[&2].sync, copy);
    }

    /// Backpressure: a device that has not answered the changes it was sent is sent nothing
    /// more until it answers, and then everything new in one message; one that never
    /// answers is sent the rest once the wait is over.
    #[test]
    fn a_device_behind_gets_one_message_with_everything_once_it_answers() {
        let limits = Limits::default();
        let mut room = DocumentRoom::empty();
        let mut devices: Vec<Device> = (0..2).map(|_| Device::fresh()).collect();
        devices[0].doc.put(automerge::ROOT, "first", 0).unwrap();
        devices[0].doc.commit();
        settle(&mut room, &mut devices);
        let write = |room: &mut DocumentRoom, writer: &mut Device, n: i64, now: u64| {
            writer.doc.put(automerge::ROOT, format!("k{n}"), n).unwrap();
            writer.doc.commit();
            let m = writer
                .doc
                .sync()
                .generate_sync_message(&mut writer.state)
                .unwrap();
            room.receive(0, 1, &m.encode(), &limits).unwrap();
            let out = room.outgoing(now);
            for o in out.iter().filter(|o| o.peer == 0) {
                writer.hear(&o.data);
            }
            out.into_iter().filter(|o| o.peer == 1).collect::<Vec<_>>()
        };
        let (writer, reader) = devices.split_at_mut(1);
        let (writer, reader) = (&mut writer[0], &mut reader[0]);
        // The first change goes to the reader; it does not answer yet.
        let first = write(&mut room, writer, 1, 1_000);
        assert_eq!(first.len(), 1, "the first change is sent at once");
        // Three more changes while its answer is outstanding: nothing is sent to it.
        for n in 2..5 {
            assert!(write(&mut room, writer, n, 1_000 + n as u64).is_empty());
        }
        // It takes in the first message and answers: one message brings the other three.
        reader.hear(&first[0].data);
        let answer = reader
            .doc
            .sync()
            .generate_sync_message(&mut reader.state)
            .unwrap();
        room.receive(1, 1, &answer.encode(), &limits).unwrap();
        let out = room.outgoing(1_010);
        assert_eq!(out.len(), 1);
        reader.hear(&out[0].data);
        assert_eq!(
            reader.doc.get_heads(),
            room.doc.get_heads(),
            "the one message brought the three held changes"
        );
        assert_eq!(automerge::ReadDoc::length(&reader.doc, automerge::ROOT), 5);
        let answer = reader
            .doc
            .sync()
            .generate_sync_message(&mut reader.state)
            .unwrap();
        room.receive(1, 1, &answer.encode(), &limits).unwrap();
        assert!(room.outgoing(1_020).iter().all(|o| o.peer != 1 || {
            let m = sync::Message::decode(&o.data).unwrap();
            m.changes.is_empty()
        }));

        // A reader that never answers is sent the next change once the wait is over.
        let held = write(&mut room, writer, 5, 2_000);
        assert_eq!(held.len(), 1);
        assert!(write(&mut room, writer, 6, 2_000 + ACK_WAIT_MS - 1).is_empty());
        assert_eq!(write(&mut room, writer, 7, 2_000 + ACK_WAIT_MS).len(), 1);
    }

    /// A peer is told the stored heads once a session; after that the sync messages it is
    /// sent carry them, and it is told again only heads no message to it carried.
    #[test]
    fn a_peer_is_told_the_stored_heads_its_messages_did_not_carry() {
        let limits = Limits::default();
        let mut room = DocumentRoom::empty();
        let mut devices: Vec<Device> = (0..3).map(|_| Device::fresh()).collect();
        devices[0].doc.put(automerge::ROOT, "first", 0).unwrap();
        devices[0].doc.commit();
        settle(&mut room, &mut devices[..2]);
        let heads = room.heads();
        assert_eq!(
            room.tell_stored(0),
            Some(heads.clone()),
            "first in the session"
        );
        assert_eq!(room.tell_stored(0), None, "already told");
        assert_eq!(room.tell_stored(1), Some(heads.clone()));
        assert_eq!(room.tell_stored(2), None, "not in the room");

        // Device 0 writes; device 1 is passed the change, device 2 joins and is sent all.
        devices[0].doc.put(automerge::ROOT, "second", 1).unwrap();
        devices[0].doc.commit();
        let m = devices[0].say();
        room.receive(0, 1, &m, &limits).unwrap();
        let joining = devices[2].say();
        room.receive(2, 1, &joining, &limits).unwrap();
        let out = room.outgoing(0);
        let now = room.change_hashes();
        for peer in [0, 1, 2] {
            let to_peer = out.iter().find(|o| o.peer == peer).expect("each is sent");
            let message = sync::Message::decode(&to_peer.data).unwrap();
            assert_eq!(message.heads, now, "each message carries the heads");
        }
        assert_eq!(room.tell_stored(0), None, "its answer carried the heads");
        assert_eq!(room.tell_stored(1), None, "the change came at those heads");
        assert_eq!(
            room.tell_stored(2),
            Some(room.heads()),
            "never told this session: told once"
        );
        assert_ne!(room.heads(), heads);

        // A new session of device 1 starts over.
        let mut restarted = sync::State::new();
        let m = devices[1].doc.sync().generate_sync_message(&mut restarted);
        room.receive(1, 2, &m.unwrap().encode(), &limits).unwrap();
        room.outgoing(0);
        assert_eq!(room.tell_stored(1), Some(room.heads()));
    }

    #[test]
    fn new_changes_are_handed_back_for_storage() {
        let mut room = DocumentRoom::empty();
        let received = room
            .receive(1, 1, &message_with_changes(3), &Limits::default())
            .unwrap();
        assert_eq!(received.new_changes.len(), 3);
        assert!(!received.stale);
    }

    #[test]
    fn changes_are_taken_in_and_handed_back_as_automerge_would() {
        // Three devices writing records (maps with a text inside) concurrently, some of their
        // messages delivered late, so the room gains changes one at a time, several at once,
        // and changes that waited for others. After every message the room's document, the
        // sender's sync state and the records it reports touched are what Automerge's own
        // receive (which parses the changes itself) gives, and the changes it hands back for
        // storage are what Automerge extracts for the same heads, byte for byte and in the
        // same order.
        use automerge::ObjType;
        let mut room = DocumentRoom::empty();
        let mut devices: Vec<Device> = (0..3).map(|_| Device::fresh()).collect();
        let mut held: Vec<(usize, Vec<u8>)> = Vec::new();
        let (mut touched_any, mut gained) = (0, 0);
        for round in 0..30 {
            for (i, d) in devices.iter_mut().enumerate() {
                for n in 0..(round + i) % 3 {
                    let key = format!("r{}", (round * 7 + i * 3 + n) % 11);
                    match automerge::ReadDoc::get(&d.doc, automerge::ROOT, &key).unwrap() {
                        Some((_, record)) if n % 2 == 0 => {
                            d.doc.put(&record, "seen", round as i64).unwrap();
                            if let Some((_, text)) =
                                automerge::ReadDoc::get(&d.doc, &record, "note").unwrap()
                            {
                                d.doc.splice_text(&text, 0, 0, "more ").unwrap();
                            }
                        }
                        _ => {
                            let record = d
                                .doc
                                .put_object(automerge::ROOT, &key, ObjType::Map)
                                .unwrap();
                            let text = d.doc.put_object(&record, "note", ObjType::Text).unwrap();
                            d.doc.splice_text(&text, 0, 0, "a visit note").unwrap();
                        }
                    }
                    d.doc.commit();
                }
                if round % 9 == 4 {
                    d.doc.delete(automerge::ROOT, format!("r{i}")).unwrap();
                    d.doc.commit();
                }
                if let Some(m) = d.doc.sync().generate_sync_message(&mut d.state) {
                    held.push((i, m.encode()));
                }
            }
            while !held.is_empty() {
                let (i, data) = if round % 4 == 0 {
                    held.pop().unwrap()
                } else {
                    held.remove(0)
                };
                let peer = i as PeerId;
                let mut expected_doc = room.doc.clone();
                let mut expected_state = room
                    .peer_state(peer)
                    .cloned()
                    .unwrap_or_else(sync::State::new);
                let mut log = automerge::PatchLog::active();
                expected_doc
                    .sync()
                    .receive_sync_message_log_patches(
                        &mut expected_state,
                        sync::Message::decode(&data).unwrap(),
                        &mut log,
                    )
                    .unwrap();
                let expected_touched = touched(expected_doc.make_patches(&mut log));
                let before = room.change_hashes();
                let received = room.receive(peer, 1, &data, &Limits::default()).unwrap();
                assert_eq!(room.doc.get_heads(), expected_doc.get_heads());
                assert_eq!(room.peer_state(peer), Some(&expected_state));
                assert_eq!(received.touched_records, expected_touched);
                touched_any += usize::from(!expected_touched.is_empty());
                let expected = room.document().clone().get_changes(&before);
                let bytes = |changes: &[Change]| -> Vec<Vec<u8>> {
                    changes.iter().map(|c| c.raw_bytes().to_vec()).collect()
                };
                assert_eq!(bytes(&received.new_changes), bytes(&expected));
                gained += received.new_changes.len();
                for out in room.outgoing(0) {
                    devices[out.peer as usize].hear(&out.data);
                }
            }
        }
        assert!(touched_any > 30, "{touched_any}");
        assert!(gained > 30, "{gained}");
        assert!(room.parsed_once > 30, "{}", room.parsed_once);
    }

    #[test]
    fn a_message_over_the_limits_leaves_the_document_untouched() {
        let mut room = DocumentRoom::empty();
        let limits = Limits {
            max_changes_per_message: 1,
            ..Limits::default()
        };
        let message = message_with_changes(3);
        let result = room.receive(1, 1, &message, &limits);
        assert!(matches!(
            result,
            Err(RoomError::OverLimits | RoomError::TooManyChanges)
        ));
        if matches!(result, Err(RoomError::OverLimits)) {
            assert!(room.change_hashes().is_empty(), "refused before applying");
        }
        let tiny = Limits {
            max_change_bytes_per_message: 1,
            ..Limits::default()
        };
        let mut room = DocumentRoom::empty();
        assert!(matches!(
            room.receive(1, 1, &message, &tiny),
            Err(RoomError::OverLimits)
        ));
        assert!(room.change_hashes().is_empty());
    }

    #[test]
    fn garbage_is_malformed() {
        let mut room = DocumentRoom::empty();
        assert!(matches!(
            room.receive(1, 1, &[0x42, 1, 2, 3], &Limits::default()),
            Err(RoomError::Malformed)
        ));
    }

    #[test]
    fn messages_of_an_older_session_are_ignored() {
        let mut room = DocumentRoom::empty();
        room.receive(1, 5, &message_with_changes(1), &Limits::default())
            .unwrap();
        let old = room
            .receive(1, 4, &message_with_changes(2), &Limits::default())
            .unwrap();
        assert!(old.stale);
        assert!(old.new_changes.is_empty());
    }
}
