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
}

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
}

impl DocumentRoom {
    /// A room over an empty document.
    pub fn empty() -> Self {
        Self {
            doc: AutoCommit::new(),
            peers: HashMap::new(),
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
        doc.apply_changes(changes)
            .map_err(|e| RoomError::Load(e.to_string()))?;
        Ok(Self {
            doc,
            peers: HashMap::new(),
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
        Ok(self.doc.get_heads() != before)
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
        let state = self.peers.entry(peer).or_insert_with(|| PeerState {
            session,
            sync: sync::State::new(),
        });
        if session < state.session {
            return Ok(Received {
                new_changes: Vec::new(),
                stale: true,
                created_records: 0,
                touched_records: BTreeSet::new(),
            });
        }
        if session > state.session {
            *state = PeerState {
                session,
                sync: sync::State::new(),
            };
        }
        let before = self.doc.get_heads();
        let records_before = automerge::ReadDoc::length(&self.doc, automerge::ROOT);
        let mut patches = automerge::PatchLog::active();
        self.doc
            .sync()
            .receive_sync_message_log_patches(&mut state.sync, message, &mut patches)?;
        // Which top-level records the message touched, so the caller can check just those
        // against the document's schema before storing anything.
        let touched_records: BTreeSet<String> = self
            .doc
            .make_patches(&mut patches)
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
            .collect();
        let new_changes = if self.doc.get_heads() == before {
            Vec::new()
        } else {
            self.doc.get_changes(&before)
        };
        if new_changes.len() > limits.max_changes_per_message {
            return Err(RoomError::TooManyChanges);
        }
        let created_records =
            automerge::ReadDoc::length(&self.doc, automerge::ROOT).saturating_sub(records_before);
        Ok(Received {
            new_changes,
            stale: false,
            created_records,
            touched_records,
        })
    }

    /// Sync messages owed to peers now (answers and fan-out). Call after storing what
    /// [`Self::receive`] returned.
    pub fn outgoing(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut peers: Vec<_> = self.peers.iter_mut().collect();
        peers.sort_by_key(|(id, _)| **id);
        for (&peer, state) in peers {
            if let Some(message) = self.doc.sync().generate_sync_message(&mut state.sync) {
                out.push(Outgoing {
                    peer,
                    session: state.session,
                    data: message.encode(),
                });
            }
        }
        out
    }

    /// Removes a peer (its connection closed).
    pub fn leave(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
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
        self.doc.save()
    }

    /// Every change hash in the document (what a snapshot taken now covers).
    pub fn all_change_hashes(&mut self) -> Vec<ChangeHash> {
        self.doc.get_changes(&[]).iter().map(|c| c.hash()).collect()
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
