//! Unlocking the records on the device: the data key, and the two ways it is kept wrapped.
//!
//! - Online, the server releases the device key to the owner's live session
//!   ([`with_device_key`]): no password needed, refused for good once the device is reported
//!   lost.
//! - Offline, the person types their password ([`with_password`]) within
//!   [`OFFLINE_GRACE_MS`] of their last sign-in made online.
//!
//! A sign-in made online ([`after_sign_in`]) makes the data key on first use, and renews the
//! password-wrapped copy and its expiry.

use crate::http::{self, ApiFailure};
use crate::local_store::LocalStore;
use crate::now_ms;
use crate::random_bytes;
use crate::vault::{Key, OFFLINE_GRACE_MS, PBKDF2_ITERATIONS};
use casebook_shared::api::DeviceKey;
use casebook_shared::ids::{DeviceId, StaffId};
use serde::{Deserialize, Serialize};

/// The plain-store key holding [`WrappedKeys`].
pub const KEYS: &str = "keys";

/// The data key as kept on the device: never in the clear.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WrappedKeys {
    /// Whose records these are.
    pub owner: StaffId,
    /// The data key sealed with the server-released device key.
    pub by_device_key: Vec<u8>,
    /// The data key sealed with a key derived from the owner's password (removed at sign-out
    /// when unsynced work is kept).
    pub by_password: Option<PasswordWrap>,
}

/// The password-wrapped copy of the data key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordWrap {
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// After this (device time, ms) the copy is not used.
    pub expires_at: f64,
    /// The sealed data key (the expiry is part of its associated data).
    pub sealed: Vec<u8>,
}

/// Why the records could not be unlocked.
#[derive(Debug, Clone, PartialEq)]
pub enum UnlockFailure {
    /// No network (or no server): unlock with the password instead.
    Offline,
    /// The session has ended: sign in again.
    SignedOut,
    /// The device was reported lost or revoked: wipe.
    Revoked,
    /// The device belongs to another person on the server.
    Foreign,
    /// Nothing to unlock on this device.
    NothingStored,
    /// Wrong password, expired offline period, or damaged data; the text says which.
    Refused(String),
}

/// Words for a message to the worker (the release bundle has no `Debug` text).
impl std::fmt::Display for UnlockFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Offline => "the server could not be reached",
            Self::SignedOut => "the session has ended",
            Self::Revoked => "this device was reported lost",
            Self::Foreign => "this device is registered to someone else",
            Self::NothingStored => "nothing is stored on this device",
            Self::Refused(why) => why,
        })
    }
}

fn device_aad(device: DeviceId) -> Vec<u8> {
    format!("casebook/device-key/{device}").into_bytes()
}

fn password_aad(owner: StaffId, expires_at: f64) -> Vec<u8> {
    format!("casebook/password/{owner}/{expires_at}").into_bytes()
}

async fn device_key(device: DeviceId) -> Result<Key, UnlockFailure> {
    let released: DeviceKey = http::post(&format!("/api/devices/{device}/key"), &())
        .await
        .map_err(|e| match e {
            ApiFailure::Offline => UnlockFailure::Offline,
            ApiFailure::SignedOut => UnlockFailure::SignedOut,
            ApiFailure::Revoked => UnlockFailure::Revoked,
            ApiFailure::Refused(_) => UnlockFailure::Foreign,
        })?;
    Key::import(&released.key)
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))
}

/// The wrapped keys on this device, if any.
pub async fn stored(store: &LocalStore) -> Option<WrappedKeys> {
    store.get_plain(KEYS).await
}

/// Unlocks with the key the server releases to this device.
pub async fn with_device_key(store: &LocalStore, device: DeviceId) -> Result<(), UnlockFailure> {
    let keys = stored(store).await.ok_or(UnlockFailure::NothingStored)?;
    let wrapping = device_key(device).await?;
    let raw = wrapping
        .open(&keys.by_device_key, &device_aad(device))
        .await
        .map_err(|_| UnlockFailure::Refused("the key for this device does not match".into()))?;
    store.unlock(import(&raw).await?);
    Ok(())
}

/// Unlocks with the person's password, within the offline period.
pub async fn with_password(store: &LocalStore, password: &str) -> Result<(), UnlockFailure> {
    let keys = stored(store).await.ok_or(UnlockFailure::NothingStored)?;
    let Some(wrap) = keys.by_password else {
        return Err(UnlockFailure::Refused(
            "These records can only be opened with a network connection.".into(),
        ));
    };
    if now_ms() > wrap.expires_at {
        return Err(UnlockFailure::Refused(
            "It is more than 72 hours since you last signed in with a network connection, so the records on this device can only be opened online.".into(),
        ));
    }
    let derived = Key::from_password(password, &wrap.salt, wrap.iterations)
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))?;
    let raw = derived
        .open(&wrap.sealed, &password_aad(keys.owner, wrap.expires_at))
        .await
        .map_err(|_| UnlockFailure::Refused("That password is not right.".into()))?;
    store.unlock(import(&raw).await?);
    Ok(())
}

async fn import(raw: &[u8]) -> Result<Key, UnlockFailure> {
    Key::import(raw)
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))
}

/// After signing in online: unlocks the owner's records (making the data key the first time)
/// and renews the password-wrapped copy for the next [`OFFLINE_GRACE_MS`].
pub async fn after_sign_in(
    store: &LocalStore,
    device: DeviceId,
    owner: StaffId,
    password: &str,
) -> Result<(), UnlockFailure> {
    let wrapping = device_key(device).await?;
    let existing = stored(store).await.filter(|k| k.owner == owner);
    let raw: Vec<u8> = match &existing {
        Some(keys) => wrapping
            .open(&keys.by_device_key, &device_aad(device))
            .await
            .map_err(|_| UnlockFailure::Refused("the key for this device does not match".into()))?,
        None => random_bytes::<32>().to_vec(),
    };
    let by_device_key = match existing {
        Some(keys) => keys.by_device_key,
        None => wrapping
            .seal(&raw, &device_aad(device))
            .await
            .map_err(|e| UnlockFailure::Refused(e.0))?,
    };
    let salt = random_bytes::<16>().to_vec();
    let expires_at = now_ms() + OFFLINE_GRACE_MS;
    let derived = Key::from_password(password, &salt, PBKDF2_ITERATIONS)
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))?;
    let sealed = derived
        .seal(&raw, &password_aad(owner, expires_at))
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))?;
    let keys = WrappedKeys {
        owner,
        by_device_key,
        by_password: Some(PasswordWrap {
            salt,
            iterations: PBKDF2_ITERATIONS,
            expires_at,
            sealed,
        }),
    };
    store
        .set_plain(KEYS, &keys)
        .await
        .map_err(|e| UnlockFailure::Refused(e.0))?;
    store.unlock(import(&raw).await?);
    Ok(())
}

/// Removes the password-wrapped copy: only the server's key can open the records now.
pub async fn forget_password_copy(store: &LocalStore) {
    if let Some(mut keys) = stored(store).await {
        keys.by_password = None;
        let _ = store.set_plain(KEYS, &keys).await;
    }
}
