//! `cargo xtask`: the project's own build and test driver.
//!
//! - `cargo xtask run`: build the app, start the server with the demo service on
//!   http://127.0.0.1:8080 (SQLite under `./data/`).
//! - `cargo xtask test`: every test suite; installs what it needs when missing.
//! - `cargo xtask build-app [--dev]`: only build the wasm bundle into `dist/`.
//! - `cargo xtask bench [ARGS]`: the benchmarks; writes `bench/results.json` and
//!   `docs/performance.md` (not part of `test`, which runs a smoke version).
//!
//! # Layout
//! - `main.rs`: commands.
//! - `setup.rs`: installing missing tools (wasm32 target, Chromium, chromedriver, wasm-opt).
//! - `bundle.rs`: building the wasm app bundle.
//! - `split.rs`: the pages not used on a visit split off into a module of their own.
//! - `compress.rs`: the release app's files compressed (gzip, brotli) for the server to send.
//! - `suites.rs`: the test suites and their summary.
//! - `bench.rs`: building and running the benchmark driver.

mod bench;
mod bundle;
mod compress;
mod setup;
mod split;
mod suites;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).context("entering the workspace")?;
    match args.first().map(String::as_str) {
        Some("run") => run(&root, &args[1..]),
        Some("test") => suites::test_all(&root),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("build-app") => {
            setup::wasm_target()?;
            let profile = if args.iter().any(|a| a == "--dev") {
                bundle::Profile::Dev
            } else {
                bundle::Profile::Release
            };
            bundle::build(&root, profile).map(|_| ())
        }
        _ => {
            eprintln!("usage: cargo xtask <run | test | bench [ARGS] | build-app [--dev]>");
            bail!("unknown command")
        }
    }
}

/// The workspace root: the nearest folder, from where `cargo xtask` was run upwards, that
/// holds `xtask/` and a `Cargo.toml`. Found at run time, not from the path this binary was
/// compiled at: two clones sharing one `CARGO_TARGET_DIR` share this binary too.
fn workspace_root() -> PathBuf {
    let start = std::env::current_dir().expect("a current folder");
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("xtask").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

fn run(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    setup::wasm_target()?;
    setup::wasm_opt(root)?;
    let dist = bundle::build(root, bundle::Profile::Release)?;
    // Built with its progress shown: the first release build takes a few minutes.
    println!("Building the server (release)...");
    run_command(Command::new(cargo()).args(["build", "--release", "-p", "casebook-server"]))?;
    println!("Starting Casebook (first start creates the demo service)...");
    let status = Command::new(cargo())
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "casebook-server",
            "--",
            "serve",
            "--demo",
            "--static-dir",
        ])
        .arg(&dist)
        .args(extra)
        .status()
        .context("starting the server")?;
    if !status.success() {
        bail!("the server stopped with {status}");
    }
    Ok(())
}

/// The cargo that runs this xtask.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a command, failing with its name if it fails.
fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
