//! The app: the wasm bundle's size, the time from opening the app with no network to the
//! case list shown, and cover pickup in the real app (headless Chromium, IndexedDB).

use super::Settings;
use super::cover;
use super::fixture::Fixture;
use super::report::{Report, Run, Target};
use crate::browser::{
    ChromeDriver, NetworkSwitch, all_ready_within, service_worker_ready, sign_in, type_into,
};
use crate::database::TestDatabase;
use crate::server::ServerProcess;
use anyhow::Context;
use fantoccini::{Client, Locator};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

fn gzipped(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

/// Bundle sizes of the built app in `dist`: the gzip and the brotli the server sends (written
/// by the release build), and `gzip -9` of the module for comparison with earlier figures.
/// The bundle is the module the app starts with; the pages not used on a visit are split off
/// into modules of their own (`split_*.wasm`), fetched when first opened and stored by the
/// service worker with the rest, reported beside it and in the total.
pub fn bundle(dist: &Path, report: &mut Report) -> anyhow::Result<()> {
    let wasm = std::fs::read(dist.join("casebook_app_bg.wasm")).context("reading the bundle")?;
    let js = std::fs::read(dist.join("casebook_app.js")).context("reading the JS glue")?;
    let size = |file: &str| -> anyhow::Result<f64> {
        let path = dist.join(file);
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("reading {} (a release build writes it)", path.display()))?;
        Ok(meta.len() as f64 / 1024.0)
    };
    let sent = |suffix: &str| size(&format!("casebook_app_bg.wasm.{suffix}"));
    let mut pieces = Vec::new();
    for entry in std::fs::read_dir(dist).context("reading dist/")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("split_") && name.ends_with(".wasm") {
            pieces.push(name);
        }
    }
    let mut split_gz = 0.0;
    let mut split_br = 0.0;
    for piece in &pieces {
        split_gz += size(&format!("{piece}.gz"))?;
        split_br += size(&format!("{piece}.br"))?;
    }
    let mut run = Run::default();
    run.add(
        "wasm bundle, gzipped as sent (zopfli)",
        "KB",
        sent("gz")?,
        Some(Target::AtMost(700.0)),
    );
    run.add("wasm bundle, brotli as sent", "KB", sent("br")?, None);
    run.add(
        "wasm bundle, gzip -9",
        "KB",
        gzipped(&wasm)? as f64 / 1024.0,
        None,
    );
    run.add("wasm bundle, raw", "KB", wasm.len() as f64 / 1024.0, None);
    run.add(
        "pages split off the bundle, gzipped as sent",
        "KB",
        split_gz,
        None,
    );
    run.add(
        "pages split off the bundle, brotli as sent",
        "KB",
        split_br,
        None,
    );
    run.add(
        "bundle and split-off pages, gzipped as sent",
        "KB",
        sent("gz")? + split_gz,
        None,
    );
    run.add(
        "JS glue, gzipped",
        "KB",
        gzipped(&js)? as f64 / 1024.0,
        None,
    );
    report.gather("app", "casebook", "-", run);
    Ok(())
}

/// The time at which the page marked `name` (ms from navigation), once it has.
async fn mark(browser: &Client, name: &str, timeout: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = browser
            .execute(
                "const m = performance.getEntriesByName(arguments[0], 'mark'); \
                 return m.length ? m[0].startTime : null;",
                vec![serde_json::json!(name)],
            )
            .await?;
        if let Some(at) = value.as_f64() {
            return Ok(at);
        }
        if Instant::now() > deadline {
            anyhow::bail!("the page never marked {name}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On a page just loaded with no network: (navigation to the password prompt, submitting
/// the password to the case list shown), in ms. The person's typing is not counted.
async fn unlock_offline(tablet: &Client) -> anyhow::Result<(f64, f64)> {
    let prompt = mark(tablet, "casebook:unlock", Duration::from_secs(20)).await?;
    type_into(tablet, "unlock-password", crate::http::PASSWORD).await;
    let clicked = tablet
        .execute(
            "const t = performance.now(); document.getElementById('unlock').click(); return t;",
            vec![],
        )
        .await?
        .as_f64()
        .context("click time")?;
    let listed = mark(tablet, "casebook:case-list", Duration::from_secs(60)).await?;
    tablet.find(Locator::Id("case-list")).await?;
    Ok((prompt, listed - clicked))
}

/// Offline open, and cover pickup in the browser.
pub async fn browser(settings: &Settings, dist: &Path, report: &mut Report) -> anyhow::Result<()> {
    let database = TestDatabase::on("sqlite").await?;
    let mut fixture = Fixture::open(&database.url).await?;
    let staff = fixture.staff("bench.cover", 2).await?;
    let cases = settings.size(50, 2);
    cover::caseload(
        &mut fixture,
        cases,
        settings.size(500, 20),
        settings.size(20, 2),
        staff[0],
        staff[1],
    )
    .await?;
    fixture.db.close().await;
    let dist = dist.to_string_lossy();
    let server = ServerProcess::start_with_args(
        &settings.server.to_string_lossy(),
        &database.url,
        &["--listen", "127.0.0.1:0", "--static-dir", &dist],
    )
    .await?;
    let target = server.base.trim_start_matches("http://").parse()?;
    let network = NetworkSwitch::start(target).await?;
    let mut driver = ChromeDriver::start().await?;
    let result = async {
        // Cover pickup: a fresh browser profile signs in as the covering worker.
        for _ in 0..settings.runs {
            let tablet = driver.browser().await?;
            let started = Instant::now();
            sign_in(&tablet, &network.url(), "bench.cover.2").await;
            all_ready_within(&tablet, "the caseload", Duration::from_secs(300)).await?;
            let total = started.elapsed().as_secs_f64() * 1000.0;
            // Where the time went, from the moments the page marked (ms from navigation).
            let at = |name: &'static str| mark(&tablet, name, Duration::from_secs(5));
            let signed_in = at("casebook:signed-in").await?;
            let welcome = at("casebook:sync-welcome").await?;
            let listed = at("casebook:case-list").await?;
            let ready = at("casebook:all-ready").await?;
            let mut run = Run::default();
            run.add(
                "cover pickup: all stored locally (Chromium, IndexedDB; server on SQLite)",
                "ms",
                total,
                None,
            );
            run.add(
                "  of which: opening the app and signing in (the bench types the password)",
                "ms",
                signed_in,
                None,
            );
            run.add(
                "  of which: signed in to the sync socket's welcome",
                "ms",
                welcome - signed_in,
                None,
            );
            run.add(
                "  of which: welcome to every case ready offline",
                "ms",
                ready - welcome,
                None,
            );
            run.add(
                "  case list (with the progress) shown, after signing in",
                "ms",
                listed - signed_in,
                None,
            );
            // Then the worker opens a case: the device loads that case's records, which it
            // kept unloaded since they arrived (time from the tap to its chronology and
            // records on screen).
            let opened = tablet
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     const link = document.querySelector('a[data-case]');
                     const started = performance.now();
                     link.click();
                     (function shown() {
                       const entries = document.querySelectorAll('#chronology li').length;
                       const records = document.querySelectorAll('#records li').length;
                       if (entries > 0 && records > 0) done(performance.now() - started);
                       else setTimeout(shown, 5);
                     })();",
                    vec![],
                )
                .await?
                .as_f64()
                .context("the case page never showed its chronology and records")?;
            run.add(
                "  then a case opened: its chronology and records shown",
                "ms",
                opened,
                None,
            );
            // The same tablet opened again with no network (the cover worker in the
            // car park): the whole caseload is on the device.
            service_worker_ready(&tablet).await?;
            network.set_online(false);
            let reopened = async {
                tablet.goto(&format!("{}/", network.url())).await?;
                unlock_offline(&tablet).await
            }
            .await;
            network.set_online(true);
            let (prompt, unlocked) = reopened?;
            run.add(
                "  then the app opened offline with that caseload, to the case list",
                "ms",
                prompt + unlocked,
                Some(Target::AtMost(1000.0)),
            );
            // Under `app`, not `cover pickup`: `--merge` replaces a scenario's figures as a
            // group, and this one is measured by this run, not by the native cover run.
            report.gather("app", "casebook", "-", run);
            tablet.close().await?;
        }

        // Offline open: a signed-in tablet with its caseload, reloaded with no network.
        let tablet = driver.browser().await?;
        sign_in(&tablet, &network.url(), "worker.north1").await;
        all_ready_within(&tablet, "the demo caseload", Duration::from_secs(60)).await?;
        service_worker_ready(&tablet).await?;
        network.set_online(false);
        for _ in 0..settings.runs {
            tablet.refresh().await?;
            let (prompt, unlocked) = unlock_offline(&tablet).await?;
            let mut run = Run::default();
            run.add(
                "offline open to case list (without typing the password)",
                "ms",
                prompt + unlocked,
                Some(Target::AtMost(1000.0)),
            );
            run.add(
                "  of which: page load to password prompt",
                "ms",
                prompt,
                None,
            );
            run.add(
                "  of which: password to case list (PBKDF2, decrypt, render)",
                "ms",
                unlocked,
                None,
            );
            report.gather("app", "casebook", "-", run);
        }
        network.set_online(true);
        tablet.close().await?;
        anyhow::Ok(())
    }
    .await;
    driver.stop().await;
    result
}
