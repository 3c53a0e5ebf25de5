//! A device's copy of a document, loaded into Automerge only when something needs more than
//! its heads.
//!
//! Loading a saved document costs Automerge a rebuild of every change in it. A device
//! picking up a caseload is sent a thousand documents whole, and reopening the app restores
//! each from storage; in the browser those loads were most of a pickup (5 of the 6.5 s
//! after the welcome, measured), though most of the documents are not opened that day.
//! [`Content`] keeps such a document as the saved bytes and the heads their header names
//! until it is read or edited, or changes arrive that do not simply follow its heads (those
//! that do are added to the bytes, [`Content::append`]); being in step, counting what
//! waits, acknowledging the server and saving need only the heads and the bytes (see
//! `ClientCore`). The server does the same for the documents it answers from a snapshot
//! ([`super::quiet`]).
//!
//! A loaded document keeps the bytes it was loaded from: Automerge documents only grow, so
//! those bytes and the changes since are always the document, and [`Content::close`] puts
//! it back to bytes without saving it again (the benchmarks' simulated devices close each
//! record once nothing of theirs waits in it, as a worker closes a record after writing).
//! A [`Sharing`] given to the content loads it as a copy of a document another device
//! already has at the same heads.

use super::chunk;
use super::receive::Sharing;
use crate::ids::DocumentId;
use automerge::{ActorId, AutoCommit, ChangeHash};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// A document, loaded or not yet.
pub(crate) struct Content {
    loaded: OnceCell<AutoCommit>,
    /// While not loaded: what to load. Once loaded from it, kept: the document then holds
    /// these bytes' changes and the ones since, so it can be put back to bytes
    /// ([`Content::close`]) without being saved again.
    saved: Option<Saved>,
    /// Loads with, when given (see [`Sharing`]), as this document.
    sharing: Option<(Arc<dyn Sharing>, DocumentId)>,
    /// Changes taken in or made since it was loaded from `saved`, as their bytes came
    /// (change chunks back to back; up to [`ADDED_LIMIT`] bytes): put back to bytes with
    /// it ([`Content::close`]) rather than extracted from the document again, which
    /// rebuilds them from its operations. Cut apart only when closing.
    added: Vec<Vec<u8>>,
    added_bytes: usize,
}

/// The most bytes of changes kept in [`Content::added`]; past it, closing extracts them.
const ADDED_LIMIT: usize = 256 * 1024;

struct Saved {
    bytes: Vec<u8>,
    /// The heads the bytes bring a document to, sorted.
    heads: Vec<ChangeHash>,
    /// Changes known to be held: every head it has had while not loaded (the peer's
    /// summary of what it has starts from heads we had), every change added to the bytes.
    had: HashSet<ChangeHash>,
    /// The actor the document writes with once loaded.
    actor: ActorId,
    /// A few heads it had before changes were added to the bytes, with the length of the
    /// bytes then, newest last: a document another device holds at one of those heads,
    /// with the bytes added since applied, is this one (see [`Content::read`]).
    earlier: VecDeque<(Vec<ChangeHash>, usize)>,
}

/// How many earlier heads [`Saved`] remembers.
const EARLIER: usize = 8;

impl Saved {
    fn remember_heads(&mut self) {
        if self.earlier.len() == EARLIER {
            self.earlier.pop_front();
        }
        self.earlier
            .push_back((self.heads.clone(), self.bytes.len()));
    }
}

impl Content {
    /// A document already in Automerge.
    pub(crate) fn loaded(doc: AutoCommit) -> Self {
        Self {
            loaded: OnceCell::from(doc),
            saved: None,
            sharing: None,
            added: Vec::new(),
            added_bytes: 0,
        }
    }

    /// `bytes` kept unloaded, if they are one saved, non-empty document whose checksum
    /// holds (so a damaged one is found now, by the caller loading it, not when opened);
    /// otherwise the bytes back. Loaded with `sharing` when given.
    pub(crate) fn unloaded(
        bytes: Vec<u8>,
        actor: ActorId,
        sharing: Option<(Arc<dyn Sharing>, DocumentId)>,
    ) -> Result<Self, Vec<u8>> {
        match chunk::document_heads(&bytes) {
            Some(heads) if !heads.is_empty() && checksum_holds(&bytes) => Ok(Self {
                loaded: OnceCell::new(),
                saved: Some(Saved {
                    bytes,
                    had: heads.iter().copied().collect(),
                    heads,
                    actor,
                    earlier: VecDeque::new(),
                }),
                sharing,
                added: Vec::new(),
                added_bytes: 0,
            }),
            _ => Err(bytes),
        }
    }

    /// The heads, if the document is not loaded (sorted, as `get_heads` gives them).
    pub(crate) fn unloaded_heads(&self) -> Option<&[ChangeHash]> {
        match (self.loaded.get(), &self.saved) {
            (None, Some(saved)) => Some(&saved.heads),
            _ => None,
        }
    }

    /// Adds changes (their bytes as they came, with their hashes) to a document not
    /// loaded, which they bring to `heads` (sorted): the caller has checked that each
    /// applies. On a loaded document nothing is done: the caller applies the changes to it.
    pub(crate) fn append(
        &mut self,
        changes: &[u8],
        hashes: impl IntoIterator<Item = ChangeHash>,
        heads: Vec<ChangeHash>,
    ) {
        if self.loaded.get().is_none()
            && let Some(saved) = &mut self.saved
        {
            saved.remember_heads();
            saved.bytes.extend_from_slice(changes);
            saved.had.extend(hashes);
            saved.had.extend(heads.iter().copied());
            saved.heads = heads;
        }
    }

    /// Whether a document not loaded is known to hold every one of `hashes` (each is, or
    /// was, one of its heads, or was added since it was kept). `false` when loaded: ask the
    /// document.
    pub(crate) fn known_to_hold(&self, hashes: &[ChangeHash]) -> bool {
        match (self.loaded.get(), &self.saved) {
            (None, Some(saved)) => hashes.iter().all(|h| saved.had.contains(h)),
            _ => false,
        }
    }

    /// Notes changes made on, or taken in onto, the loaded document (`bytes`, change chunks
    /// back to back, as encoded or as they came), for [`Content::close`].
    pub(crate) fn added(&mut self, bytes: &[u8]) {
        if self.is_loaded() && self.saved.is_some() && self.added_bytes + bytes.len() <= ADDED_LIMIT
        {
            self.added_bytes += bytes.len();
            self.added.push(bytes.to_vec());
        }
    }

    /// Whether the document is in Automerge.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// The heads, without loading the document.
    pub(crate) fn heads(&mut self) -> Vec<ChangeHash> {
        match self.unloaded_heads() {
            Some(heads) => heads.to_vec(),
            None => self.doc().get_heads(),
        }
    }

    /// The document, loaded if it was not.
    pub(crate) fn doc(&mut self) -> &mut AutoCommit {
        self.read();
        self.loaded.get_mut().expect("loaded by read")
    }

    /// The document for reading, loaded if it was not: a copy of one at its heads when
    /// the sharing has one, otherwise from the bytes (and then left for the sharing).
    pub(crate) fn read(&self) -> &AutoCommit {
        self.loaded.get_or_init(|| {
            let saved = self
                .saved
                .as_ref()
                .expect("a document is loaded or has its saved bytes");
            let sharing = self.sharing.as_ref().map(|(s, id)| (&**s, *id));
            if let Some(mut copy) = sharing.and_then(|(s, id)| s.copy_at(id, &saved.heads)) {
                copy.set_actor(saved.actor.clone());
                return copy;
            }
            // A document at earlier heads, and the bytes added since: a few changes to
            // apply rather than the whole document to load.
            for (heads, len) in saved.earlier.iter().rev() {
                let Some(mut copy) = sharing.and_then(|(s, id)| s.copy_at(id, heads)) else {
                    continue;
                };
                copy.set_actor(saved.actor.clone());
                if copy.load_incremental(&saved.bytes[*len..]).is_ok()
                    && copy.get_heads() == saved.heads
                {
                    super::forget_patches(&mut copy);
                    if let Some((sharing, id)) = sharing {
                        sharing.keep(id, saved.heads.clone(), copy.clone());
                    }
                    return copy;
                }
            }
            let mut doc = AutoCommit::new().with_actor(saved.actor.clone());
            // The bytes are one saved document whose checksum held when they were taken,
            // and changes that applied to it; loading them is what taking them in would
            // have done.
            if doc.load_incremental(&saved.bytes).is_err() {
                doc = AutoCommit::new().with_actor(saved.actor.clone());
            }
            super::forget_patches(&mut doc);
            if let Some((sharing, id)) = sharing
                && doc.get_heads() == saved.heads
            {
                sharing.keep(id, saved.heads.clone(), doc.clone());
            }
            doc
        })
    }

    /// Puts a loaded document back to bytes (those it was loaded from and the changes it
    /// took in or made since, or a save when it was never kept as bytes) and drops it from
    /// Automerge, leaving it for the sharing, if any; as when a record is closed. Returns
    /// whether it is now unloaded: a document with a change waiting for a dependency stays
    /// loaded (the bytes could not say what waits), and so does an empty one (kept bytes
    /// always hold a change, as [`Content::unloaded`] requires).
    pub(crate) fn close(&mut self) -> bool {
        let Some(doc) = self.loaded.get_mut() else {
            return true;
        };
        let heads = doc.get_heads();
        if heads.is_empty() || !doc.get_missing_deps(&[]).is_empty() {
            return false;
        }
        match &mut self.saved {
            // What it was loaded from, and the changes since.
            Some(saved) if doc.get_missing_deps(&saved.heads).is_empty() => {
                if saved.heads != heads {
                    saved.remember_heads();
                    // The changes since, as noted when they came or were made, if every
                    // one was; otherwise extracted from the document.
                    let since: Vec<ChangeHash> = doc
                        .get_changes_meta(&saved.heads)
                        .iter()
                        .map(|c| c.hash)
                        .collect();
                    let mut noted: HashMap<ChangeHash, &[u8]> = HashMap::new();
                    for bytes in &self.added {
                        if let (Some(pieces), Some(headers)) =
                            (chunk::change_chunks(bytes), chunk::change_headers(bytes))
                        {
                            noted.extend(headers.into_iter().map(|(h, _)| h).zip(pieces));
                        }
                    }
                    if since.iter().all(|h| noted.contains_key(h)) {
                        for hash in since {
                            saved.bytes.extend_from_slice(noted[&hash]);
                            saved.had.insert(hash);
                        }
                    } else {
                        for change in doc.get_changes(&saved.heads) {
                            saved.bytes.extend_from_slice(change.raw_bytes());
                            saved.had.insert(change.hash());
                        }
                    }
                    saved.heads.clone_from(&heads);
                }
            }
            // Never kept as bytes (made here, or restored from several chunks), or bytes
            // that did not load.
            _ => {
                self.saved = Some(Saved {
                    bytes: doc.save(),
                    had: heads.iter().copied().collect(),
                    heads: heads.clone(),
                    actor: doc.get_actor().clone(),
                    earlier: VecDeque::new(),
                });
            }
        }
        self.added.clear();
        self.added_bytes = 0;
        let doc = self.loaded.take().expect("loaded");
        if let Some((sharing, id)) = &self.sharing {
            sharing.keep(*id, heads, doc);
        }
        true
    }
}

/// Whether a chunk's checksum (the first four bytes of the SHA-256 of everything after it)
/// matches, as Automerge checks when it loads the chunk.
fn checksum_holds(bytes: &[u8]) -> bool {
    bytes.len() > 8 && Sha256::digest(&bytes[8..])[..4] == bytes[4..8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;

    fn saved() -> (AutoCommit, Vec<u8>) {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "name", "Example Person").unwrap();
        doc.commit();
        let bytes = doc.save();
        (doc, bytes)
    }

    #[test]
    fn a_saved_document_is_kept_unloaded_until_read_and_then_reads_as_saved() {
        let (mut original, bytes) = saved();
        let actor = ActorId::random();
        let mut content =
            Content::unloaded(bytes, actor.clone(), None).unwrap_or_else(|_| panic!());
        assert!(!content.is_loaded());
        assert_eq!(content.heads(), original.get_heads());
        assert!(!content.is_loaded(), "the heads need no load");
        let read = content.read();
        assert_eq!(
            read.get(automerge::ROOT, "name")
                .unwrap()
                .unwrap()
                .0
                .as_str(),
            Some("Example Person")
        );
        assert!(content.is_loaded());
        assert_eq!(
            content.doc().get_actor(),
            &actor,
            "it writes as this device"
        );
        assert_eq!(content.heads(), original.get_heads());
    }

    #[test]
    fn a_damaged_or_empty_document_is_not_kept_unloaded() {
        let (_, mut bytes) = saved();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(Content::unloaded(bytes, ActorId::random(), None).is_err());
        let empty = AutoCommit::new().save();
        assert!(Content::unloaded(empty, ActorId::random(), None).is_err());
        assert!(Content::unloaded(b"not a document".to_vec(), ActorId::random(), None).is_err());
    }
}
