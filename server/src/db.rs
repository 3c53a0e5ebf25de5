//! The database: SQLite (default) or PostgreSQL, chosen by the URL.
//!
//! Queries are written once, in SQL both engines accept (`$1` placeholders work in both), and
//! run on whichever pool is in use through [`on_pool!`](crate::on_pool). Migrations live in
//! `migrations/sqlite` and `migrations/postgres` (only the column types differ).

use anyhow::{Context, bail};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite (one service, one server).
    Sqlite(SqlitePool),
    /// PostgreSQL (larger services, several server instances).
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once
/// per engine, so each query is checked against both drivers' types.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url`, runs the migrations and checks the durability settings.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let db = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::migrate!("../migrations/postgres")
                .run(&pool)
                .await
                .context("migrating PostgreSQL")?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("reading the SQLite URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the server acknowledges a change.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            sqlx::migrate!("../migrations/sqlite")
                .run(&pool)
                .await
                .context("migrating SQLite")?;
            let db = Db::Sqlite(pool);
            db.check_sqlite_durability().await?;
            db
        } else {
            bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        Ok(db)
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn check_sqlite_durability(&self) -> anyhow::Result<()> {
        let Db::Sqlite(pool) = self else {
            return Ok(());
        };
        let mut conn = pool.acquire().await?;
        let (mode,): (String,) = sqlx::query_as("pragma journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let (sync,): (i64,) = sqlx::query_as("pragma synchronous")
            .fetch_one(&mut *conn)
            .await?;
        if mode.to_lowercase() != "wal" || sync != 2 {
            bail!(
                "SQLite must run with journal_mode=WAL and synchronous=FULL (found {mode}, {sync})"
            );
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}
