//! Doing Automerge's work once for all the simulated devices of a load run.
//!
//! In the live loads every change reaches the 24 other devices on its document. A device
//! holding the record open applies it to its own Automerge document: about 0.25-0.45 ms
//! of Automerge's work for a chronology entry (some 220 operations) on the bench machines.
//! At 500 changes/s that is 12,000 applications a second, more than the two cores the
//! server runs on, where real devices would each do theirs on their own processor.
//!
//! Casebook's simulated devices keep each record closed except while writing in it, as a
//! worker closes a record after writing (`ClientCore::close` once nothing of theirs waits
//! in it): the protocol core then keeps the document as bytes and adds a change that
//! follows it to them, without Automerge, as the app does for every record not open; what
//! remains is opening a record to write in it, and taking in what does not simply follow
//! (concurrent changes, a device behind, a device whose own change still waits). With
//! `CASEBOOK_BENCH_OPEN_RECORDS` they hold every record open instead, as the live loads
//! did until 8 December (see `bench/method.md`).
//!
//! An Automerge document is fixed by the changes it holds, which its heads name. So
//! every device whose document reaches the same heads, with no change waiting for a
//! dependency, holds the same document. [`Shared`] is a [`Sharing`] for one run that
//! keeps the documents devices reached or closed, by their heads. A device opening a record
//! at heads another device has been at copies that document (13 µs for a chronology of 175
//! entries, measured alone) and sets its own actor id on it, instead of loading the bytes
//! (the first to get there loads them and leaves the result; each document's newest state
//! is kept until a newer one comes, as records rest between bursts of writing). A device
//! about to take in
//! changes onto an open document works out the heads they bring it to (from the changes'
//! hashes and dependencies, read from their bytes without decoding them:
//! [`chunk::change_headers`], and what its document holds) and, when another device has
//! been there, copies that document; otherwise it applies them with `load_incremental`, as
//! every device does without this, and leaves the result for the others. A device that
//! takes in the same bytes at the same heads as one before it skips even working out the
//! heads. Each device still holds a whole document of its own when it has one open,
//! answers from it and is checked against it; the server sees the same conversation.
//! Anything else (a document with a change waiting for a dependency, changes that would
//! wait for one, bytes that are not plain change chunks) is applied as usual.
//!
//! Each writer offers its document as it writes ([`Shared::offer`]), so the first device
//! to take the change in copies it. The automerge-repo clients of the side by side hold
//! their documents open throughout and share the same way.

use automerge::{AutoCommit, AutomergeError, ChangeHash};
use casebook_shared::ids::DocumentId;
use casebook_shared::sync::chunk;
use casebook_shared::sync::receive::{Header, Sharing, checked_headers};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The last `capacity` values kept, by key; the oldest goes first.
struct Recent<K, V> {
    values: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Clone + Eq + Hash, V> Recent<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            values: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn keep(&mut self, key: K, value: V) {
        if self.values.contains_key(&key) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.values.remove(&old);
        }
        self.order.push_back(key.clone());
        self.values.insert(key, value);
    }
}

/// Documents devices reached, by their heads (sorted); and the heads that given bytes
/// taken in at given heads led to.
struct Reached {
    documents: Recent<Vec<ChangeHash>, AutoCommit>,
    led_to: Recent<(Vec<ChangeHash>, Vec<u8>), Vec<ChangeHash>>,
    /// Messages' changes as checked ([`Sharing::checked_headers`]), by their bytes.
    checked: Recent<Vec<u8>, Option<Vec<Header>>>,
    /// Each document as last kept, whatever the others kept since: a record written in
    /// by bursts rests longer than `documents` keeps anything.
    newest: HashMap<DocumentId, (Vec<ChangeHash>, AutoCommit)>,
}

/// The heads `doc` (at `ours`, nothing waiting) reaches by taking in `changes` (each a
/// hash and its dependencies), if each is held already or has every dependency held or
/// among them; `None` if any would wait.
fn heads_after(
    doc: &mut AutoCommit,
    ours: &[ChangeHash],
    changes: &[(ChangeHash, Vec<ChangeHash>)],
) -> Option<Vec<ChangeHash>> {
    let fresh: Vec<&(ChangeHash, Vec<ChangeHash>)> = changes
        .iter()
        .filter(|(hash, _)| !doc.get_missing_deps(&[*hash]).is_empty())
        .collect();
    let new: HashSet<ChangeHash> = fresh.iter().map(|(hash, _)| *hash).collect();
    let mut covered = HashSet::new();
    for (_, deps) in &fresh {
        for dep in deps {
            if !new.contains(dep) && !doc.get_missing_deps(&[*dep]).is_empty() {
                return None;
            }
            covered.insert(*dep);
        }
    }
    let heads: BTreeSet<ChangeHash> = ours
        .iter()
        .copied()
        .chain(new)
        .filter(|h| !covered.contains(h))
        .collect();
    Some(heads.into_iter().collect())
}

/// A [`Sharing`] for the devices of one run, and counts of what it did.
#[derive(Clone)]
pub struct Shared(Arc<Documents>);

struct Documents {
    reached: Mutex<Reached>,
    /// Messages' changes taken in onto open documents.
    applied: AtomicUsize,
    /// Documents opened (loaded from bytes).
    opened: AtomicUsize,
    /// Of both, those done with a copy.
    copied: AtomicUsize,
}

impl Documents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reached> {
        self.reached.lock().expect("documents reached")
    }
}

impl Sharing for Documents {
    fn apply(&self, doc: &mut AutoCommit, bytes: &[u8]) -> Result<(), AutomergeError> {
        self.applied.fetch_add(1, Ordering::Relaxed);
        let ours = doc.get_heads();
        let target = if doc.get_missing_deps(&[]).is_empty() {
            let input = (ours.clone(), bytes.to_vec());
            let known = self.lock().led_to.values.get(&input).cloned();
            known.or_else(|| {
                let changes = chunk::change_headers(bytes)?;
                let after = heads_after(doc, &ours, &changes)?;
                self.lock().led_to.keep(input, after.clone());
                Some(after)
            })
        } else {
            None
        };
        if let Some(target) = &target {
            let copy = self.lock().documents.values.get(target).cloned();
            if let Some(mut copy) = copy {
                copy.set_actor(doc.get_actor().clone());
                *doc = copy;
                self.copied.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        doc.load_incremental(bytes)?;
        doc.reset_diff_cursor();
        if let Some(target) = target
            && doc.get_missing_deps(&[]).is_empty()
            && doc.get_heads() == target
        {
            self.lock().documents.keep(target, doc.clone());
        }
        Ok(())
    }

    fn copy_at(&self, id: DocumentId, heads: &[ChangeHash]) -> Option<AutoCommit> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let copy = {
            let reached = self.lock();
            reached.documents.values.get(heads).cloned().or_else(|| {
                reached
                    .newest
                    .get(&id)
                    .filter(|(at, _)| at == heads)
                    .map(|(_, doc)| doc.clone())
            })
        };
        if copy.is_some() {
            self.copied.fetch_add(1, Ordering::Relaxed);
        }
        copy
    }

    fn keep(&self, id: DocumentId, heads: Vec<ChangeHash>, mut doc: AutoCommit) {
        doc.reset_diff_cursor();
        let copy = doc.clone();
        let mut reached = self.lock();
        reached.newest.insert(id, (heads.clone(), copy));
        reached.documents.keep(heads, doc);
    }

    /// Each change is decoded once for all the devices it reaches (some 40 µs for a
    /// chronology entry, a third of the driver's time at 300 changes/s when each device
    /// did it).
    fn checked_headers(&self, bytes: &[u8]) -> Option<Vec<Header>> {
        if let Some(known) = self.lock().checked.values.get(bytes) {
            return known.clone();
        }
        let headers = checked_headers(bytes);
        self.lock().checked.keep(bytes.to_vec(), headers.clone());
        headers
    }
}

impl Shared {
    /// Keeping the last `capacity` documents reached (enough for a few seconds of a run's
    /// changes to every document: devices on one document reach the same heads within
    /// moments of each other, or seconds when they are behind).
    pub fn new(capacity: usize) -> Self {
        Self(Arc::new(Documents {
            reached: Mutex::new(Reached {
                documents: Recent::new(capacity),
                led_to: Recent::new(capacity),
                checked: Recent::new(capacity),
                newest: HashMap::new(),
            }),
            applied: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            copied: AtomicUsize::new(0),
        }))
    }

    /// The sharing, to give each device.
    pub fn sharing(&self) -> Arc<dyn Sharing> {
        self.0.clone()
    }

    /// Leaves a device's document just after it wrote a change (`change`, now its only
    /// head) for the devices that take the change in: the first of them would otherwise
    /// apply it, where a writer that was in step holds the very document they reach (one
    /// copy per change instead of one application; at 300 changes/s this took the copies
    /// from 94% of the deliveries to all of them). A document with a change waiting for a
    /// dependency is not offered: it holds more than its heads say. (A device closing a
    /// record hands the document over too, see [`Sharing::keep`].)
    pub fn offer(&self, doc: &AutoCommit, change: ChangeHash) {
        if !automerge::ReadDoc::get_missing_deps(doc, &[]).is_empty() {
            return;
        }
        let heads = vec![change];
        let mut reached = self.0.lock();
        if reached.documents.values.contains_key(&heads) {
            return;
        }
        let mut copy = doc.clone();
        copy.reset_diff_cursor();
        reached.documents.keep(heads, copy);
    }

    /// The sharing for a run's devices, keeping a few seconds of changes to each of
    /// `documents`; `None` when `CASEBOOK_BENCH_EACH_APPLIES` is set, for comparing with
    /// devices that each apply every change (as before 7 December).
    pub fn for_run(documents: usize) -> Option<Self> {
        std::env::var_os("CASEBOOK_BENCH_EACH_APPLIES")
            .is_none()
            .then(|| Self::new(documents * 16))
    }

    /// How many times a device took in a message's changes onto an open document.
    pub fn applied(&self) -> usize {
        self.0.applied.load(Ordering::Relaxed)
    }

    /// How many times a device opened a document kept as bytes.
    pub fn opened(&self) -> usize {
        self.0.opened.load(Ordering::Relaxed)
    }

    /// How many of those two took a copy of another device's document.
    pub fn copies(&self) -> usize {
        self.0.copied.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use automerge::{ActorId, AutoCommit, ROOT, ReadDoc, transaction::Transactable};

    fn device(from: &[u8]) -> AutoCommit {
        AutoCommit::load(from)
            .unwrap()
            .with_actor(ActorId::random())
    }

    /// A document with one change, and its saved form for devices to start from.
    fn origin() -> (AutoCommit, Vec<u8>) {
        let mut origin = AutoCommit::new();
        change(&mut origin, "seed");
        let saved = origin.save();
        (origin, saved)
    }

    fn change(doc: &mut AutoCommit, key: &str) -> Vec<u8> {
        doc.put(ROOT, key, "value").unwrap();
        doc.commit();
        doc.get_last_local_change().unwrap().raw_bytes().to_vec()
    }

    #[test]
    fn a_device_taking_in_what_another_did_ends_with_the_same_document_and_its_own_actor() {
        let (mut origin, saved) = origin();
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let (mut first, mut second) = (device(&saved), device(&saved));
        let bytes = change(&mut origin, "entry");
        apply(&mut first, &bytes).unwrap();
        let actor = second.get_actor().clone();
        apply(&mut second, &bytes).unwrap();
        assert_eq!(second.get_heads(), origin.get_heads());
        assert_eq!(second.get_actor(), &actor);
        assert_eq!(
            second
                .get(ROOT, "entry")
                .unwrap()
                .map(|(v, _)| v.to_string()),
            Some("\"value\"".to_owned())
        );
        // The device writes with its own actor after the copy, and its change applies
        // elsewhere.
        assert_eq!(shared.copies(), 1);
        let own = change(&mut second, "own");
        let mut third = device(&saved);
        third.load_incremental(&bytes).unwrap();
        third.load_incremental(&own).unwrap();
        assert_eq!(third.get_heads(), second.get_heads());
        assert!(
            third
                .get_changes(&[])
                .iter()
                .any(|c| c.actor_id() == &actor)
        );
    }

    #[test]
    fn a_device_at_other_heads_applies_for_itself() {
        let (mut origin, saved) = origin();
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let (mut first, mut other) = (device(&saved), device(&saved));
        let bytes = change(&mut origin, "entry");
        apply(&mut first, &bytes).unwrap();
        let own = change(&mut other, "own");
        apply(&mut other, &bytes).unwrap();
        assert_eq!(shared.copies(), 0);
        assert_eq!(other.get_heads().len(), 2);
        assert!(other.get_change_by_hash(&own_hash(&own)).is_some());
        assert!(other.get(ROOT, "entry").unwrap().is_some());
    }

    #[test]
    fn a_document_with_a_change_waiting_for_its_dependency_is_never_copied_over() {
        let (mut origin, saved) = origin();
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let first_change = change(&mut origin, "one");
        let second_change = change(&mut origin, "two");
        let (mut first, mut waiting) = (device(&saved), device(&saved));
        // `waiting` holds the second change without the first.
        waiting.load_incremental(&second_change).unwrap();
        apply(&mut first, &first_change).unwrap();
        apply(&mut waiting, &first_change).unwrap();
        assert_eq!(shared.copies(), 0);
        assert_eq!(waiting.get_heads(), origin.get_heads());
        assert!(waiting.get(ROOT, "two").unwrap().is_some());
    }

    #[test]
    fn a_device_reaching_the_same_heads_by_another_way_takes_a_copy() {
        let (_, saved) = origin();
        // Two concurrent changes, made on two other devices.
        let (mut left, mut right) = (device(&saved), device(&saved));
        let x = change(&mut left, "x");
        let y = change(&mut right, "y");
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let (mut first, mut second) = (device(&saved), device(&saved));
        apply(&mut first, &[x.clone(), y.clone()].concat()).unwrap();
        apply(&mut second, &y).unwrap();
        assert_eq!(shared.copies(), 0);
        let actor = second.get_actor().clone();
        apply(&mut second, &x).unwrap();
        assert_eq!(shared.copies(), 1);
        assert_eq!(second.get_heads(), first.get_heads());
        assert_eq!(second.get_heads().len(), 2);
        assert_eq!(second.get_actor(), &actor);
        for key in ["seed", "x", "y"] {
            assert!(second.get(ROOT, key).unwrap().is_some(), "{key}");
        }
    }

    #[test]
    fn the_first_device_to_take_in_a_change_copies_the_writers_document() {
        let (_, saved) = origin();
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let mut writer = device(&saved);
        let bytes = change(&mut writer, "entry");
        shared.offer(&writer, own_hash(&bytes));
        let mut first = device(&saved);
        let actor = first.get_actor().clone();
        apply(&mut first, &bytes).unwrap();
        assert_eq!(shared.copies(), 1);
        assert_eq!(first.get_heads(), writer.get_heads());
        assert_eq!(first.get_actor(), &actor);
        assert!(first.get(ROOT, "entry").unwrap().is_some());
        // It writes on with its own actor.
        let own = change(&mut first, "own");
        assert_eq!(
            automerge::Change::from_bytes(own).unwrap().actor_id(),
            &actor
        );
    }

    #[test]
    fn a_writer_holding_a_change_that_waits_offers_nothing() {
        let (mut origin, saved) = origin();
        let _first = change(&mut origin, "one");
        let second = change(&mut origin, "two");
        let shared = Shared::new(8);
        let sharing = shared.sharing();
        let apply = |doc: &mut AutoCommit, bytes: &[u8]| sharing.apply(doc, bytes);
        let mut writer = device(&saved);
        writer.load_incremental(&second).unwrap();
        let bytes = change(&mut writer, "entry");
        shared.offer(&writer, own_hash(&bytes));
        let mut other = device(&saved);
        apply(&mut other, &bytes).unwrap();
        assert_eq!(shared.copies(), 0);
        assert!(other.get(ROOT, "two").unwrap().is_none());
    }

    #[test]
    fn a_document_resting_longer_than_the_others_are_kept_is_still_copied_at_its_newest() {
        use casebook_shared::ids::DocumentId;
        let (_, saved) = origin();
        let shared = Shared::new(1);
        let sharing = shared.sharing();
        let (quiet, busy) = (
            DocumentId(uuid::Uuid::from_u128(1)),
            DocumentId(uuid::Uuid::from_u128(2)),
        );
        let mut resting = device(&saved);
        change(&mut resting, "last before the rest");
        let heads = resting.get_heads();
        sharing.keep(quiet, heads.clone(), resting.clone());
        let mut other = device(&saved);
        change(&mut other, "elsewhere");
        sharing.keep(busy, other.get_heads(), other);
        let mut copy = sharing
            .copy_at(quiet, &heads)
            .expect("the newest of the quiet document");
        assert_eq!(copy.get_heads(), heads);
        assert!(
            sharing.copy_at(busy, &heads).is_none(),
            "another document's"
        );
    }

    fn own_hash(bytes: &[u8]) -> automerge::ChangeHash {
        automerge::Change::from_bytes(bytes.to_vec())
            .unwrap()
            .hash()
    }
}
