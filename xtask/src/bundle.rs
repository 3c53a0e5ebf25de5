//! Building the app: wasm32 compile, wasm-bindgen, wasm-opt, static files into `dist/`.

use crate::{cargo, run_command, setup};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which build of the app.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Small and fast (`wasm-release` profile, then wasm-opt -Oz).
    Release,
    /// Quick to build, for local iteration.
    Dev,
}

/// Builds the app into `dist/` and returns that folder.
pub fn build(root: &Path, profile: Profile) -> anyhow::Result<PathBuf> {
    let (cargo_profile, folder) = match profile {
        Profile::Release => ("wasm-release", "wasm-release"),
        Profile::Dev => ("dev", "debug"),
    };
    println!("Building the app (wasm32, {cargo_profile})...");
    run_command(Command::new(cargo()).args([
        "build",
        "-p",
        "casebook-app",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        cargo_profile,
    ]))?;
    let wasm = crate::bench::target_dir(root)
        .join("wasm32-unknown-unknown")
        .join(folder)
        .join("casebook_app.wasm");
    let dist = root.join("dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).context("clearing dist/")?;
    }
    std::fs::create_dir_all(&dist)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .typescript(false)
        .generate(&dist)
        .context("running wasm-bindgen")?;
    let bundle = dist.join("casebook_app_bg.wasm");
    if profile == Profile::Release
        && let Some(wasm_opt) = setup::wasm_opt(root)?
    {
        run_command(
            Command::new(wasm_opt)
                .arg("-Oz")
                .arg("--enable-bulk-memory")
                .arg("--enable-nontrapping-float-to-int")
                .arg(&bundle)
                .arg("-o")
                .arg(&bundle),
        )?;
    }
    // The service worker's cache name carries a fingerprint of the bundle, so a new build
    // replaces the cached app shell.
    let bytes = std::fs::read(&bundle)?;
    let fingerprint = format!("{:016x}", fnv1a(&bytes));
    for entry in std::fs::read_dir(root.join("app/static"))? {
        let entry = entry?;
        let text = std::fs::read_to_string(entry.path())?;
        std::fs::write(
            dist.join(entry.file_name()),
            text.replace("__BUILD__", &fingerprint),
        )?;
    }
    println!(
        "App bundle: {} KB raw, in {}",
        bytes.len() / 1024,
        dist.display()
    );
    Ok(dist)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
