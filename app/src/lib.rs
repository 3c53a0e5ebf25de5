//! # casebook-app
//!
//! The Casebook app, a Leptos (client-side rendered) program compiled to WebAssembly. It works
//! with no network: every case document lives in IndexedDB on the device as Automerge chunks,
//! edits are made locally, and a WebSocket syncs them with the server whenever it can.
//!
//! # Layout
//! - [`state`]: the app-wide signals (who is signed in, which page, sync status).
//! - [`http`]: the JSON API over `fetch`.
//! - [`local_store`]: IndexedDB: document chunks, persisted heads, cached lists, all
//!   encrypted.
//! - [`vault`]: WebCrypto AES-GCM sealing, and keys derived from a password.
//! - [`unlock`]: the device's data key and the two ways it is kept wrapped (a key the server
//!   releases to the live, unrevoked device; a password-derived copy for 72 hours offline).
//! - [`sync_client`]: the browser adapter around `casebook_shared::sync::client::ClientCore`:
//!   WebSocket, reconnection with backoff, saving to IndexedDB.
//! - [`pages`]: sign-in, case list, case page (chronology), records and the other screens;
//!   those not used on a visit are split off the first download (`pages::later`).
//! - [`format`]: dates and times as shown.
//! - [`components`]: the sync status badge and the chronology entry form.
//!
//! Static files (`index.html`, `boot.js`, the service worker, styles) are in `app/static/`;
//! `cargo xtask build-app` bundles them with the wasm into `dist/`.
//!
//! The release bundle is built with `-Zfmt-debug=none`: `{:?}` writes nothing there. So the
//! app shows, logs and keys nothing by `Debug` (`clippy::use_debug` below keeps it so).

#![deny(clippy::use_debug)]

pub mod components;
pub mod format;
pub mod http;
pub mod local_store;
pub mod pages;
pub mod state;
pub mod sync_client;
pub mod unlock;
pub mod vault;

use wasm_bindgen::prelude::*;

/// Entry point called by `boot.js`.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(pages::App);
}

/// Milliseconds since the Unix epoch on this device.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Marks a moment on the page's performance timeline (read by `cargo xtask bench`, and
/// visible in the browser's performance tools). Marked once per page load.
pub fn mark_once(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance())
        && performance
            .get_entries_by_name_with_entry_type(name, "mark")
            .length()
            == 0
    {
        let _ = performance.mark(name);
    }
}

/// Waits `ms` milliseconds (without blocking the page).
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `N` random bytes from the browser's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let crypto = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .expect("WebCrypto is available");
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .expect("random values");
    bytes
}
