//! # casebook-shared
//!
//! What the Casebook app (wasm32) and server (native) have in common. Nothing here does IO,
//! reads a clock or draws randomness: time and ids are passed in, so every piece can be tested
//! deterministically and reused by the browser app, the server and native test clients.
//!
//! # Layout
//! - [`ids`]: identifier newtypes (`DocumentId`, `CaseId`, `DeviceId`, `StaffId`).
//! - [`api`]: JSON types of the HTTP API (sign-in, case list).
//! - [`chronology`]: the case chronology as an Automerge document: its schema, reading it,
//!   adding and editing entries, validating a draft.
//! - [`dates`]: calendar dates as the forms use them (`YYYY-MM-DD`), days and months added.
//! - [`schedule`]: the HRO review schedule (due three months on; due soon; overdue).
//! - [`protocol`]: the versioned binary messages exchanged over the sync WebSocket.
//! - [`records`]: the kinds of record (document) a case holds.
//! - [`sync`]: the sync protocol core: [`sync::client::ClientCore`] (one per device) and
//!   [`sync::room::DocumentRoom`] (one per document on the server), both pure state machines
//!   over `automerge::sync`, and [`sync::quiet::QuietDocument`] (a stored document answered
//!   from its snapshot until it has to be loaded).
//!
//! `docs/sync-protocol.md` at the top of the repository describes the protocol for people.
//!
//! The app's release bundle is built with `-Zfmt-debug=none` (`{:?}` writes nothing there),
//! so nothing outside tests here formats with `Debug`; names in messages are quoted with
//! `escape_debug`, which is `Display`.

#![cfg_attr(not(test), deny(clippy::use_debug))]

pub mod api;
pub mod chronology;
pub mod dates;
pub mod ids;
pub mod protocol;
pub mod records;
pub mod schedule;
pub mod sync;
