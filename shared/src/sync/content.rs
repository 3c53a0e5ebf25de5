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

use super::chunk;
use automerge::{ActorId, AutoCommit, ChangeHash};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::collections::HashSet;

/// A document, loaded or not yet.
pub(crate) struct Content {
    loaded: OnceCell<AutoCommit>,
    /// While not loaded: what to load.
    saved: Option<Saved>,
}

struct Saved {
    bytes: Vec<u8>,
    /// The heads the bytes' header names, sorted.
    heads: Vec<ChangeHash>,
    /// Every head it has had while not loaded: changes known to be held (the peer's
    /// summary of what it has starts from heads we had).
    had: HashSet<ChangeHash>,
    /// The actor the document writes with once loaded.
    actor: ActorId,
}

impl Content {
    /// A document already in Automerge.
    pub(crate) fn loaded(doc: AutoCommit) -> Self {
        Self {
            loaded: OnceCell::from(doc),
            saved: None,
        }
    }

    /// `bytes` kept unloaded, if they are one saved, non-empty document whose checksum
    /// holds (so a damaged one is found now, by the caller loading it, not when opened);
    /// otherwise the bytes back.
    pub(crate) fn unloaded(bytes: Vec<u8>, actor: ActorId) -> Result<Self, Vec<u8>> {
        match chunk::document_heads(&bytes) {
            Some(heads) if !heads.is_empty() && checksum_holds(&bytes) => Ok(Self {
                loaded: OnceCell::new(),
                saved: Some(Saved {
                    bytes,
                    had: heads.iter().copied().collect(),
                    heads,
                    actor,
                }),
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

    /// Adds changes (their bytes as they came) to a document not loaded, which they bring
    /// to `heads` (sorted): the caller has checked that each applies. On a loaded document
    /// nothing is done: the caller applies the changes to it.
    pub(crate) fn append(&mut self, changes: &[u8], heads: Vec<ChangeHash>) {
        if self.loaded.get().is_none()
            && let Some(saved) = &mut self.saved
        {
            saved.bytes.extend_from_slice(changes);
            saved.had.extend(heads.iter().copied());
            saved.heads = heads;
        }
    }

    /// Whether a document not loaded is known to hold every one of `hashes` (each is, or
    /// was, one of its heads). `false` when loaded: ask the document.
    pub(crate) fn known_to_hold(&self, hashes: &[ChangeHash]) -> bool {
        match (self.loaded.get(), &self.saved) {
            (None, Some(saved)) => hashes.iter().all(|h| saved.had.contains(h)),
            _ => false,
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
        self.saved = None;
        self.loaded.get_mut().expect("loaded by read")
    }

    /// The document for reading, loaded if it was not.
    pub(crate) fn read(&self) -> &AutoCommit {
        self.loaded.get_or_init(|| {
            let saved = self
                .saved
                .as_ref()
                .expect("a document is loaded or has its saved bytes");
            let mut doc = AutoCommit::new().with_actor(saved.actor.clone());
            // The bytes are one saved document whose checksum held when they were taken;
            // loading them is what taking them in would have done.
            if doc.load_incremental(&saved.bytes).is_err() {
                doc = AutoCommit::new().with_actor(saved.actor.clone());
            }
            super::forget_patches(&mut doc);
            doc
        })
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
        let mut content = Content::unloaded(bytes, actor.clone()).unwrap_or_else(|_| panic!());
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
        assert!(Content::unloaded(bytes, ActorId::random()).is_err());
        let empty = AutoCommit::new().save();
        assert!(Content::unloaded(empty, ActorId::random()).is_err());
        assert!(Content::unloaded(b"not a document".to_vec(), ActorId::random()).is_err());
    }
}
