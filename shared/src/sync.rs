//! The sync protocol core: pure state machines over `automerge::sync`.
//!
//! - [`client::ClientCore`] runs on every device. It holds the device's documents, one
//!   `automerge::sync::State` per document for the current connection, and the heads the
//!   server last said it had durably stored (so it can say how many changes are waiting).
//! - [`room::DocumentRoom`] runs on the server, one per loaded document. It holds the
//!   document and one sync state per connected peer, and hands back the changes a message
//!   brought so the server can store them **before** it sends anything further.
//!
//! - [`quiet::QuietDocument`] answers devices that only open a stored document (one that
//!   holds nothing of it, one already in step) from the snapshot, without loading it into a
//!   room; anything else loads the room, which takes over from where it left off.
//! - `content::Content` is the device's side of the same idea: a document that arrived
//!   whole, or is restored from one whole save, stays those bytes with their heads until it
//!   is read, edited or sent changes; `receive::receive_by_heads` and
//!   `message::by_heads` take in and answer what heads alone settle. A loaded document
//!   keeps those bytes, so [`client::ClientCore::close`] can put it back to them (the
//!   load benchmarks' devices can close each record once nothing of theirs waits in it).
//! - [`receive::Sharing`] lets the load benchmarks' thousand simulated devices do
//!   Automerge's work once between them (the app never sets one).
//! - [`message::next_message`] builds the next message for a peer, answering
//!   acknowledgements and "nothing owed" from the sync state without a pass over the
//!   document; both of the above use it.
//! - [`receive::receive`] takes a message in as Automerge's `receive_sync_message` does,
//!   without its walk of the whole change graph after every message; rooms use
//!   [`receive::receive_parsed`], which applies changes they parsed once
//!   ([`chunk::parse_changes`]) and keep to store.
//!
//! Neither reads a clock: time is passed in as milliseconds. Neither does IO: they return
//! the messages to send and the documents to save, and the runtime adapters (the browser app,
//! the axum server, the native test client, the simulation) carry those out.

pub mod chunk;
pub mod client;
mod content;
pub mod message;
pub mod quiet;
pub mod receive;
pub mod room;

use crate::protocol::Head;
use automerge::{AutoCommit, ChangeHash};

/// Drops what the document's own patch log gathered. Automerge 0.12 records every text
/// insertion it applies in an `AutoCommit`'s patch log even while that log is inactive, and
/// nothing here reads it, so it grew with every change a document took in: in a live-load
/// run a fifth of all CPU went on growing those logs, and the memory was never returned.
/// Called after every change a document takes in or makes.
pub(crate) fn forget_patches(doc: &mut AutoCommit) {
    doc.reset_diff_cursor();
}

/// Converts Automerge heads to their wire form.
pub fn heads_to_wire(heads: &[ChangeHash]) -> Vec<Head> {
    heads.iter().map(|h| h.0).collect()
}

/// Converts wire heads back to Automerge heads.
pub fn heads_from_wire(heads: &[Head]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}
