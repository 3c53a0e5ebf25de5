//! # casebook-server
//!
//! The authoritative store and sync hub of Casebook: an axum HTTP API, one WebSocket per
//! device for Automerge sync, and storage through sqlx on SQLite (the default, one file under
//! `./data/`) or PostgreSQL (when `DATABASE_URL` is a `postgres://` URL).
//!
//! # Layout
//! - [`cli`]: the command line (`casebook-server serve`), configuration from flags and
//!   environment variables.
//! - [`db`]: connecting, migrating and checking the database; the one place that knows there
//!   are two engines.
//! - [`passwords`]: rules for new passwords (length, common passwords).
//! - [`http_error`]: the API's error type; internal details are logged, never sent.
//! - [`auth`]: passwords (argon2id), sessions, the `AuthUser` extractor, sign-in and out.
//! - [`admin`]: account administration (`casebook-server admin ...` and the admin screen's API).
//! - [`access`]: who may open which case (allocation, cover, team seniors, manager, duty).
//! - [`access_changes`]: when live connections must re-derive their access (triggers on the
//!   tables access comes from report changes: a counter on SQLite, notifications on
//!   PostgreSQL).
//! - [`absence`]: absences, and cover for a whole caseload in one action.
//! - [`team`]: the duty senior rota, and a senior's view of their team's workload and cases.
//! - [`allocation`]: reallocation, cover and duty access (checked by role and team).
//! - [`audit`]: the s.62 audit log: hash-chained, append-only, verifiable, searchable.
//! - [`cases`]: the signed-in user's case list, and the verified authors of a case's records.
//! - [`disclosure`]: the person's copy (a disclosure) and combined chronologies (a
//!   combination), both logged.
//! - [`hro`]: the HRO process: sweeps and returns, senior decisions, the register, plan
//!   sign-off, review completion and scheduling, tasks raised by high risk scores.
//! - [`projections`]: what the lists need from record documents, kept up to date as they
//!   change (completeness, summaries, tasks raised by high risk scores).
//! - [`erasure`]: erasing a chronology entry for good: rebuild, refuse the old lineage, purge.
//! - [`documents`]: document storage (changes, ledger, snapshots) and the live rooms that
//!   merge and fan out changes, loaded on demand and dropped when idle.
//! - [`change_writer`]: group commit: the changes waiting to be stored go into one transaction.
//! - [`sync_lanes`]: one connection's sync messages, one lane per document.
//! - [`sync_socket`]: the WebSocket endpoint speaking `casebook_shared::protocol`.
//! - [`demo`]: the synthetic demo service created by `cargo xtask run`.
//! - [`devices`]: devices and the Automerge actor ids registered to them.
//! - [`web`]: static files of the app and security headers.
//!
//! [`app`] builds the whole router from a [`AppState`], so tests can serve it on port 0;
//! [`without_nagle`] wraps the listener it is served on.

pub mod absence;
pub mod access;
pub mod access_changes;
pub mod admin;
pub mod allocation;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod change_writer;
pub mod cli;
pub mod db;
pub mod demo;
pub mod devices;
pub mod disclosure;
pub mod documents;
pub mod erasure;
pub mod hro;
pub mod http_error;
pub mod passwords;
pub mod projections;
pub mod sync_lanes;
pub mod sync_socket;
pub mod team;
pub mod web;

use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;

/// Settings the running server needs after start-up.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Folder holding the built app (`index.html`, wasm, service worker); none serves the API only.
    pub static_dir: Option<PathBuf>,
    /// Served over TLS: `__Host-` + `Secure` session cookie, and HSTS.
    pub secure_cookies: bool,
    /// Origins, besides the server's own, allowed to open the sync socket and make
    /// state-changing API calls (for example `https://casebook.example.org` behind a proxy).
    pub allowed_origins: Vec<String>,
}

/// Everything a request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: db::Db,
    /// Live documents.
    pub documents: Arc<documents::DocumentHub>,
    /// The access-change counter, for live connections.
    pub access_changes: Arc<access_changes::AccessChanges>,
    /// Start-up settings.
    pub settings: Arc<Settings>,
}

impl AppState {
    /// State over a connected, migrated database.
    pub fn new(db: db::Db, settings: Settings) -> Self {
        let documents = Arc::new(documents::DocumentHub::new(db.clone()));
        Self {
            access_changes: Arc::new(access_changes::AccessChanges::new(db.clone())),
            db,
            documents,
            settings: Arc::new(settings),
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(admin::router())
        .merge(absence::router())
        .merge(team::router())
        .merge(cases::router())
        .merge(allocation::router())
        .merge(audit::router())
        .merge(devices::router())
        .merge(disclosure::router())
        .merge(erasure::router())
        .merge(hro::router())
        .merge(sync_socket::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::same_origin,
        ))
        .layer(web::no_store());
    web::with_static_files(api, &state.settings).with_state(state)
}

/// `listener` with Nagle's algorithm turned off on every connection it accepts. Sync frames
/// are small and the other side waits for each one: with Nagle on, a frame written while the
/// previous one is unacknowledged waits in the kernel for that acknowledgement, which the
/// peer may delay by tens of milliseconds. Browsers turn it off on their side of a WebSocket;
/// serve [`app`] on this so the server's side matches.
pub fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not turn off Nagle's algorithm on a connection");
        }
    })
}

/// Milliseconds since the Unix epoch, now (moved on by [`clock::advance`] in builds with the
/// `test-clock` feature, which only the test suite enables).
pub fn now_ms() -> i64 {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    #[cfg(feature = "test-clock")]
    let real = real + clock::offset();
    real
}

/// A controllable clock for tests of things that happen over time (cover starting and
/// ending): every server in the process sees the same moved-on time.
#[cfg(feature = "test-clock")]
pub mod clock {
    use std::sync::atomic::{AtomicI64, Ordering};

    static OFFSET: AtomicI64 = AtomicI64::new(0);

    /// Moves the clock on by `ms`.
    pub fn advance(ms: i64) {
        OFFSET.fetch_add(ms, Ordering::SeqCst);
    }

    /// How far the clock has been moved on.
    pub fn offset() -> i64 {
        OFFSET.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    #[tokio::test]
    async fn connections_are_accepted_with_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = super::without_nagle(listener);
        let client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap(), "the server's side");
        drop(client);
    }
}
