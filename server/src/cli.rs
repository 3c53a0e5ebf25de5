//! The command line: `casebook-server serve` (the default).

use crate::{AppState, Settings, app, db, demo};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Casebook server.
#[derive(Parser, Debug)]
#[command(name = "casebook-server", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for serving.
    #[command(flatten)]
    pub serve: ServeOptions,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage staff accounts. Passwords are read from the first line of standard input.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `casebook-server audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of the whole log; report the first broken link (exit 1).
    Verify,
}

/// `casebook-server admin ...`
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a staff account (password from standard input).
    CreateStaff {
        /// Sign-in name (letters, digits, dots, dashes, underscores).
        #[arg(long)]
        username: String,
        /// The person's name as colleagues see it.
        #[arg(long)]
        name: String,
        /// practitioner, senior, manager or admin.
        #[arg(long)]
        role: String,
        /// Team name (required for practitioners and seniors).
        #[arg(long)]
        team: Option<String>,
    },
    /// Set a new password (from standard input) and end the person's sessions.
    ResetPassword {
        /// The account.
        #[arg(long)]
        username: String,
    },
    /// Disable an account: its sessions and live connections end at once.
    Disable {
        /// The account.
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The account.
        #[arg(long)]
        username: String,
    },
}

fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

async fn admin(options: ServeOptions, command: AdminCommand) -> anyhow::Result<()> {
    let db = db::Db::connect(&options.database_url).await?;
    match command {
        AdminCommand::CreateStaff {
            username,
            name,
            role,
            team,
        } => {
            let password = password_from_stdin()?;
            crate::admin::create_staff(&db, &username, &name, &role, team.as_deref(), &password)
                .await?;
            println!("Created {username}.");
        }
        AdminCommand::ResetPassword { username } => {
            let password = password_from_stdin()?;
            crate::admin::reset_password(&db, &username, &password).await?;
            println!("Password changed for {username}; their sessions have ended.");
        }
        AdminCommand::Disable { username } => {
            crate::admin::set_disabled(&db, &username, true).await?;
            println!("Disabled {username}; their sessions have ended.");
        }
        AdminCommand::Enable { username } => {
            crate::admin::set_disabled(&db, &username, false).await?;
            println!("Enabled {username}.");
        }
    }
    db.close().await;
    Ok(())
}

/// Options for `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeOptions {
    /// Database: `sqlite://path/to/file.db` (created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/casebook.db"
    )]
    pub database_url: String,
    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(
        long,
        global = true,
        env = "CASEBOOK_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Folder with the built app to serve at `/`.
    #[arg(long, global = true, env = "CASEBOOK_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Create the synthetic demo service when the database has no staff yet.
    #[arg(long, global = true, env = "CASEBOOK_DEMO")]
    pub demo: bool,
    /// Served over TLS (behind a TLS proxy): the session cookie becomes
    /// `__Host-casebook_session` with `Secure`, and responses carry HSTS.
    #[arg(long, global = true, env = "CASEBOOK_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Other origins allowed to use the API and sync socket, comma-separated (the server's
    /// own origin is always allowed).
    #[arg(
        long,
        global = true,
        env = "CASEBOOK_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
}

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "casebook_server=info,tower_http=warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(cli.serve)),
        Command::Admin(command) => runtime.block_on(admin(cli.serve, command)),
        Command::Audit(AuditCommand::Verify) => runtime.block_on(async {
            let db = db::Db::connect(&cli.serve.database_url).await?;
            let verdict = crate::audit::verify(&db).await?;
            db.close().await;
            match verdict {
                crate::audit::Verdict::Intact { records } => {
                    println!("The audit log is intact: {records} records, every link checked.");
                    Ok(())
                }
                crate::audit::Verdict::Broken { seq, problem } => {
                    println!("The audit log is BROKEN at record {seq}: {problem}.");
                    std::process::exit(1)
                }
            }
        }),
    }
}

/// Connects, migrates, seeds the demo if asked, and serves until Ctrl-C.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let db = db::Db::connect(&options.database_url).await?;
    if options.demo {
        if demo::seed_if_empty(&db)
            .await
            .context("creating the demo service")?
            .is_some()
        {
            println!("Created the demo service.");
        }
        println!("{}", demo::sign_ins());
    }
    let settings = Settings {
        static_dir: options.static_dir,
        secure_cookies: options.secure_cookies,
        allowed_origins: options.allowed_origins,
    };
    let state = AppState::new(db, settings);
    state.documents.spawn_idle_sweeper();
    state.documents.spawn_change_listener();
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    println!("Casebook is listening on http://{address}");
    tracing::info!(%address, engine = state.db.engine(), "serving");
    axum::serve(crate::without_nagle(listener), app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")
}
