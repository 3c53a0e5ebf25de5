//! Building the app: wasm32 compile, splitting off the pages not used on a visit (`split`),
//! wasm-bindgen, wasm-opt, static files into `dist/`,
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
    // `cargo rustc` passes `--emit-relocs` to the app's own link only (the splitter needs the
    // relocations), so the dependencies stay built as they are.
    let app = |size: bool| {
        let mut command = Command::new(cargo());
        command.args([
            "rustc",
            "-p",
            "casebook-app",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            cargo_profile,
        ]);
        if size {
            size_options(&mut command);
        }
        command.args(["--", "-Clink-arg=--emit-relocs"]);
        command
    };
    if profile == Profile::Release && setup::rust_src() {
        if let Err(e) = run_command(&mut app(true)) {
            // The options are unstable: a compiler that has changed them still gets an app.
            eprintln!(
                "warning: the size-optimised build failed ({e:#}); building with the prebuilt standard library, and the app bundle will be larger."
            );
            run_command(&mut app(false))?;
        }
    } else {
        run_command(&mut app(false))?;
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
    let split = crate::split::run(&wasm, &dist)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&split.main)
        .out_name("casebook_app")
        .web(true)?
        .typescript(false)
        // The split modules link to the main module's own exports (memory, table, functions).
        .keep_lld_exports(true)
        .generate(&dist)
        .context("running wasm-bindgen")?;
    let bundle = dist.join("casebook_app_bg.wasm");
    if profile == Profile::Release
        && let Some(wasm_opt) = setup::wasm_opt(root)?
    {
        let pieces = split.pieces.iter().map(|p| dist.join(p));
        for module in std::iter::once(bundle.clone()).chain(pieces) {
            run_command(
                Command::new(&wasm_opt)
                    .arg("-Oz")
                    .arg("--enable-bulk-memory")
                    .arg("--enable-nontrapping-float-to-int")
                    .arg(&module)
                    .arg("-o")
                    .arg(&module),
            )?;
        }
    }
    // The service worker's cache name and the split modules' names carry a fingerprint of
    // the bundle and the split modules, so a new build replaces the cached app shell.
    let bytes = std::fs::read(&bundle)?;
    let mut hash = fnv1a(FNV_OFFSET, &bytes);
    for piece in &split.pieces {
        hash = fnv1a(hash, &std::fs::read(dist.join(piece))?);
    }
    let fingerprint = format!("{hash:016x}");
    let pieces = crate::split::fingerprint(&dist, &split.pieces, &fingerprint)?;
    // The service worker stores the split modules with the rest of the app, so the pages in
    // them open with no network.
    let precached: Vec<String> = std::iter::once(format!("'/{}'", crate::split::LOADER))
        .chain(pieces.iter().map(|p| format!("'/{p}'")))
        .collect();
    for entry in std::fs::read_dir(root.join("app/static"))? {
        let entry = entry?;
        let text = std::fs::read_to_string(entry.path())?;
        anyhow::ensure!(
            entry.file_name() != "sw.js" || text.contains("'__SPLIT__'"),
            "app/static/sw.js must list '__SPLIT__' in SHELL, for the pages split off to open offline"
        );
        std::fs::write(
            dist.join(entry.file_name()),
            text.replace("__BUILD__", &fingerprint)
                .replace("'__SPLIT__'", &precached.join(", ")),
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
        let served = |file: &str, suffix: &str| {
            std::fs::metadata(dist.join(format!("{file}.{suffix}"))).map(|m| m.len() / 1024)
        };
        println!(
            "App bundle as sent: {} KB gzip, {} KB brotli",
            served("casebook_app_bg.wasm", "gz")?,
            served("casebook_app_bg.wasm", "br")?
        );
        for piece in &pieces {
            println!(
                "  split off, fetched when first opened: {piece}, {} KB gzip, {} KB brotli",
                served(piece, "gz")?,
                served(piece, "br")?
            );
        }
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

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash` (`FNV_OFFSET` to start).
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
