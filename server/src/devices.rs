//! Devices and their Automerge actor ids.
//!
//! A device id belongs to the first user who connects with it; each actor id a device declares
//! in `Hello` is registered to that device and user for good. The sync endpoint then accepts a
//! change only from an actor registered to the sending device and user: edits are
//! attributable, and nobody can write under someone else's name.
//!
//! A device can be revoked (reported lost) by its owner, a manager or an admin: it is refused
//! at once, and told to wipe itself (`Wipe`) on its live connection and whenever it connects
//! again. Each person can list their devices and sessions and end any session.
//!
//! Each device's records are encrypted on the device with a data key that is kept there only
//! wrapped; `POST /api/devices/{id}/key` releases the wrapping key to the owner's live session
//! while the device is not revoked. Reporting a device lost erases that key for good.

use crate::auth::AuthUser;
use crate::db::Db;
use crate::http_error::{Error, Result as ApiResult};
use crate::{now_ms, on_pool};
use axum::Json;
use axum::extract::{Path, State};
use casebook_shared::ids::{DeviceId, StaffId};
use std::collections::HashSet;

/// Most actor ids one `Hello` may declare.
pub const MAX_ACTORS_PER_HELLO: usize = casebook_shared::protocol::MAX_DECLARED_ACTORS;
/// Longest actor id accepted, in bytes.
pub const MAX_ACTOR_BYTES: usize = 64;

/// Why a device's registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The device id is registered to another user.
    #[error("this device is registered to another user")]
    ForeignDevice,
    /// An actor id is registered to another device or user.
    #[error("an actor id is registered to another device or user")]
    ForeignActor,
    /// The device was revoked (reported lost): it must wipe itself.
    #[error("this device has been revoked")]
    Revoked,
    /// Too many or malformed actor ids.
    #[error("the actor ids are not acceptable")]
    BadActors,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Registers `device` and its `actors` to `staff`; returns the actor set to accept changes
/// from on this connection.
pub async fn register(
    db: &Db,
    staff: StaffId,
    device: DeviceId,
    actors: &[Vec<u8>],
) -> Result<HashSet<Vec<u8>>, RegistrationError> {
    if actors.len() > MAX_ACTORS_PER_HELLO
        || actors
            .iter()
            .any(|a| a.is_empty() || a.len() > MAX_ACTOR_BYTES)
    {
        return Err(RegistrationError::BadActors);
    }
    let (staff, device_text, now) = (staff.to_string(), device.to_string(), now_ms());
    // A device reconnecting as it was (its user, its actors, used within the last minute)
    // is checked with reads alone: no transaction, so no disk flush before `Welcome`.
    if let Some(accepted) = registered_as_declared(db, &staff, &device_text, actors, now).await? {
        return Ok(accepted);
    }
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into devices (id, staff_id, first_seen_at, last_seen_at) values ($1, $2, $3, $3)
                     on conflict (id) do update set last_seen_at = excluded.last_seen_at
                     where devices.staff_id = excluded.staff_id")
            .bind(&device_text).bind(&staff).bind(now)
            .execute(&mut *tx).await?;
        let (owner, revoked): (String, Option<i64>) = sqlx::query_as("select staff_id, revoked_at from devices where id = $1")
            .bind(&device_text).fetch_one(&mut *tx).await?;
        if owner != staff {
            return Err(RegistrationError::ForeignDevice);
        }
        if revoked.is_some() {
            return Err(RegistrationError::Revoked);
        }
        for actor in actors {
            sqlx::query("insert into device_actors (actor, device_id, staff_id, registered_at) values ($1, $2, $3, $4)
                         on conflict (actor) do nothing")
                .bind(actor).bind(&device_text).bind(&staff).bind(now)
                .execute(&mut *tx).await?;
            let (owner_device, owner_staff): (String, String) =
                sqlx::query_as("select device_id, staff_id from device_actors where actor = $1")
                    .bind(actor).fetch_one(&mut *tx).await?;
            if owner_device != device_text || owner_staff != staff {
                return Err(RegistrationError::ForeignActor);
            }
        }
        tx.commit().await?;
        Ok(actors.iter().cloned().collect())
    })
}

/// Checks a reconnecting device with reads alone. Returns the actor set if `device` is
/// already registered to `staff` with every one of `actors` and was last seen within
/// [`crate::auth::TOUCH_EVERY_MS`]; an error for the refusals that do not depend on the
/// declared actors (another user's device, a revoked one); `None` when [`register`] has
/// something to write, or an actor to refuse.
async fn registered_as_declared(
    db: &Db,
    staff: &str,
    device: &str,
    actors: &[Vec<u8>],
    now: i64,
) -> Result<Option<HashSet<Vec<u8>>>, RegistrationError> {
    let row: Option<(String, Option<i64>, i64)> = on_pool!(db, pool =>
        sqlx::query_as("select staff_id, revoked_at, last_seen_at from devices where id = $1")
            .bind(device).fetch_optional(pool).await)?;
    let Some((owner, revoked, seen)) = row else {
        return Ok(None);
    };
    if owner != staff {
        return Err(RegistrationError::ForeignDevice);
    }
    if revoked.is_some() {
        return Err(RegistrationError::Revoked);
    }
    if now - seen > crate::auth::TOUCH_EVERY_MS {
        return Ok(None);
    }
    let held: Vec<(Vec<u8>, String)> = on_pool!(db, pool =>
        sqlx::query_as("select actor, staff_id from device_actors where device_id = $1")
            .bind(device).fetch_all(pool).await)?;
    let held: HashSet<&[u8]> = held
        .iter()
        .filter(|(_, s)| s == staff)
        .map(|(a, _)| a.as_slice())
        .collect();
    if actors.iter().all(|a| held.contains(a.as_slice())) {
        Ok(Some(actors.iter().cloned().collect()))
    } else {
        Ok(None)
    }
}

/// Whether `device` has been revoked.
pub async fn is_revoked(db: &Db, device: DeviceId) -> Result<bool, sqlx::Error> {
    let row: Option<(Option<i64>,)> = on_pool!(db, pool =>
        sqlx::query_as("select revoked_at from devices where id = $1").bind(device.to_string()).fetch_optional(pool).await)?;
    Ok(row.is_some_and(|r| r.0.is_some()))
}

pub use casebook_shared::api::{DeviceInfo, SessionInfo};

/// Routes: `GET /api/devices`, `GET /api/staff/{username}/devices` (managers, admins),
/// `POST /api/devices/{id}/key`, `POST /api/devices/{id}/lost`, `GET /api/sessions`,
/// `DELETE /api/sessions/{id}`.
pub fn router() -> axum::Router<crate::AppState> {
    use axum::routing::{delete, get, post};
    axum::Router::new()
        .route("/api/devices", get(list_devices))
        .route("/api/devices/{id}/key", post(release_key))
        .route("/api/staff/{username}/devices", get(staff_devices))
        .route("/api/devices/{id}/lost", post(report_lost))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{id}", delete(end_session))
}

async fn list_devices(
    State(state): State<crate::AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    devices_of(&state.db, &user.id.to_string()).await.map(Json)
}

/// A manager or admin looks at someone's devices (to report one lost for them).
async fn staff_devices(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(username): Path<String>,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    if user.role != "manager" && user.role != "admin" {
        return Err(Error::Forbidden);
    }
    let row: Option<(String,)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select id from staff where username = $1").bind(&username).fetch_optional(pool).await)?;
    let (id,) = row.ok_or_else(|| Error::Invalid("no account has that username".into()))?;
    devices_of(&state.db, &id).await.map(Json)
}

async fn devices_of(db: &Db, staff: &str) -> ApiResult<Vec<DeviceInfo>> {
    let rows: Vec<(String, i64, i64, Option<i64>)> = on_pool!(db, pool => sqlx::query_as(
        "select id, first_seen_at, last_seen_at, revoked_at from devices where staff_id = $1 order by last_seen_at desc")
        .bind(staff).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, first_seen_at, last_seen_at, revoked_at)| DeviceInfo {
            id,
            first_seen_at,
            last_seen_at,
            revoked_at,
        })
        .collect())
}

/// Releases the device's wrapping key to its owner (registering the device to the signed-in
/// user on first use, and making the key then). Refused for another user's device, and with
/// `410 Gone` for a revoked one, which must wipe itself.
async fn release_key(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<casebook_shared::api::DeviceKey>> {
    let device: DeviceId = id
        .parse()
        .map_err(|_| Error::Invalid("that is not a device id".into()))?;
    let (staff, device_text, now) = (user.id.to_string(), device.to_string(), now_ms());
    let fresh = rand::random::<[u8; 32]>().to_vec();
    let (owner, revoked, key): (String, Option<i64>, Option<Vec<u8>>) = on_pool!(&state.db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into devices (id, staff_id, first_seen_at, last_seen_at) values ($1, $2, $3, $3)
                     on conflict (id) do nothing")
            .bind(&device_text).bind(&staff).bind(now)
            .execute(&mut *tx).await?;
        sqlx::query("update devices set wrap_key = $1 where id = $2 and staff_id = $3 and revoked_at is null and wrap_key is null")
            .bind(&fresh).bind(&device_text).bind(&staff)
            .execute(&mut *tx).await?;
        let row = sqlx::query_as("select staff_id, revoked_at, wrap_key from devices where id = $1")
            .bind(&device_text).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?;
    if owner != staff {
        return Err(Error::Forbidden);
    }
    match (revoked, key) {
        (None, Some(key)) => Ok(Json(casebook_shared::api::DeviceKey { key })),
        _ => Err(Error::DeviceRevoked),
    }
}

/// Revokes a device: its owner, a manager or an admin may. Its live connections are told to
/// wipe within a second, and it is refused (and told to wipe) whenever it connects again.
async fn report_lost(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<()>> {
    let device: DeviceId = id
        .parse()
        .map_err(|_| Error::Invalid("that is not a device id".into()))?;
    let row: Option<(String,)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select staff_id from devices where id = $1").bind(device.to_string()).fetch_optional(pool).await)?;
    let Some((owner,)) = row else {
        return Err(Error::Forbidden);
    };
    if owner != user.id.to_string() && user.role != "manager" && user.role != "admin" {
        return Err(Error::Forbidden);
    }
    on_pool!(&state.db, pool => sqlx::query(
        "update devices set revoked_at = $1, revoked_by = $2, wrap_key = null where id = $3 and revoked_at is null")
        .bind(now_ms()).bind(user.id.to_string()).bind(device.to_string())
        .execute(pool).await.map(|_| ()))?;
    tracing::warn!(%device, by = %user.id, "device revoked");
    Ok(Json(()))
}

async fn list_sessions(
    State(state): State<crate::AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let rows: Vec<(String, i64, i64)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select token_hash, created_at, last_seen_at from sessions where staff_id = $1 order by created_at desc")
        .bind(user.id.to_string()).fetch_all(pool).await)?;
    Ok(Json(
        rows.into_iter()
            .map(|(hash, created_at, last_seen_at)| SessionInfo {
                id: hash[..16].to_owned(),
                created_at,
                last_seen_at,
                current: hash == user.session,
            })
            .collect(),
    ))
}

async fn end_session(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<()>> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid("that is not a session id".into()));
    }
    let rows: Vec<(String,)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select token_hash from sessions where staff_id = $1").bind(user.id.to_string()).fetch_all(pool).await)?;
    for (hash,) in rows.into_iter().filter(|(h,)| h.starts_with(&id)) {
        on_pool!(&state.db, pool => sqlx::query("delete from sessions where token_hash = $1 and staff_id = $2")
            .bind(&hash).bind(user.id.to_string()).execute(pool).await.map(|_| ()))?;
    }
    Ok(Json(()))
}
