//! Devices and their Automerge actor ids.
//!
//! A device id belongs to the first user who connects with it; each actor id a device declares
//! in `Hello` is registered to that device and user for good. The sync endpoint then accepts a
//! change only from an actor registered to the sending device and user: edits are
//! attributable, and nobody can write under someone else's name.

use crate::db::Db;
use crate::{now_ms, on_pool};
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
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("insert into devices (id, staff_id, first_seen_at, last_seen_at) values ($1, $2, $3, $3)
                     on conflict (id) do update set last_seen_at = excluded.last_seen_at
                     where devices.staff_id = excluded.staff_id")
            .bind(&device_text).bind(&staff).bind(now)
            .execute(&mut *tx).await?;
        let (owner,): (String,) = sqlx::query_as("select staff_id from devices where id = $1")
            .bind(&device_text).fetch_one(&mut *tx).await?;
        if owner != staff {
            return Err(RegistrationError::ForeignDevice);
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
