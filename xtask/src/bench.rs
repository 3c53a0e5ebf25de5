//! `cargo xtask bench`: builds the server and the bench driver (release), builds the app
//! bundle, and runs every scenario (`tests/src/bench/`), writing `bench/results.json` and
//! `docs/performance.md`. Arguments after `bench` go to the driver (`--runs 1`,
//! `--engine sqlite`, `--only live,overload`, `--smoke`).

use crate::{bundle, cargo, run_command, setup};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds what the bench needs and runs it.
pub fn run(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    // The server is built on its own so that no test-only feature is compiled into it.
    println!("Building the server and the bench driver (release)...");
    run_command(Command::new(cargo()).args([
        "build",
        "--release",
        "-p",
        "casebook-server",
        "--bin",
        "casebook-server",
    ]))?;
    run_command(Command::new(cargo()).args([
        "build",
        "--release",
        "-p",
        "casebook-tests",
        "--bin",
        "casebook-bench",
    ]))?;
    let target = target_dir(root).join("release");
    let mut command = Command::new(target.join("casebook-bench"));
    command
        .arg("--server")
        .arg(target.join("casebook-server"))
        .args(["--json", "bench/results.json"])
        .args(["--markdown", "docs/performance.md"])
        .args(["--method", "bench/method.md"])
        .arg("--root")
        .arg(root);
    let smoke = extra.iter().any(|a| a == "--smoke");
    // The app scenario (bundle size, offline open, cover pickup in Chromium) needs the
    // bundle built.
    let only = extra
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| extra.get(i + 1));
    let in_browser = only.is_none_or(|list| list.split(',').any(|s| s.trim() == "app"));
    if !smoke && in_browser {
        setup::wasm_target()?;
        setup::chromium()?;
        let dist = bundle::build(root, bundle::Profile::Release)?;
        command.arg("--dist").arg(dist);
    }
    run_command(command.args(extra))
}

/// Where cargo puts its output.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
}
