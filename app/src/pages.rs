//! The app's screens and the shell around them.

pub mod audit_search;
pub mod case_list;
pub mod case_page;
pub mod combined;
pub mod devices;
pub mod handover;
pub mod hro;
mod later;
pub mod oversight;
pub mod persons_copy;
pub mod record_page;
pub mod sign_in;
pub mod staff;
pub mod team;
pub mod unlock;

use crate::components::sync_badge::SyncBadge;
use crate::components::update_notice::UpdateNotice;
use crate::http::{self, ApiFailure};
use crate::local_store::LocalStore;
use crate::state::{AppCtx, Page};
use crate::unlock::{self as keys, UnlockFailure};
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
                <Show when=move || ctx.me.get().is_some_and(|m| m.role != "admin")>
                    <button type="button" class="quiet" id="hro" on:click=move |_| ctx.go(Page::Hro)>
                        "HRO"
                    </button>
                </Show>
                <Show when=move || ctx.me.get().is_some_and(|m| m.role == "senior" || m.role == "manager")>
                    <button type="button" class="quiet" id="team" on:click=move |_| ctx.go(Page::Team)>
                        "Team"
                    </button>
                </Show>
                <Show when=move || ctx.me.get().is_some_and(|m| m.role == "manager")>
                    <button type="button" class="quiet" id="oversight" on:click=move |_| ctx.go(Page::Oversight)>
                        "Oversight"
                    </button>
                    <button type="button" class="quiet" id="audit-log" on:click=move |_| ctx.go(Page::Audit)>
                        "Audit log"
                    </button>
                </Show>
                <Show when=move || ctx.me.get().is_some_and(|m| m.role == "admin" || m.role == "manager")>
                    <button type="button" class="quiet" id="staff" on:click=move |_| ctx.go(Page::Staff)>
                        "Staff"
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
            <UpdateNotice />
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
                Page::Unlock => view! { <unlock::UnlockPage /> }.into_any(),
                Page::Cases => view! { <case_list::CaseListPage /> }.into_any(),
                Page::Case(id) => view! { <case_page::CasePage id=id /> }.into_any(),
                Page::Devices => later::page(later::devices()),
                Page::Oversight => later::page(later::oversight()),
                Page::Audit => later::page(later::audit_search()),
                Page::Staff => later::page(later::staff()),
                Page::PersonsCopy(id) => later::page(later::persons_copy(id)),
                Page::Combined => later::page(later::combined()),
                Page::Record(doc) => view! { <record_page::RecordPage doc=doc /> }.into_any(),
                Page::Hro => later::page(later::hro()),
                Page::Handover(id) => later::page(later::handover(id)),
                Page::Team => later::page(later::team()),
            }}
        </main>
    }
}

fn current_hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

/// Follows the URL hash (back and forward buttons) while signed in. A change the app made
/// itself (`AppCtx::go` sets the hash and the page together) names the page already showing:
/// that page is left as it is, not built a second time (which would log a second
/// consultation of a record and drop what the page held, such as a completeness check).
fn watch_hash(ctx: AppCtx) {
    let on_change = Closure::<dyn FnMut()>::new(move || {
        let hash = current_hash();
        // "#main" (the skip link) is a place on the page, not a page.
        let names_a_page = hash.is_empty() || hash == "#" || hash.starts_with("#/");
        if ctx.me.get_untracked().is_some() && names_a_page {
            let page = Page::from_hash(&hash);
            if ctx.page.get_untracked() != page {
                ctx.page.set(page);
            }
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window
            .add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref());
    }
    on_change.forget(); // lives as long as the page
}

/// Start-up: open local storage, then unlock the records on it with the key the server
/// releases to this device, or (with no network) ask for the password; then open the person's
/// work and refresh it from the server when it answers.
pub(crate) async fn boot(ctx: AppCtx) {
    let store = match store() {
        Some(store) => store,
        None => match LocalStore::open().await {
            Ok(store) => {
                STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
                store
            }
            Err(e) => {
                ctx.notice.set(Some(format!("This browser will not let Casebook store records on the device ({}). Work offline is not possible here.", e.0)));
                ctx.page.set(Page::SignIn);
                return;
            }
        },
    };
    if keys::stored(&store).await.is_none() {
        // Nothing protected here: first use, or wiped. Clear anything left by older versions.
        let _ = store.wipe().await;
        ctx.page.set(Page::SignIn);
        return;
    }
    if store.get_plain::<bool>("signed_out").await == Some(true) {
        // Signed out while the server could not be told: end that session now (if it can be
        // reached) and never open the records without a new sign-in.
        let _ = http::delete("/api/session").await;
        ctx.page.set(Page::SignIn);
        return;
    }
    let device = device_id(&store).await;
    match keys::with_device_key(&store, device).await {
        Ok(()) => opened(ctx, store).await,
        Err(UnlockFailure::Offline) => ctx.page.set(Page::Unlock),
        Err(UnlockFailure::SignedOut) => ctx.page.set(Page::SignIn),
        Err(UnlockFailure::Revoked) => wiped_as_lost(ctx, &store).await,
        Err(other) => {
            ctx.notice.set(Some(format!(
                "The records on this device could not be opened: {other}. Sign in to carry on."
            )));
            ctx.page.set(Page::SignIn);
        }
    }
}

/// The records are unlocked: open the person's work (network or not).
pub(crate) async fn opened(ctx: AppCtx, store: LocalStore) {
    let Some(me) = store.get::<Me>("me").await else {
        ctx.page.set(Page::SignIn);
        return;
    };
    ctx.me.set(Some(me));
    let cases = store.get::<Vec<CaseSummary>>("cases").await;
    let first = cases.is_none();
    ctx.cases.set(cases.unwrap_or_default());
    ctx.duty.set(store.get("duty").await.unwrap_or_default());
    start_working(ctx, &store, first, || {
        ctx.page.set(Page::from_hash(&current_hash()))
    })
    .await;
}

/// Starts syncing, shows the page (`show`, unless the person has gone to one already) and
/// refreshes the case list from the server. A device that has never had the list (`first`:
/// its first sign-in) asks for it before its caseload starts arriving: once the records
/// flow, the list's answer waits behind them on the page's one thread, and a cover worker
/// could see no list and no progress until all had come.
async fn start_working(ctx: AppCtx, store: &LocalStore, first: bool, show: impl FnOnce()) {
    if first {
        refresh(ctx).await;
        if ctx.me.get_untracked().is_none() {
            return; // the session ended
        }
    }
    start_sync(ctx, store).await;
    // The app bar shows once the person is known, before the case list has come: a page
    // tapped there meanwhile stays (the opening page is shown only if none was).
    let opening = matches!(
        ctx.page.get_untracked(),
        Page::Loading | Page::SignIn | Page::Unlock
    );
    if opening && ctx.me.get_untracked().is_some() {
        show();
    }
    if !first {
        refresh(ctx).await;
    }
}

/// The device was reported lost: everything is removed.
pub(crate) async fn wiped_as_lost(ctx: AppCtx, store: &LocalStore) {
    sync_client::stop();
    let _ = store.wipe().await;
    ctx.cases.set(Vec::new());
    ctx.me.set(None);
    ctx.notice.set(Some(
        "This device was reported lost or revoked: everything Casebook stored on it has been removed.".into(),
    ));
    ctx.page.set(Page::SignIn);
}

async fn device_id(store: &LocalStore) -> DeviceId {
    if let Some(id) = store.get_plain::<DeviceId>("device").await {
        return id;
    }
    let id = DeviceId::from_random_bytes(random_bytes());
    let _ = store.set_plain("device", &id).await;
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
    // Asked all at once: after sign-in the sync socket is bringing the caseload, and each
    // answer waits its turn behind those documents on the page's one thread, so asking one
    // after another showed a cover worker no case list (and no progress) until the whole
    // caseload had arrived.
    let (me, duty, cases) = futures_util::future::join3(
        http::get::<Me>("/api/me"),
        http::get::<Vec<casebook_shared::api::DutyDay>>("/api/duty"),
        http::get::<Vec<CaseSummary>>("/api/cases"),
    )
    .await;
    match me {
        Ok(me) => ctx.me.set(Some(me)),
        Err(ApiFailure::SignedOut) => return session_ended(ctx),
        Err(_) => return, // offline: carry on with what is on the device
    }
    if let Ok(cases) = cases {
        if let Some(store) = store() {
            let _ = store.set("cases", &cases).await;
        }
        ctx.cases.set(cases);
    }
    if let Ok(duty) = duty {
        if let Some(store) = store() {
            let _ = store.set("duty", &duty).await;
        }
        ctx.duty.set(duty);
    }
}

/// Sends the person to sign in again if the server says their session has ended. Work on
/// the device is kept and syncs after they sign in again.
pub async fn check_session(ctx: AppCtx) {
    if let Err(ApiFailure::SignedOut) = http::get::<Me>("/api/me").await {
        session_ended(ctx);
    }
}

/// The server says the session has ended: stop syncing, lock the records and ask the person
/// to sign in again, keeping everything (encrypted) on the device.
fn session_ended(ctx: AppCtx) {
    sync_client::stop();
    if let Some(store) = store() {
        store.lock();
    }
    ctx.notice.set(Some(
        "Your session has ended. Sign in again to carry on; nothing on this device has been lost."
            .into(),
    ));
    ctx.me.set(None);
    ctx.page.set(Page::SignIn);
}

/// After a successful sign-in (`password` renews the offline copy of the device key).
pub async fn signed_in(ctx: AppCtx, me: Me, password: &str) -> Result<(), String> {
    let Some(store) = store() else {
        ctx.me.set(Some(me));
        ctx.go(Page::Cases);
        return Ok(());
    };
    if let Some(previous) = keys::stored(&store).await
        && previous.owner != me.id
    {
        // Another person's records are on this device. Only a fully synced device is
        // cleared; unsynced work is never thrown away.
        let waiting: usize = store.get_plain("waiting").await.unwrap_or(0);
        if waiting > 0 {
            let _ = http::delete("/api/session").await;
            return Err(format!(
                "This device holds {waiting} change(s) by another person that have not reached the server. They need to sign in here once so their work is sent; then you can sign in."
            ));
        }
        sync_client::stop();
        let _ = store.wipe().await;
    }
    let mut attempts = 0;
    loop {
        let device = device_id(&store).await;
        match keys::after_sign_in(&store, device, me.id, password).await {
            Ok(()) => break,
            Err(UnlockFailure::Foreign) if attempts == 0 => {
                // This browser's device id belongs to someone else on the server (their
                // records were cleared here): start afresh as a new device.
                let _ = store.wipe().await;
                attempts += 1;
            }
            Err(UnlockFailure::Revoked) => {
                wiped_as_lost(ctx, &store).await;
                let _ = http::delete("/api/session").await;
                return Err("This device was reported lost, so Casebook removed everything it stored here. Sign in again to set it up as a new device.".into());
            }
            Err(other) => {
                let _ = http::delete("/api/session").await;
                return Err(format!(
                    "Casebook could not protect records on this device: {other}. Try again."
                ));
            }
        }
    }
    let _ = store.set("me", &me).await;
    let _ = store.remove_plain("signed_out").await;
    ctx.me.set(Some(me));
    request_persistent_storage();
    let first = !store.has("cases").await;
    start_working(ctx, &store, first, || ctx.go(Page::Cases)).await;
    Ok(())
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

/// Sign-out: sends waiting changes first (up to [`SIGN_OUT_SYNC_MS`]); then, if everything
/// reached the server, wipes the device; otherwise keeps the unsynced work encrypted (only the
/// server's key can open it now) and says so.
async fn sign_out(ctx: AppCtx) {
    if sync_client::waiting() > 0 && ctx.sync.get_untracked().online {
        ctx.notice.set(Some(
            "Sending your changes to the server before signing out…".into(),
        ));
        let started = crate::now_ms();
        while sync_client::waiting() > 0 && crate::now_ms() - started < SIGN_OUT_SYNC_MS {
            crate::sleep_ms(250).await;
        }
    }
    let waiting = sync_client::waiting();
    let _ = http::delete("/api/session").await;
    sync_client::stop();
    if let Some(store) = store() {
        if waiting == 0 {
            let _ = store.wipe().await;
            ctx.notice.set(None);
        } else {
            let _ = store.set_plain("waiting", &waiting).await;
            let _ = store.set_plain("signed_out", &true).await;
            keys::forget_password_copy(&store).await;
            store.lock();
            ctx.notice.set(Some(format!(
                "You are signed out, but {waiting} change(s) could not reach the server. They are kept on this device, encrypted, and will sync when you sign in again with a connection."
            )));
        }
    }
    ctx.cases.set(Vec::new());
    ctx.me.set(None);
    ctx.go(Page::SignIn);
}

/// Longest wait at sign-out for waiting changes to reach the server.
const SIGN_OUT_SYNC_MS: f64 = 10_000.0;
