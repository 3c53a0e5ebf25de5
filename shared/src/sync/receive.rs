//! Taking in a sync message without a walk of the whole change graph.
//!
//! Automerge 0.12's `receive_sync_message` ends by forgetting, of the changes we sent the
//! peer, those its heads now cover (`State::sent_hashes`). It does that with a walk from
//! the peer's heads to the document's first change, every message, even when there is
//! nothing to forget: in a busy room a device spent 7% of its time on that walk, and it
//! grows with the document's history.
//!
//! [`receive`] has the same effect on the document and the sync state, but skips the walk
//! when nothing was sent, and otherwise stops it as soon as the changes still to be found
//! cannot lie further back. A change's operations are numbered above every operation of
//! the changes it depends on, so a change whose first operation is numbered no higher than
//! the last operation of every sent change still unfound cannot have any of them behind it.
//! (Were a peer to send changes numbered otherwise, the walk would at worst keep a hash it
//! could have forgotten; a kept hash only stops us sending that change again, and the peer
//! has it.) The tests check the document and the state against Automerge's after every
//! message of a randomised exchange.

use crate::ids::DocumentId;
use automerge::sync::{self, MessageFlags};
use automerge::{AutoCommit, AutomergeError, Change, ChangeHash};
use std::collections::{BTreeSet, HashSet};

/// Applies `message` from the peer whose sync state is `state`: what
/// `receive_sync_message` does, without its walk of the whole history.
///
/// The changes go through the document's own patch log, which is dropped afterwards (see
/// [`super::forget_patches`]); a caller that wants patches uses Automerge's own receive.
pub fn receive(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    message: sync::Message,
) -> Result<(), AutomergeError> {
    receive_with(doc, state, message, None)
}

/// How a device takes in changes and loads documents, when not as [`receive`] and
/// [`super::content`] do on their own (Automerge's `load_incremental`). The benchmarks'
/// simulated devices share one that does Automerge's work once for every device on the
/// machine (`casebook-tests`' `bench::applied_once`): real devices each do theirs on their
/// own processor, where a thousand simulated ones would spend the server's.
///
/// An Automerge document is fixed by the changes it holds, which its heads name, so a
/// document with the same heads and no change waiting for a dependency is the same
/// document, whichever device made it.
pub trait Sharing: Send + Sync {
    /// Takes in the changes a sync message brought (`bytes`, their chunks joined), leaving
    /// `doc` exactly as `load_incremental` would.
    fn apply(&self, doc: &mut AutoCommit, bytes: &[u8]) -> Result<(), AutomergeError>;

    /// A copy of document `id` holding exactly the changes up to `heads` (sorted), with
    /// nothing waiting for a dependency, if one is at hand; its actor is the caller's to set.
    fn copy_at(&self, id: DocumentId, heads: &[ChangeHash]) -> Option<AutoCommit>;

    /// Document `id` as a device has done with it (at `heads`, sorted, nothing waiting for
    /// a dependency), for [`Sharing::copy_at`].
    fn keep(&self, id: DocumentId, heads: Vec<ChangeHash>, doc: AutoCommit);

    /// The hash and dependencies of each change a sync message brought (`bytes`, its
    /// chunks joined), if every one is an uncompressed change that Automerge decodes
    /// ([`checked_headers`]); the same answer however it is found.
    fn checked_headers(&self, bytes: &[u8]) -> Option<Vec<Header>> {
        checked_headers(bytes)
    }
}

/// A change's hash and its dependencies.
pub type Header = (ChangeHash, Vec<ChangeHash>);

/// The hash and dependencies of each change in `bytes` (change chunks back to back), if
/// every one is an uncompressed change that passes Automerge's checks
/// ([`super::chunk::parse_changes`]): what a device needs to add changes to a document kept
/// as bytes (see [`heads_after`]), checked as loading them later will check them.
pub fn checked_headers(bytes: &[u8]) -> Option<Vec<Header>> {
    let changes = super::chunk::parse_changes([bytes])?;
    Some(
        changes
            .iter()
            .map(|c| (c.hash(), c.deps().to_vec()))
            .collect(),
    )
}

/// [`receive`], applying the message's changes with `sharing` when given.
pub fn receive_with(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    message: sync::Message,
    sharing: Option<&dyn Sharing>,
) -> Result<(), AutomergeError> {
    take_in(doc, state, message, |doc, changes| {
        let joined: Vec<u8> = changes.iter().flatten().copied().collect();
        if let Some(sharing) = sharing {
            return sharing.apply(doc, &joined);
        }
        let applied = doc.load_incremental(&joined);
        super::forget_patches(doc);
        applied.map(|_| ())
    })
}

/// [`receive`] for a message whose changes the caller has already parsed (`changes`, all of
/// the message's changes, in its order): they are applied as they are, where `receive`
/// would parse them again, and through the document's own patch log, which the caller reads
/// (`diff_incremental`) and then drops (see [`super::forget_patches`]).
pub fn receive_parsed(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    message: sync::Message,
    changes: Vec<Change>,
) -> Result<(), AutomergeError> {
    take_in(doc, state, message, |doc, _| doc.apply_changes(changes))
}

/// What [`receive`], [`receive_parsed`] and [`receive_by_heads`] share: `apply` takes the
/// message's changes in, if it has any and the state allows.
fn take_in<H: Holder>(
    doc: &mut H,
    state: &mut sync::State,
    message: sync::Message,
    apply: impl FnOnce(&mut H, sync::ChunkList) -> Result<(), AutomergeError>,
) -> Result<(), AutomergeError> {
    state.in_flight = false;
    let before_heads = doc.heads();
    let sync::Message {
        heads,
        changes,
        need,
        have,
        flags,
        ..
    } = message;

    if let Some(flags) = flags {
        let mut capabilities = vec![sync::Capability::MessageV2];
        if flags.contains(MessageFlags::SUPPORTS_SYNC_RESET) {
            capabilities.push(sync::Capability::SyncReset);
        }
        state.their_capabilities = Some(capabilities);
        if flags.contains(MessageFlags::SYNC_RESET) {
            state.sent_hashes.clear();
        }
        state.peer_read_only = flags.contains(MessageFlags::READ_ONLY);
    }

    let no_changes = changes.is_empty();
    if !no_changes && !state.read_only {
        apply(doc, changes)?;
        let after: HashSet<ChangeHash> = doc.heads().into_iter().collect();
        state.shared_heads = advance_heads(&before_heads, &after, &state.shared_heads);
    }

    doc.forget_covered(&mut state.sent_hashes, &heads);

    if no_changes && heads == before_heads {
        state.last_sent_heads.clone_from(&heads);
    }

    let known = doc.held(&heads);
    if known.len() == heads.len() {
        state.shared_heads.clone_from(&heads);
        if heads.is_empty() {
            state.last_sent_heads = Vec::new();
            state.sent_hashes = BTreeSet::new();
        }
    } else {
        let mut shared: Vec<ChangeHash> =
            state.shared_heads.iter().chain(&known).copied().collect();
        shared.sort();
        shared.dedup();
        state.shared_heads = shared;
    }

    state.their_have = Some(have);
    state.their_heads = Some(heads);
    state.their_need = Some(need);
    Ok(())
}

/// What taking a message in asks of the document.
trait Holder {
    fn heads(&mut self) -> Vec<ChangeHash>;
    fn forget_covered(&mut self, sent: &mut BTreeSet<ChangeHash>, heads: &[ChangeHash]);
    fn held(&mut self, heads: &[ChangeHash]) -> Vec<ChangeHash>;
}

impl Holder for AutoCommit {
    fn heads(&mut self) -> Vec<ChangeHash> {
        self.get_heads()
    }

    fn forget_covered(&mut self, sent: &mut BTreeSet<ChangeHash>, heads: &[ChangeHash]) {
        forget_covered(self, sent, heads);
    }

    fn held(&mut self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        held(self, heads)
    }
}

/// A document known only by its heads (kept unloaded, `super::content`), for the messages
/// [`receive_by_heads`] accepts: the answers it gives are then exact.
struct ByHeads<'a> {
    heads: Vec<ChangeHash>,
    /// The heads after the message's changes.
    after: Option<Vec<ChangeHash>>,
    /// Whether a hash that is not one of our heads is known to be held.
    known: &'a dyn Fn(&ChangeHash) -> bool,
}

impl Holder for ByHeads<'_> {
    fn heads(&mut self) -> Vec<ChangeHash> {
        self.heads.clone()
    }

    fn forget_covered(&mut self, _sent: &mut BTreeSet<ChangeHash>, _heads: &[ChangeHash]) {
        // Nothing was sent (checked before).
    }

    fn held(&mut self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        // The peer holds all we hold (checked before), so a head of its that we hold is
        // one of ours, or one we knew.
        heads
            .iter()
            .filter(|h| self.heads.contains(h) || (self.known)(h))
            .copied()
            .collect()
    }
}

/// [`receive`] for a document not loaded into Automerge, known by its heads `ours`
/// (sorted), when the message can be taken in from heads alone: the peer holds every change
/// we hold (the caller's to know: nothing of ours waits for it), we have sent no change
/// this session, and the message brings no change or changes that leave the document at
/// `after` (sorted; the caller has checked that they apply in full, and keeps their bytes:
/// a whole document onto an empty one, or changes whose dependencies we hold, see
/// [`heads_after`]). `known` says of a hash that is not one of our heads whether we know
/// we hold it (it may say no when unsure only for hashes the peer does not name as heads).
/// Otherwise the message comes back untouched, and the caller loads the document and
/// uses [`receive`].
pub(crate) fn receive_by_heads(
    ours: &[ChangeHash],
    after: Option<Vec<ChangeHash>>,
    known: &dyn Fn(&ChangeHash) -> bool,
    state: &mut sync::State,
    message: sync::Message,
) -> Result<(), sync::Message> {
    match (&after, message.changes.is_empty()) {
        (None, true) => {}
        (Some(_), false) if !state.read_only => {}
        _ => return Err(message),
    }
    if !state.sent_hashes.is_empty() {
        return Err(message);
    }
    let mut doc = ByHeads {
        heads: ours.to_vec(),
        after,
        known,
    };
    // Taking the changes in is taking the heads after them: nothing here can fail.
    let _ = take_in(&mut doc, state, message, |doc, _| {
        doc.heads = doc.after.take().unwrap_or_default();
        Ok(())
    });
    Ok(())
}

/// The heads of a document at `ours` (sorted) after `changes` (in the order they came), if
/// each one's dependencies are among our heads, the changes before it, or changes `known`
/// to be held, so that every one applies, and none is held already; `None` otherwise (a
/// change onto history not known here, one we hold, a first change), when only the
/// document can say. `known` may say no when unsure, but must say yes of every change held
/// whose dependencies it says yes of (so that a change held is never taken for new): a
/// document kept as bytes knows its heads and every change added to it since
/// ([`super::content`]), and a change in the bytes as first kept depends on changes that
/// are neither. A dependency held but not a head is behind one (a held change is a head
/// or behind one): it leaves the heads as they were. Automerge makes such dependencies:
/// a change depends on its actor's previous change as well as on the heads.
pub(crate) fn heads_after(
    ours: &[ChangeHash],
    changes: &[Header],
    known: &dyn Fn(&ChangeHash) -> bool,
) -> Option<Vec<ChangeHash>> {
    let mut heads: BTreeSet<ChangeHash> = ours.iter().copied().collect();
    let mut new: HashSet<ChangeHash> = HashSet::new();
    for (hash, deps) in changes {
        let hash = *hash;
        if heads.contains(&hash) || new.contains(&hash) || known(&hash) || deps.is_empty() {
            return None;
        }
        for dep in deps {
            if !new.contains(dep) && !ours.contains(dep) && !known(dep) {
                return None;
            }
            heads.remove(dep);
        }
        heads.insert(hash);
        new.insert(hash);
    }
    Some(heads.into_iter().collect())
}

/// Those of `heads` the document holds (has applied). Asking for missing dependencies is a
/// set lookup per head, where reading each head's metadata is several column reads; but a
/// change that arrived before its dependencies waits in Automerge's queue, neither held nor
/// missing. Something waits there only when some dependency is missing, so the quick answer
/// is taken only when nothing is.
fn held(doc: &mut AutoCommit, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    if doc.get_missing_deps(&[]).is_empty() {
        let missing = doc.get_missing_deps(heads);
        heads
            .iter()
            .filter(|h| !missing.contains(h))
            .copied()
            .collect()
    } else {
        heads
            .iter()
            .filter(|h| doc.get_change_meta_by_hash(h).is_some())
            .copied()
            .collect()
    }
}

/// Our new heads and the shared heads we still have, sorted: Automerge's `advance_heads`.
fn advance_heads(
    before: &[ChangeHash],
    after: &HashSet<ChangeHash>,
    shared: &[ChangeHash],
) -> Vec<ChangeHash> {
    let mut advanced: Vec<ChangeHash> = after
        .iter()
        .filter(|h| !before.contains(h))
        .chain(shared.iter().filter(|h| after.contains(h)))
        .copied()
        .collect();
    advanced.sort();
    advanced.dedup();
    advanced
}

/// Removes from `sent` every change that `heads` (those we know) cover, walking back from
/// them only as far as a sent change still unfound could lie.
fn forget_covered(doc: &mut AutoCommit, sent: &mut BTreeSet<ChangeHash>, heads: &[ChangeHash]) {
    if sent.is_empty() {
        return;
    }
    // The sent changes still to look for, with the number of their last operation.
    let mut unfound: Vec<(ChangeHash, u64)> = sent
        .iter()
        .filter_map(|h| doc.get_change_meta_by_hash(h).map(|m| (*h, m.max_op)))
        .collect();
    let mut to_visit: Vec<ChangeHash> = heads.to_vec();
    let mut visited: HashSet<ChangeHash> = HashSet::new();
    while !unfound.is_empty() {
        let Some(hash) = to_visit.pop() else { break };
        if !visited.insert(hash) {
            continue;
        }
        let Some(meta) = doc.get_change_meta_by_hash(&hash) else {
            continue;
        };
        if let Some(i) = unfound.iter().position(|(h, _)| *h == hash) {
            unfound.swap_remove(i);
            sent.remove(&hash);
        }
        if unfound.iter().any(|(_, max_op)| meta.start_op > *max_op) {
            to_visit.extend(meta.deps);
        }
    }
}

/// Takes `message` in with [`receive`] and checks the document's heads and the sync state
/// against Automerge's own receive on copies: for tests here and in `message.rs`.
#[cfg(test)]
pub(crate) fn receive_checked(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    message: sync::Message,
) {
    use automerge::sync::SyncDoc;
    let mut expected_doc = doc.clone();
    let mut expected_state = state.clone();
    expected_doc
        .sync()
        .receive_sync_message(&mut expected_state, message.clone())
        .unwrap();
    // The changes parsed first, as a room takes them in, where they parse.
    if let Some(changes) = super::chunk::parse_changes(message.changes.iter()) {
        let (mut parsed_doc, mut parsed_state) = (doc.clone(), state.clone());
        receive_parsed(&mut parsed_doc, &mut parsed_state, message.clone(), changes).unwrap();
        assert_eq!(parsed_state, expected_state, "parsed: the same sync state");
        assert_eq!(parsed_doc.get_heads(), expected_doc.get_heads(), "parsed");
    }
    receive(doc, state, message).unwrap();
    assert_eq!(*state, expected_state, "the same sync state as Automerge");
    assert_eq!(doc.get_heads(), expected_doc.get_heads());
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    /// A message with our `heads` and `changes`, no request and no summary.
    fn message(heads: Vec<ChangeHash>, changes: Vec<Vec<u8>>) -> sync::Message {
        sync::Message {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: changes.into(),
            flags: None,
            version: sync::MessageVersion::V1,
        }
    }

    fn doc_with(n: usize) -> AutoCommit {
        let mut doc = AutoCommit::new();
        for i in 0..n {
            doc.put(automerge::ROOT, format!("k{i}"), i as i64).unwrap();
            doc.commit();
        }
        doc
    }

    /// A whole document sent to an empty one, and the messages without changes after it,
    /// taken in from heads alone leave the sync state exactly as taking them into the
    /// document does, and the answers decided from heads are the document's answers.
    #[test]
    fn taking_in_by_heads_agrees_with_taking_into_the_document() {
        use super::super::message::{by_heads, next_message_kept};
        use automerge::sync::SyncDoc;
        let mut server = doc_with(30);
        let mut server_state = sync::State::new();
        let mut device = AutoCommit::new();
        let (mut loaded, mut unloaded) = (sync::State::new(), sync::State::new());
        let first = device.sync().generate_sync_message(&mut loaded).unwrap();
        unloaded.clone_from(&loaded);
        server
            .sync()
            .receive_sync_message(&mut server_state, first)
            .unwrap();
        let whole = server
            .sync()
            .generate_sync_message(&mut server_state)
            .unwrap();
        assert_eq!(whole.changes.len(), 1);
        let heads = super::super::chunk::document_heads(whole.changes.iter().next().unwrap())
            .expect("the server sends the document whole");
        receive_checked(&mut device, &mut loaded, whole.clone());
        receive_by_heads(&[], Some(heads.clone()), &|_| false, &mut unloaded, whole).unwrap();
        assert_eq!(device.get_heads(), heads);
        let mut rounds = 0;
        loop {
            assert_eq!(loaded, unloaded, "round {rounds}");
            let from_doc =
                next_message_kept(&mut device, &mut loaded, &mut None, &Default::default());
            let from_heads = by_heads(&mut unloaded, &heads, |h| {
                h.iter().all(|h| heads.contains(h))
            })
            .expect("decided from heads");
            assert_eq!(from_doc, from_heads, "round {rounds}");
            assert_eq!(loaded, unloaded, "round {rounds}");
            let Some(ours) = from_doc else { break };
            server
                .sync()
                .receive_sync_message(&mut server_state, ours)
                .unwrap();
            let Some(answer) = server.sync().generate_sync_message(&mut server_state) else {
                break;
            };
            assert!(answer.changes.is_empty());
            receive_checked(&mut device, &mut loaded, answer.clone());
            receive_by_heads(&heads, None, &|_| false, &mut unloaded, answer).unwrap();
            rounds += 1;
            assert!(rounds < 5, "settles");
        }
    }

    /// Changes that follow our heads (a chain, or two made side by side on them) give the
    /// heads Automerge arrives at; a change onto older history, one we hold, or a first
    /// change is left to the document.
    #[test]
    fn the_heads_after_changes_are_automerges_or_left_to_the_document() {
        let mut ours = doc_with(3);
        let heads = ours.get_heads();
        let mut a = ours.fork();
        let mut b = ours.fork();
        for key in ["a1", "a2"] {
            a.put(automerge::ROOT, key, 1).unwrap();
            a.commit();
        }
        b.put(automerge::ROOT, "b1", 1).unwrap();
        b.commit();
        let mut changes: Vec<Change> = a.get_changes(&heads);
        changes.extend(b.get_changes(&heads));
        let mut merged = ours.fork();
        merged.apply_changes(changes.clone()).unwrap();
        let headers = |changes: &[Change]| -> Vec<Header> {
            let bytes: Vec<u8> = changes
                .iter()
                .flat_map(|c| c.raw_bytes().to_vec())
                .collect();
            checked_headers(&bytes).expect("changes")
        };
        let unknown = |_: &ChangeHash| false;
        assert_eq!(
            heads_after(&heads, &headers(&changes), &unknown),
            Some(merged.get_heads())
        );

        let older = ours.get_changes(&[]);
        let mut onto_older = ours.fork_at(&[older[1].hash()]).unwrap();
        onto_older.put(automerge::ROOT, "late", 1).unwrap();
        onto_older.commit();
        let late: Vec<Change> = onto_older.get_changes(&[older[1].hash()]);
        assert_eq!(
            heads_after(&heads, &headers(&late), &unknown),
            None,
            "onto older history"
        );
        let first = vec![older[0].clone()];
        assert_eq!(
            heads_after(&heads, &headers(&first), &unknown),
            None,
            "a first change (held here)"
        );
        let held = vec![older[2].clone()];
        assert_eq!(
            heads_after(&heads, &headers(&held), &unknown),
            None,
            "one of our heads"
        );

        // A change that also names its actor's previous change, held behind our heads:
        // known, it leaves the heads as Automerge does; unknown, it is left to the document.
        let mut writer = ours.fork();
        writer.put(automerge::ROOT, "w1", 1).unwrap();
        writer.commit();
        let first_own = writer.get_heads()[0];
        ours.merge(&mut writer).unwrap();
        let mut other = ours.fork();
        other.put(automerge::ROOT, "o1", 1).unwrap();
        other.commit();
        ours.merge(&mut other).unwrap();
        writer.merge(&mut other).unwrap();
        let at = ours.get_heads();
        writer.put(automerge::ROOT, "w2", 1).unwrap();
        writer.commit();
        let second: Vec<Change> = writer.get_changes(&at);
        assert_eq!(second.len(), 1);
        assert!(
            second[0].deps().contains(&first_own) && second[0].deps().len() == 2,
            "Automerge names the actor's previous change: {:?}",
            second[0].deps()
        );
        let known = |h: &ChangeHash| *h == first_own;
        ours.apply_changes(second.clone()).unwrap();
        assert_eq!(
            heads_after(&at, &headers(&second), &known),
            Some(ours.get_heads())
        );
        assert_eq!(heads_after(&at, &headers(&second), &unknown), None);
        let own_again = |h: &ChangeHash| *h == first_own || *h == second[0].hash();
        assert_eq!(
            heads_after(&at, &headers(&second), &own_again),
            None,
            "a change known held is not new"
        );
    }

    /// What heads alone cannot answer comes back untouched: changes without the heads
    /// after them, and any message once we have sent changes this session.
    #[test]
    fn what_heads_alone_cannot_answer_comes_back() {
        let mut ours = doc_with(2);
        let heads = ours.get_heads();
        let mut theirs = ours.fork();
        theirs.put(automerge::ROOT, "new", 1).unwrap();
        theirs.commit();
        let change = theirs.get_changes(&heads)[0].raw_bytes().to_vec();
        let mut state = sync::State::new();
        let with_change = message(theirs.get_heads(), vec![change]);
        assert!(receive_by_heads(&heads, None, &|_| false, &mut state, with_change).is_err());
        state.sent_hashes.insert(heads[0]);
        let before = state.clone();
        let after_sending = message(heads.clone(), Vec::new());
        assert!(receive_by_heads(&heads, None, &|_| false, &mut state, after_sending).is_err());
        assert_eq!(state, before, "nothing changed");
    }

    /// A change that arrives before the change it depends on waits in Automerge's queue: it
    /// is not held, so the peer's heads naming it are not shared heads yet.
    #[test]
    fn a_head_waiting_for_its_dependency_is_not_held() {
        let mut ours = doc_with(1);
        let mut theirs = ours.fork();
        theirs.put(automerge::ROOT, "first", 1).unwrap();
        theirs.commit();
        let before = theirs.get_heads();
        theirs.put(automerge::ROOT, "second", 2).unwrap();
        theirs.commit();
        // Only the second change travels; the first is missing here.
        let second = theirs.get_changes(&before)[0].raw_bytes().to_vec();
        let mut state = sync::State::new();
        receive_checked(
            &mut ours,
            &mut state,
            message(theirs.get_heads(), vec![second]),
        );
        assert!(state.shared_heads.is_empty());
    }

    /// A change the peer's heads cover is forgotten, one they do not cover is kept, as
    /// Automerge does; a change made before the one still unfound stops the walk.
    #[test]
    fn forgets_exactly_the_sent_changes_the_peer_holds() {
        let mut ours = doc_with(5);
        let hashes: Vec<ChangeHash> = ours.get_changes(&[]).iter().map(|c| c.hash()).collect();
        let their_heads = vec![hashes[4]];
        ours.put(automerge::ROOT, "later", 1).unwrap();
        ours.commit();
        let covered = hashes[2];
        let not_covered = ours.get_heads()[0];

        let mut state = sync::State::new();
        state.sent_hashes = [covered, not_covered].into_iter().collect();
        receive_checked(&mut ours, &mut state, message(their_heads, Vec::new()));
        assert_eq!(state.sent_hashes, [not_covered].into_iter().collect());
    }
}
