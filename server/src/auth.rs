//! Passwords, sessions and the signed-in user.
//!
//! - Passwords are hashed with argon2id (m = 19456 KiB, t = 2, p = 1).
//! - A session token is 32 bytes from the operating system's CSPRNG, sent once in an
//!   `HttpOnly`, `SameSite=Strict` cookie; the database keeps only its SHA-256.
//! - Sessions end after [`IDLE_TIMEOUT_MS`] without use or [`ABSOLUTE_TIMEOUT_MS`] after
//!   sign-in, whichever comes first, and at sign-out.

use crate::http_error::{Error, Result};
use crate::{AppState, now_ms, on_pool};
use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use casebook_shared::api::{Me, SignIn};
use casebook_shared::ids::StaffId;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Name of the session cookie over plain HTTP (development and tests on localhost).
pub const SESSION_COOKIE: &str = "casebook_session";
/// Name of the session cookie when served over TLS: the `__Host-` prefix makes the browser
/// refuse it unless it is `Secure`, has `Path=/` and no `Domain` (ASVS 3.3).
pub const SECURE_SESSION_COOKIE: &str = "__Host-casebook_session";

/// The session cookie's name under these settings.
pub fn session_cookie(settings: &crate::Settings) -> &'static str {
    if settings.secure_cookies {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}
/// A session unused for this long ends (30 minutes).
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A session ends this long after sign-in whatever happens (12 hours).
pub const ABSOLUTE_TIMEOUT_MS: i64 = 12 * 60 * 60 * 1000;
/// How often a session's last use is written back (saves a write per request).
pub(crate) const TOUCH_EVERY_MS: i64 = 60 * 1000;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password for storage (argon2id PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the username is unknown, so a wrong username takes as long
/// as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").expect("hashing works"))
}

/// What the `sessions` table keeps of a session token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in user behind a request. Rejects with 401 when there is no live session.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// Staff id.
    pub id: StaffId,
    /// Username.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Team name.
    pub team: String,
    /// Team id (none for service-wide roles).
    pub team_id: Option<String>,
    /// SHA-256 of the session token (to re-check the session on long-lived connections).
    pub session: String,
}

impl AuthUser {
    /// The API view of this user.
    pub fn me(&self) -> Me {
        Me {
            id: self.id,
            username: self.username.clone(),
            name: self.name.clone(),
            role: self.role.clone(),
            team: self.team.clone(),
        }
    }
}

type SessionRow = (
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
);

/// Looks up the live session for a cookie token, refreshing its last use.
pub async fn session_user(state: &AppState, token: &str) -> Result<Option<AuthUser>> {
    session_by_hash(state, token_hash(token)).await
}

/// Looks up a live session by the hash of its token. Ends (deletes) a session that has timed
/// out or whose account is disabled.
pub async fn session_by_hash(state: &AppState, hash: String) -> Result<Option<AuthUser>> {
    let row: Option<SessionRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select s.staff_id, s.created_at, s.last_seen_at, st.username, st.name, st.role,
                coalesce(t.name, ''), st.team_id, st.disabled
         from sessions s join staff st on st.id = s.staff_id
         left join teams t on t.id = st.team_id
         where s.token_hash = $1")
        .bind(&hash)
        .fetch_optional(pool)
        .await)?;
    let Some((staff, created, seen, username, name, role, team, team_id, disabled)) = row else {
        return Ok(None);
    };
    let now = now_ms();
    if disabled || now - seen > IDLE_TIMEOUT_MS || now - created > ABSOLUTE_TIMEOUT_MS {
        on_pool!(&state.db, pool => sqlx::query("delete from sessions where token_hash = $1")
            .bind(&hash).execute(pool).await.map(|_| ()))?;
        return Ok(None);
    }
    if now - seen > TOUCH_EVERY_MS {
        on_pool!(&state.db, pool => sqlx::query("update sessions set last_seen_at = $1 where token_hash = $2")
            .bind(now).bind(&hash).execute(pool).await.map(|_| ()))?;
    }
    let id = staff
        .parse()
        .context("stored staff id")
        .map_err(Error::Internal)?;
    Ok(Some(AuthUser {
        id,
        username,
        name,
        role,
        team,
        team_id,
        session: hash,
    }))
}

/// When the session with token hash `hash` times out if it is not used before then (the
/// earlier of its idle and absolute time-outs); `None` when it has already ended.
pub async fn session_times_out_at(db: &crate::db::Db, hash: &str) -> Result<Option<i64>> {
    let row: Option<(i64, i64)> = on_pool!(db, pool => sqlx::query_as(
        "select created_at, last_seen_at from sessions where token_hash = $1")
        .bind(hash).fetch_optional(pool).await)?;
    Ok(row.map(|(created, seen)| {
        // The first moment `session_by_hash` refuses it.
        (seen + IDLE_TIMEOUT_MS).min(created + ABSOLUTE_TIMEOUT_MS) + 1
    }))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(session_cookie(&state.settings))
            .map(|c| c.value().to_owned())
            .ok_or(Error::Unauthorised)?;
        session_user(state, &token)
            .await?
            .ok_or(Error::Unauthorised)
    }
}

/// Routes: `POST /api/session` (sign in), `DELETE /api/session` (sign out),
/// `DELETE /api/sessions` (sign out everywhere), `GET /api/me`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/session", post(sign_in).delete(sign_out))
        .route("/api/sessions", axum::routing::delete(sign_out_everywhere))
        .route("/api/me", get(me))
}

async fn me(user: AuthUser) -> Json<Me> {
    Json(user.me())
}

type StaffRow = (String, String, bool);

async fn sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    Json(form): Json<SignIn>,
) -> Result<(CookieJar, Json<Me>)> {
    let username = form.username.trim().to_lowercase();
    if username.is_empty() || form.password.is_empty() || form.password.len() > 1024 {
        return Err(Error::Invalid("enter your username and password".into()));
    }
    if let Some(wait) = throttled_for(&state.db, &username, now_ms()).await? {
        record_attempt(&state.db, &username, None, "throttled").await?;
        tracing::info!(outcome = "throttled", "sign-in attempt");
        return Err(Error::TooManyAttempts((wait + 999) / 1000));
    }
    let row: Option<StaffRow> = on_pool!(&state.db, pool => sqlx::query_as(
        "select id, password_hash, disabled from staff where username = $1")
        .bind(&username)
        .fetch_optional(pool)
        .await)?;
    let stored = row
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |r| r.1.clone());
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .context("verifying a password")?;
    let staff_id = match row {
        Some((id, _, false)) if matches => id,
        other => {
            record_attempt(&state.db, &username, other.map(|r| r.0), "failure").await?;
            tracing::info!(outcome = "failure", "sign-in attempt");
            return Err(Error::SignInFailed);
        }
    };
    record_attempt(&state.db, &username, Some(staff_id.clone()), "success").await?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = now_ms();
    on_pool!(&state.db, pool => sqlx::query(
        "insert into sessions (token_hash, staff_id, created_at, last_seen_at) values ($1, $2, $3, $3)")
        .bind(token_hash(&token)).bind(&staff_id).bind(now)
        .execute(pool).await.map(|_| ()))?;
    tracing::info!(outcome = "success", staff = %staff_id, "sign-in attempt");
    let user = session_user(&state, &token)
        .await?
        .ok_or(Error::Unauthorised)?;
    let cookie = Cookie::build((session_cookie(&state.settings), token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies)
        .build();
    Ok((jar.add(cookie), Json(user.me())))
}

/// Failures counted towards throttling are those of this window.
const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures allowed in the window before sign-in is throttled.
const FREE_FAILURES: i64 = 5;

/// How long (ms) `username` must wait before another attempt, if throttled: after
/// [`FREE_FAILURES`] failures in [`THROTTLE_WINDOW_MS`] since the last success, 30 s,
/// doubling with each further failure, at most 15 minutes.
async fn throttled_for(db: &crate::db::Db, username: &str, now: i64) -> Result<Option<i64>> {
    let since: (Option<i64>,) = on_pool!(db, pool => sqlx::query_as(
        "select max(at) from sign_in_attempts where username = $1 and outcome = 'success'")
        .bind(username).fetch_one(pool).await)?;
    let from = since.0.unwrap_or(0).max(now - THROTTLE_WINDOW_MS);
    let (failures, last): (i64, Option<i64>) = on_pool!(db, pool => sqlx::query_as(
        "select count(*), max(at) from sign_in_attempts where username = $1 and outcome = 'failure' and at > $2")
        .bind(username).bind(from).fetch_one(pool).await)?;
    if failures < FREE_FAILURES {
        return Ok(None);
    }
    let delay = (30_000i64 << (failures - FREE_FAILURES).min(5)).min(THROTTLE_WINDOW_MS);
    let wait = last.unwrap_or(now) + delay - now;
    Ok((wait > 0).then_some(wait))
}

/// Logs one sign-in attempt (never the password).
async fn record_attempt(
    db: &crate::db::Db,
    username: &str,
    staff: Option<String>,
    outcome: &str,
) -> Result<()> {
    // Usernames typed by strangers are kept short in the log.
    let username: String = username.chars().take(100).collect();
    on_pool!(db, pool => sqlx::query(
        "insert into sign_in_attempts (id, username, staff_id, outcome, at) values ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::new_v4().to_string()).bind(&username).bind(staff).bind(outcome).bind(now_ms())
        .execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Ends every session of `staff` (sign out everywhere, password reset, account disabled).
/// Live sync connections notice within a second.
pub async fn end_all_sessions(db: &crate::db::Db, staff: StaffId) -> Result<()> {
    on_pool!(db, pool => sqlx::query("delete from sessions where staff_id = $1")
        .bind(staff.to_string()).execute(pool).await.map(|_| ()))?;
    Ok(())
}

async fn sign_out_everywhere(
    State(state): State<AppState>,
    user: AuthUser,
    jar: CookieJar,
) -> Result<CookieJar> {
    end_all_sessions(&state.db, user.id).await?;
    Ok(jar.remove(Cookie::build(session_cookie(&state.settings)).path("/")))
}

async fn sign_out(State(state): State<AppState>, jar: CookieJar) -> Result<CookieJar> {
    if let Some(cookie) = jar.get(session_cookie(&state.settings)) {
        on_pool!(&state.db, pool => sqlx::query("delete from sessions where token_hash = $1")
            .bind(token_hash(cookie.value())).execute(pool).await.map(|_| ()))?;
    }
    Ok(jar.remove(Cookie::build(session_cookie(&state.settings)).path("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_with_argon2id_at_the_required_cost() {
        let stored = hash_password("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert!(params.m_cost() >= 19_456 && params.t_cost() >= 2 && params.p_cost() >= 1);
        assert!(
            !stored.contains("correct horse"),
            "the hash never contains the password"
        );
    }

    #[test]
    fn only_the_right_password_verifies() {
        let stored = hash_password("correct horse battery").unwrap();
        assert!(verify_password(&stored, "correct horse battery"));
        assert!(!verify_password(&stored, "correct horse batterY"));
        assert!(!verify_password("not a hash", "anything"));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash_password("same password").unwrap(),
            hash_password("same password").unwrap()
        );
    }

    #[test]
    fn a_stored_session_key_is_a_hash_not_the_token() {
        let token = hex::encode([7u8; 32]);
        let stored = token_hash(&token);
        assert_eq!(stored.len(), 64);
        assert_ne!(stored, token);
    }
}
