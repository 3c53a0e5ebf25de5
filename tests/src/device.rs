//! A native sync client: the same protocol core as the app, over tokio-tungstenite, with an
//! in-memory "local storage" that survives reconnects and restarts.

use anyhow::{Context, bail};
use automerge::AutoCommit;
use casebook_shared::api::Me;
use casebook_shared::chronology::{self, ChronologyEntry, EntryDraft, Recorder};
use casebook_shared::ids::CaseId;
use casebook_shared::ids::{DeviceId, DocumentId};
use casebook_shared::protocol::{DenyReason, ErrorCode, Head, ServerMessage};
use casebook_shared::records::{self, Kind};
use casebook_shared::sync::client::{Chunk, ClientCore, Creation, Output};
use casebook_shared::sync::receive::Sharing;
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Stored form of the device's documents: chunks and the server's persisted heads.
pub type Storage = BTreeMap<DocumentId, (Vec<Vec<u8>>, Vec<Head>)>;

/// One device of one signed-in user.
pub struct NativeDevice {
    /// The protocol core.
    pub core: ClientCore,
    /// What the device has saved locally.
    pub storage: Storage,
    /// The user.
    pub me: Me,
    /// Documents the server refused, as reported.
    pub denied: Vec<(DocumentId, DenyReason)>,
    /// Protocol errors the server reported.
    pub errors: Vec<(ErrorCode, String)>,
    socket: Option<Socket>,
    /// Actors of earlier runs (kept like the app keeps them).
    past_actors: Vec<Vec<u8>>,
    /// Views not yet logged by the server (kept like the app keeps them).
    pending_views: Vec<(DocumentId, i64)>,
    /// Records made here and not yet registered (kept like the app keeps them).
    pending_creations: Vec<Creation>,
    /// The server told this device to wipe itself, and it did.
    pub wiped: bool,
    /// Bytes of frames this device has sent (for the benchmarks).
    pub bytes_sent: usize,
    /// Bytes of frames this device has received (for the benchmarks).
    pub bytes_received: usize,
    /// `Persisted` frames this device has received.
    pub persisted_frames: usize,
    /// Whether it writes what it holds to its (in-memory) storage, as the app writes to
    /// IndexedDB. Load benchmarks turn this off: a thousand simulated devices sharing the
    /// server's machine would otherwise spend its CPU on work real devices do on their own.
    pub keeps_storage: bool,
    started: Instant,
    entries_written: u32,
}

impl NativeDevice {
    /// A device with nothing stored.
    pub fn new(me: Me) -> Self {
        let device = DeviceId(uuid::Uuid::new_v4());
        let core = ClientCore::new(device, uuid::Uuid::new_v4().as_bytes().to_vec());
        Self {
            core,
            storage: Storage::new(),
            me,
            denied: Vec::new(),
            errors: Vec::new(),
            socket: None,
            past_actors: Vec::new(),
            pending_views: Vec::new(),
            pending_creations: Vec::new(),
            wiped: false,
            bytes_sent: 0,
            bytes_received: 0,
            persisted_frames: 0,
            keeps_storage: true,
            started: Instant::now(),
            entries_written: 0,
        }
    }

    /// The same device starting again from what it stored (a new actor id, as the app does
    /// on every start).
    pub fn restart(self) -> anyhow::Result<Self> {
        let mut past = self.past_actors.clone();
        past.push(self.core.actor().to_vec());
        let mut core =
            ClientCore::new(self.core.device(), uuid::Uuid::new_v4().as_bytes().to_vec())
                .with_past_actors(past.clone())
                .with_pending_views(self.pending_views.clone())
                .with_pending_creations(self.pending_creations.clone());
        core.set_sharing(self.core.sharing().cloned());
        for (id, (chunks, persisted)) in &self.storage {
            core.restore(*id, chunks, persisted)?;
        }
        Ok(Self {
            core,
            socket: None,
            past_actors: past,
            ..self
        })
    }

    /// Takes in changes and opens documents with `sharing`, which the simulated devices of
    /// a load benchmark share (see `bench::applied_once`).
    pub fn share(&mut self, sharing: Arc<dyn Sharing>) {
        self.core.set_sharing(Some(sharing));
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Opens the sync WebSocket with the session cookie and waits for the server's welcome.
    pub async fn connect(&mut self, ws_url: &str, cookie: &str) -> anyhow::Result<()> {
        let mut request = ws_url.into_client_request()?;
        request.headers_mut().insert("cookie", cookie.parse()?);
        // tungstenite zeroes its read buffer (128 KiB by default) before every read: a
        // thousand simulated devices in one process would spend much of a core on that.
        // Frames are mostly under a kilobyte; a larger one grows the buffer.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        // Nagle's algorithm off, as browsers have it on a WebSocket (`true` below).
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .context("opening the sync socket")?;
        self.socket = Some(socket);
        let out = self.core.connected(self.now());
        self.apply(out).await?;
        self.pump_until(Duration::from_secs(10), |d| d.core.is_online())
            .await
    }

    /// Closes the connection (the device goes offline).
    pub async fn disconnect(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
        self.core.disconnected();
    }

    /// Drops the connection without a close handshake (as a lost signal would).
    pub fn drop_connection(&mut self) {
        self.socket = None;
        self.core.disconnected();
    }

    /// Whether the device holds `doc` (in memory or in its storage).
    pub fn holds(&self, doc: DocumentId) -> bool {
        self.core.document(doc).is_some() || self.storage.contains_key(&doc)
    }

    async fn apply(&mut self, out: Output) -> anyhow::Result<()> {
        for id in out.save.iter().filter(|_| self.keeps_storage) {
            let save = self.core.save(*id).context("saving a document")?;
            let (chunks, persisted) = self.storage.entry(*id).or_default();
            match save.chunk {
                Some(Chunk::Full(bytes)) => *chunks = vec![bytes],
                Some(Chunk::Incremental(bytes)) => chunks.push(bytes),
                None => {}
            }
            *persisted = save.persisted;
        }
        for id in &out.removed {
            self.storage.remove(id);
        }
        if out.views_changed {
            self.pending_views = self.core.pending_views().to_vec();
        }
        if out.creations_changed {
            self.pending_creations = self.core.pending_creations().to_vec();
        }
        if out.wipe {
            self.storage.clear();
            self.pending_views.clear();
            self.pending_creations.clear();
            self.past_actors.clear();
            self.wiped = true;
        }
        self.denied.extend(out.denied);
        self.errors.extend(out.error);
        if let Some(socket) = self.socket.as_mut() {
            for message in out.send {
                if socket
                    .send(Message::Binary({
                        let frame = message.encode();
                        self.bytes_sent += frame.len();
                        frame.into()
                    }))
                    .await
                    .is_err()
                {
                    self.drop_connection();
                    break;
                }
            }
        }
        Ok(())
    }

    /// Adds a chronology entry to `doc` (online or not); returns its id.
    pub async fn add_entry(
        &mut self,
        doc: DocumentId,
        draft: &EntryDraft,
    ) -> anyhow::Result<String> {
        self.add_entry_marked(doc, draft, |_| {}).await
    }

    /// Adds a chronology entry like [`Self::add_entry`], and calls `made` with the new
    /// change's hash before anything is sent (for measuring its way to other devices).
    pub async fn add_entry_marked(
        &mut self,
        doc: DocumentId,
        draft: &EntryDraft,
        made: impl FnOnce(automerge::ChangeHash),
    ) -> anyhow::Result<String> {
        self.entries_written += 1;
        let id = format!("{}-{}", self.me.username, uuid::Uuid::new_v4().simple());
        let recorder = Recorder {
            staff: self.me.id,
            name: self.me.name.clone(),
            now_ms: self.now() as i64,
        };
        self.core.track(doc);
        let (result, out) = self.core.edit(doc, |am| {
            chronology::add_entry(am, &id, draft, &recorder).map(|()| {
                am.commit();
                am.get_heads()
            })
        })?;
        // A local change depends on every head before it: it is now the only head.
        made(result?[0]);
        self.apply(out).await?;
        Ok(id)
    }

    /// Makes a new record of `kind` for `case` with these field values (online or not);
    /// returns its document id.
    pub async fn create_record(
        &mut self,
        case: CaseId,
        kind: Kind,
        values: &[(&str, &str)],
    ) -> anyhow::Result<DocumentId> {
        let doc = DocumentId(uuid::Uuid::new_v4());
        let creation = Creation {
            doc,
            case,
            kind: kind.as_str().to_owned(),
        };
        let (result, out) = self.core.create(creation, |am| {
            records::start(am, kind, &case.to_string())?;
            for (key, value) in values {
                records::set(am, kind, key, value)?;
            }
            Ok::<(), records::RecordError>(())
        })?;
        result?;
        self.apply(out).await?;
        Ok(doc)
    }

    /// Records made here that the server has not registered yet.
    pub fn pending_creations(&self) -> usize {
        self.pending_creations.len()
    }

    /// The person opens record `doc` (logged now, or on the next connection).
    pub async fn view(&mut self, doc: DocumentId) -> anyhow::Result<()> {
        let out = self.core.record_view(doc, casebook_server::now_ms());
        self.apply(out).await
    }

    /// Views not yet confirmed logged.
    pub fn pending_views(&self) -> usize {
        self.pending_views.len()
    }

    /// Changes a document with raw Automerge operations (for crafting bad edits).
    pub async fn edit_raw(
        &mut self,
        doc: DocumentId,
        change: impl FnOnce(&mut AutoCommit),
    ) -> anyhow::Result<()> {
        let ((), out) = self.core.edit(doc, change)?;
        self.apply(out).await
    }

    /// Changes an existing entry.
    pub async fn update_entry(
        &mut self,
        doc: DocumentId,
        id: &str,
        draft: &EntryDraft,
    ) -> anyhow::Result<()> {
        let (result, out) = self
            .core
            .edit(doc, |am| chronology::update_entry(am, id, draft))?;
        result?;
        self.apply(out).await
    }

    /// The chronology of `doc` as this device has it.
    pub fn entries(&self, doc: DocumentId) -> Vec<ChronologyEntry> {
        self.core
            .document(doc)
            .map(chronology::entries)
            .unwrap_or_default()
    }

    /// The document, if held.
    pub fn document(&self, doc: DocumentId) -> Option<&AutoCommit> {
        self.core.document(doc)
    }

    /// Handles frames (and passes time) until `done` holds or `timeout` passes.
    pub async fn pump_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out waiting for the server");
            }
            self.step(left).await?;
        }
        Ok(())
    }

    /// Handles frames for `time`, calling `changed` with each document a frame changed (its
    /// content or what the server has stored of it) and the protocol core holding it. Fails
    /// only when the connection closes.
    pub async fn run_for(
        &mut self,
        time: Duration,
        mut changed: impl FnMut(DocumentId, &mut ClientCore),
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + time;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            for doc in self.step(left).await? {
                changed(doc, &mut self.core);
            }
        }
    }

    /// Waits up to `wait` (at most 200 ms, then passes time) for one frame and handles it;
    /// returns the documents it saved.
    async fn step(&mut self, wait: Duration) -> anyhow::Result<Vec<DocumentId>> {
        let Some(socket) = self.socket.as_mut() else {
            bail!("the connection closed")
        };
        let frame =
            match tokio::time::timeout(wait.min(Duration::from_millis(200)), socket.next()).await {
                Err(_) => {
                    let out = self.core.tick(self.now());
                    self.apply(out).await?;
                    return Ok(Vec::new());
                }
                Ok(frame) => frame,
            };
        match frame {
            Some(Ok(Message::Binary(bytes))) => {
                self.bytes_received += bytes.len();
                let message = ServerMessage::decode(&bytes)?;
                if matches!(message, ServerMessage::Persisted { .. }) {
                    self.persisted_frames += 1;
                }
                let out = self.core.receive(self.now(), message)?;
                let saved: Vec<DocumentId> = out.save.iter().copied().collect();
                self.apply(out).await?;
                Ok(saved)
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                self.drop_connection();
                bail!("the connection closed");
            }
            Some(Ok(_)) => Ok(Vec::new()),
        }
    }

    /// Syncs until every document is identical to the server's stored copy.
    pub async fn sync(&mut self) -> anyhow::Result<()> {
        self.pump_until(Duration::from_secs(20), |d| d.core.all_in_step())
            .await
    }

    /// Handles whatever arrives for `time` (for fan-out that may or may not come).
    pub async fn listen_for(&mut self, time: Duration) -> anyhow::Result<()> {
        let _ = self.pump_until(time, |_| false).await;
        Ok(())
    }

    /// Changes the server has acknowledged storing, as entry ids of `doc`.
    pub fn acknowledged_entries(&mut self, doc: DocumentId) -> anyhow::Result<Vec<String>> {
        let persisted = self.core.persisted_heads(doc);
        let Some(am) = self.core.document(doc) else {
            return Ok(Vec::new());
        };
        let mut am = am.clone();
        let known: Vec<_> = persisted
            .into_iter()
            .filter(|h| am.get_change_by_hash(h).is_some())
            .collect();
        let at = am.fork_at(&known)?;
        Ok(chronology::entries(&at).into_iter().map(|e| e.id).collect())
    }
}

/// A valid entry for tests.
pub fn draft(what: &str) -> EntryDraft {
    EntryDraft {
        event_date: "2026-06-01".into(),
        what_happened: what.into(),
        source: "Test source".into(),
        category: "Other".into(),
        ..Default::default()
    }
}
