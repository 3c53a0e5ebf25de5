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
//! Every value is sealed with the record's store and key as associated data. Writes run one
//! at a time in the order they were asked for (encryption is asynchronous, and a whole-document
//! chunk replaces the chunks before it, so order matters).

use crate::vault::{CryptoError, Key};
use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::Head;
use casebook_shared::sync::client::{Chunk, DocumentSave};
use idb::{Database, KeyRange, ObjectStore, Query, TransactionMode};
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
    /// The last write asked for; the next one waits for it.
    tail: Rc<RefCell<Option<Promise>>>,
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
            tail: Rc::new(RefCell::new(None)),
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

    /// Runs `write` after every write asked for before it.
    async fn in_turn<F>(&self, write: F) -> Result<(), StoreError>
    where
        F: Future<Output = Result<(), StoreError>> + 'static,
    {
        // Boxed, so the promise machinery below is compiled once rather than once per kind
        // of write (about 5 KB of the bundle).
        self.in_turn_boxed(Box::pin(write)).await
    }

    async fn in_turn_boxed(
        &self,
        write: Pin<Box<dyn Future<Output = Result<(), StoreError>>>>,
    ) -> Result<(), StoreError> {
        let previous = self.tail.borrow_mut().take();
        let promise = future_to_promise(async move {
            if let Some(previous) = previous {
                let _ = JsFuture::from(previous).await;
            }
            write
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| JsValue::from_str(&e.0))
        });
        *self.tail.borrow_mut() = Some(promise.clone());
        JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(|e| StoreError(e.as_string().unwrap_or_default()))
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
        let (key, db) = (self.data_key()?, self.db.clone());
        self.in_turn(async move {
            let record = chunk_key(doc, seq);
            let (whole, chunk) = match save.chunk {
                Some(Chunk::Full(data)) => (true, Some(data)),
                Some(Chunk::Incremental(data)) => (false, Some(data)),
                None => (false, None),
            };
            let sealed_chunk = match chunk {
                Some(data) => Some(key.seal(&data, &aad(CHUNKS, &record)).await?),
                None => None,
            };
            let heads: Vec<u8> = save.persisted.iter().flatten().copied().collect();
            let doc_key = doc.to_string();
            let sealed_heads = key.seal(&heads, &aad(META, &doc_key)).await?;

            let tx = db.transaction(&[CHUNKS, META], TransactionMode::ReadWrite)?;
            let chunks = tx.object_store(CHUNKS)?;
            if whole && seq > 0 {
                // A whole document replaces every chunk before it.
                let earlier = KeyRange::bound(
                    &JsValue::from_str(&chunk_key(doc, 0)),
                    &JsValue::from_str(&record),
                    Some(false),
                    Some(true),
                )?;
                chunks.delete(Query::KeyRange(earlier))?.await?;
            }
            if let Some(sealed) = sealed_chunk {
                chunks
                    .put(&js_bytes(&sealed), Some(&JsValue::from_str(&record)))?
                    .await?;
            }
            tx.object_store(META)?
                .put(&js_bytes(&sealed_heads), Some(&JsValue::from_str(&doc_key)))?
                .await?;
            tx.commit()?.await?;
            Ok(())
        })
        .await
    }

    /// Removes a document the device may no longer hold.
    pub async fn remove(&self, doc: DocumentId) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.in_turn(async move {
            let tx = db.transaction(&[CHUNKS, META], TransactionMode::ReadWrite)?;
            let all = KeyRange::bound(
                &JsValue::from_str(&chunk_key(doc, 0)),
                &JsValue::from_str(&chunk_key(doc, u32::MAX)),
                Some(false),
                Some(false),
            )?;
            tx.object_store(CHUNKS)?
                .delete(Query::KeyRange(all))?
                .await?;
            tx.object_store(META)?
                .delete(JsValue::from_str(&doc.to_string()))?
                .await?;
            tx.commit()?.await?;
            Ok(())
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
        let (db, key) = (self.db.clone(), key.to_owned());
        self.in_turn(async move {
            let tx = db.transaction(&[store], TransactionMode::ReadWrite)?;
            tx.object_store(store)?
                .put(&js_bytes(&value), Some(&JsValue::from_str(&key)))?
                .await?;
            tx.commit()?.await?;
            Ok(())
        })
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
        let (db, key) = (self.db.clone(), key.to_owned());
        self.in_turn(async move {
            let tx = db.transaction(&[PLAIN], TransactionMode::ReadWrite)?;
            tx.object_store(PLAIN)?
                .delete(JsValue::from_str(&key))?
                .await?;
            tx.commit()?.await?;
            Ok(())
        })
        .await
    }

    /// Removes everything, the wrapped key and device id included, and forgets the data key.
    pub async fn wipe(&self) -> Result<(), StoreError> {
        self.lock();
        let db = self.db.clone();
        self.in_turn(async move {
            let stores = [CHUNKS, META, KV, PLAIN];
            let tx = db.transaction(&stores, TransactionMode::ReadWrite)?;
            for store in stores {
                tx.object_store(store)?.clear()?.await?;
            }
            tx.commit()?.await?;
            Ok(())
        })
        .await
    }
}
