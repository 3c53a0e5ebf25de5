//! The server under test: in-process on port 0, or as a child process that can be killed.

use crate::database::TestDatabase;
use anyhow::{Context, bail};
use casebook_server::db::Db;
use casebook_server::{AppState, Settings, app, demo};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A server running inside the test process, over a fresh database seeded with the demo.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's database (for checking what was stored).
    pub db: Db,
    /// The server's state (for looking at live documents).
    pub state: AppState,
    _database: TestDatabase,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server over a new database with the demo service.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts a server that also serves the built app from `static_dir`.
    pub async fn start_with(static_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::start_with_settings(Settings {
            static_dir,
            ..Settings::default()
        })
        .await
    }

    /// Starts a server with the given settings.
    pub async fn start_with_settings(settings: Settings) -> anyhow::Result<Self> {
        // Server logs appear in a failing test's output (RUST_LOG sets the level).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "casebook_server=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let database = TestDatabase::new().await?;
        let db = Db::connect(&database.url).await?;
        demo::seed_if_empty(&db).await?;
        let state = AppState::new(db.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = app(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(casebook_server::without_nagle(listener), router).await;
        });
        Ok(Self {
            base,
            db,
            state,
            _database: database,
            task,
        })
    }

    /// Signs in as a demo account (panics if that fails: every test needs it to work).
    pub async fn sign_in(&self, username: &str) -> crate::http::Session {
        crate::http::Session::sign_in(&self.base, username)
            .await
            .unwrap_or_else(|e| panic!("signing in as {username}: {e}"))
    }

    /// Signs in as `username` with `password` (panics if refused).
    pub async fn sign_in_with(&self, username: &str, password: &str) -> crate::http::Session {
        crate::http::Session::sign_in_with(&self.base, username, password)
            .await
            .unwrap_or_else(|e| panic!("signing in as {username}: {e}"))
    }

    /// `POST`s `body` as JSON to `path` with `who`'s session.
    pub async fn post<T: serde::Serialize>(
        &self,
        who: &crate::http::Session,
        path: &str,
        body: &T,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("cookie", &who.cookie)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// The URL of the server's database (for running the CLI against it).
    pub fn database_url(&self) -> &str {
        &self._database.url
    }

    /// The sync WebSocket URL.
    pub fn ws_url(&self) -> String {
        ws_url(&self.base)
    }

    /// Number of stored change rows (not yet compacted) for a document.
    pub async fn stored_changes(
        &self,
        doc: casebook_shared::ids::DocumentId,
    ) -> anyhow::Result<i64> {
        let (n,): (i64,) = casebook_server::on_pool!(&self.db, pool =>
            sqlx::query_as("select count(*) from change_ledger where document_id = $1")
                .bind(doc.to_string()).fetch_one(pool).await)?;
        Ok(n)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sync WebSocket URL of a server at `base`.
pub fn ws_url(base: &str) -> String {
    format!("{}/api/sync", base.replacen("http", "ws", 1))
}

/// The real server binary as a child process.
pub struct ServerProcess {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Time from starting the process to it listening.
    pub started_in: std::time::Duration,
    child: tokio::process::Child,
}

impl ServerProcess {
    /// Starts the server binary at `binary` (a test passes
    /// `env!("CARGO_BIN_EXE_casebook-server-under-test")`) on `database_url` (seeding the demo
    /// when empty), on `listen` (use port 0 for any free port).
    pub async fn start(binary: &str, database_url: &str, listen: &str) -> anyhow::Result<Self> {
        Self::start_with_args(binary, database_url, &["--listen", listen]).await
    }

    /// Starts the server binary with `serve --demo` and these further arguments.
    pub async fn start_with_args(
        binary: &str,
        database_url: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let started = std::time::Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .args(["serve", "--demo"])
            .args(args)
            .env("DATABASE_URL", database_url)
            // CASEBOOK_SERVER_LOG=debug shows the server's log (on this process's stderr).
            .env(
                "RUST_LOG",
                std::env::var("CASEBOOK_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server binary")?;
        let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
        let base = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("Casebook is listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("waiting for the server to listen")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        let started_in = started.elapsed();
        let echo = std::env::var("CASEBOOK_SERVER_LOG").is_ok();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[server] {line}");
                }
            }
        });
        Ok(Self {
            base,
            started_in,
            child,
        })
    }

    /// The process id (for reading its CPU time and memory from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Signs in as a demo account.
    pub async fn sign_in(&self, username: &str) -> crate::http::Session {
        crate::http::Session::sign_in(&self.base, username)
            .await
            .unwrap_or_else(|e| panic!("signing in as {username}: {e}"))
    }

    /// Kills the process with SIGKILL (no chance to flush or shut down) and waits for it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
