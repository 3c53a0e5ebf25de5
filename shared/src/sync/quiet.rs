//! A stored document answered without loading it.
//!
//! Loading a document into a [`DocumentRoom`] costs Automerge a rebuild of every change in
//! it (its load reconstructs the change graph), and a device picking up a caseload opens
//! a thousand documents. Most of those openings need nothing the stored snapshot does not
//! say in its header: a device that holds nothing of the document is sent the snapshot
//! itself, and a device that already holds the stored heads is told that it is in step.
//! [`QuietDocument`] answers just those exchanges, and keeps every message each device
//! sent. When anything else arrives (a change, a request, a device at other heads), the
//! server loads the room and [`QuietDocument::replay`]s those messages into it, which
//! brings each device's sync state in the room to what it would be had the room answered
//! all along; then the room answers the new message.
//!
//! The one answer that differs from Automerge's own is the summary sent with the whole
//! document: "everything up to these heads" rather than a bloom filter of every change
//! (which needs the change graph). Both tell the device the server has every change it
//! was sent; the device's acknowledgement, and every state after it, are the same (the
//! tests check this against a room that answered itself).

use super::message::{build, same_heads};
use super::room::{DocumentRoom, Limits, PeerId};
use crate::protocol::Head;
use automerge::ChangeHash;
use automerge::sync::{self, MessageFlags};
use std::collections::HashMap;

/// What to do with one message to a quiet document.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send this sync message to the peer (and tell it the stored heads).
    Send(Vec<u8>),
    /// The peer is owed nothing.
    Nothing,
    /// The message belongs to an older session of the peer: ignore it.
    Stale,
    /// Only the loaded document can answer: load it, [`QuietDocument::replay`], and hand
    /// the room this message.
    Load,
    /// Not a sync message.
    Malformed,
}

/// Where a peer's current session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Sent the whole document; its acknowledgement is awaited.
    SentWhole,
    /// Holds the stored heads, and knows we hold them.
    InStep,
}

struct QuietPeer {
    session: u32,
    /// Every message of the session, in order, for [`QuietDocument::replay`].
    received: Vec<Vec<u8>>,
    stage: Stage,
}

/// A stored document (a snapshot with nothing stored after it) and the peers it has
/// answered without loading.
pub struct QuietDocument {
    /// Sorted.
    heads: Vec<ChangeHash>,
    /// `None` once forgotten ([`QuietDocument::forget_snapshot`]): peers in step are still
    /// answered from the heads; anything else waits for [`QuietDocument::restore_snapshot`].
    snapshot: Option<Vec<u8>>,
    peers: HashMap<PeerId, QuietPeer>,
}

impl QuietDocument {
    /// A quiet document over `snapshot` if it is exactly one saved, non-empty document;
    /// otherwise the bytes back.
    pub fn open(snapshot: Vec<u8>) -> Result<Self, Vec<u8>> {
        match super::chunk::document_heads(&snapshot).filter(|h| !h.is_empty()) {
            Some(heads) => Ok(Self {
                heads,
                snapshot: Some(snapshot),
                peers: HashMap::new(),
            }),
            None => Err(snapshot),
        }
    }

    /// The stored heads, in wire form.
    pub fn heads(&self) -> Vec<Head> {
        super::heads_to_wire(&self.heads)
    }

    /// The snapshot (to load the room from), unless forgotten.
    pub fn snapshot(&self) -> Option<&[u8]> {
        self.snapshot.as_deref()
    }

    /// Lets go of the snapshot's bytes while nobody needs them (the devices in step are
    /// answered from the heads), keeping the heads and the peers: a device connected all
    /// day holds every document of its caseload open this way.
    pub fn forget_snapshot(&mut self) {
        self.snapshot = None;
    }

    /// Takes the snapshot back (read from storage again) if it is of this document's
    /// heads; otherwise returns it: the stored document changed meanwhile.
    pub fn restore_snapshot(&mut self, snapshot: Vec<u8>) -> Result<(), Vec<u8>> {
        if super::chunk::document_heads(&snapshot).is_some_and(|h| h == self.heads) {
            self.snapshot = Some(snapshot);
            Ok(())
        } else {
            Err(snapshot)
        }
    }

    /// Peers that have sent a message.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// The session `peer` is in, if it has sent a message.
    pub fn session(&self, peer: PeerId) -> Option<u32> {
        self.peers.get(&peer).map(|p| p.session)
    }

    /// Removes a peer (its connection closed).
    pub fn leave(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }

    /// Answers one sync message from `peer` in its `session`, if it can without the
    /// loaded document.
    pub fn receive(&mut self, peer: PeerId, session: u32, data: &[u8]) -> Answer {
        let Ok(message) = sync::Message::decode(data) else {
            return Answer::Malformed;
        };
        let known = self.peers.get(&peer);
        if known.is_some_and(|p| session < p.session) {
            return Answer::Stale;
        }
        let plain = message.changes.is_empty()
            && message.need.is_empty()
            && message.flags.is_some_and(|f| {
                f.contains(MessageFlags::SUPPORTS_SYNC_RESET)
                    && !f.contains(MessageFlags::READ_ONLY)
                    && !f.contains(MessageFlags::SYNC_RESET)
            });
        if !plain {
            return Answer::Load;
        }
        let at_ours = same_heads(&message.heads, &self.heads);
        // What the peer says it shares with us: nothing yet, or our heads.
        let summary_fits = |ours_only: bool| {
            message.have.iter().all(|h| {
                same_heads(&h.last_sync, &self.heads) || (!ours_only && h.last_sync.is_empty())
            })
        };
        match known.filter(|p| p.session == session).map(|p| p.stage) {
            // The first message of a session.
            None => {
                let (reply, stage) = if message.heads.is_empty() && summary_fits(false) {
                    // The whole document: without the snapshot, it waits for it.
                    let Some(snapshot) = self.snapshot.clone() else {
                        return Answer::Load;
                    };
                    (self.reply(vec![snapshot]), Stage::SentWhole)
                } else if at_ours && summary_fits(false) {
                    (self.reply(Vec::new()), Stage::InStep)
                } else {
                    return Answer::Load;
                };
                self.peers.insert(
                    peer,
                    QuietPeer {
                        session,
                        received: vec![data.to_vec()],
                        stage,
                    },
                );
                Answer::Send(reply)
            }
            // The acknowledgement of the whole document, or a repeat of the heads both
            // sides know: nothing is owed.
            Some(_) if at_ours && summary_fits(true) => {
                let p = self.peers.get_mut(&peer).expect("known peer");
                p.received.push(data.to_vec());
                p.stage = Stage::InStep;
                Answer::Nothing
            }
            Some(_) => Answer::Load,
        }
    }

    /// Brings `room`, just loaded from [`Self::snapshot`], to the sync states the peers
    /// would have there had it answered them, by handing it their messages in order (its
    /// answers were already sent, in substance, and are dropped). Returns the peers that
    /// must start a new session instead: all of them if the room is not at the stored
    /// heads.
    pub fn replay(self, room: &mut DocumentRoom, limits: &Limits, now_ms: u64) -> Vec<PeerId> {
        let mut heads = room.change_hashes();
        heads.sort();
        if heads != self.heads {
            return self.peers.into_keys().collect();
        }
        let mut restart = Vec::new();
        for (peer, p) in self.peers {
            for message in &p.received {
                if room.receive(peer, p.session, message, limits).is_err() {
                    restart.push(peer);
                    room.leave(peer);
                    break;
                }
                room.outgoing(now_ms);
            }
            // Each answer from the snapshot came with a `Persisted` of its heads: the
            // room notes the peer told them (what it would send is already sent).
            let _ = room.tell_stored(peer);
        }
        restart
    }

    /// Our heads, an empty summary since them, and `changes`: with the snapshot, the whole
    /// document for a peer that holds nothing; without, what Automerge sends a peer at our
    /// heads.
    fn reply(&self, changes: Vec<Vec<u8>>) -> Vec<u8> {
        build(
            &self.heads,
            self.heads.clone(),
            &[],
            changes,
            sync::MessageVersion::V2,
        )
        .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::AutoCommit;
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;

    /// A stored document written by two people (so it has changes by two actors).
    fn stored() -> Vec<u8> {
        let mut a = AutoCommit::new();
        let mut b = AutoCommit::new();
        for n in 0..40 {
            let doc = if n % 3 == 0 { &mut b } else { &mut a };
            doc.put(automerge::ROOT, format!("k{n}"), n).unwrap();
            doc.commit();
        }
        a.merge(&mut b).unwrap();
        a.save()
    }

    struct Device {
        doc: AutoCommit,
        state: sync::State,
    }

    impl Device {
        fn holding(bytes: Option<&[u8]>) -> Self {
            Device {
                doc: bytes.map_or_else(AutoCommit::new, |b| AutoCommit::load(b).unwrap()),
                state: sync::State::new(),
            }
        }
        fn say(&mut self) -> Option<Vec<u8>> {
            self.doc
                .sync()
                .generate_sync_message(&mut self.state)
                .map(sync::Message::encode)
        }
        fn hear(&mut self, bytes: &[u8]) {
            let m = sync::Message::decode(bytes).unwrap();
            self.doc
                .sync()
                .receive_sync_message(&mut self.state, m)
                .unwrap();
        }
    }

    /// The same device's conversation, once with a quiet document and once with a room
    /// loaded from the same snapshot: what it says, and where everyone ends up.
    fn both_ways(holding: Option<&[u8]>, snapshot: &[u8]) -> (DocumentRoom, DocumentRoom, Device) {
        let limits = Limits::default();
        let mut quiet = QuietDocument::open(snapshot.to_vec()).unwrap();
        let mut served = DocumentRoom::load(Some(snapshot), []).unwrap();
        let mut a = Device::holding(holding);
        let mut b = Device::holding(holding);
        for _ in 0..4 {
            let (said_a, said_b) = (a.say(), b.say());
            assert_eq!(said_a, said_b, "the device says the same either way");
            let Some(said) = said_a else { break };
            match quiet.receive(1, 1, &said) {
                Answer::Send(reply) => a.hear(&reply),
                Answer::Nothing => {}
                other => panic!("the quiet document answers: {other:?}"),
            }
            served.receive(1, 1, &said, &limits).unwrap();
            for out in served.outgoing(0) {
                b.hear(&out.data);
            }
        }
        assert_eq!(a.say(), None, "the device is done");
        assert_eq!(a.doc.get_heads(), b.doc.get_heads());
        let mut replayed = DocumentRoom::load(Some(snapshot), []).unwrap();
        assert_eq!(
            quiet.replay(&mut replayed, &limits, 0),
            Vec::<PeerId>::new()
        );
        (served, replayed, a)
    }

    #[test]
    fn a_device_holding_nothing_is_sent_the_snapshot_and_the_room_takes_over_in_step() {
        let snapshot = stored();
        let (served, mut replayed, mut device) = both_ways(None, &snapshot);
        assert_eq!(
            served.peer_state(1),
            replayed.peer_state(1),
            "the replayed room's state for the device is the one a serving room has"
        );
        // And it carries on: a co-worker's change reaches the device through it.
        let mut coworker = Device::holding(Some(&snapshot));
        coworker.doc.put(automerge::ROOT, "new", 1).unwrap();
        coworker.doc.commit();
        let limits = Limits::default();
        for _ in 0..10 {
            for (peer, side) in [(1, &mut device), (2, &mut coworker)] {
                if let Some(m) = side.say() {
                    replayed.receive(peer, 1, &m, &limits).unwrap();
                }
            }
            for out in replayed.outgoing(0) {
                match out.peer {
                    1 => device.hear(&out.data),
                    _ => coworker.hear(&out.data),
                }
            }
        }
        assert_eq!(device.doc.get_heads(), coworker.doc.get_heads());
        let (value, _) = automerge::ReadDoc::get(&device.doc, automerge::ROOT, "new")
            .unwrap()
            .expect("the co-worker's entry");
        assert_eq!(value.to_string(), "1");
    }

    #[test]
    fn a_device_in_step_is_told_so_exactly_as_the_room_would_tell_it() {
        let snapshot = stored();
        let mut quiet = QuietDocument::open(snapshot.clone()).unwrap();
        let mut room = DocumentRoom::load(Some(&snapshot), []).unwrap();
        let mut device = Device::holding(Some(&snapshot));
        let hello = device.say().unwrap();
        room.receive(1, 1, &hello, &Limits::default()).unwrap();
        let expected = room.outgoing(0).remove(0).data;
        assert_eq!(quiet.receive(1, 1, &hello), Answer::Send(expected));
        let (served, replayed, _) = both_ways(Some(&snapshot), &snapshot);
        assert_eq!(served.peer_state(1), replayed.peer_state(1));
    }

    #[test]
    fn anything_else_needs_the_loaded_document() {
        let snapshot = stored();
        let mut quiet = QuietDocument::open(snapshot.clone()).unwrap();
        // A device with a change of its own.
        let mut editor = Device::holding(Some(&snapshot));
        editor.doc.put(automerge::ROOT, "mine", 1).unwrap();
        editor.doc.commit();
        assert_eq!(quiet.receive(1, 1, &editor.say().unwrap()), Answer::Load);
        // A device at other heads (it holds part of the document).
        let mut part = AutoCommit::new();
        part.put(automerge::ROOT, "other", 1).unwrap();
        part.commit();
        let mut behind = Device::holding(Some(&part.save()));
        assert_eq!(quiet.receive(2, 1, &behind.say().unwrap()), Answer::Load);
        assert_eq!(
            quiet.receive(3, 1, b"not a sync message"),
            Answer::Malformed
        );
        // Sessions: an older one is ignored, a newer one starts afresh.
        let mut fresh = Device::holding(None);
        let hello = fresh.say().unwrap();
        assert!(matches!(quiet.receive(4, 2, &hello), Answer::Send(_)));
        assert_eq!(quiet.receive(4, 1, &hello), Answer::Stale);
        assert!(matches!(quiet.receive(4, 3, &hello), Answer::Send(_)));
        assert_eq!(quiet.session(4), Some(3));
        // After the exchange, a change from the device needs the room.
        let mut fresh = Device::holding(None);
        let Answer::Send(whole) = quiet.receive(5, 1, &fresh.say().unwrap()) else {
            panic!("whole document")
        };
        fresh.hear(&whole);
        assert_eq!(quiet.receive(5, 1, &fresh.say().unwrap()), Answer::Nothing);
        fresh.doc.put(automerge::ROOT, "later", 1).unwrap();
        fresh.doc.commit();
        assert_eq!(quiet.receive(5, 1, &fresh.say().unwrap()), Answer::Load);
        // Not a single saved document: no quiet answers.
        assert!(QuietDocument::open([snapshot.clone(), snapshot].concat()).is_err());
        assert!(QuietDocument::open(AutoCommit::new().save()).is_err());
    }

    #[test]
    fn a_room_at_other_heads_restarts_the_quiet_peers() {
        let snapshot = stored();
        let mut quiet = QuietDocument::open(snapshot.clone()).unwrap();
        let mut fresh = Device::holding(None);
        assert!(matches!(
            quiet.receive(7, 1, &fresh.say().unwrap()),
            Answer::Send(_)
        ));
        let mut newer = AutoCommit::load(&snapshot).unwrap();
        newer.put(automerge::ROOT, "since", 1).unwrap();
        newer.commit();
        let mut room = DocumentRoom::load(Some(&newer.save()), []).unwrap();
        assert_eq!(quiet.replay(&mut room, &Limits::default(), 0), vec![7]);
        assert_eq!(room.peers().count(), 0);
    }

    #[test]
    fn a_forgotten_snapshot_still_answers_devices_in_step_and_is_taken_back_only_at_its_heads() {
        let snapshot = stored();
        let mut quiet = QuietDocument::open(snapshot.clone()).unwrap();
        let mut device = Device::holding(None);
        let Answer::Send(whole) = quiet.receive(1, 1, &device.say().unwrap()) else {
            panic!("whole document")
        };
        device.hear(&whole);
        quiet.forget_snapshot();
        assert_eq!(quiet.snapshot(), None);
        // The device in step acknowledges, and a device in step starts a session: the heads
        // answer both.
        assert_eq!(quiet.receive(1, 1, &device.say().unwrap()), Answer::Nothing);
        let mut in_step = Device::holding(Some(&snapshot));
        assert!(matches!(
            quiet.receive(2, 1, &in_step.say().unwrap()),
            Answer::Send(_)
        ));
        // A device holding nothing needs the bytes.
        let mut fresh = Device::holding(None);
        let hello = fresh.say().unwrap();
        assert_eq!(quiet.receive(3, 1, &hello), Answer::Load);
        // Bytes of another state of the document are refused; the stored ones taken back.
        let mut newer = AutoCommit::load(&snapshot).unwrap();
        newer.put(automerge::ROOT, "since", 1).unwrap();
        newer.commit();
        assert!(quiet.restore_snapshot(newer.save()).is_err());
        assert!(quiet.restore_snapshot(b"not a document".to_vec()).is_err());
        assert_eq!(quiet.snapshot(), None);
        quiet.restore_snapshot(snapshot.clone()).unwrap();
        assert_eq!(quiet.snapshot(), Some(&snapshot[..]));
        let Answer::Send(whole) = quiet.receive(3, 1, &hello) else {
            panic!("whole document")
        };
        fresh.hear(&whole);
        assert_eq!(fresh.doc.get_heads(), device.doc.get_heads());
    }
}
