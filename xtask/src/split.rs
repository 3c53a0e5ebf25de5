//! Splitting the app module: the pages few people open (`app/src/pages/later.rs`, marked
//! `#[wasm_split]`) go into modules of their own that the browser fetches when one of them
//! first opens, so the first download leaves them out.
//!
//! `wasm_split_cli_support` (the splitter cargo-leptos uses for Leptos' `#[lazy]`) reads the
//! module as the linker wrote it, with its relocations (`--emit-relocs`), and writes the main
//! module (for wasm-bindgen), the split modules and `__wasm_split.js`, the loader the main
//! module imports. The split modules' names carry the build's fingerprint, so a page still
//! running an older build never fetches a newer build's piece: it fails to load instead,
//! and the app says so (`pages::later`).

use anyhow::Context;
use std::path::{Path, PathBuf};

/// The loader's file name in `dist/`, as the main module imports it.
pub const LOADER: &str = "__wasm_split.js";

/// The split build: where its main module is, and the split modules' file names in `dist`.
pub struct Split {
    pub main: PathBuf,
    pub pieces: Vec<String>,
}

/// Splits `wasm` (linked with `--emit-relocs`): the main module goes next to it, the split
/// modules and the loader into `dist`.
pub fn run(wasm: &Path, dist: &Path) -> anyhow::Result<Split> {
    let input = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let main = wasm.with_file_name("casebook_app.split.wasm");
    let link_name = format!("./{LOADER}");
    let mut options = wasm_split_cli_support::Options::new(&input);
    options.output_dir = dist;
    options.main_out_path = &main;
    options.link_name = &link_name;
    options.main_module = "./casebook_app.js";
    let split = wasm_split_cli_support::transform(options)
        .map_err(|e| anyhow::anyhow!("splitting the app module: {e:#}"))?;
    let mut pieces = Vec::new();
    for path in &split.split_modules {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("a split module's file name")?;
        pieces.push(name.to_owned());
    }
    pieces.sort();
    Ok(Split { main, pieces })
}

/// Gives each split module a name carrying `fingerprint`, in `dist` and in the loader that
/// fetches it; returns the new names.
pub fn fingerprint(
    dist: &Path,
    pieces: &[String],
    fingerprint: &str,
) -> anyhow::Result<Vec<String>> {
    let loader_path = dist.join(LOADER);
    let mut loader = std::fs::read_to_string(&loader_path).context("reading the split loader")?;
    let mut named = Vec::new();
    for piece in pieces {
        let stem = piece
            .strip_suffix(".wasm")
            .context("a split module ends .wasm")?;
        let new = format!("{stem}-{fingerprint}.wasm");
        let quoted = format!("\"./{piece}\"");
        anyhow::ensure!(
            loader.contains(&quoted),
            "the split loader does not fetch {piece} as expected"
        );
        loader = loader.replace(&quoted, &format!("\"./{new}\""));
        std::fs::rename(dist.join(piece), dist.join(&new))?;
        named.push(new);
    }
    std::fs::write(&loader_path, loader)?;
    Ok(named)
}
