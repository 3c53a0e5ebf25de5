//! Encryption of everything Casebook keeps on the device (WebCrypto AES-GCM-256).
//!
//! Each device has one random *data key*. It seals every value written to IndexedDB with a
//! fresh 96-bit IV, and the record's store and key as associated data (a sealed value cannot be
//! moved to another record). The data key lives in memory only as a non-extractable
//! `CryptoKey`; on the device it is kept only *wrapped*:
//!
//! - by the **device key** the server releases (`POST /api/devices/{id}/key`) to a signed-in
//!   session of the device's owner while the device is not revoked: opening the app online
//!   unlocks without a password, and a device reported lost can never unlock that way again;
//! - by a key derived from the person's **password** (PBKDF2-SHA-256, 600,000 iterations,
//!   random salt), for opening the app with no network. This copy carries its expiry
//!   ([`OFFLINE_GRACE_MS`] after the last online sign-in) as associated data, so the expiry
//!   cannot be extended without the password and a server sign-in.
//!
//! `docs/security.md` ("Data on the device") describes the design and its limits.

use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, Pbkdf2Params, SubtleCrypto};

/// How long the password-wrapped copy opens the records without a network: 72 hours after
/// the last sign-in made online.
pub const OFFLINE_GRACE_MS: f64 = 72.0 * 3600.0 * 1000.0;

/// PBKDF2-SHA-256 iterations for the password-wrapped copy (OWASP's figure for PBKDF2-SHA-256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

const IV_BYTES: usize = 12;

/// A WebCrypto failure: wrong key or password, damaged data, or no WebCrypto.
#[derive(Debug, Clone)]
pub struct CryptoError(pub String);

fn failed(e: JsValue) -> CryptoError {
    CryptoError(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "the data could not be decrypted".into()),
    )
}

fn subtle() -> Result<SubtleCrypto, CryptoError> {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.subtle())
        .ok_or_else(|| CryptoError("WebCrypto is not available".into()))
}

fn usages(list: &[&str]) -> JsValue {
    list.iter()
        .map(|u| JsValue::from_str(u))
        .collect::<Array>()
        .into()
}

fn aes_gcm() -> Object {
    let algorithm = Object::new();
    let _ = js_sys::Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into());
    algorithm
}

/// An AES-GCM key held by WebCrypto (never readable by this code once imported).
#[derive(Clone)]
pub struct Key(CryptoKey);

impl Key {
    /// Imports 32 raw bytes as a non-extractable AES-GCM key.
    pub async fn import(raw: &[u8]) -> Result<Key, CryptoError> {
        let promise = subtle()?
            .import_key_with_object(
                "raw",
                &Uint8Array::from(raw),
                &aes_gcm(),
                false,
                &usages(&["encrypt", "decrypt"]),
            )
            .map_err(failed)?;
        let key = JsFuture::from(promise).await.map_err(failed)?;
        Ok(Key(key.unchecked_into()))
    }

    /// The key derived from a password (PBKDF2-SHA-256).
    pub async fn from_password(
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Key, CryptoError> {
        let subtle = subtle()?;
        let base = JsFuture::from(
            subtle
                .import_key_with_str(
                    "raw",
                    &Uint8Array::from(password.as_bytes()),
                    "PBKDF2",
                    false,
                    &usages(&["deriveKey"]),
                )
                .map_err(failed)?,
        )
        .await
        .map_err(failed)?;
        let params =
            Pbkdf2Params::new_with_str("PBKDF2", "SHA-256", iterations, &Uint8Array::from(salt));
        let target = aes_gcm();
        let _ = js_sys::Reflect::set(&target, &"length".into(), &256.into());
        let key = JsFuture::from(
            subtle
                .derive_key_with_object_and_object(
                    &params,
                    base.unchecked_ref(),
                    &target,
                    false,
                    &usages(&["encrypt", "decrypt"]),
                )
                .map_err(failed)?,
        )
        .await
        .map_err(failed)?;
        Ok(Key(key.unchecked_into()))
    }

    /// Encrypts `plain` with a fresh random IV; returns IV followed by ciphertext and tag.
    pub async fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv: [u8; IV_BYTES] = crate::random_bytes();
        let params = AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&iv[..]));
        params.set_additional_data_u8_array(&Uint8Array::from(aad));
        let sealed = JsFuture::from(
            subtle()?
                .encrypt_with_object_and_u8_array(&params, &self.0, plain)
                .map_err(failed)?,
        )
        .await
        .map_err(failed)?;
        let mut out = iv.to_vec();
        out.extend(Uint8Array::new(&sealed).to_vec());
        Ok(out)
    }

    /// Decrypts what [`Key::seal`] produced with the same associated data.
    pub async fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < IV_BYTES + 16 {
            return Err(CryptoError("a stored record is damaged".into()));
        }
        let (iv, body) = sealed.split_at(IV_BYTES);
        let params = AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(iv));
        params.set_additional_data_u8_array(&Uint8Array::from(aad));
        let plain = JsFuture::from(
            subtle()?
                .decrypt_with_object_and_u8_array(&params, &self.0, body)
                .map_err(failed)?,
        )
        .await
        .map_err(failed)?;
        Ok(Uint8Array::new(&plain).to_vec())
    }
}
