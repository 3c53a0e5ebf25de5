//! A new version of Casebook, deployed while the app is open on a device.
//!
//! The service worker (`app/static/sw.js`) installs a new build as soon as the browser finds
//! one and takes over the open pages at once, removing the old build's files from the
//! device. A page keeps running the build it started with until it reloads, and the pages
//! split off the first download (`pages::later`) cannot be had by it any more. So when a new
//! service worker takes over a page an older one served, the app says a new version is
//! ready, with a button to reload into it. Reloading loses nothing: every change is written
//! to the device as it is made, and the button waits until each is on the device or on the
//! server (a write the browser refused leaves it only in the page until the server has it).
//!
//! The browser looks for a new build when the app is opened. A tablet can keep the app open
//! for days, so the app also looks each time its sync connection comes up.

use crate::state::AppCtx;
use crate::sync_client;
use leptos::prelude::*;
use std::cell::Cell;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The notice, shown once a new version has taken over the device's copy of the app.
#[component]
pub fn UpdateNotice() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let ready = RwSignal::new(false);
    let saving = RwSignal::new(false);
    if let Some(workers) = service_workers() {
        watch_takeover(&workers, ready);
        let online = Memo::new(move |_| ctx.sync.get().online);
        Effect::new(move |_| {
            if online.get() {
                look_for_update(workers.clone());
            }
        });
    }
    view! {
        <Show when=move || ready.get()>
            <div class="notice" role="status" id="update-ready">
                "A new version of Casebook is ready. Reload to use it; everything on this device is kept. "
                <button type="button" id="reload-app" disabled=move || saving.get()
                    on:click=move |_| leptos::task::spawn_local(reload(saving))>
                    {move || if saving.get() { "Saving your changes first…" } else { "Reload now" }}
                </button>
            </div>
        </Show>
    }
}

/// The page's service worker container; none outside a secure context (plain http to
/// anywhere but this machine), where the app runs without one.
fn service_workers() -> Option<web_sys::ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    js_sys::Reflect::has(&navigator, &JsValue::from_str("serviceWorker"))
        .ok()?
        .then(|| navigator.service_worker())
}

/// Sets `ready` when a service worker takes over this page from another. The first one to
/// take over a page that had none (the app's first visit) is not a new version.
fn watch_takeover(workers: &web_sys::ServiceWorkerContainer, ready: RwSignal<bool>) {
    let had_one = Cell::new(workers.controller().is_some());
    let on_change = Closure::<dyn Fn()>::new(move || {
        if had_one.replace(true) {
            ready.set(true);
        }
    });
    let _ = workers
        .add_event_listener_with_callback("controllerchange", on_change.as_ref().unchecked_ref());
    // Listens for as long as the page lives.
    on_change.forget();
}

/// Asks the browser to look for a new build (a request for `sw.js`, which the server sends
/// uncached). Failing (no network after all) changes nothing.
fn look_for_update(workers: web_sys::ServiceWorkerContainer) {
    leptos::task::spawn_local(async move {
        let Ok(found) = JsFuture::from(workers.get_registration()).await else {
            return;
        };
        // Undefined when no service worker is registered yet.
        let Ok(registration) = found.dyn_into::<web_sys::ServiceWorkerRegistration>() else {
            return;
        };
        if let Ok(looking) = registration.update() {
            let _ = JsFuture::from(looking).await;
        }
    });
}

/// Reloads the app once every change is kept somewhere a reload cannot lose it: written to
/// the device's storage, or stored by the server. A write the browser refused never ends,
/// so a change it held waits for the server (the page has already said so).
async fn reload(saving: RwSignal<bool>) {
    saving.set(true);
    while !sync_client::saved_on_device() && sync_client::waiting() > 0 {
        crate::sleep_ms(100).await;
    }
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}
