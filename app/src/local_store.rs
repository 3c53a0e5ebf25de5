//! IndexedDB on the device, every value encrypted (see [`crate::vault`]).
//!
//! Object stores:
//! - `chunks`: document content, key `"{document}/{sequence:010}"`, value one sealed Automerge
//!   chunk (a whole saved document, or the changes after the previous chunk). Loading a
//!   document concatenates its chunks in key order.
//! - `meta`: key = document id, value = the sealed heads the server last confirmed.
//! - `kv`: small sealed JSON values: the signed-in user, the cached case list, actor ids,
//!   views waiting to be logged.
//! - `plain`: the only values kept unencrypted: the device id, the wrapped data key, and the
//!   number of changes waiting to reach the server (so a different person signing in on this
//!   device can be told there is unsynced work, without anything being decrypted).
//!
//! Every value is sealed with the record's store and key as associated data. Writes run in
//! the order they were asked for (encryption is asynchronous, and a whole-document chunk
//! replaces the chunks before it, so order matters), in batches: the writes asked for while
//! one batch runs make the next, sealed together and stored in one transaction. A write is
//! reported done only when its transaction has committed.

use crate::vault::{CryptoError, Key};
use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::Head;
use casebook_shared::sync::client::{Chunk, DocumentSave};
use futures_util::future::join_all;
use idb::{Database, KeyRange, ObjectStore, Query, TransactionMode, TransactionResult};
use js_sys::{Promise, Uint8Array};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

const DB_NAME: &str = "casebook";
const CHUNKS: &str = "chunks";
const META: &str = "meta";
const KV: &str = "kv";
const PLAIN: &str = "plain";

/// A failure of local storage (rare: quota, private mode, a damaged database).
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl From<idb::Error> for StoreError {
    fn from(e: idb::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<CryptoError> for StoreError {
    fn from(e: CryptoError) -> Self {
        StoreError(format!("encryption: {}", e.0))
    }
}

/// A document as stored on the device.
pub struct StoredDocument {
    /// The document.
    pub id: DocumentId,
    /// Its chunks, in order.
    pub chunks: Vec<Vec<u8>>,
    /// Heads the server last confirmed.
    pub persisted: Vec<Head>,
    /// Sequence number for the next chunk.
    pub next_seq: u32,
}

/// The device's IndexedDB database.
#[derive(Clone)]
pub struct LocalStore {
    db: Rc<Database>,
    /// The data key, once unlocked.
    key: Rc<RefCell<Option<Key>>>,
    writer: Rc<RefCell<Writer>>,
}

/// One change to the database, its value already sealed.
enum Step {
    Put {
        store: &'static str,
        key: String,
        value: Vec<u8>,
    },
    /// Removes the keys from `from` up to `to` (`to` itself too if `to_included`).
    DeleteRange {
        store: &'static str,
        from: String,
        to: String,
        to_included: bool,
    },
    Delete {
        store: &'static str,
        key: String,
    },
    Clear(&'static str),
}

/// A write asked for: seals what it stores, then says what to change.
type Prepared = Pin<Box<dyn Future<Output = Result<Vec<Step>, StoreError>>>>;

/// Writes run together in one transaction.
struct Batch {
    /// The writes, in the order they were asked for (emptied when the batch starts).
    waiting: Rc<RefCell<Vec<Prepared>>>,
    /// Each write's outcome, in the same order, once the batch has ended.
    outcomes: Rc<RefCell<Vec<Result<(), StoreError>>>>,
    /// Settles when the batch has ended.
    ended: Promise,
}

/// The order of writes: one batch at a time, each after the one before.
#[derive(Default)]
struct Writer {
    /// The batch that has not started yet: new writes join it.
    forming: Option<Rc<Batch>>,
    /// The last batch; the next one waits for it.
    tail: Option<Promise>,
}

/// Seals every write of a batch, then runs the steps of those that sealed in one
/// transaction. A write that could not be sealed fails alone; if the transaction fails,
/// every write in it fails.
async fn run_batch(db: &Database, prepared: Vec<Prepared>) -> Vec<Result<(), StoreError>> {
    let mut steps = Vec::new();
    let mut outcomes: Vec<Result<(), StoreError>> = join_all(prepared)
        .await
        .into_iter()
        .map(|sealed| sealed.map(|mut s| steps.append(&mut s)))
        .collect();
    if !steps.is_empty()
        && let Err(e) = apply(db, steps).await
    {
        for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
            *outcome = Err(e.clone());
        }
    }
    outcomes
}

/// Runs `steps` in one read-write transaction and waits until it is committed: a write is
/// only reported done once it is stored.
async fn apply(db: &Database, steps: Vec<Step>) -> Result<(), StoreError> {
    let tx = db.transaction(&[CHUNKS, META, KV, PLAIN], TransactionMode::ReadWrite)?;
    // The requests run in the order they are made; one that fails aborts the transaction,
    // which the commit below reports.
    for step in steps {
        match step {
            Step::Put { store, key, value } => {
                tx.object_store(store)?
                    .put(&js_bytes(&value), Some(&JsValue::from_str(&key)))?;
            }
            Step::DeleteRange {
                store,
                from,
                to,
                to_included,
            } => {
                let range = KeyRange::bound(
                    &JsValue::from_str(&from),
                    &JsValue::from_str(&to),
                    Some(false),
                    Some(!to_included),
                )?;
                tx.object_store(store)?.delete(Query::KeyRange(range))?;
            }
            Step::Delete { store, key } => {
                tx.object_store(store)?.delete(JsValue::from_str(&key))?;
            }
            Step::Clear(store) => {
                tx.object_store(store)?.clear()?;
            }
        }
    }
    match tx.commit()?.await? {
        TransactionResult::Committed => Ok(()),
        TransactionResult::Aborted => Err(StoreError(
            "the browser did not store it (storage full or unavailable)".into(),
        )),
    }
}

fn chunk_key(doc: DocumentId, seq: u32) -> String {
    format!("{doc}/{seq:010}")
}

fn bytes(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

fn js_bytes(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}

/// A stored JSON value read back. Through `from_str`, as the HTTP client reads the server's
/// answers (`http::json_of`): each reader type serde_json is given compiles a deserialiser of
/// every type read through it into the bundle, so one reader keeps one copy.
fn from_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}

/// Associated data binding a sealed value to its record.
fn aad(store: &str, key: &str) -> Vec<u8> {
    format!("casebook/{store}/{key}").into_bytes()
}

impl LocalStore {
    /// Opens (creating on first use) the database. It stays locked until [`LocalStore::unlock`].
    pub async fn open() -> Result<Self, StoreError> {
        let db = Database::builder(DB_NAME)
            .version(2)
            .add_object_store(ObjectStore::builder(CHUNKS))
            .add_object_store(ObjectStore::builder(META))
            .add_object_store(ObjectStore::builder(KV))
            .add_object_store(ObjectStore::builder(PLAIN))
            .build()
            .await?;
        Ok(Self {
            db: Rc::new(db),
            key: Rc::new(RefCell::new(None)),
            writer: Rc::default(),
        })
    }

    /// Uses `key` (the device's data key) for every read and write from now on.
    pub fn unlock(&self, key: Key) {
        *self.key.borrow_mut() = Some(key);
    }

    /// Forgets the data key (sign-out, session ended): nothing can be read until unlocked.
    pub fn lock(&self) {
        *self.key.borrow_mut() = None;
    }

    /// Whether the data key is in memory.
    pub fn is_unlocked(&self) -> bool {
        self.key.borrow().is_some()
    }

    fn data_key(&self) -> Result<Key, StoreError> {
        self.key
            .borrow()
            .clone()
            .ok_or_else(|| StoreError("the records on this device are locked".into()))
    }

    /// Runs `prepare` (sealing what is to be written) and then its steps, after every write
    /// asked for before it. Writes asked for while a batch runs are kept together and run as
    /// the next batch, in one read-write transaction: a caseload arriving is a few dozen
    /// transactions rather than one per record. Each write still learns its own outcome.
    async fn in_turn<F>(&self, prepare: F) -> Result<(), StoreError>
    where
        F: Future<Output = Result<Vec<Step>, StoreError>> + 'static,
    {
        // Boxed, so the batch machinery is compiled once rather than once per kind of write.
        self.in_turn_boxed(Box::pin(prepare)).await
    }

    async fn in_turn_boxed(&self, prepare: Prepared) -> Result<(), StoreError> {
        let (batch, index) = self.join_batch(prepare);
        let ended = JsFuture::from(batch.ended.clone()).await;
        match batch.outcomes.borrow().get(index) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(StoreError(
                ended
                    .err()
                    .and_then(|e| e.as_string())
                    .unwrap_or_else(|| "the device's storage stopped before this write".into()),
            )),
        }
    }

    /// Adds `prepare` to the batch not yet started (starting one if none is waiting), and
    /// says which batch and which place in it.
    fn join_batch(&self, prepare: Prepared) -> (Rc<Batch>, usize) {
        let mut writer = self.writer.borrow_mut();
        if let Some(batch) = &writer.forming {
            let mut waiting = batch.waiting.borrow_mut();
            waiting.push(prepare);
            return (batch.clone(), waiting.len() - 1);
        }
        let previous = writer.tail.take();
        let (db, writer_of_store) = (self.db.clone(), self.writer.clone());
        let waiting = Rc::new(RefCell::new(vec![prepare]));
        let outcomes = Rc::new(RefCell::new(Vec::new()));
        let (taken, written) = (waiting.clone(), outcomes.clone());
        let ended = future_to_promise(async move {
            if let Some(previous) = previous {
                let _ = JsFuture::from(previous).await;
            }
            // From here on, writes asked for join the next batch.
            writer_of_store.borrow_mut().forming = None;
            let prepared = std::mem::take(&mut *taken.borrow_mut());
            *written.borrow_mut() = run_batch(&db, prepared).await;
            Ok(JsValue::UNDEFINED)
        });
        let batch = Rc::new(Batch {
            waiting,
            outcomes,
            ended: ended.clone(),
        });
        writer.forming = Some(batch.clone());
        writer.tail = Some(ended);
        (batch, 0)
    }

    /// Every document on the device, decrypted.
    pub async fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        let key = self.data_key()?;
        let tx = self
            .db
            .transaction(&[CHUNKS, META], TransactionMode::ReadOnly)?;
        let chunks = tx.object_store(CHUNKS)?;
        let keys = chunks.get_all_keys(None, None)?.await?;
        let values = chunks.get_all(None, None)?.await?;
        let meta = tx.object_store(META)?;
        let meta_keys = meta.get_all_keys(None, None)?.await?;
        let meta_values = meta.get_all(None, None)?.await?;
        tx.await?;
        let mut docs: BTreeMap<DocumentId, StoredDocument> = BTreeMap::new();
        // getAll returns keys in key order, so chunks arrive in sequence order.
        for (record, value) in keys.iter().zip(values.iter()) {
            let Some(record) = record.as_string() else {
                continue;
            };
            let Some((id, seq)) = record.split_once('/') else {
                continue;
            };
            let (Ok(id), Ok(seq)) = (id.parse::<DocumentId>(), seq.parse::<u32>()) else {
                continue;
            };
            let chunk = key.open(&bytes(value), &aad(CHUNKS, &record)).await?;
            let doc = docs.entry(id).or_insert_with(|| StoredDocument {
                id,
                chunks: Vec::new(),
                persisted: Vec::new(),
                next_seq: 0,
            });
            doc.chunks.push(chunk);
            doc.next_seq = seq + 1;
        }
        for (record, value) in meta_keys.iter().zip(meta_values.iter()) {
            let Some(record) = record.as_string() else {
                continue;
            };
            let Some(doc) = record
                .parse::<DocumentId>()
                .ok()
                .and_then(|id| docs.get_mut(&id))
            else {
                continue;
            };
            doc.persisted = key
                .open(&bytes(value), &aad(META, &record))
                .await?
                .chunks_exact(32)
                .map(|c| c.try_into().expect("32 bytes"))
                .collect();
        }
        Ok(docs.into_values().collect())
    }

    /// Writes what the sync core asked to save for `doc`; `seq` is the chunk's sequence number.
    pub async fn write(
        &self,
        doc: DocumentId,
        save: DocumentSave,
        seq: u32,
    ) -> Result<(), StoreError> {
        let key = self.data_key()?;
        self.in_turn(async move {
            let record = chunk_key(doc, seq);
            let mut steps = Vec::new();
            let (whole, chunk) = match save.chunk {
                Some(Chunk::Full(data)) => (true, Some(data)),
                Some(Chunk::Incremental(data)) => (false, Some(data)),
                None => (false, None),
            };
            if whole && seq > 0 {
                // A whole document replaces every chunk before it.
                steps.push(Step::DeleteRange {
                    store: CHUNKS,
                    from: chunk_key(doc, 0),
                    to: record.clone(),
                    to_included: false,
                });
            }
            if let Some(data) = chunk {
                let value = key.seal(&data, &aad(CHUNKS, &record)).await?;
                steps.push(Step::Put {
                    store: CHUNKS,
                    key: record,
                    value,
                });
            }
            let heads: Vec<u8> = save.persisted.iter().flatten().copied().collect();
            let doc_key = doc.to_string();
            let value = key.seal(&heads, &aad(META, &doc_key)).await?;
            steps.push(Step::Put {
                store: META,
                key: doc_key,
                value,
            });
            Ok(steps)
        })
        .await
    }

    /// Removes a document the device may no longer hold.
    pub async fn remove(&self, doc: DocumentId) -> Result<(), StoreError> {
        self.in_turn(async move {
            Ok(vec![
                Step::DeleteRange {
                    store: CHUNKS,
                    from: chunk_key(doc, 0),
                    to: chunk_key(doc, u32::MAX),
                    to_included: true,
                },
                Step::Delete {
                    store: META,
                    key: doc.to_string(),
                },
            ])
        })
        .await
    }

    async fn read_raw(&self, store: &str, key: &str) -> Option<Vec<u8>> {
        let tx = self
            .db
            .transaction(&[store], TransactionMode::ReadOnly)
            .ok()?;
        let value = tx
            .object_store(store)
            .ok()?
            .get(JsValue::from_str(key))
            .ok()?
            .await
            .ok()??;
        Some(bytes(&value))
    }

    async fn write_raw(
        &self,
        store: &'static str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.in_turn(async move { Ok(vec![Step::Put { store, key, value }]) })
            .await
    }

    /// A small JSON value, decrypted (`None` if missing, locked or unreadable).
    pub async fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let data_key = self.data_key().ok()?;
        let sealed = self.read_raw(KV, key).await?;
        let json = data_key.open(&sealed, &aad(KV, key)).await.ok()?;
        from_json(&json)
    }

    /// Whether a small value is stored under `key` (nothing is decrypted or read into a type).
    pub async fn has(&self, key: &str) -> bool {
        self.read_raw(KV, key).await.is_some()
    }

    /// Stores a small JSON value, encrypted.
    pub async fn set<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()))?;
        let sealed = self.data_key()?.seal(&json, &aad(KV, key)).await?;
        self.write_raw(KV, key, sealed).await
    }

    /// A value kept unencrypted (device id, wrapped key, waiting count only).
    pub async fn get_plain<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        from_json(&self.read_raw(PLAIN, key).await?)
    }

    /// Stores a value unencrypted (device id, wrapped key, waiting count only).
    pub async fn set_plain<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()))?;
        self.write_raw(PLAIN, key, json).await
    }

    /// Removes an unencrypted value.
    pub async fn remove_plain(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.in_turn(async move { Ok(vec![Step::Delete { store: PLAIN, key }]) })
            .await
    }

    /// Removes everything, the wrapped key and device id included, and forgets the data key.
    pub async fn wipe(&self) -> Result<(), StoreError> {
        self.lock();
        self.in_turn(async move { Ok(Vec::from([CHUNKS, META, KV, PLAIN].map(Step::Clear))) })
            .await
    }
}
