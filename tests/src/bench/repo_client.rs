//! A native client of an automerge-repo sync server, for the side-by-side live ladder: the
//! same Rust Automerge and the same kind of device as Casebook's simulated devices, so that
//! the ladder compares the two servers rather than Node clients with Rust ones.
//!
//! It speaks automerge-repo 2.x's WebSocket protocol (version "1"): CBOR maps, `join` and
//! the server's `peer` answer, then `request` (for a document it does not hold yet) and
//! `sync` messages carrying Automerge sync messages, one `sync::State` per document. That is
//! what an automerge-repo client repo does, without its throttling and storage. It takes
//! sync messages in with the protocol core's `receive_with`, which has the effect of
//! Automerge's `receive_sync_message` (its tests check that), so that the devices of a run
//! share applying changes as Casebook's do ([`super::applied_once`]).

use anyhow::{Context, bail};
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc};
use casebook_shared::sync::receive::{Sharing, receive_with};
use ciborium::Value;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One document as the client holds it.
struct Held {
    doc: AutoCommit,
    state: sync::State,
    /// Whether anything of the document has arrived from the server yet.
    received: bool,
}

/// A connected automerge-repo client holding a few documents.
pub struct RepoDevice {
    socket: Socket,
    me: String,
    server: String,
    docs: HashMap<String, Held>,
    /// `error` and `doc-unavailable` messages received.
    pub errors: usize,
    /// Shared with the other devices of the run (see [`super::applied_once`]).
    sharing: Option<Arc<dyn Sharing>>,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn encode(fields: Vec<(&str, Value)>) -> anyhow::Result<Vec<u8>> {
    let map = Value::Map(fields.into_iter().map(|(k, v)| (text(k), v)).collect());
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out)?;
    Ok(out)
}

fn field<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

impl RepoDevice {
    /// Connects as peer `me`, joins, and fetches `documents` (automerge-repo document ids,
    /// the part of an `automerge:` URL after the colon) until each has arrived.
    pub async fn connect(
        url: &str,
        me: &str,
        documents: &[String],
        sharing: Option<Arc<dyn Sharing>>,
    ) -> anyhow::Result<Self> {
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        // Nagle's algorithm off (`true`), as automerge-repo's own client (the `ws` package) has it.
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .context("opening a socket to the automerge-repo server")?;
        let mut device = Self {
            socket,
            me: me.to_owned(),
            server: String::new(),
            docs: HashMap::new(),
            errors: 0,
            sharing,
        };
        let join = encode(vec![
            ("type", text("join")),
            ("senderId", text(me)),
            (
                "peerMetadata",
                Value::Map(vec![(text("isEphemeral"), Value::Bool(true))]),
            ),
            ("supportedProtocolVersions", Value::Array(vec![text("1")])),
        ])?;
        device.socket.send(Message::Binary(join.into())).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while device.server.is_empty() {
            if !device.step(deadline, &mut |_, _| {}).await? {
                bail!("the automerge-repo server did not answer the join");
            }
        }
        for id in documents {
            let mut held = Held {
                doc: AutoCommit::new(),
                state: sync::State::new(),
                received: false,
            };
            let first = held
                .doc
                .sync()
                .generate_sync_message(&mut held.state)
                .context("a first sync message")?;
            device.docs.insert(id.clone(), held);
            device.send("request", id, first.encode()).await?;
        }
        while device.docs.values().any(|h| !h.received) {
            if !device.step(deadline, &mut |_, _| {}).await? {
                bail!("the automerge-repo server did not send every document within 30 s");
            }
        }
        Ok(device)
    }

    async fn send(&mut self, kind: &str, doc: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let frame = encode(vec![
            ("type", text(kind)),
            ("senderId", text(&self.me)),
            ("targetId", text(&self.server)),
            ("documentId", text(doc)),
            ("data", Value::Bytes(data)),
        ])?;
        self.socket.send(Message::Binary(frame.into())).await?;
        Ok(())
    }

    /// Sends what the sync protocol owes the server about `doc`, if anything.
    pub async fn sync_doc(&mut self, doc: &str) -> anyhow::Result<()> {
        let Some(held) = self.docs.get_mut(doc) else {
            return Ok(());
        };
        let message = held.doc.sync().generate_sync_message(&mut held.state);
        if let Some(message) = message {
            self.send("sync", doc, message.encode()).await?;
        }
        Ok(())
    }

    /// Reads one frame (waiting until `deadline` at most) and acts on it; `arrived` is
    /// called with a document that changed. False when `deadline` passed first.
    async fn step(
        &mut self,
        deadline: Instant,
        arrived: &mut impl FnMut(&str, &AutoCommit),
    ) -> anyhow::Result<bool> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(wait, self.socket.next()).await {
            Err(_) => return Ok(false),
            Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => bail!("the server closed the socket"),
            Ok(Some(Ok(_))) => return Ok(true),
            Ok(Some(Err(e))) => return Err(e.into()),
        };
        let value: Value = ciborium::from_reader(&frame[..]).context("a CBOR message")?;
        let Some(map) = value.as_map() else {
            bail!("a message that is not a map")
        };
        let kind = field(map, "type").and_then(Value::as_text).unwrap_or("");
        match kind {
            "peer" => {
                self.server = field(map, "senderId")
                    .and_then(Value::as_text)
                    .context("peer without a senderId")?
                    .to_owned();
            }
            "sync" | "request" => {
                let doc = field(map, "documentId")
                    .and_then(Value::as_text)
                    .context("sync without a documentId")?
                    .to_owned();
                let data = field(map, "data")
                    .and_then(Value::as_bytes)
                    .context("sync without data")?;
                let message = sync::Message::decode(data)?;
                if let Some(held) = self.docs.get_mut(&doc) {
                    receive_with(
                        &mut held.doc,
                        &mut held.state,
                        message,
                        self.sharing.as_deref(),
                    )?;
                    if !held.doc.get_heads().is_empty() {
                        held.received = true;
                    }
                    arrived(&doc, &held.doc);
                    self.sync_doc(&doc).await?;
                }
            }
            "error" | "doc-unavailable" => self.errors += 1,
            _ => {}
        }
        Ok(true)
    }

    /// Takes in frames until `deadline`.
    pub async fn run_until(
        &mut self,
        deadline: Instant,
        arrived: &mut impl FnMut(&str, &AutoCommit),
    ) -> anyhow::Result<()> {
        while Instant::now() < deadline {
            self.step(deadline, arrived).await?;
        }
        Ok(())
    }

    /// The device's copy of `doc`, if it holds it.
    pub fn document(&self, doc: &str) -> Option<&automerge::AutoCommit> {
        self.docs.get(doc).map(|held| &held.doc)
    }

    /// Writes a chronology entry shaped as Casebook's (`chronology::add_entry`: the two free
    /// text fields as text objects, the rest as values) into `doc` and returns the change's
    /// hash; [`Self::sync_doc`] sends it.
    pub fn write(&mut self, doc: &str, key: &str, what: &str) -> anyhow::Result<ChangeHash> {
        let held = self
            .docs
            .get_mut(doc)
            .context("a document the device holds")?;
        let entries = match held.doc.get(ROOT, "entries")? {
            Some((_, id)) => id,
            None => held.doc.put_object(ROOT, "entries", ObjType::Map)?,
        };
        let entry = held.doc.put_object(&entries, key, ObjType::Map)?;
        held.doc.put(&entry, "event_date", "2026-11-27")?;
        held.doc.put(&entry, "date_approximate", false)?;
        // Text objects, as Casebook's entries hold these two fields (and as automerge-repo's
        // JavaScript API stores every string): one operation per character.
        let text = held
            .doc
            .put_object(&entry, "what_happened", ObjType::Text)?;
        held.doc.splice_text(&text, 0, 0, what)?;
        held.doc.put(&entry, "source", "Case worker")?;
        held.doc.put(&entry, "impact", "neutral")?;
        held.doc.put_object(&entry, "action_taken", ObjType::Text)?;
        held.doc.put(&entry, "category", "Supervision contact")?;
        held.doc.put(&entry, "withheld", false)?;
        held.doc.put(&entry, "author", self.me.as_str())?;
        held.doc.commit().context("a change")
    }
}
