//! Account administration: create staff, reset a password, disable or enable an account.
//! The same functions serve the command line (`casebook-server admin ...`, for a first
//! deployment and for operators) and the admin screen's API (admins only; managers may list
//! staff). Resetting a password or disabling an account ends every session of that person at
//! once, live sync connections included.

use crate::auth::{end_all_sessions, hash_password};
use crate::db::Db;
use crate::passwords::check_new_password;
use crate::{now_ms, on_pool};
use anyhow::{Context, bail};
use casebook_shared::ids::StaffId;

/// The roles an account can have.
pub use casebook_shared::api::ROLES;

async fn staff_id(db: &Db, username: &str) -> anyhow::Result<StaffId> {
    let row: Option<(String,)> = on_pool!(db, pool =>
        sqlx::query_as("select id from staff where username = $1").bind(username).fetch_optional(pool).await)?;
    let Some((id,)) = row else {
        bail!("no account has the username {username:?}")
    };
    Ok(id.parse()?)
}

/// Creates an account. `team` is required for practitioners and seniors.
pub async fn create_staff(
    db: &Db,
    username: &str,
    name: &str,
    role: &str,
    team: Option<&str>,
    password: &str,
) -> anyhow::Result<StaffId> {
    let username = username.trim().to_lowercase();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    {
        bail!("a username is 1 to 64 letters, digits, dots, dashes or underscores");
    }
    if name.trim().is_empty() {
        bail!("give the person's name");
    }
    if !ROLES.contains(&role) {
        bail!("the role must be one of {}", ROLES.join(", "));
    }
    check_new_password(password, &username).map_err(anyhow::Error::msg)?;
    let team_id = match team {
        Some(team) => {
            let row: Option<(String,)> = on_pool!(db, pool =>
                sqlx::query_as("select id from teams where name = $1").bind(team).fetch_optional(pool).await)?;
            Some(row.context("no team has that name")?.0)
        }
        None if role == "practitioner" || role == "senior" => {
            bail!("practitioners and seniors belong to a team: give --team")
        }
        None => None,
    };
    let hash = hash_password(password)?;
    let id = StaffId(uuid::Uuid::new_v4());
    on_pool!(db, pool => sqlx::query(
        "insert into staff (id, username, name, role, team_id, password_hash, disabled, created_at)
         values ($1, $2, $3, $4, $5, $6, false, $7)")
        .bind(id.to_string()).bind(&username).bind(name.trim()).bind(role).bind(team_id).bind(hash).bind(now_ms())
        .execute(pool).await.map(|_| ()))
    .with_context(|| format!("creating {username:?} (is the username taken?)"))?;
    Ok(id)
}

/// Sets a new password and ends the person's sessions.
pub async fn reset_password(db: &Db, username: &str, password: &str) -> anyhow::Result<()> {
    let id = staff_id(db, username).await?;
    check_new_password(password, username).map_err(anyhow::Error::msg)?;
    let hash = hash_password(password)?;
    on_pool!(db, pool => sqlx::query("update staff set password_hash = $1 where id = $2")
        .bind(hash).bind(id.to_string()).execute(pool).await.map(|_| ()))?;
    end_all_sessions(db, id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Disables (or enables) an account; disabling ends its sessions at once.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> anyhow::Result<()> {
    let id = staff_id(db, username).await?;
    on_pool!(db, pool => sqlx::query("update staff set disabled = $1 where id = $2")
        .bind(disabled).bind(id.to_string()).execute(pool).await.map(|_| ()))?;
    if disabled {
        end_all_sessions(db, id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Routes: `GET /api/staff` (admins, managers), `GET /api/teams`, `POST /api/staff`,
/// `POST /api/staff/{username}/password`, `POST /api/staff/{username}/disabled` (admins).
pub fn router() -> axum::Router<crate::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/staff", get(list_staff).post(create_staff_api))
        .route("/api/teams", get(list_teams))
        .route("/api/staff/{username}/password", post(reset_password_api))
        .route("/api/staff/{username}/disabled", post(set_disabled_api))
}

use crate::auth::AuthUser;
use crate::http_error::{Error, Result as ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use casebook_shared::api::{NewPassword, NewStaff, SetDisabled, StaffRecord};

fn require_admin(user: &AuthUser) -> ApiResult<()> {
    if user.role == "admin" {
        Ok(())
    } else {
        tracing::warn!(staff = %user.id, "account administration refused: not an admin");
        Err(Error::Forbidden)
    }
}

/// A refusal the admin can act on: the outermost message only, never storage details.
fn refusal(e: anyhow::Error) -> Error {
    Error::Invalid(e.to_string())
}

async fn list_staff(
    State(state): State<crate::AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<StaffRecord>>> {
    if user.role != "admin" && user.role != "manager" {
        return Err(Error::Forbidden);
    }
    let rows: Vec<(String, String, String, String, Option<String>, bool)> = on_pool!(&state.db, pool => sqlx::query_as(
        "select s.id, s.username, s.name, s.role, t.name, s.disabled
         from staff s left join teams t on t.id = s.team_id
         order by t.name, s.name")
        .fetch_all(pool).await)?;
    rows.into_iter()
        .map(|(id, username, name, role, team, disabled)| {
            Ok(StaffRecord {
                id: id
                    .parse()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("staff id: {e}")))?,
                username,
                name,
                role,
                team: team.unwrap_or_default(),
                disabled,
            })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

async fn list_teams(
    State(state): State<crate::AppState>,
    _user: AuthUser,
) -> ApiResult<Json<Vec<String>>> {
    let rows: Vec<(String,)> = on_pool!(&state.db, pool =>
        sqlx::query_as("select name from teams order by name").fetch_all(pool).await)?;
    Ok(Json(rows.into_iter().map(|(n,)| n).collect()))
}

async fn create_staff_api(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Json(new): Json<NewStaff>,
) -> ApiResult<Json<StaffId>> {
    require_admin(&user)?;
    let team = new.team.as_deref().filter(|t| !t.is_empty());
    let id = create_staff(
        &state.db,
        &new.username,
        &new.name,
        &new.role,
        team,
        &new.password,
    )
    .await
    .map_err(refusal)?;
    tracing::info!(created = %id, by = %user.id, "account created");
    Ok(Json(id))
}

async fn reset_password_api(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(username): Path<String>,
    Json(new): Json<NewPassword>,
) -> ApiResult<Json<()>> {
    require_admin(&user)?;
    reset_password(&state.db, &username, &new.password)
        .await
        .map_err(refusal)?;
    tracing::info!(by = %user.id, "password reset");
    Ok(Json(()))
}

async fn set_disabled_api(
    State(state): State<crate::AppState>,
    user: AuthUser,
    Path(username): Path<String>,
    Json(change): Json<SetDisabled>,
) -> ApiResult<Json<()>> {
    require_admin(&user)?;
    if change.disabled && username == user.username {
        return Err(Error::Invalid(
            "You cannot disable your own account; ask another admin.".into(),
        ));
    }
    set_disabled(&state.db, &username, change.disabled)
        .await
        .map_err(refusal)?;
    tracing::info!(by = %user.id, disabled = change.disabled, "account access changed");
    Ok(Json(()))
}
