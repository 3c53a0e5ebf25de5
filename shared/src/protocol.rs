//! The sync protocol's messages and their binary encoding.
//!
//! Each WebSocket binary frame carries exactly one message: one version byte followed by the
//! message encoded with `postcard` (compact, varint based, serde driven). Version
//! [`PROTOCOL_VERSION`] (1) carries the message as it is; version [`DEFLATED_VERSION`] (2)
//! carries it compressed with raw deflate, used for frames over [`DEFLATE_ABOVE`] bytes that
//! compression makes smaller (a device catching up sends its changes at about a third of
//! their size). Devices always send `Hello` as version 2; the server answers a device that
//! did with version 2 frames where they are smaller, and a device that did not (an older
//! app) with version 1 only. A frame with another version byte, an unknown message type or
//! bytes that do not decode (or inflate beyond [`MAX_FRAME_BYTES`]) is refused with a
//! [`DecodeError`]; the server answers it with [`ServerMessage::Error`] and closes the
//! connection.
//!
//! See `docs/sync-protocol.md` for the conversation these messages make.

use crate::ids::{CaseId, DeviceId, DocumentId};
use serde::{Deserialize, Serialize};

/// The version byte of a frame carrying its message as it is.
pub const PROTOCOL_VERSION: u8 = 1;
/// The version byte of a frame carrying its message deflated.
pub const DEFLATED_VERSION: u8 = 2;
/// Frames larger than this are deflated (when the other side reads version 2).
pub const DEFLATE_ABOVE: usize = 1024;
/// Deflate level of the frames a device sends: most of the gain on Automerge changes and
/// text (its upload may be a mobile network, and its processor is its own).
const DEVICE_DEFLATE_LEVEL: u32 = 3;
/// Deflate level of the frames the server sends: the fastest. The server deflates for
/// every device it serves; on chronology changes level 1 takes a quarter to a third of
/// level 3's time for frames of one to eight changes, for 10-12% more bytes
/// (`docs/performance.md`).
const SERVER_DEFLATE_LEVEL: u32 = 1;

/// Largest frame either side accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Most actor ids one `Hello` may declare.
pub const MAX_DECLARED_ACTORS: usize = 16;

/// An Automerge change hash (32 bytes).
pub type Head = [u8; 32];

/// What a device sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// First message on every connection.
    Hello {
        /// The device (stable across reconnects).
        device: DeviceId,
        /// The Automerge actor ids this device writes with.
        actors: Vec<Vec<u8>>,
    },
    /// One `automerge::sync` message for one document.
    Sync {
        /// The document.
        doc: DocumentId,
        /// The device's sync session for this document. A device starts a new session (a
        /// higher number) after reconnecting or when a session stalls; the server then starts
        /// from a fresh sync state and ignores messages of older sessions.
        session: u32,
        /// The encoded `automerge::sync::Message`.
        data: Vec<u8>,
    },
    /// The person opened a record (for the audit log). Views made offline are kept on the
    /// device and sent on the next connection, with the time they happened.
    Viewed {
        /// The record.
        doc: DocumentId,
        /// When, on the device (Unix ms).
        viewed_at: i64,
    },
    /// The device made a new record (a visit note, a review, a form) for a case, perhaps
    /// offline. The server registers the document to the case if the user may work on it,
    /// and answers `Created` (or `Denied`); the device keeps the record, and sends this
    /// again on every connection, until then. Idempotent.
    Create {
        /// The new document (its id made on the device).
        doc: DocumentId,
        /// The case it belongs to.
        case: CaseId,
        /// The record kind (`crate::records::Kind`).
        kind: String,
    },
    /// The person has this record open, in this section (a field's label); an empty section
    /// means they left it. Sent when it changes and every few seconds while it holds. Never
    /// stored: the server passes it to the others who have the record open.
    Presence {
        /// The record.
        doc: DocumentId,
        /// Where in it ("" when they left).
        section: String,
    },
}

/// Longest presence section accepted, in bytes.
pub const MAX_SECTION_BYTES: usize = 200;

/// Why a document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyReason {
    /// The user has no access to the document (or it does not exist).
    NoAccess,
    /// The sync message was refused (too large, malformed, or not accepted).
    Rejected,
}

/// A protocol error's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame did not decode.
    Malformed,
    /// The frame's version byte is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// The frame names a message type this side does not know.
    UnknownMessage,
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    TooLarge,
    /// A message came out of order (for example `Sync` before `Hello`).
    OutOfOrder,
    /// The server could not store the change; nothing was acknowledged.
    StorageFailed,
    /// `Hello` declared an actor id already registered to another device or user.
    ForeignActor,
    /// `Hello` named a device registered to another user.
    ForeignDevice,
    /// The device sent messages faster than the server accepts.
    RateLimited,
    /// The session ended (signed out, timed out, or the account was disabled).
    SessionEnded,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// Answer to `Hello`: the documents this device may hold right now.
    Welcome {
        /// Every document the signed-in user may sync.
        documents: Vec<DocumentId>,
    },
    /// One `automerge::sync` message for one document, built from what the server has
    /// stored: a device holding the message's heads once it has taken it in may take them
    /// as stored, as if told so with `Persisted`.
    Sync {
        /// The document.
        doc: DocumentId,
        /// The device's session this answers.
        session: u32,
        /// The encoded `automerge::sync::Message`.
        data: Vec<u8>,
    },
    /// The server has durably stored the document up to these heads: every change they
    /// include is safe, and the device may stop counting it as waiting. Sent to a device
    /// whose message the server answered when no `Sync` to it carried these heads, and
    /// once in each of its sessions.
    Persisted {
        /// The document.
        doc: DocumentId,
        /// The stored heads.
        heads: Vec<Head>,
    },
    /// A document, or one message about it, was refused; nothing of it was stored.
    Denied {
        /// The document.
        doc: DocumentId,
        /// Why.
        reason: DenyReason,
    },
    /// The documents this device may hold changed (reallocation, cover ended, ...): hold
    /// exactly these; remove every other document from the device.
    Access {
        /// Every document the user may sync now.
        documents: Vec<DocumentId>,
    },
    /// The server dropped its sync state for this document (it refused a message from
    /// another device and reloaded the document from storage): start a new session for it.
    Restart {
        /// The document.
        doc: DocumentId,
    },
    /// A `Viewed` is in the audit log: the device can forget it.
    ViewLogged {
        /// The record.
        doc: DocumentId,
        /// The view's time, as sent.
        viewed_at: i64,
    },
    /// This device has been revoked (reported lost): delete every document, view and key
    /// on it, then sign out. The server closes the connection after this.
    Wipe,
    /// The connection broke the protocol; the server closes it after this.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A sentence for logs and developers (never case content).
        message: String,
    },
    /// A `Create` is done: the document is registered to its case and may be synced.
    /// (New message types are added at the end: a type's number is its position.)
    Created {
        /// The document.
        doc: DocumentId,
    },
    /// Someone else has this record open, in this section ("" when they left it).
    Presence {
        /// The record.
        doc: DocumentId,
        /// Who.
        staff: crate::ids::StaffId,
        /// Their name.
        name: String,
        /// Where in the record.
        section: String,
    },
}

/// A frame that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Empty frame.
    #[error("empty frame")]
    Empty,
    /// Version byte not understood.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// Unknown message type.
    #[error("unknown message type")]
    UnknownMessage,
    /// The frame is too large.
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The bytes do not form a message.
    #[error("malformed frame")]
    Malformed,
}

impl DecodeError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Empty | DecodeError::Malformed => ErrorCode::Malformed,
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeError::UnknownMessage => ErrorCode::UnknownMessage,
            DecodeError::TooLarge(_) => ErrorCode::TooLarge,
        }
    }
}

/// Encodes `message` as version 1, or (`deflate` gives the level) as version 2 when that
/// is smaller, or with a level and `force_deflate` always as version 2.
fn encode<T: Serialize>(message: &T, deflate: Option<u32>, force_deflate: bool) -> Vec<u8> {
    // Serialising these plain enums into a Vec cannot fail.
    let body = postcard::to_stdvec(message).expect("protocol messages always serialise");
    if let Some(level) = deflate.filter(|_| force_deflate || body.len() > DEFLATE_ABOVE) {
        let packed = deflate_raw(&body, level);
        if force_deflate || packed.len() < body.len() {
            let mut out = Vec::with_capacity(packed.len() + 1);
            out.push(DEFLATED_VERSION);
            out.extend(packed);
            return out;
        }
    }
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(PROTOCOL_VERSION);
    out.extend(body);
    out
}

/// Encoders kept between frames for reuse: setting one up (its window and hash tables)
/// took a third of the time of deflating a frame of one or two changes, and each holds
/// about 316 KB. A few, shared, cover the server's two worker threads and bound that
/// memory; one per thread would grow with every thread the runtime runs work on (15 in the
/// server under the live load).
const KEPT_ENCODERS: usize = 4;

/// Encoders not in use, with their levels.
static KEPT: std::sync::Mutex<Vec<(u32, flate2::write::DeflateEncoder<Vec<u8>>)>> =
    std::sync::Mutex::new(Vec::new());

/// Raw deflate (no zlib header), with `flate2` on the zlib-rs backend: the deflate
/// Automerge already brings into the app, so the bundle carries one. Uses a kept encoder
/// of the level when there is one ([`KEPT_ENCODERS`]).
fn deflate_raw(body: &[u8], level: u32) -> Vec<u8> {
    use flate2::{Compression, write::DeflateEncoder};
    use std::io::Write;
    use std::sync::PoisonError;
    let taken = {
        let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        let found = kept.iter().position(|(kept_level, _)| *kept_level == level);
        found.map(|i| kept.swap_remove(i).1)
    };
    let mut encoder =
        taken.unwrap_or_else(|| DeflateEncoder::new(Vec::new(), Compression::new(level)));
    *encoder.get_mut() = Vec::with_capacity(body.len() / 2);
    // Writing into a Vec cannot fail. `reset` ends the stream, hands back its bytes and
    // leaves the encoder ready for the next frame.
    encoder.write_all(body).expect("deflating into memory");
    let out = encoder.reset(Vec::new()).expect("deflating into memory");
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < KEPT_ENCODERS {
        kept.push((level, encoder));
    }
    out
}

/// Inflates raw deflate, refusing output over `limit` bytes (checked as it inflates, so a
/// small frame cannot expand without bound).
fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Malformed)?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit + 1));
    }
    Ok(out)
}

/// The version byte of a frame (0 for an empty frame).
pub fn frame_version(frame: &[u8]) -> u8 {
    frame.first().copied().unwrap_or(0)
}

/// Reads the varint that starts a postcard-encoded enum: the message type.
fn message_type(body: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for (i, byte) in body.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8], types: u32) -> Result<T, DecodeError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(frame.len()));
    }
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    let inflated;
    let body = match version {
        PROTOCOL_VERSION => body,
        DEFLATED_VERSION => {
            inflated = inflate(body, MAX_FRAME_BYTES)?;
            &inflated[..]
        }
        other => return Err(DecodeError::UnsupportedVersion(other)),
    };
    match message_type(body) {
        None => return Err(DecodeError::Malformed),
        Some(t) if t >= types => return Err(DecodeError::UnknownMessage),
        Some(_) => {}
    }
    match postcard::take_from_bytes(body) {
        Ok((message, [])) => Ok(message),
        Ok(_) => Err(DecodeError::Malformed),
        Err(_) => Err(DecodeError::Malformed),
    }
}

impl ClientMessage {
    /// Encodes the message as one frame (large frames deflated; `Hello` always version 2, to
    /// tell the server this device reads deflated frames).
    pub fn encode(&self) -> Vec<u8> {
        encode(
            self,
            Some(DEVICE_DEFLATE_LEVEL),
            matches!(self, ClientMessage::Hello { .. }),
        )
    }

    /// Encodes the message as version 1 only (as an app from before deflated frames did).
    pub fn encode_plain(&self) -> Vec<u8> {
        encode(self, None, false)
    }
    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        decode(frame, 5)
    }
}

impl ServerMessage {
    /// Encodes the message as one version 1 frame.
    pub fn encode(&self) -> Vec<u8> {
        encode(self, None, false)
    }

    /// Encodes the message for a device: deflated (fast) where that is smaller if it reads
    /// version 2 frames (`deflate`).
    pub fn encode_for(&self, deflate: bool) -> Vec<u8> {
        encode(self, deflate.then_some(SERVER_DEFLATE_LEVEL), false)
    }
    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        decode(frame, 11)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_are_deflated_and_read_back_and_hello_is_always_version_2() {
        let doc = DocumentId::from_random_bytes([3; 16]);
        let text: Vec<u8> = b"Home visit: discussed the order. ".repeat(200);
        let m = ClientMessage::Sync {
            doc,
            session: 1,
            data: text.clone(),
        };
        let frame = m.encode();
        assert_eq!(frame_version(&frame), DEFLATED_VERSION);
        assert!(frame.len() < text.len() / 4, "{} bytes", frame.len());
        assert_eq!(ClientMessage::decode(&frame), Ok(m.clone()));
        assert_eq!(frame_version(&m.encode_plain()), PROTOCOL_VERSION);
        assert_eq!(ClientMessage::decode(&m.encode_plain()), Ok(m));
        let small = ClientMessage::Sync {
            doc,
            session: 1,
            data: vec![1, 2, 3],
        };
        assert_eq!(frame_version(&small.encode()), PROTOCOL_VERSION);
        let hello = ClientMessage::Hello {
            device: DeviceId::from_random_bytes([1; 16]),
            actors: vec![],
        };
        assert_eq!(frame_version(&hello.encode()), DEFLATED_VERSION);
        assert_eq!(ClientMessage::decode(&hello.encode()), Ok(hello));
        let persisted = ServerMessage::Sync {
            doc,
            session: 1,
            data: text,
        };
        assert_eq!(frame_version(&persisted.encode()), PROTOCOL_VERSION);
        assert_eq!(frame_version(&persisted.encode_for(true)), DEFLATED_VERSION);
        assert_eq!(
            ServerMessage::decode(&persisted.encode_for(true)),
            Ok(persisted)
        );
    }

    #[test]
    fn frames_deflated_one_after_another_by_both_sides_each_read_back_alone() {
        // Encoders are kept between frames: each frame must still be a whole stream of its
        // own, whichever side deflated the frame before it.
        let doc = DocumentId::from_random_bytes([4; 16]);
        let sync = |n: usize| ServerMessage::Sync {
            doc,
            session: 1,
            data: format!("Entry {n}: home visit, discussed the licence conditions. ")
                .repeat(40 + n)
                .into_bytes(),
        };
        let sent = |n: usize| ClientMessage::Sync {
            doc,
            session: 2,
            data: format!("Note {n}: telephone call with the supervising officer. ")
                .repeat(30 + n)
                .into_bytes(),
        };
        let server_sends = |n: usize| {
            let frame = sync(n).encode_for(true);
            assert_eq!(frame_version(&frame), DEFLATED_VERSION);
            assert_eq!(ServerMessage::decode(&frame), Ok(sync(n)));
        };
        let device_sends = |n: usize| {
            let frame = sent(n).encode();
            assert_eq!(frame_version(&frame), DEFLATED_VERSION);
            assert_eq!(ClientMessage::decode(&frame), Ok(sent(n)));
        };
        // Runs of frames from one side, then the two sides in turn.
        (0..4).for_each(server_sends);
        (0..4).for_each(device_sends);
        for n in 4..8 {
            server_sends(n);
            device_sends(n);
        }
    }

    #[test]
    fn a_deflated_frame_that_inflates_past_the_limit_or_is_garbage_is_refused() {
        let bomb = deflate_raw(&vec![0u8; MAX_FRAME_BYTES + 10], 6);
        let mut frame = vec![DEFLATED_VERSION];
        frame.extend(bomb);
        assert!(frame.len() < 64 * 1024);
        assert!(matches!(
            ClientMessage::decode(&frame),
            Err(DecodeError::TooLarge(_))
        ));
        assert_eq!(
            ClientMessage::decode(&[DEFLATED_VERSION, 0xff, 0x13, 0x07]),
            Err(DecodeError::Malformed)
        );
    }

    #[test]
    fn messages_round_trip() {
        let doc = DocumentId::from_random_bytes([3; 16]);
        let m = ClientMessage::Sync {
            doc,
            session: 4,
            data: vec![1, 2, 3],
        };
        assert_eq!(ClientMessage::decode(&m.encode()), Ok(m));
        let s = ServerMessage::Persisted {
            doc,
            heads: vec![[9; 32]],
        };
        assert_eq!(ServerMessage::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn every_message_type_round_trips() {
        // Guards the message-type counts `decode` uses to tell unknown types from garbage.
        let doc = DocumentId::from_random_bytes([3; 16]);
        let device = DeviceId::from_random_bytes([4; 16]);
        let client = [
            ClientMessage::Hello {
                device,
                actors: vec![vec![1; 16]],
            },
            ClientMessage::Sync {
                doc,
                session: 1,
                data: vec![],
            },
            ClientMessage::Viewed { doc, viewed_at: 9 },
            ClientMessage::Create {
                doc,
                case: CaseId::from_random_bytes([5; 16]),
                kind: "visit-note".into(),
            },
            ClientMessage::Presence {
                doc,
                section: "Outcome".into(),
            },
        ];
        for m in client {
            assert_eq!(ClientMessage::decode(&m.encode()), Ok(m));
        }
        let server = [
            ServerMessage::Welcome {
                documents: vec![doc],
            },
            ServerMessage::Sync {
                doc,
                session: 2,
                data: vec![7],
            },
            ServerMessage::Persisted { doc, heads: vec![] },
            ServerMessage::Denied {
                doc,
                reason: DenyReason::NoAccess,
            },
            ServerMessage::Restart { doc },
            ServerMessage::Access {
                documents: vec![doc],
            },
            ServerMessage::ViewLogged { doc, viewed_at: 5 },
            ServerMessage::Wipe,
            ServerMessage::Error {
                code: ErrorCode::TooLarge,
                message: "x".into(),
            },
            ServerMessage::Created { doc },
            ServerMessage::Presence {
                doc,
                staff: crate::ids::StaffId::from_random_bytes([6; 16]),
                name: "Lee".into(),
                section: "Outcome".into(),
            },
        ];
        for m in server {
            assert_eq!(ServerMessage::decode(&m.encode()), Ok(m));
        }
        assert_eq!(
            ServerMessage::decode(&[1, 11]),
            Err(DecodeError::UnknownMessage)
        );
    }

    #[test]
    fn bad_frames_are_named() {
        assert_eq!(ClientMessage::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            ClientMessage::decode(&[9, 0]),
            Err(DecodeError::UnsupportedVersion(9))
        );
        assert_eq!(
            ClientMessage::decode(&[1, 77]),
            Err(DecodeError::UnknownMessage)
        );
        assert_eq!(
            ClientMessage::decode(&[1, 1, 0xff]),
            Err(DecodeError::Malformed)
        );
        let mut trailing = ClientMessage::Hello {
            device: DeviceId::from_random_bytes([1; 16]),
            actors: vec![],
        }
        .encode_plain();
        trailing.push(0);
        assert_eq!(
            ClientMessage::decode(&trailing),
            Err(DecodeError::Malformed)
        );
        let huge = vec![1u8; MAX_FRAME_BYTES + 1];
        assert!(matches!(
            ClientMessage::decode(&huge),
            Err(DecodeError::TooLarge(_))
        ));
    }
}
