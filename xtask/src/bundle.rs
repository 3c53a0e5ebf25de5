//! Building the app: wasm32 compile, wasm-bindgen, wasm-opt, static files into `dist/`,
//! and (release) each of them compressed for the server to send (`compress`).

use crate::{cargo, run_command, setup};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which build of the app.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Small and fast (`wasm-release` profile, the standard library rebuilt for size, then
    /// wasm-opt -Oz).
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
    let plain = || {
        let mut command = Command::new(cargo());
        command.args([
            "build",
            "-p",
            "casebook-app",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            cargo_profile,
        ]);
        command
    };
    if profile == Profile::Release && setup::rust_src() {
        let mut command = plain();
        size_options(&mut command);
        if let Err(e) = run_command(&mut command) {
            // The options are unstable: a compiler that has changed them still gets an app.
            eprintln!(
                "warning: the size-optimised build failed ({e:#}); building with the prebuilt standard library, and the app bundle will be larger."
            );
            run_command(&mut plain())?;
        }
    } else {
        run_command(&mut plain())?;
    }
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
    if profile == Profile::Release {
        // Written last, so each one holds the file as it is finally served.
        crate::compress::for_serving(&dist)?;
        let served = |suffix: &str| {
            std::fs::metadata(dist.join(format!("casebook_app_bg.wasm.{suffix}")))
                .map(|m| m.len() / 1024)
        };
        println!(
            "App bundle as sent: {} KB gzip, {} KB brotli",
            served("gz")?,
            served("br")?
        );
    }
    Ok(dist)
}

/// Rebuilds the standard library with the app, for size: the standard library's
/// size-optimised code paths (`optimize_for_size`, e.g. its sorts), panics that stop the
/// module at once instead of formatting a message (`-Cpanic=immediate-abort`; the
/// formatting code and the messages stay out of the bundle), no source locations in what
/// is left, and `Debug` formatting that writes nothing (`-Zfmt-debug=none`: derived `Debug`
/// code stays out; the app shows and keys nothing by `{:?}`, and the shared crate's
/// messages quote names with `escape_debug`, which is `Display`). These are unstable
/// options of the stable compiler (1.95 here), enabled for this one build with
/// `RUSTC_BOOTSTRAP=1` (as the Linux kernel builds its Rust code); when
/// a compiler refuses them, the app is built without them. A panic in the release bundle
/// then shows in the browser's console as `unreachable` with no message: reproduce it with
/// `cargo xtask build-app --dev`, whose panics carry message and location.
fn size_options(command: &mut Command) {
    command
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "-Zbuild-std=std,panic_abort",
            "-Zbuild-std-features=optimize_for_size",
            "--config",
        ])
        // Joined to the target's rustflags in .cargo/config.toml, not replacing them.
        .arg(
            r#"target.wasm32-unknown-unknown.rustflags=["-Zunstable-options", "-Cpanic=immediate-abort", "-Zlocation-detail=none", "-Zfmt-debug=none"]"#,
        );
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
