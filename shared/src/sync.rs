//! The sync protocol core: pure state machines over `automerge::sync`.
//!
//! - [`client::ClientCore`] runs on every device. It holds the device's documents, one
//!   `automerge::sync::State` per document for the current connection, and the heads the
//!   server last said it had durably stored (so it can say how many changes are waiting).
//! - [`room::DocumentRoom`] runs on the server, one per loaded document. It holds the
//!   document and one sync state per connected peer, and hands back the changes a message
//!   brought so the server can store them **before** it sends anything further.
//!
//! Neither reads a clock: time is passed in as milliseconds. Neither does IO: they return
//! the messages to send and the documents to save, and the runtime adapters (the browser app,
//! the axum server, the native test client, the simulation) carry those out.

pub mod client;
pub mod room;

use crate::protocol::Head;
use automerge::ChangeHash;

/// Converts Automerge heads to their wire form.
pub fn heads_to_wire(heads: &[ChangeHash]) -> Vec<Head> {
    heads.iter().map(|h| h.0).collect()
}

/// Converts wire heads back to Automerge heads.
pub fn heads_from_wire(heads: &[Head]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}
