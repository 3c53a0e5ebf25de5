//! The next sync message for one peer, built without a pass over the document where the
//! sync state alone says what it must be.
//!
//! Automerge's `generate_sync_message` extracts the changes to send with a pass over the
//! document's operations, and in Automerge 0.12 it makes that pass even when there is no
//! change to send. Most messages in a busy room are exactly that: an acknowledgement
//! ("I now have your heads") or nothing at all. [`next_message`] answers those two cases
//! from the sync state, byte for byte and state for state as Automerge would (the tests
//! below check both against Automerge on every message of a randomised exchange), and asks
//! Automerge for everything else. Both the device core and the server's rooms use it.
//!
//! A third case is the first message to a peer that holds nothing of the document (a
//! device picking up a case): Automerge sends the whole document, encoded afresh with
//! `save()`. [`next_message_kept`] sends an encoding already at hand instead (the server
//! keeps the snapshot it loaded a document from), with the same summary and state.
//!
//! A fourth is a peer some changes behind (a device that was busy, or held back while it
//! answered: see `DocumentRoom::outgoing`). Automerge works out which changes to send from
//! the change graph, which is cheap, and then extracts them with a pass over the document's
//! operations, which is not: under load that pass was most of the server's work. When every
//! change to send is one the room has seen arrive recently ([`Recent`]), the message is
//! built from those bytes, with the same choice of changes, order, summary and state. The
//! same reading of the change graph answers such a peer when it is owed no change at all:
//! nothing while our last message to it is unanswered, or our heads and summary again once
//! it has answered and is still behind them (in a busy room with many concurrent writers,
//! half of the server's messages were these, each with Automerge's pass).

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use std::collections::{HashMap, HashSet, VecDeque};

/// The message to send to the peer whose sync state is `state`, or `None` when it is owed
/// nothing; the same answer as `generate_sync_message`, with the same effect on `state`.
pub fn next_message(doc: &mut AutoCommit, state: &mut sync::State) -> Option<sync::Message> {
    next_message_kept(doc, state, &mut None, &Recent::default())
}

/// What a room keeps to answer peers without a pass over the document: its last whole
/// encoding and the changes it saw arrive recently. (A device keeps only a [`Recent`], of
/// its own changes the server has not stored yet.)
#[derive(Clone, Debug, Default)]
pub struct Kept {
    /// The whole document encoded, while it is unchanged.
    pub saved: Option<Saved>,
    /// Changes as they arrived, most recent last.
    pub recent: Recent,
}

/// Changes of a document as they arrived (their encoded bytes by hash), the most recent
/// [`Recent::MAX_CHANGES`] and at most [`Recent::MAX_BYTES`] of them.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    bytes: HashMap<ChangeHash, Vec<u8>>,
    order: VecDeque<ChangeHash>,
    total: usize,
}

impl Recent {
    /// Most changes kept.
    pub const MAX_CHANGES: usize = 1_000;
    /// Most bytes of changes kept.
    pub const MAX_BYTES: usize = 512 * 1024;

    /// Keeps `bytes`, the encoding of the change `hash`, forgetting the oldest beyond the caps.
    pub fn add(&mut self, hash: ChangeHash, bytes: Vec<u8>) {
        if bytes.len() > Self::MAX_BYTES || self.bytes.contains_key(&hash) {
            return;
        }
        self.total += bytes.len();
        self.bytes.insert(hash, bytes);
        self.order.push_back(hash);
        while self.order.len() > Self::MAX_CHANGES || self.total > Self::MAX_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.bytes.remove(&old) {
                self.total -= b.len();
            }
        }
    }

    /// Forgets every change (the document was replaced).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keeps only the changes `keep` says to.
    pub fn retain(&mut self, keep: impl Fn(&ChangeHash) -> bool) {
        self.order.retain(|h| keep(h));
        self.bytes.retain(|h, _| keep(h));
        self.total = self.bytes.values().map(Vec::len).sum();
    }

    /// How many changes are kept.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no change is kept.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The hashes of the changes kept, oldest first.
    pub fn hashes(&self) -> impl Iterator<Item = &ChangeHash> {
        self.order.iter()
    }

    /// The encoding of the change `hash`, if kept.
    pub fn get(&self, hash: &ChangeHash) -> Option<&[u8]> {
        self.bytes.get(hash).map(Vec::as_slice)
    }
}

/// The whole document encoded (what `AutoCommit::save` returns, or bytes that load to the
/// same document) and the heads it holds.
#[derive(Clone, Debug)]
pub struct Saved {
    heads: Vec<ChangeHash>,
    bytes: Vec<u8>,
}

impl Saved {
    /// `bytes` encode the whole document at `heads`.
    pub fn new(mut heads: Vec<ChangeHash>, bytes: Vec<u8>) -> Self {
        heads.sort();
        Self { heads, bytes }
    }

    /// The encoding, if it is of the document at `heads` (sorted).
    fn at(&self, heads: &[ChangeHash]) -> Option<&[u8]> {
        (self.heads == heads).then_some(&self.bytes[..])
    }
}

/// As [`next_message`], using what the holder keeps: the whole encoding in `saved` rather
/// than encoding the document again when the peer holds nothing of it and the encoding is
/// of the document as it is (otherwise the encoding made for the peer is put there for the
/// next such peer), and the changes in `recent` rather than extracting them when they are
/// all the peer is owed.
pub fn next_message_kept(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    saved: &mut Option<Saved>,
    recent: &Recent,
) -> Option<sync::Message> {
    let heads = doc.get_heads();
    if owed_nothing(state, &heads) {
        return None;
    }
    if let Some(message) = acknowledgement(doc, state, &heads) {
        return Some(message);
    }
    if let Some(message) = whole_document(doc, state, &heads, saved) {
        return Some(message);
    }
    if let Some(answer) = recent_changes(doc, state, &heads, recent) {
        return answer;
    }
    doc.sync().generate_sync_message(state)
}

/// The next message for a peer, decided from our `heads` alone (for a document not loaded,
/// `super::content`): `Some(None)` when the peer is owed nothing, `Some(Some(message))` for
/// an acknowledgement, `None` when only the document can say (the caller loads it and asks
/// [`next_message_kept`]). What it decides is what [`next_message_kept`] would.
pub(crate) fn by_heads(
    state: &mut sync::State,
    heads: &[ChangeHash],
    known_to_hold: impl FnOnce(&[ChangeHash]) -> bool,
) -> Option<Option<sync::Message>> {
    if owed_nothing(state, heads) {
        return Some(None);
    }
    // The peer's summary must start from changes we hold: known without the document
    // when they are ones we know we hold (`known_to_hold`, which may say no when unsure).
    acknowledgement_if(state, heads, known_to_hold).map(Some)
}

/// Starts a session's sync state with a peer known to hold `stored` (heads it has told us
/// it holds, all of which we hold too): as if it had just said so, needing nothing and
/// holding nothing beyond them. The first message then brings it our changes since
/// `stored`, where a state started from nothing spends a round trip learning what the peer
/// has, each side summarising its whole history for the other. It is Automerge's own
/// persisted sync state (`State::decode` keeps the shared heads) plus what the peer's
/// first message would say; were the peer to lack any of `stored`, it asks for what it
/// lacks (or resets), as in any session.
pub fn resume_from(state: &mut sync::State, mut stored: Vec<ChangeHash>) {
    if stored.is_empty() {
        return;
    }
    stored.sort();
    state.shared_heads.clone_from(&stored);
    state.their_heads = Some(stored.clone());
    state.their_need = Some(Vec::new());
    state.their_have = Some(vec![sync::Have {
        last_sync: stored,
        bloom: sync::BloomFilter::default(),
    }]);
}

/// `h` holds the same hashes as `heads` (sorted, as `get_heads` returns them).
pub(crate) fn same_heads(h: &[ChangeHash], heads: &[ChangeHash]) -> bool {
    if h.len() != heads.len() {
        return false;
    }
    let mut h = h.to_vec();
    h.sort();
    h == heads
}

/// Whether the peer is known to hold exactly our heads, has been told them, and asks for
/// nothing: `generate_sync_message` would answer `None` (after its pass over the document).
pub(crate) fn owed_nothing(state: &sync::State, heads: &[ChangeHash]) -> bool {
    state.have_responded
        && !state.needs_reset
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
        && state
            .their_heads
            .as_deref()
            .is_some_and(|h| same_heads(h, heads))
        && same_heads(&state.last_sent_heads, heads)
}

/// The message for a peer that already holds every change we hold (its heads are ours, and
/// both sides know it) but has not been told our heads: our heads, an empty summary since
/// them, and no changes. `None` for any other peer.
fn acknowledgement(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    heads: &[ChangeHash],
) -> Option<sync::Message> {
    acknowledgement_if(state, heads, |last_sync| {
        doc.get_missing_deps(last_sync).is_empty()
    })
}

/// [`acknowledgement`], where `holds` says whether we hold every change of the given heads
/// (the peer's summary starts from them).
fn acknowledgement_if(
    state: &mut sync::State,
    heads: &[ChangeHash],
    holds: impl FnOnce(&[ChangeHash]) -> bool,
) -> Option<sync::Message> {
    let their_have = state.their_have.as_ref()?;
    let ready = !heads.is_empty()
        && !state.read_only
        && !state.needs_reset
        && state
            .their_heads
            .as_deref()
            .is_some_and(|h| same_heads(h, heads))
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
        // The summary covers the changes since the shared heads: none when they are ours.
        && same_heads(&state.shared_heads, heads)
        // Automerge says nothing, or waits, when these heads were already sent.
        && !(state.have_responded && state.last_sent_heads == heads)
        // Automerge asks for a reset when the peer's summary starts from a change we lack
        // (a queued change also counts here, which only sends the case to Automerge).
        && their_have.first().is_none_or(|have| holds(&have.last_sync));
    if !ready {
        return None;
    }
    let version = version_for(state);
    mark_sent(state, heads, &[]);
    Some(build(
        heads,
        state.shared_heads.clone(),
        &[],
        Vec::new(),
        version,
    ))
}

/// The first message to a peer that holds nothing and knows nothing of us (its heads are
/// empty and it reads version 2 messages): our heads, a summary of every change, and the
/// whole document as one chunk, as `generate_sync_message` sends it. `None` for any other
/// peer.
fn whole_document(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    heads: &[ChangeHash],
    saved: &mut Option<Saved>,
) -> Option<sync::Message> {
    let their_have = state.their_have.as_ref()?;
    let ready = !heads.is_empty()
        && state.their_heads.as_deref() == Some(&[])
        && state
            .their_capabilities
            .as_ref()
            .is_some_and(|c| c.contains(&sync::Capability::MessageV2))
        && state.their_need.is_some()
        && !state.read_only
        && !state.needs_reset
        && !state.is_peer_read_only()
        && state.shared_heads.is_empty()
        // A summary since changes we lack asks for a reset instead.
        && their_have.first().is_none_or(|have| have.last_sync.is_empty())
        // Automerge says nothing, or waits, when these heads were already sent.
        && !(state.have_responded && state.last_sent_heads == heads);
    if !ready {
        return None;
    }
    let bytes = match saved.as_ref().and_then(|s| s.at(heads)) {
        Some(bytes) => bytes.to_vec(),
        None => {
            let bytes = doc.save();
            *saved = Some(Saved::new(heads.to_vec(), bytes.clone()));
            bytes
        }
    };
    // Every change hash, from the change graph (no pass over the operations).
    let hashes: Vec<ChangeHash> = doc.get_changes_meta(&[]).iter().map(|c| c.hash).collect();
    mark_sent(state, heads, &hashes);
    Some(build(
        heads,
        Vec::new(),
        &hashes,
        vec![bytes],
        sync::MessageVersion::V2,
    ))
}

/// The answer for a peer that holds nothing we lack, built from the change graph and the
/// changes `recent` holds: what `generate_sync_message` would answer (the same changes
/// chosen the same way, in the same order, with the same summary, or nothing while it
/// waits for the peer's answer), with the changes' bytes taken from `recent` instead of
/// extracted from the document. `Some(None)` is "send nothing". `None` leaves the peer to
/// Automerge: one that may hold changes we lack, is owed a reset or the whole document, or
/// is owed a change `recent` no longer holds.
fn recent_changes(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    heads: &[ChangeHash],
    recent: &Recent,
) -> Option<Option<sync::Message>> {
    let their_heads = state.their_heads.as_ref()?;
    let their_have = state.their_have.as_ref()?;
    let their_need = state.their_need.as_ref()?;
    let ready = !their_heads.is_empty()
        && !their_have.is_empty()
        && !state.read_only
        && !state.needs_reset
        && !state.is_peer_read_only()
        // We hold every change they have (so we ask for nothing and summarise since the
        // shared heads), and the start of their summary (else Automerge asks for a reset).
        && doc.get_missing_deps(their_heads).is_empty()
        && their_have
            .first()
            .is_none_or(|have| doc.get_missing_deps(&have.last_sync).is_empty());
    if !ready {
        return None;
    }
    // Automerge sends our heads once, then waits for the answer before sending them again.
    let unchanged = state.have_responded && state.last_sent_heads == heads;
    if unchanged && state.in_flight {
        return Some(None);
    }
    // New heads are mostly new changes to send: with none kept (a device keeps only its
    // own, until stored), the graph walk below would be wasted before Automerge's own.
    if !unchanged && recent.is_empty() {
        return None;
    }
    // As Automerge's `get_hashes_to_send`: what they ask for and we hold, then every change
    // since their summaries' start that no summary holds, and every change depending on one
    // of those; less what was sent already.
    let starts: HashSet<ChangeHash> = their_have
        .iter()
        .flat_map(|h| h.last_sync.iter().copied())
        .collect();
    let last_sync: Vec<ChangeHash> = starts.iter().copied().collect();
    let lacking = if their_need.is_empty() {
        Vec::new()
    } else {
        doc.get_missing_deps(their_need)
    };
    let version = version_for(state);
    let in_doc = automerge::ReadDoc::stats(&*doc).num_changes as usize;
    let since = doc.get_changes_meta(&last_sync);
    let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut chosen = HashSet::new();
    for change in &since {
        for dep in &change.deps {
            dependents.entry(*dep).or_default().push(change.hash);
        }
        if their_have
            .iter()
            .all(|have| !have.bloom.contains_hash(&change.hash))
        {
            chosen.insert(change.hash);
        }
    }
    let mut stack: Vec<ChangeHash> = chosen.iter().copied().collect();
    while let Some(hash) = stack.pop() {
        for dependent in dependents.get(&hash).into_iter().flatten() {
            if chosen.insert(*dependent) {
                stack.push(*dependent);
            }
        }
    }
    let hashes: Vec<ChangeHash> = their_need
        .iter()
        .filter(|h| !lacking.contains(h) && !chosen.contains(h))
        .copied()
        .chain(since.iter().map(|c| c.hash).filter(|h| chosen.contains(h)))
        .filter(|h| !state.sent_hashes.contains(h))
        .collect();
    if hashes.is_empty() && unchanged && state.their_heads.as_deref() == Some(heads) {
        return Some(None);
    }
    // A third of the document or more goes whole: left to Automerge.
    if version == sync::MessageVersion::V2 && hashes.len() * 3 > in_doc {
        return None;
    }
    let bytes: Vec<&[u8]> = hashes
        .iter()
        .map(|h| recent.get(h))
        .collect::<Option<_>>()?;
    let changes = match version {
        _ if bytes.is_empty() => Vec::new(),
        sync::MessageVersion::V2 => vec![bytes.concat()],
        sync::MessageVersion::V1 => bytes.iter().map(|b| b.to_vec()).collect(),
    };
    // The summary is of the changes since the shared heads: usually where their summary
    // starts too, so the same changes.
    let same_start = state.shared_heads.len() == starts.len()
        && state.shared_heads.iter().all(|h| starts.contains(h));
    let summarised: Vec<ChangeHash> = if same_start {
        since.iter().map(|c| c.hash).collect()
    } else {
        doc.get_changes_meta(&state.shared_heads)
            .iter()
            .map(|c| c.hash)
            .collect()
    };
    mark_sent(state, heads, &hashes);
    Some(Some(build(
        heads,
        state.shared_heads.clone(),
        &summarised,
        changes,
        version,
    )))
}

/// The version Automerge writes for the peer whose state is `state`: 2 once it has said it
/// reads version 2 messages.
pub(crate) fn version_for(state: &sync::State) -> sync::MessageVersion {
    let v2 = state
        .their_capabilities
        .as_ref()
        .is_some_and(|c| c.contains(&sync::Capability::MessageV2));
    if v2 {
        sync::MessageVersion::V2
    } else {
        sync::MessageVersion::V1
    }
}

/// Records in `state` what `generate_sync_message` records when it sends our `heads` with
/// the changes `sent`.
pub(crate) fn mark_sent(state: &mut sync::State, heads: &[ChangeHash], sent: &[ChangeHash]) {
    state.have_responded = true;
    state.last_sent_heads = heads.to_vec();
    state.sent_hashes.extend(sent.iter().copied());
    state.in_flight = true;
}

/// A sync message as Automerge 0.12 builds it for a peer that may write: our `heads`, no
/// request, one summary (the changes `summarised` since `last_sync`), `changes` as chunks,
/// and the flag saying we understand sync resets.
pub(crate) fn build(
    heads: &[ChangeHash],
    last_sync: Vec<ChangeHash>,
    summarised: &[ChangeHash],
    changes: Vec<Vec<u8>>,
    version: sync::MessageVersion,
) -> sync::Message {
    let mut flags = sync::MessageFlags::new();
    flags.set(sync::MessageFlags::SUPPORTS_SYNC_RESET);
    sync::Message {
        heads: heads.to_vec(),
        need: Vec::new(),
        have: vec![sync::Have {
            last_sync,
            bloom: sync::BloomFilter::from_hashes(summarised.iter()),
        }],
        changes: changes.into(),
        flags: Some(flags),
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::VecDeque;

    /// One side of a conversation: its document and its state for the other side.
    struct Side {
        doc: AutoCommit,
        state: sync::State,
        kept: Kept,
    }

    impl Side {
        fn new() -> Self {
            Side {
                doc: AutoCommit::new(),
                state: sync::State::new(),
                kept: Kept::default(),
            }
        }

        /// Keeps the changes made or received since `before`, as a room does.
        fn keep_since(&mut self, before: &[ChangeHash]) {
            for change in self.doc.get_changes(before) {
                self.kept
                    .recent
                    .add(change.hash(), change.raw_bytes().to_vec());
            }
        }
    }

    /// Which shortcuts answered, over a run.
    #[derive(Default)]
    struct Shortcuts {
        owed_nothing: usize,
        acknowledgements: usize,
        whole_documents: usize,
        recent_changes: usize,
        /// Answered from the change graph: nothing while Automerge waits for an answer.
        waits: usize,
        /// Answered from the change graph: our heads and summary again, no change.
        heads_again: usize,
    }

    /// Builds the next message both ways and checks they agree; returns it, counting the
    /// shortcut that answered.
    fn next_checked(side: &mut Side, shortcuts: &mut Shortcuts) -> Option<sync::Message> {
        let mut copy = side.state.clone();
        let expected = side.doc.sync().generate_sync_message(&mut copy);
        let heads = side.doc.get_heads();
        if owed_nothing(&side.state, &heads) {
            shortcuts.owed_nothing += 1;
        } else if acknowledgement(&mut side.doc.clone(), &mut side.state.clone(), &heads).is_some()
        {
            shortcuts.acknowledgements += 1;
        } else if whole_document(
            &mut side.doc.clone(),
            &mut side.state.clone(),
            &heads,
            &mut None,
        )
        .is_some()
        {
            shortcuts.whole_documents += 1;
        } else {
            match recent_changes(
                &mut side.doc.clone(),
                &mut side.state.clone(),
                &heads,
                &side.kept.recent,
            ) {
                Some(None) => shortcuts.waits += 1,
                Some(Some(m)) if m.changes.is_empty() => shortcuts.heads_again += 1,
                Some(Some(_)) => shortcuts.recent_changes += 1,
                None => {}
            }
        }
        // The side keeps the last whole encoding it made, as a room keeps its snapshot: it
        // is sent again only while the document is unchanged.
        let got = next_message_kept(
            &mut side.doc,
            &mut side.state,
            &mut side.kept.saved,
            &side.kept.recent,
        );
        assert_eq!(
            got.as_ref().map(|m| m.clone().encode()),
            expected.map(sync::Message::encode),
            "the same message as Automerge"
        );
        assert_eq!(side.state, copy, "the same sync state as Automerge");
        got
    }

    /// Hands one encoded message to a side, taken in by `receive` and checked against
    /// Automerge's own receive (`receive_checked`).
    fn deliver(side: &mut Side, bytes: &[u8]) {
        let m = sync::Message::decode(bytes).unwrap();
        let before = side.doc.get_heads();
        super::super::receive::receive_checked(&mut side.doc, &mut side.state, m);
        if side.doc.get_heads() != before {
            side.kept.saved = None;
            side.keep_since(&before);
        }
    }

    /// Two sides editing at random and exchanging messages over a channel that delivers in
    /// order, some of them delayed, and reconnecting now and then (one side resuming from the
    /// heads it knew the other held): every message either side sends agrees with
    /// Automerge's, the shortcuts answer some of them, and the two sides end identical.
    #[test]
    fn messages_agree_with_automerge_and_the_sides_converge() {
        let mut shortcuts = Shortcuts::default();
        let mut resumed = 0;
        for seed in 0..40u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut sides = [Side::new(), Side::new()];
            // In flight from side i to the other.
            let mut wires: [VecDeque<Vec<u8>>; 2] = [VecDeque::new(), VecDeque::new()];
            for step in 0..300 {
                let i = rng.random_range(0..2);
                match rng.random_range(0..40) {
                    // A fresh device in place of side i (a cover worker's tablet): the
                    // other side starts a new session with it.
                    0 => {
                        sides[i] = Side::new();
                        sides[1 - i].state = sync::State::new();
                        wires = [VecDeque::new(), VecDeque::new()];
                    }
                    // A reconnection: new sessions on both sides. Side i resumes from the
                    // heads it knew the other held, as a device resumes from the heads the
                    // server reported stored; the other starts from nothing, as a room does.
                    1 => {
                        let known = sides[i].state.shared_heads.clone();
                        sides[i].state = sync::State::new();
                        resume_from(&mut sides[i].state, known);
                        sides[1 - i].state = sync::State::new();
                        wires = [VecDeque::new(), VecDeque::new()];
                        resumed += 1;
                    }
                    2..=12 => {
                        let key = format!("k{}", rng.random_range(0..20));
                        let before = sides[i].doc.get_heads();
                        sides[i].doc.put(automerge::ROOT, key, step as i64).unwrap();
                        sides[i].doc.commit();
                        sides[i].kept.saved = None;
                        sides[i].keep_since(&before);
                    }
                    13..=28 => {
                        if let Some(m) = next_checked(&mut sides[i], &mut shortcuts) {
                            wires[i].push_back(m.encode());
                        }
                    }
                    _ => {
                        if let Some(bytes) = wires[1 - i].pop_front() {
                            deliver(&mut sides[i], &bytes);
                        }
                    }
                }
            }
            // Settle: deliver everything and answer until both are quiet.
            for _ in 0..50 {
                for i in 0..2 {
                    while let Some(bytes) = wires[1 - i].pop_front() {
                        deliver(&mut sides[i], &bytes);
                    }
                    if let Some(m) = next_checked(&mut sides[i], &mut shortcuts) {
                        wires[i].push_back(m.encode());
                    }
                }
            }
            let [a, b] = &mut sides;
            assert_eq!(
                a.doc.get_heads(),
                b.doc.get_heads(),
                "seed {seed} converges"
            );
        }
        assert!(resumed > 100, "{resumed}");
        // Both shortcuts are taken, not just allowed.
        assert!(shortcuts.owed_nothing > 20, "{}", shortcuts.owed_nothing);
        assert!(
            shortcuts.acknowledgements > 20,
            "{}",
            shortcuts.acknowledgements
        );
        assert!(
            shortcuts.whole_documents > 20,
            "{}",
            shortcuts.whole_documents
        );
        assert!(
            shortcuts.recent_changes > 20,
            "{}",
            shortcuts.recent_changes
        );
        assert!(shortcuts.waits > 20, "{}", shortcuts.waits);
        assert!(shortcuts.heads_again > 20, "{}", shortcuts.heads_again);
    }
}
