//! IndexedDB on the device.
//!
//! Object stores:
//! - `chunks`: document content, key `"{document}/{sequence:010}"`, value the bytes of one
//!   Automerge chunk (a whole saved document, or the changes after the previous chunk).
//!   Loading a document concatenates its chunks in key order.
//! - `meta`: key = document id, value = the heads the server last confirmed (32 bytes each).
//! - `kv`: small JSON values: the device id, the signed-in user, the cached case list.

use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::Head;
use casebook_shared::sync::client::{Chunk, DocumentSave};
use idb::{Database, KeyRange, ObjectStore, Query, TransactionMode};
use js_sys::Uint8Array;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;

const DB_NAME: &str = "casebook";
const CHUNKS: &str = "chunks";
const META: &str = "meta";
const KV: &str = "kv";

/// A failure of local storage (rare: quota, private mode, a damaged database).
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl From<idb::Error> for StoreError {
    fn from(e: idb::Error) -> Self {
        StoreError(e.to_string())
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
}

fn chunk_key(doc: DocumentId, seq: u32) -> JsValue {
    JsValue::from_str(&format!("{doc}/{seq:010}"))
}

fn bytes(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

impl LocalStore {
    /// Opens (creating on first use) the database.
    pub async fn open() -> Result<Self, StoreError> {
        let db = Database::builder(DB_NAME)
            .version(1)
            .add_object_store(ObjectStore::builder(CHUNKS))
            .add_object_store(ObjectStore::builder(META))
            .add_object_store(ObjectStore::builder(KV))
            .build()
            .await?;
        Ok(Self { db: Rc::new(db) })
    }

    /// Every document on the device.
    pub async fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
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
        for (key, value) in keys.iter().zip(values.iter()) {
            let Some(key) = key.as_string() else { continue };
            let Some((id, seq)) = key.split_once('/') else {
                continue;
            };
            let (Ok(id), Ok(seq)) = (id.parse::<DocumentId>(), seq.parse::<u32>()) else {
                continue;
            };
            let doc = docs.entry(id).or_insert_with(|| StoredDocument {
                id,
                chunks: Vec::new(),
                persisted: Vec::new(),
                next_seq: 0,
            });
            doc.chunks.push(bytes(value));
            doc.next_seq = seq + 1;
        }
        for (key, value) in meta_keys.iter().zip(meta_values.iter()) {
            let Some(id) = key.as_string().and_then(|k| k.parse::<DocumentId>().ok()) else {
                continue;
            };
            if let Some(doc) = docs.get_mut(&id) {
                doc.persisted = bytes(value)
                    .chunks_exact(32)
                    .map(|c| c.try_into().expect("32 bytes"))
                    .collect();
            }
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
        let tx = self
            .db
            .transaction(&[CHUNKS, META], TransactionMode::ReadWrite)?;
        let chunks = tx.object_store(CHUNKS)?;
        match save.chunk {
            Some(Chunk::Full(data)) => {
                let all = KeyRange::bound(
                    &chunk_key(doc, 0),
                    &chunk_key(doc, u32::MAX),
                    Some(false),
                    Some(false),
                )?;
                chunks.delete(Query::KeyRange(all))?.await?;
                chunks
                    .put(
                        &Uint8Array::from(data.as_slice()).into(),
                        Some(&chunk_key(doc, seq)),
                    )?
                    .await?;
            }
            Some(Chunk::Incremental(data)) => {
                chunks
                    .put(
                        &Uint8Array::from(data.as_slice()).into(),
                        Some(&chunk_key(doc, seq)),
                    )?
                    .await?;
            }
            None => {}
        }
        let heads: Vec<u8> = save.persisted.iter().flatten().copied().collect();
        tx.object_store(META)?
            .put(
                &Uint8Array::from(heads.as_slice()).into(),
                Some(&JsValue::from_str(&doc.to_string())),
            )?
            .await?;
        tx.commit()?.await?;
        Ok(())
    }

    /// Removes a document the device may no longer hold.
    pub async fn remove(&self, doc: DocumentId) -> Result<(), StoreError> {
        let tx = self
            .db
            .transaction(&[CHUNKS, META], TransactionMode::ReadWrite)?;
        let all = KeyRange::bound(
            &chunk_key(doc, 0),
            &chunk_key(doc, u32::MAX),
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
    }

    /// A small JSON value.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let tx = self.db.transaction(&[KV], TransactionMode::ReadOnly).ok()?;
        let value = tx
            .object_store(KV)
            .ok()?
            .get(JsValue::from_str(key))
            .ok()?
            .await
            .ok()??;
        serde_json::from_str(&value.as_string()?).ok()
    }

    /// Stores a small JSON value.
    pub async fn set<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let json = serde_json::to_string(value).map_err(|e| StoreError(e.to_string()))?;
        let tx = self.db.transaction(&[KV], TransactionMode::ReadWrite)?;
        tx.object_store(KV)?
            .put(&JsValue::from_str(&json), Some(&JsValue::from_str(key)))?
            .await?;
        tx.commit()?.await?;
        Ok(())
    }

    /// Removes everything (sign-out once everything is synced).
    pub async fn wipe(&self) -> Result<(), StoreError> {
        let tx = self
            .db
            .transaction(&[CHUNKS, META, KV], TransactionMode::ReadWrite)?;
        for store in [CHUNKS, META, KV] {
            tx.object_store(store)?.clear()?.await?;
        }
        tx.commit()?.await?;
        Ok(())
    }
}
