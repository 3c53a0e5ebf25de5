//! Installing what the build and tests need, when it is missing.

use crate::run_command;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes sure the wasm32 target is installed (through rustup).
pub fn wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !installed {
        println!("Installing the wasm32-unknown-unknown target...");
        run_command(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
            .context("rustup could not add wasm32-unknown-unknown; install it with `rustup target add wasm32-unknown-unknown`")?;
    }
    Ok(())
}

/// Makes sure the standard library's source (rustup's `rust-src`) is installed, so the
/// release bundle can rebuild the standard library for size. Returns `false` (with a
/// warning) when it cannot be had; the bundle is then larger but works.
pub fn rust_src() -> bool {
    let present = || {
        Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .is_some_and(|sysroot| {
                sysroot
                    .join("lib/rustlib/src/rust/library/Cargo.lock")
                    .exists()
            })
    };
    if present() {
        return true;
    }
    println!("Installing the standard library's source (rustup component rust-src)...");
    let _ = run_command(Command::new("rustup").args(["component", "add", "rust-src"]));
    if present() {
        return true;
    }
    eprintln!(
        "warning: no rust-src (rustup component add rust-src failed?); the app bundle is built with the prebuilt standard library and will be larger."
    );
    false
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure Chromium and chromedriver are installed (apt-get as root; otherwise says what
/// to install).
pub fn chromium() -> anyhow::Result<()> {
    if on_path("chromium") && on_path("chromedriver") {
        return Ok(());
    }
    if !is_root() || !on_path("apt-get") {
        bail!(
            "browser tests need Chromium and chromedriver: install the Debian packages `chromium` and `chromium-driver` (sudo apt-get install chromium chromium-driver)"
        );
    }
    println!("Installing chromium and chromium-driver with apt-get...");
    run_command(Command::new("apt-get").arg("update").arg("-qq"))?;
    run_command(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The wasm-opt to use, installing binaryen from npm when missing. Returns `None` (with a
/// warning) when none can be had; the bundle is then larger but works.
pub fn wasm_opt(root: &Path) -> anyhow::Result<Option<PathBuf>> {
    let local = root.join("node_modules/.bin/wasm-opt");
    if !local.exists() && on_path("npm") {
        println!("Installing wasm-opt (binaryen from npm)...");
        let _ = run_command(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent"])
                .current_dir(root),
        );
    }
    if local.exists() {
        return Ok(Some(local));
    }
    eprintln!(
        "warning: no wasm-opt found (npm missing?); the app bundle will be larger. Never use Debian's binaryen (wasm-opt 108): it corrupts the bundle."
    );
    Ok(None)
}
