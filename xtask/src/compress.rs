//! The release app compressed once, at build time, for the server to send as it is.
//!
//! Next to each file a browser fetches, `dist/` gets `<file>.gz` (gzip made with zopfli,
//! which every browser reads and which is a few percent smaller than `gzip -9`) and
//! `<file>.br` (brotli at its highest quality, smaller still). The server picks the one the
//! browser's `Accept-Encoding` allows (`server/src/web.rs`); a browser that takes neither
//! gets the file itself. Compressing at build time lets the slow, thorough encoders run once
//! instead of on every request.

use anyhow::Context;
use std::io::Write;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// The files a browser fetches; the rest of `dist/` (none today) is left as it is.
const SENT: &[&str] = &["wasm", "js", "html", "css", "webmanifest"];

/// Writes the `.gz` and `.br` of every file in `dist` a browser fetches, and returns them.
pub fn for_serving(dist: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dist).context("reading dist/")? {
        let path = entry?.path();
        let sent = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SENT.contains(&e));
        if sent {
            sources.push(path);
        }
    }
    let mut written = Vec::new();
    for source in sources {
        let bytes = std::fs::read(&source)?;
        // The two encoders take a few seconds each on the bundle: one thread each.
        let (gz, br) = std::thread::scope(|s| {
            let gz = s.spawn(|| gzip(&bytes));
            let br = brotli(&bytes);
            (gz.join().expect("the gzip thread does not panic"), br)
        });
        for (suffix, compressed) in [("gz", gz?), ("br", br?)] {
            let mut name = source.clone().into_os_string();
            name.push(".");
            name.push(suffix);
            let path = PathBuf::from(name);
            std::fs::write(&path, compressed)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// gzip, made with zopfli: the format every browser reads, a few percent smaller than the
/// best `gzip -9` does. Five iterations: fifteen (zopfli's default) saved about 2 KB on the
/// bundle for twice the time.
fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let options = zopfli::Options {
        iteration_count: NonZeroU64::new(5).expect("five is not zero"),
        ..zopfli::Options::default()
    };
    let mut out = Vec::new();
    zopfli::compress(options, zopfli::Format::Gzip, bytes, &mut out).context("zopfli")?;
    Ok(out)
}

/// brotli at quality 11 with a 4 MiB window (brotli's default; every browser that reads
/// brotli takes it).
fn brotli(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
        writer.write_all(bytes).context("brotli")?;
        writer.flush().context("brotli")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_file_a_browser_fetches_gets_a_gzip_and_a_brotli_that_give_it_back() {
        let dist = std::env::temp_dir().join(format!("casebook-compress-{}", std::process::id()));
        std::fs::create_dir_all(&dist).unwrap();
        let page = "<!doctype html><title>Casebook</title>".repeat(50);
        let module: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::write(dist.join("index.html"), &page).unwrap();
        std::fs::write(dist.join("casebook_app_bg.wasm"), &module).unwrap();
        std::fs::write(dist.join("notes.txt"), "not sent").unwrap();

        let written = for_serving(&dist).unwrap();
        assert_eq!(written.len(), 4, "two files, two encodings each");
        for (name, original) in [
            ("index.html", page.as_bytes()),
            ("casebook_app_bg.wasm", &module[..]),
        ] {
            let gz = std::fs::read(dist.join(format!("{name}.gz"))).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, original, "{name}.gz");
            assert!(gz.len() < original.len(), "{name}.gz is smaller");

            let br = std::fs::read(dist.join(format!("{name}.br"))).unwrap();
            let mut back = Vec::new();
            brotli::Decompressor::new(&br[..], 4096)
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, original, "{name}.br");
            assert!(br.len() < original.len(), "{name}.br is smaller");
        }
        assert!(!dist.join("notes.txt.gz").exists());
        std::fs::remove_dir_all(&dist).unwrap();
    }
}
