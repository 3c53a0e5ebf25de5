//! # casebook-tests
//!
//! Helpers for Casebook's integration and end-to-end tests. Everything is real: a server on
//! a random port, a fresh database per test (SQLite in a temporary folder, or a new PostgreSQL
//! database that is dropped afterwards), WebSockets, and headless Chromium for browser tests.
//!
//! # Layout
//! - [`database`]: a fresh database per test, on the engine chosen by `CASEBOOK_TEST_ENGINE`.
//! - [`server`]: the server in-process on port 0, or as a child process that can be killed.
//! - [`device`]: a native sync client built on the same protocol core as the app.
//! - [`http`]: signing in over HTTP.
//! - [`raw`]: a raw sync socket for crafted and hostile messages.
//! - [`browser`]: headless Chromium through chromedriver, and a switchable network.
//! - [`bench`]: the benchmark scenarios `cargo xtask bench` runs (`src/bin/casebook-bench.rs`).
//!
//! The test binaries are in `tests/`: `sync.rs` (sync and durability), `bad_input.rs`
//! (malformed frames and refused documents), `browser.rs` (the app in Chromium).

pub mod bench;
pub mod browser;
pub mod database;
pub mod device;
pub mod http;
pub mod raw;
pub mod server;
