//! A fresh database per test.

use anyhow::Context;
use sqlx::Connection;

/// Which engine tests run on: `CASEBOOK_TEST_ENGINE=postgres` or `sqlite` (default).
pub fn engine() -> &'static str {
    match std::env::var("CASEBOOK_TEST_ENGINE").as_deref() {
        Ok("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CASEBOOK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
pub struct TestDatabase {
    /// URL to connect to it.
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

/// A temporary folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates a new empty folder under the system temp folder.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp folder");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestDatabase {
    /// A new empty database on the configured engine.
    pub async fn new() -> anyhow::Result<Self> {
        Self::on(engine()).await
    }

    /// A new empty database on `engine` (`postgres` or `sqlite`).
    pub async fn on(engine: &str) -> anyhow::Result<Self> {
        if engine == "postgres" {
            let name = format!("casebook_test_{}", uuid::Uuid::new_v4().simple());
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .context("connecting to PostgreSQL for tests")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            Ok(Self {
                url: format!("{base}/{name}"),
                postgres_name: Some(name),
                _dir: None,
            })
        } else {
            let dir = TempDir::new("casebook-test");
            let url = format!("sqlite://{}", dir.0.join("casebook.db").display());
            Ok(Self {
                url,
                postgres_name: None,
                _dir: Some(dir),
            })
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside async code: use a small runtime on a plain thread.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists {name} with (force)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                    conn.close().await.ok()
                })
            })
            .join();
        }
    }
}
