//! `GET /api/sync`: the WebSocket every device syncs through.
//!
//! Only a signed-in user can open it (401 otherwise). The first frame must be `Hello`; the
//! server answers `Welcome` with the documents the user may hold, taken from its own tables.
//! Every `Sync` names a document, and that id is checked against the same list before the
//! message goes anywhere near a room: a document outside it gets `Denied` and nothing is
//! stored. A frame that does not decode, an unknown message type, a text frame or a frame
//! over the size limit ends that connection (after an `Error` where one can still be sent);
//! every other connection carries on.

use crate::AppState;
use crate::access::DocumentAccess;
use crate::access_changes::FULL_CHECK_EVERY_MS;
use crate::audit;
use crate::auth::{self, AuthUser, session_by_hash};
use crate::cases::allowed_documents;
use crate::devices::{self, RegistrationError};
use crate::documents::{Author, Outbound, PeerHandle};
use crate::now_ms;
use crate::sync_lanes::{Lanes, Outlet};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::{
    ClientMessage, DEFLATED_VERSION, DenyReason, ErrorCode, MAX_FRAME_BYTES, ServerMessage,
    frame_version,
};
use casebook_shared::records::Kind;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// How long a closing connection's lanes may take to finish the messages they hold.
const LANES_GRACE: Duration = Duration::from_secs(5);
/// Frames queued for one device before it counts as too slow and is disconnected.
const OUTBOX_FRAMES: usize = 1024;
/// How often a live connection looks whether it is due to re-check its session and the
/// documents its user may hold (a comparison of times; the re-check itself runs when the
/// database reports an access change or a time-bound grant starts or ends: see
/// [`crate::access_changes`]).
const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// How long the server waits for a device to finish a closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A device that takes none of its answers for this long is disconnected.
const STALLED_AFTER: Duration = Duration::from_secs(10);
/// Messages a device may send in a burst (a device opening with many documents sends one
/// per document at once).
const RATE_BURST: f64 = 5_000.0;
/// Messages per second a device may keep sending.
const RATE_PER_SECOND: f64 = 1_000.0;
/// The socket's read buffer. tungstenite's default (128 KiB) is zeroed before every read,
/// so each connection kept 128 KiB resident (125 MB at a thousand devices) and cleared it
/// for every frame; a device's frames are mostly under a kilobyte, and a larger frame
/// grows the buffer.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// A token bucket capping one connection's message rate.
struct RateCap {
    tokens: f64,
    last: Instant,
}

impl RateCap {
    fn new() -> Self {
        Self {
            tokens: RATE_BURST,
            last: Instant::now(),
        }
    }

    /// Takes one message's token; false when the device is over its rate.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * RATE_PER_SECOND;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// WebSocket close codes used.
mod close {
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// Routes: `GET /api/sync`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/sync", get(upgrade))
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>, user: AuthUser) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(socket, state, user))
}

struct Connection {
    state: AppState,
    user: AuthUser,
    outbox: mpsc::Sender<Outbound>,
    outlet: Outlet,
    kick: Arc<Notify>,
    peer: Option<PeerHandle>,
    allowed: BTreeMap<DocumentId, DocumentAccess>,
    joined: BTreeSet<DocumentId>,
    lanes: Lanes,
    /// When (server clock, ms) the session and access must be re-checked even if the
    /// database has reported no access change.
    recheck_at: i64,
}

/// How a connection ended.
enum Ending {
    ClientClosed,
    Close(u16, &'static str),
}

pub(crate) async fn connection(socket: WebSocket, state: AppState, user: AuthUser) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut queue) = mpsc::channel::<Outbound>(OUTBOX_FRAMES);
    let writer = tokio::spawn(async move {
        // Every frame already queued goes out in one flush (one write to the socket rather
        // than one per frame: a busy room queues several at once).
        let mut next = queue.recv().await;
        while let Some(out) = next.take() {
            let result = match out {
                Outbound::Frame(bytes) => sink.feed(Message::Binary(bytes.into())).await,
                Outbound::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
            next = match queue.try_recv() {
                Ok(more) => Some(more),
                Err(_) => {
                    if sink.flush().await.is_err() {
                        break;
                    }
                    queue.recv().await
                }
            };
        }
    });
    let kick = Arc::new(Notify::new());
    let outlet = Outlet {
        outbox: outbox.clone(),
        kick: kick.clone(),
        stalled_after: STALLED_AFTER,
        deflate: Arc::new(AtomicBool::new(false)),
    };
    let lanes = Lanes::new(state.clone(), outlet.clone());
    let storage_failed = lanes.failed();
    let user_id = user.id;
    let mut conn = Connection {
        state,
        user,
        outbox: outbox.clone(),
        outlet,
        kick: kick.clone(),
        peer: None,
        allowed: BTreeMap::new(),
        joined: BTreeSet::new(),
        lanes,
        recheck_at: 0,
    };
    let mut access_changes = conn.state.access_changes.subscribe();
    let mut rate = RateCap::new();
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ending = loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = kick.notified() => break Ending::Close(close::POLICY, "disconnected by the server; reconnect"),
            _ = storage_failed.notified() => break Ending::Close(close::INTERNAL, "storage failed"),
            // The re-checks and the handling of a frame are boxed: inline, their states
            // made every idle connection's task about 12 KB (see `sync_lanes::lane`).
            Ok(()) = access_changes.changed() => match Box::pin(conn.recheck()).await {
                Some(ending) => break ending,
                None => continue,
            },
            _ = recheck.tick() => match Box::pin(conn.recheck_if_due()).await {
                Some(ending) => break ending,
                None => continue,
            },
        };
        let bytes = match frame {
            None | Some(Ok(Message::Close(_))) => break Ending::ClientClosed,
            Some(Err(e)) => {
                // tungstenite reports an oversized frame as a capacity error.
                let too_big = e.to_string().contains("Space limit exceeded");
                tracing::info!(error = %e, "sync connection failed");
                break if too_big {
                    Ending::Close(close::TOO_BIG, "frame too large")
                } else {
                    Ending::ClientClosed
                };
            }
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Text(_))) => {
                conn.error(
                    ErrorCode::Malformed,
                    "text frames are not part of the protocol",
                )
                .await;
                break Ending::Close(close::UNSUPPORTED, "binary frames only");
            }
            Some(Ok(_)) => continue, // ping and pong are answered by the WebSocket layer
        };
        if !rate.take() {
            tracing::warn!(staff = %conn.user.id, "sync connection over its message rate");
            conn.error(
                ErrorCode::RateLimited,
                "too many messages; reconnect and slow down",
            )
            .await;
            break Ending::Close(close::POLICY, "rate limited");
        }
        if let Some(ending) = Box::pin(conn.handle(&bytes)).await {
            break ending;
        }
    };
    // Let the lanes finish what they hold before the device leaves its rooms, so none of
    // them puts it back in a room afterwards.
    conn.lanes.finish(LANES_GRACE).await;
    if let Some(peer) = conn.peer.take() {
        conn.state
            .documents
            .leave(peer.id, conn.joined.iter().copied())
            .await;
    }
    let closing = matches!(ending, Ending::Close(..));
    if let Ending::Close(code, reason) = ending {
        // Who and why, never what: the reason is one of this file's fixed texts.
        tracing::info!(staff = %user_id, code, reason, "sync connection closed by the server");
        let _ = outbox.try_send(Outbound::Close(code, reason));
    }
    drop(conn);
    drop(outbox);
    if closing {
        // Finish the closing handshake: read (and discard) until the device closes too. A
        // device still sending would otherwise get a TCP reset and could lose our last frame,
        // the one saying why it was disconnected.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

impl Connection {
    /// Queues an answer to this device. Waiting for room in the queue (rather than dropping
    /// the device, as fan-out does) slows down reading from a device that sends faster than
    /// it reads its answers.
    async fn send(&self, message: &ServerMessage) {
        self.outlet.send(message).await;
    }

    async fn error(&self, code: ErrorCode, message: &str) {
        self.outlet.error(code, message).await;
    }

    /// [`Self::recheck`] if a time-bound grant or the session's time-out has come, or the
    /// last full re-check is [`FULL_CHECK_EVERY_MS`] old.
    async fn recheck_if_due(&mut self) -> Option<Ending> {
        if now_ms() < self.recheck_at {
            return None;
        }
        self.recheck().await
    }

    /// Re-checks the session (signed out, timed out, account disabled) and the documents the
    /// user may hold (reallocation, cover ending), and notes when it must next be done even
    /// if nobody changes anything: access changes reach the device within about a second.
    async fn recheck(&mut self) -> Option<Ending> {
        let now = now_ms();
        // Until this re-check succeeds, try again on the next tick.
        self.recheck_at = now;
        match session_by_hash(&self.state, self.user.session.clone()).await {
            Ok(Some(user)) => self.user = user,
            Ok(None) => {
                self.error(
                    ErrorCode::SessionEnded,
                    "the session has ended; sign in again",
                )
                .await;
                return Some(Ending::Close(close::POLICY, "session ended"));
            }
            Err(_) => return None, // storage hiccup: check again next time
        }
        // Before the hello there is nothing to re-derive.
        let peer = self.peer.clone()?;
        if devices::is_revoked(&self.state.db, peer.author.device)
            .await
            .unwrap_or(false)
        {
            tracing::warn!(device = %peer.author.device, "told a revoked device to wipe itself");
            self.send(&ServerMessage::Wipe).await;
            return Some(Ending::Close(close::POLICY, "device revoked"));
        }
        let Ok(documents) = allowed_documents(&self.state, &self.user).await else {
            return None;
        };
        self.recheck_at = self.next_recheck(now).await;
        if documents == self.allowed {
            return None;
        }
        let removed: Vec<DocumentId> = self
            .allowed
            .keys()
            .filter(|d| !documents.contains_key(d))
            .copied()
            .collect();
        self.state
            .documents
            .leave(peer.id, removed.iter().copied())
            .await;
        for doc in &removed {
            self.joined.remove(doc);
        }
        let list = documents.keys().copied().collect();
        self.allowed = documents;
        tracing::info!(staff = %self.user.id, removed = removed.len(), "access changed on a live connection");
        self.send(&ServerMessage::Access { documents: list }).await;
        None
    }

    /// When the next re-check is due if no access change is reported: the first of the session
    /// timing out, a cover or duty access of the user's starting or ending, and
    /// [`FULL_CHECK_EVERY_MS`] from `now`.
    async fn next_recheck(&self, now: i64) -> i64 {
        let session = auth::session_times_out_at(&self.state.db, &self.user.session).await;
        let grant = crate::access::next_boundary(&self.state.db, &self.user, now).await;
        match (session, grant) {
            (Ok(session), Ok(grant)) => [session, grant]
                .into_iter()
                .flatten()
                .fold(now + FULL_CHECK_EVERY_MS, i64::min),
            // Storage hiccup: look again on the next tick.
            _ => now,
        }
    }

    /// The case of a record this user held before (per the audit log) but may no longer hold.
    async fn held_before(&self, doc: DocumentId) -> Option<DocumentAccess> {
        let held =
            audit::has_held(&self.state.db, &self.user.id.to_string(), &doc.to_string()).await;
        if !held.unwrap_or(false) {
            return None;
        }
        let (case, person) = crate::access::document_case(&self.state.db, doc)
            .await
            .ok()
            .flatten()?;
        Some(DocumentAccess {
            case,
            person,
            basis: crate::access::Basis::Ended,
        })
    }

    /// An audit record about `doc` from this connection (operation and times filled in later).
    fn audit_entry(&self, doc: DocumentId, access: &DocumentAccess) -> audit::Entry {
        audit::Entry {
            staff_id: self.user.id.to_string(),
            role: self.user.role.clone(),
            device_id: self
                .peer
                .as_ref()
                .map(|p| p.author.device.to_string())
                .unwrap_or_default(),
            case_id: access.case.clone(),
            person_id: access.person.clone(),
            document_id: doc.to_string(),
            basis: access.basis.as_str().to_owned(),
            ..audit::Entry::default()
        }
    }

    /// Handles one frame; returns how the connection must end, if it must.
    async fn handle(&mut self, frame: &[u8]) -> Option<Ending> {
        let message = match ClientMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, "refused a sync frame");
                self.error(e.code(), &e.to_string()).await;
                return Some(Ending::Close(close::POLICY, "protocol error"));
            }
        };
        match message {
            ClientMessage::Hello { device, actors } => {
                // A device that sends its hello deflated reads deflated frames too.
                let deflate = frame_version(frame) == DEFLATED_VERSION;
                self.outlet.deflate.store(deflate, Ordering::Relaxed);
                if self.peer.is_some() {
                    self.error(ErrorCode::OutOfOrder, "hello was already received")
                        .await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                }
                let actors = match devices::register(&self.state.db, self.user.id, device, &actors)
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::info!(error = %e, staff = %self.user.id, "refused a device registration");
                        let code = match e {
                            RegistrationError::Revoked => {
                                self.send(&ServerMessage::Wipe).await;
                                return Some(Ending::Close(close::POLICY, "device revoked"));
                            }
                            RegistrationError::ForeignDevice => ErrorCode::ForeignDevice,
                            RegistrationError::ForeignActor => ErrorCode::ForeignActor,
                            RegistrationError::BadActors => ErrorCode::Malformed,
                            RegistrationError::Storage(_) => {
                                return Some(Ending::Close(close::INTERNAL, "try again shortly"));
                            }
                        };
                        self.error(code, &e.to_string()).await;
                        return Some(Ending::Close(close::POLICY, "device refused"));
                    }
                };
                let documents = match allowed_documents(&self.state, &self.user).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, "listing documents for a device");
                        return Some(Ending::Close(close::INTERNAL, "try again shortly"));
                    }
                };
                let list = documents.keys().copied().collect();
                self.allowed = documents;
                let author = Author {
                    staff: self.user.id,
                    device,
                };
                self.peer = Some(self.state.documents.connect(
                    author,
                    actors,
                    self.outbox.clone(),
                    self.kick.clone(),
                    deflate,
                ));
                self.send(&ServerMessage::Welcome { documents: list }).await;
                None
            }
            ClientMessage::Create { doc, case, kind } => {
                if self.peer.is_none() {
                    self.error(ErrorCode::OutOfOrder, "send hello first").await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                }
                let Some(kind) = Kind::parse(&kind).filter(|k| k.created_on_devices()) else {
                    self.send(&ServerMessage::Denied {
                        doc,
                        reason: DenyReason::Rejected,
                    })
                    .await;
                    return None;
                };
                match crate::access::register_document(&self.state.db, &self.user, doc, case, kind)
                    .await
                {
                    Ok(Some(access)) => {
                        self.allowed.insert(doc, access);
                        self.send(&ServerMessage::Created { doc }).await;
                    }
                    Ok(None) => {
                        tracing::info!(%doc, staff = %self.user.id, "refused to register a record");
                        self.send(&ServerMessage::Denied {
                            doc,
                            reason: DenyReason::NoAccess,
                        })
                        .await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "registering a record");
                        self.error(
                            ErrorCode::StorageFailed,
                            "the server could not register the record; it will be sent again",
                        )
                        .await;
                        return Some(Ending::Close(close::INTERNAL, "storage failed"));
                    }
                }
                None
            }
            ClientMessage::Presence { doc, section } => {
                let Some(peer) = self.peer.clone() else {
                    self.error(ErrorCode::OutOfOrder, "send hello first").await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                };
                if section.len() > casebook_shared::protocol::MAX_SECTION_BYTES {
                    self.error(ErrorCode::Malformed, "presence section too long")
                        .await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                }
                if !self.allowed.contains_key(&doc) {
                    self.send(&ServerMessage::Denied {
                        doc,
                        reason: DenyReason::NoAccess,
                    })
                    .await;
                    return None;
                }
                self.joined.insert(doc);
                self.state
                    .documents
                    .presence(&peer, &self.user.name, doc, section)
                    .await;
                None
            }
            ClientMessage::Viewed { doc, viewed_at } => {
                if self.peer.is_none() {
                    self.error(ErrorCode::OutOfOrder, "send hello first").await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                }
                // A view made offline may be reported after access ended: it still happened
                // and is logged, with that basis, if this user held the record before (the
                // log shows it). Anyone else's claim to have viewed it is refused.
                let access = match self.allowed.get(&doc) {
                    Some(access) => Some(access.clone()),
                    None => self.held_before(doc).await,
                };
                let Some(access) = access else {
                    self.send(&ServerMessage::Denied {
                        doc,
                        reason: DenyReason::NoAccess,
                    })
                    .await;
                    return None;
                };
                let now = crate::now_ms();
                let entry = audit::Entry {
                    operation: audit::Operation::Consultation.as_str().to_owned(),
                    occurred_at: viewed_at,
                    received_at: now,
                    ..self.audit_entry(doc, &access)
                };
                match audit::record(&self.state.db, &entry).await {
                    Ok(()) => {
                        self.send(&ServerMessage::ViewLogged { doc, viewed_at })
                            .await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not log a view; the device will resend it")
                    }
                }
                None
            }
            ClientMessage::Sync { doc, session, data } => {
                let Some(peer) = self.peer.clone() else {
                    self.error(ErrorCode::OutOfOrder, "send hello first").await;
                    return Some(Ending::Close(close::POLICY, "protocol error"));
                };
                let Some(access) = self.allowed.get(&doc) else {
                    self.send(&ServerMessage::Denied {
                        doc,
                        reason: DenyReason::NoAccess,
                    })
                    .await;
                    return None;
                };
                let audit = self.audit_entry(doc, access);
                self.joined.insert(doc);
                self.lanes.dispatch(&peer, doc, session, data, audit).await;
                None
            }
        }
    }
}
