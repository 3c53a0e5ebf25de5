//! The browser adapter around the sync core: one WebSocket to `/api/sync`, reconnection with
//! backoff, and every document saved to IndexedDB as the core asks.
//!
//! There is one client per page (a thread-local: wasm in the browser is single-threaded). It
//! starts after sign-in, or at start-up when a user is remembered on the device, and works the
//! same with or without a network: edits go to the document and to IndexedDB at once, and
//! reach the server whenever a connection is up.

use crate::local_store::LocalStore;
use crate::state::{AppCtx, SyncStatus};
use crate::{now_ms, random_bytes};
use casebook_shared::api::CaseSummary;
use casebook_shared::ids::{DeviceId, DocumentId};
use casebook_shared::protocol::{DenyReason, ServerMessage};
use casebook_shared::sync::client::{ClientCore, Creation, Output};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// Actor ids of earlier runs kept on the device.
const MAX_REMEMBERED_ACTORS: usize = 64;

/// How soon the end of a write to the device's storage is shown (the case list's "ready
/// offline" follows it), at the latest.
const WRITES_SHOWN_EVERY_MS: i32 = 100;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF_MS: f64 = 15_000.0;

struct Handlers {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct Client {
    core: ClientCore,
    store: LocalStore,
    ctx: AppCtx,
    socket: Option<WebSocket>,
    handlers: Option<Handlers>,
    next_seq: HashMap<DocumentId, u32>,
    attempts: u32,
    generation: u32,
    /// The server welcomed the current connection.
    welcomed: bool,
    stopped: bool,
    /// A publish asked for and not yet run, with whether documents changed since the last
    /// one (see [`Client::publish_soon`]).
    publish_due: Option<bool>,
    /// Documents with a write to this device's storage still under way (how many), or
    /// failed (kept here for good): not yet ready to open offline, whatever the server has
    /// confirmed.
    unsaved: HashMap<DocumentId, u32>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<RefCell<Client>>>> = const { RefCell::new(None) };
    static TIMERS: RefCell<Vec<Closure<dyn FnMut()>>> = const { RefCell::new(Vec::new()) };
}

fn client() -> Option<Rc<RefCell<Client>>> {
    CLIENT.with(|c| c.borrow().clone())
}

/// Starts syncing: loads every document from IndexedDB, then connects.
pub async fn start(ctx: AppCtx, store: LocalStore, device: DeviceId) -> Result<(), String> {
    stop();
    // Each run writes with a fresh actor id (two tabs must never share one). Earlier runs'
    // actors are remembered so their unsynced changes can still be declared as this device's.
    let actor = random_bytes::<16>().to_vec();
    let mut past: Vec<Vec<u8>> = store
        .get::<Vec<Vec<u8>>>("actors")
        .await
        .unwrap_or_default();
    let mut remembered = past.clone();
    remembered.push(actor.clone());
    let keep_from = remembered.len().saturating_sub(MAX_REMEMBERED_ACTORS);
    store
        .set("actors", &remembered[keep_from..].to_vec())
        .await
        .map_err(|e| e.0)?;
    past.retain(|a| *a != actor);
    let views = store
        .get::<Vec<(DocumentId, i64)>>("views")
        .await
        .unwrap_or_default();
    let creations = store
        .get::<Vec<Creation>>("creations")
        .await
        .unwrap_or_default();
    let mut core = ClientCore::new(device, actor)
        .with_past_actors(past)
        .with_pending_views(views)
        .with_pending_creations(creations);
    let mut next_seq = HashMap::new();
    let documents = store.documents().await.map_err(|e| e.0)?;
    let mut damaged = 0;
    for doc in documents {
        match core.restore(doc.id, &doc.chunks, &doc.persisted) {
            Ok(()) => {
                next_seq.insert(doc.id, doc.next_seq);
            }
            Err(_) => damaged += 1,
        }
    }
    if damaged > 0 {
        ctx.notice.set(Some(format!(
            "{damaged} record(s) on this device could not be read and will be downloaded again."
        )));
    }
    let client = Rc::new(RefCell::new(Client {
        core,
        store,
        ctx,
        socket: None,
        handlers: None,
        next_seq,
        attempts: 0,
        generation: 0,
        welcomed: false,
        stopped: false,
        publish_due: None,
        unsaved: HashMap::new(),
    }));
    CLIENT.with(|c| *c.borrow_mut() = Some(client.clone()));
    client.borrow_mut().publish(false);
    install_timers();
    connect(&client);
    Ok(())
}

/// Stops syncing and closes the connection (sign-out).
pub fn stop() {
    if let Some(client) = CLIENT.with(|c| c.borrow_mut().take()) {
        let mut c = client.borrow_mut();
        c.stopped = true;
        if let Some(socket) = c.socket.take() {
            socket.set_onclose(None);
            let _ = socket.close();
        }
        c.handlers = None;
    }
}

/// Reads the sync core (documents, counts).
pub fn read<R>(f: impl FnOnce(&mut ClientCore) -> R) -> Option<R> {
    let client = client()?;
    let mut c = client.borrow_mut();
    Some(f(&mut c.core))
}

/// The documents to look at for a case's records (`summary`, its entry in the case list):
/// those the list names for it, those made on this device for it and not yet registered,
/// and any already loaded (cheap to read; one made here after the list was fetched is
/// among them). A document the device has not opened is not loaded into Automerge until
/// needed (`ClientCore::document`), so a case page reads its own records, not the whole
/// caseload. Every document when the list does not name the case's records (a list kept
/// from an older version).
pub fn documents_of(core: &ClientCore, summary: Option<&CaseSummary>) -> Vec<DocumentId> {
    let Some(summary) = summary.filter(|s| !s.records.is_empty()) else {
        return core.documents().collect();
    };
    let mut docs: std::collections::BTreeSet<DocumentId> =
        summary.records.iter().copied().collect();
    docs.extend(
        core.pending_creations()
            .iter()
            .filter(|c| c.case == summary.id)
            .map(|c| c.doc),
    );
    docs.extend(core.documents().filter(|d| core.is_loaded(*d)));
    docs.into_iter().collect()
}

/// Runs `f` with a check of whether a document is ready to open offline: in step with the
/// server and written to this device's storage (no write of it under way or failed).
pub fn with_ready_check<R>(f: impl FnOnce(&mut dyn FnMut(DocumentId) -> bool) -> R) -> Option<R> {
    let client = client()?;
    let mut c = client.borrow_mut();
    let Client { core, unsaved, .. } = &mut *c;
    Some(f(&mut |id| core.in_step(id) && !unsaved.contains_key(&id)))
}

/// Changes a document on the device; it is saved at once and synced when possible.
pub fn edit<R>(doc: DocumentId, change: impl FnOnce(&mut automerge::AutoCommit) -> R) -> Option<R> {
    let client = client()?;
    let mut c = client.borrow_mut();
    let (result, out) = c.core.edit(doc, change).ok()?;
    c.apply(out);
    Some(result)
}

/// The person opened record `doc`: logged in the server's audit log now, or on the next
/// connection (kept on the device until then).
pub fn record_view(doc: DocumentId) {
    if let Some(client) = client() {
        let mut c = client.borrow_mut();
        let out = c.core.record_view(doc, now_ms() as i64);
        c.apply(out);
    }
}

/// Makes a new record for a case on the device (offline or not); the server registers it
/// when it can.
pub fn create<R>(
    creation: Creation,
    init: impl FnOnce(&mut automerge::AutoCommit) -> R,
) -> Option<R> {
    let client = client()?;
    let mut c = client.borrow_mut();
    let (result, out) = c.core.create(creation, init).ok()?;
    c.apply(out);
    Some(result)
}

/// Tells the others who have `doc` open where this person is in it ("" when leaving).
pub fn presence(doc: DocumentId, section: &str) {
    if let Some(client) = client() {
        let mut c = client.borrow_mut();
        let out = c.core.presence(doc, section);
        c.apply(out);
    }
}

/// Whether every write to this device's storage has ended (one that failed never does).
pub fn saved_on_device() -> bool {
    client().is_none_or(|c| c.borrow().unsaved.is_empty())
}

/// Changes waiting to reach the server.
pub fn waiting() -> usize {
    read(|core| core.waiting()).unwrap_or(0)
}

fn ws_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/api/sync", location.host().ok()?))
}

fn connect(client: &Rc<RefCell<Client>>) {
    let mut c = client.borrow_mut();
    if c.stopped || c.socket.is_some() {
        return;
    }
    let Some(url) = ws_url() else { return };
    let Ok(socket) = WebSocket::new(&url) else {
        drop(c);
        schedule_reconnect(client);
        return;
    };
    socket.set_binary_type(BinaryType::Arraybuffer);
    c.generation += 1;
    let generation = c.generation;

    let weak = Rc::downgrade(client);
    let open = Closure::<dyn FnMut()>::new(move || {
        if let Some(client) = weak.upgrade() {
            let mut c = client.borrow_mut();
            if c.generation == generation {
                let out = c.core.connected(now_ms() as u64);
                c.apply(out);
            }
        }
    });
    let weak = Rc::downgrade(client);
    let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(client) = weak.upgrade() else { return };
        let mut c = client.borrow_mut();
        if c.generation != generation {
            return;
        }
        let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() else {
            return;
        };
        let frame = js_sys::Uint8Array::new(&buffer).to_vec();
        match ServerMessage::decode(&frame) {
            Ok(message) => {
                if matches!(message, ServerMessage::Welcome { .. }) {
                    c.attempts = 0;
                    c.welcomed = true;
                    crate::mark_once("casebook:sync-welcome");
                }
                if matches!(message, ServerMessage::Access { .. }) {
                    // Cases were added or taken away: refresh the case list.
                    leptos::task::spawn_local(crate::pages::refresh(c.ctx));
                }
                match c.core.receive(now_ms() as u64, message) {
                    Ok(out) => c.apply(out),
                    Err(e) => web_sys::console::warn_1(&format!("sync: {e}").into()),
                }
            }
            Err(e) => web_sys::console::warn_1(&format!("sync: undecodable frame ({e})").into()),
        }
    });
    let weak = Rc::downgrade(client);
    let close = Closure::<dyn FnMut(CloseEvent)>::new(move |_event: CloseEvent| {
        let Some(client) = weak.upgrade() else { return };
        {
            let mut c = client.borrow_mut();
            if c.generation != generation {
                return;
            }
            if !c.welcomed {
                // Refused before the welcome: perhaps the session ended (the upgrade answers
                // 401). Ask the API, which can tell that apart from having no network.
                leptos::task::spawn_local(crate::pages::check_session(c.ctx));
            }
            c.welcomed = false;
            c.socket = None;
            c.handlers = None;
            c.core.disconnected();
            c.publish(false);
        }
        schedule_reconnect(&client);
    });
    socket.set_onopen(Some(open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(close.as_ref().unchecked_ref()));
    c.socket = Some(socket);
    c.handlers = Some(Handlers {
        _open: open,
        _message: message,
        _close: close,
    });
}

fn schedule_reconnect(client: &Rc<RefCell<Client>>) {
    let delay = {
        let mut c = client.borrow_mut();
        if c.stopped {
            return;
        }
        c.attempts = c.attempts.saturating_add(1);
        let base = (500.0 * 2f64.powi(c.attempts.min(6) as i32)).min(MAX_BACKOFF_MS);
        // Jitter spreads reconnections after an outage.
        base * (0.75 + 0.5 * js_sys::Math::random())
    };
    let weak = Rc::downgrade(client);
    let retry = Closure::once_into_js(move || {
        if let Some(client) = weak.upgrade() {
            connect(&client);
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            retry.unchecked_ref(),
            delay as i32,
        );
    }
}

/// Once per page: a one-second tick for the sync core, and an immediate reconnection attempt
/// when the browser says the network is back.
fn install_timers() {
    TIMERS.with(|timers| {
        let mut timers = timers.borrow_mut();
        if !timers.is_empty() {
            return;
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        let tick = Closure::<dyn FnMut()>::new(|| {
            if let Some(client) = client() {
                let mut c = client.borrow_mut();
                let out = c.core.tick(now_ms() as u64);
                c.apply(out);
            }
        });
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            1_000,
        );
        let online = Closure::<dyn FnMut()>::new(|| {
            if let Some(client) = client() {
                client.borrow_mut().attempts = 0;
                connect(&client);
            }
        });
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        timers.push(tick);
        timers.push(online);
    });
}

impl Client {
    fn apply(&mut self, out: Output) {
        if let Some(socket) = &self.socket
            && socket.ready_state() == WebSocket::OPEN
        {
            for message in &out.send {
                let _ = socket.send_with_u8_array(&message.encode());
            }
        }
        // A new record's registration is kept before its content: a record whose content
        // was saved is never dropped as unknown after a restart.
        if out.creations_changed {
            let creations = self.core.pending_creations().to_vec();
            let store = self.store.clone();
            leptos::task::spawn_local(async move {
                let _ = store.set("creations", &creations).await;
            });
        }
        let changed = !out.save.is_empty();
        for id in out.save {
            let Some(save) = self.core.save(id) else {
                continue;
            };
            let seq = self.next_seq.entry(id).or_insert(0);
            let this_seq = *seq;
            *seq += 1;
            let store = self.store.clone();
            let ctx = self.ctx;
            *self.unsaved.entry(id).or_default() += 1;
            // This client, not whichever runs when the write ends (after a sign-out and in).
            let owner = client().map(|c| Rc::downgrade(&c));
            // Writes start in the order they are spawned, and the store runs them in the
            // order they were asked for (batched, see `LocalStore`).
            leptos::task::spawn_local(async move {
                if let Err(e) = store.write(id, save, this_seq).await {
                    ctx.notice.set(Some(format!("This device could not save your work locally ({}). Keep this page open until the sync badge says all changes are saved.", e.0)));
                    return; // stays unsaved: the record is not counted ready offline
                }
                if let Some(client) = owner.and_then(|o| o.upgrade()) {
                    let mut c = client.borrow_mut();
                    if let Some(n) = c.unsaved.get_mut(&id) {
                        *n -= 1;
                        if *n == 0 {
                            c.unsaved.remove(&id);
                            // Writes end one by one, about a millisecond apart while a
                            // caseload arrives: the list's progress follows them ten times
                            // a second rather than after each.
                            c.publish_within(true, WRITES_SHOWN_EVERY_MS);
                        }
                    }
                }
            });
        }
        if out.wipe {
            // The server revoked this device (reported lost): remove everything, sign out.
            self.stopped = true;
            let store = self.store.clone();
            let ctx = self.ctx;
            leptos::task::spawn_local(async move {
                crate::pages::wiped_as_lost(ctx, &store).await;
            });
            return;
        }
        if out.views_changed {
            let views = self.core.pending_views().to_vec();
            let store = self.store.clone();
            leptos::task::spawn_local(async move {
                let _ = store.set("views", &views).await;
            });
        }
        for id in out.removed {
            self.next_seq.remove(&id);
            self.unsaved.remove(&id);
            let store = self.store.clone();
            leptos::task::spawn_local(async move {
                let _ = store.remove(id).await;
            });
        }
        for (doc, reason) in out.denied {
            let why = match reason {
                DenyReason::NoAccess => "you no longer have access to it",
                DenyReason::Rejected => "the server could not accept a change",
            };
            web_sys::console::warn_1(&format!("sync refused for {doc}: {why}").into());
            // A record the person may no longer hold is taken off the device by the access
            // list that follows; they only need to know if work of theirs was in it.
            if reason == DenyReason::Rejected || self.core.waiting_in(doc) > 0 {
                self.ctx
                    .notice
                    .set(Some(format!("A record could not be synced: {why}.")));
            }
        }
        if !out.presence.is_empty() {
            let now = now_ms();
            self.ctx.presence.update(|list| {
                for (doc, staff, name, section) in out.presence {
                    list.retain(|p| !(p.doc == doc && p.staff == staff));
                    if !section.is_empty() {
                        list.push(crate::state::Presence {
                            doc,
                            staff,
                            name,
                            section,
                            at: now,
                        });
                    }
                }
            });
        }
        if let Some((_, message)) = out.error {
            web_sys::console::warn_1(&format!("sync error: {message}").into());
        }
        self.publish_soon(changed);
    }

    /// Publishes once the page has taken in the messages already waiting for it. A publish
    /// (the badge's count, and the case list's readiness check it sets off) is a look at
    /// every document on the device; while a caseload arrives, one serves each burst of
    /// messages instead of every message paying for its own.
    fn publish_soon(&mut self, documents_changed: bool) {
        self.publish_within(documents_changed, 0);
    }

    /// Publishes within `ms` milliseconds, together with any other publish asked for by then.
    fn publish_within(&mut self, documents_changed: bool, ms: i32) {
        if let Some(due) = &mut self.publish_due {
            *due |= documents_changed;
            return;
        }
        self.publish_due = Some(documents_changed);
        let run = Closure::once_into_js(|| {
            if let Some(client) = client() {
                let mut c = client.borrow_mut();
                if let Some(changed) = c.publish_due.take() {
                    c.publish(changed);
                }
            }
        });
        let scheduled = web_sys::window().is_some_and(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(run.unchecked_ref(), ms)
                .is_ok()
        });
        if !scheduled {
            self.publish_due = None;
            self.publish(documents_changed);
        }
    }

    /// Pushes the current state to the UI signals.
    fn publish(&mut self, documents_changed: bool) {
        let online = self.core.is_online();
        let waiting = self.core.waiting();
        let in_step = online && waiting == 0 && self.core.all_in_step();
        let old = self.ctx.sync.get_untracked();
        let moved = old.online != online || old.waiting != waiting;
        if old.waiting != waiting {
            // Kept unencrypted (a count only) so that another person signing in on this device
            // can be told there is unsynced work without anything being decrypted.
            let store = self.store.clone();
            leptos::task::spawn_local(async move {
                let _ = store.set_plain("waiting", &waiting).await;
            });
        }
        if moved || (in_step && (documents_changed || old.last_synced_ms.is_none())) {
            self.ctx.sync.set(SyncStatus {
                online,
                waiting,
                last_synced_ms: if in_step {
                    Some(now_ms())
                } else {
                    old.last_synced_ms
                },
            });
        }
        if documents_changed {
            self.ctx.revision.update(|r| *r += 1);
        }
    }
}
