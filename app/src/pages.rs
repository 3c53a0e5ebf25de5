//! The app's screens and the shell around them.

pub mod case_list;
pub mod case_page;
pub mod devices;
pub mod oversight;
pub mod sign_in;

use crate::components::sync_badge::SyncBadge;
use crate::http::{self, ApiFailure};
use crate::local_store::LocalStore;
use crate::state::{AppCtx, Page};
use crate::{random_bytes, sync_client};
use casebook_shared::api::{CaseSummary, Me};
use casebook_shared::ids::DeviceId;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::RefCell;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

thread_local! {
    static STORE: RefCell<Option<LocalStore>> = const { RefCell::new(None) };
}

/// The device's local store, once opened.
pub fn store() -> Option<LocalStore> {
    STORE.with(|s| s.borrow().clone())
}

/// The app: app bar with the sync badge, and the current page.
#[component]
pub fn App() -> impl IntoView {
    let ctx = AppCtx::new();
    provide_context(ctx);
    watch_hash(ctx);
    spawn_local(boot(ctx));

    let signed_in = move || ctx.me.get().is_some();
    let name = move || {
        ctx.me
            .get()
            .map(|m| {
                if m.team.is_empty() {
                    m.name
                } else {
                    format!("{} · {}", m.name, m.team)
                }
            })
            .unwrap_or_default()
    };
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="app-bar">
            <h1>"Casebook"</h1>
            <Show when=signed_in>
                <SyncBadge />
                <span class="who">{name}</span>
                <Show when=move || ctx.me.get().is_some_and(|m| m.role == "manager")>
                    <button type="button" class="quiet" id="oversight" on:click=move |_| ctx.go(Page::Oversight)>
                        "Oversight"
                    </button>
                </Show>
                <button type="button" class="quiet" id="devices" on:click=move |_| ctx.go(Page::Devices)>
                    "Devices"
                </button>
                <button type="button" class="quiet" id="sign-out" on:click=move |_| spawn_local(sign_out(ctx))>
                    "Sign out"
                </button>
            </Show>
        </header>
        <main id="main">
            {move || ctx.notice.get().map(|n| view! {
                <div class="notice" role="alert">
                    {n}
                    " "
                    <button type="button" class="secondary" on:click=move |_| ctx.notice.set(None)>"Dismiss"</button>
                </div>
            })}
            {move || match ctx.page.get() {
                Page::Loading => view! { <p>"Opening Casebook…"</p> }.into_any(),
                Page::SignIn => view! { <sign_in::SignInPage /> }.into_any(),
                Page::Cases => view! { <case_list::CaseListPage /> }.into_any(),
                Page::Case(id) => view! { <case_page::CasePage id=id /> }.into_any(),
                Page::Devices => view! { <devices::DevicesPage /> }.into_any(),
                Page::Oversight => view! { <oversight::OversightPage /> }.into_any(),
            }}
        </main>
    }
}

fn current_hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

/// Follows the URL hash (back and forward buttons) while signed in.
fn watch_hash(ctx: AppCtx) {
    let on_change = Closure::<dyn FnMut()>::new(move || {
        if ctx.me.get_untracked().is_some() {
            ctx.page.set(Page::from_hash(&current_hash()));
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window
            .add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref());
    }
    on_change.forget(); // lives as long as the page
}

/// Start-up: open local storage; if a user is remembered, open their work straight away
/// (network or not), then refresh from the server when it answers.
async fn boot(ctx: AppCtx) {
    let store = match LocalStore::open().await {
        Ok(s) => s,
        Err(e) => {
            ctx.notice.set(Some(format!("This browser will not let Casebook store records on the device ({}). You can still sign in, but work offline is not possible.", e.0)));
            ctx.page.set(Page::SignIn);
            return;
        }
    };
    STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
    let Some(me) = store.get::<Me>("me").await else {
        ctx.page.set(Page::SignIn);
        return;
    };
    ctx.me.set(Some(me));
    ctx.cases.set(
        store
            .get::<Vec<CaseSummary>>("cases")
            .await
            .unwrap_or_default(),
    );
    start_sync(ctx, &store).await;
    ctx.page.set(Page::from_hash(&current_hash()));
    refresh(ctx).await;
}

async fn device_id(store: &LocalStore) -> DeviceId {
    if let Some(id) = store.get::<DeviceId>("device").await {
        return id;
    }
    let id = DeviceId::from_random_bytes(random_bytes());
    let _ = store.set("device", &id).await;
    id
}

async fn start_sync(ctx: AppCtx, store: &LocalStore) {
    let device = device_id(store).await;
    if let Err(e) = sync_client::start(ctx, store.clone(), device).await {
        ctx.notice.set(Some(format!(
            "Records on this device could not be opened ({e})."
        )));
    }
}

/// Asks the server who is signed in and for the case list; keeps working offline if it
/// does not answer.
pub async fn refresh(ctx: AppCtx) {
    match http::get::<Me>("/api/me").await {
        Ok(me) => ctx.me.set(Some(me)),
        Err(ApiFailure::SignedOut) => return session_ended(ctx),
        Err(_) => return, // offline: carry on with what is on the device
    }
    if let Ok(cases) = http::get::<Vec<CaseSummary>>("/api/cases").await {
        if let Some(store) = store() {
            let _ = store.set("cases", &cases).await;
        }
        ctx.cases.set(cases);
    }
}

/// Sends the person to sign in again if the server says their session has ended. Work on
/// the device is kept and syncs after they sign in again.
pub async fn check_session(ctx: AppCtx) {
    if let Err(ApiFailure::SignedOut) = http::get::<Me>("/api/me").await {
        session_ended(ctx);
    }
}

/// The server says the session has ended: stop syncing and ask the person to sign in again,
/// keeping everything on the device.
fn session_ended(ctx: AppCtx) {
    sync_client::stop();
    ctx.notice.set(Some(
        "Your session has ended. Sign in again to carry on; nothing on this device has been lost."
            .into(),
    ));
    ctx.me.set(None);
    ctx.page.set(Page::SignIn);
}

/// After a successful sign-in.
pub async fn signed_in(ctx: AppCtx, me: Me) {
    let Some(store) = store() else {
        ctx.me.set(Some(me));
        ctx.go(Page::Cases);
        return;
    };
    let previous = store.get::<Me>("me").await;
    if previous.as_ref().is_some_and(|p| p.id != me.id) {
        // Another person's records are on this device. Only a fully synced device is
        // cleared; unsynced work is never thrown away.
        if sync_client::waiting() == 0 {
            sync_client::stop();
            let _ = store.wipe().await;
        }
    }
    let _ = store.set("me", &me).await;
    ctx.me.set(Some(me));
    request_persistent_storage();
    start_sync(ctx, &store).await;
    ctx.go(Page::Cases);
    refresh(ctx).await;
}

fn request_persistent_storage() {
    // Ask the browser not to evict the device's records under storage pressure.
    if let Some(window) = web_sys::window()
        && let Ok(storage) = js_sys::Reflect::get(&window.navigator(), &"storage".into())
        && !storage.is_undefined()
    {
        let _ = window.navigator().storage().persist();
    }
}

async fn sign_out(ctx: AppCtx) {
    let waiting = sync_client::waiting();
    let _ = http::delete("/api/session").await;
    sync_client::stop();
    if waiting == 0 {
        if let Some(store) = store() {
            let _ = store.wipe().await;
        }
        ctx.cases.set(Vec::new());
        ctx.notice.set(None);
    } else {
        ctx.notice.set(Some(format!(
            "You are signed out, but {waiting} change(s) had not reached the server. They are kept on this device and will sync when you sign in again."
        )));
    }
    ctx.me.set(None);
    ctx.go(Page::SignIn);
}
