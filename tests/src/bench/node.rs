//! Side by side: the catch-up and live-load workloads against an automerge-repo sync server
//! (Node, `@automerge/automerge-repo` 2.5 with its WebSocket server adapter and NodeFS
//! storage). The catch-up is driven by automerge-repo client repos in Node; the live load by
//! native clients speaking automerge-repo's protocol ([`RepoDevice`]), as Casebook's live load
//! is driven by native devices: Node client repos took more CPU than the server they loaded,
//! so the ladder measured them rather than it. The scripts are in `bench/automerge-repo/`;
//! the bench installs their pinned packages from the npm registry (`npm install`; `npm ci`
//! refuses this lock file on npm 11 over optional platform packages of `cbor-extract`) on
//! first use.

use super::applied_once;
use super::fixture;
use super::live::{Arrivals, Ledger, Load, StartLine};
use super::repo_client::RepoDevice;
use super::report::{Report, Run};
use super::{ProcessStats, process_stats};
use crate::database::TempDir;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The folder of the automerge-repo scripts, with its packages installed.
pub fn prepare(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("bench/automerge-repo");
    if !dir.join("node_modules/@automerge/automerge-repo").exists() {
        println!("Installing automerge-repo for the side-by-side run (npm install)...");
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("running npm (Node.js and npm are needed for the side-by-side run)")?;
        if !status.success() {
            bail!("npm install failed in {}", dir.display());
        }
    }
    Ok(dir)
}

/// An automerge-repo sync server process.
struct SyncServer {
    child: Child,
    url: String,
    _storage: TempDir,
}

impl SyncServer {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let storage = TempDir::new("automerge-repo-storage");
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(&storage.0)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the automerge-repo sync server")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = line.strip_prefix("listening ") {
                    return Ok(port.trim().to_owned());
                }
            }
            bail!("the automerge-repo server exited")
        })
        .await
        .context("waiting for the automerge-repo server")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            url: format!("ws://127.0.0.1:{port}"),
            _storage: storage,
        })
    }

    fn stats(&self) -> ProcessStats {
        process_stats(self.child.id())
    }
}

/// Catch-up: the same shape as [`super::catch_up`], `runs` times.
pub async fn catch_up(
    dir: &Path,
    runs: usize,
    smoke: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = SyncServer::start(dir).await?;
    let (documents, per_document) = if smoke { (4, 2) } else { (20, 10) };
    let output = Command::new("node")
        .arg("catch-up.mjs")
        .arg(&server.url)
        .arg(runs.to_string())
        .arg(documents.to_string())
        .arg(per_document.to_string())
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .await
        .context("running the automerge-repo catch-up")?;
    let mut seen = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        let mut run = Run::default();
        run.add("received by the other device", "ms", field("took_ms"), None);
        run.add(
            "bytes sent / encoded changes",
            "x",
            field("bytes_sent") / field("encoded"),
            None,
        );
        run.add("encoded changes", "KB", field("encoded") / 1024.0, None);
        run.add("bytes sent", "KB", field("bytes_sent") / 1024.0, None);
        report.gather("catch-up", "automerge-repo", "nodefs", run);
        seen += 1;
    }
    if seen == 0 {
        bail!(
            "the automerge-repo catch-up printed no result ({})",
            output.status
        );
    }
    Ok(())
}

/// What a live load against automerge-repo measured.
pub struct LiveOutcome {
    /// Change-to-other-device latencies (ms).
    pub latencies: Vec<f64>,
    /// Changes made.
    pub made: f64,
    /// (change, other device) deliveries expected.
    pub expected: f64,
    /// Errors the drivers saw.
    pub errors: f64,
    /// Server CPU over the load, as a share of one core (percent).
    pub cpu_percent: f64,
    /// Server peak resident memory (MB).
    pub peak_rss_mb: f64,
}

impl LiveOutcome {
    /// Deliveries that never arrived.
    pub fn missing(&self) -> f64 {
        (self.expected - self.latencies.len() as f64).max(0.0)
    }
}

/// Runs a live load against a fresh automerge-repo server, driven by native clients
/// ([`RepoDevice`]) in this process, as Casebook's load is driven by its native devices.
pub async fn run_live(dir: &Path, load: &Load) -> anyhow::Result<LiveOutcome> {
    let server = SyncServer::start(dir).await?;
    let setup = Command::new("node")
        .arg("setup.mjs")
        .arg(&server.url)
        .arg(load.documents.to_string())
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .await
        .context("creating the automerge-repo documents")?;
    let urls: Vec<String> = serde_json::from_str(
        String::from_utf8_lossy(&setup.stdout)
            .lines()
            .find(|l| l.starts_with('['))
            .context("the automerge-repo setup printed no documents")?,
    )?;
    let ids: Arc<Vec<String>> = Arc::new(
        urls.iter()
            .map(|u| u.trim_start_matches("automerge:").to_owned())
            .collect(),
    );
    let seconds = load.seconds();
    let ledger = Arc::new(Ledger::new(load.documents));
    let line = Arc::new(StartLine::new(load.devices));
    let applying = applied_once::Shared::for_run(load.documents);
    let mut tasks = Vec::new();
    for n in 0..load.devices {
        let mine = load.documents_of(n);
        let schedule = load.schedule(n);
        let url = server.url.clone();
        let (ids, ledger, line) = (ids.clone(), ledger.clone(), line.clone());
        let sharing = applying.clone();
        tasks.push(tokio::spawn(async move {
            let names: Vec<String> = mine.iter().map(|d| ids[*d].clone()).collect();
            let (device, start) = line
                .line_up(RepoDevice::connect(
                    &url,
                    &format!("bench-device-{n}"),
                    &names,
                    sharing.as_ref().map(applied_once::Shared::sharing),
                ))
                .await;
            let mut device = device.with_context(|| format!("connecting device {n}"))?;
            let index: HashMap<String, usize> =
                names.iter().cloned().zip(mine.iter().copied()).collect();
            let mut arrivals = Arrivals::new(n);
            let notice = |doc: &str, am: &automerge::AutoCommit, arrivals: &mut Arrivals| {
                if let Some(&d) = index.get(doc) {
                    arrivals.notice(&ledger, d, |h| fixture::has_change(am, h));
                }
            };
            for (k, at) in schedule.iter().enumerate() {
                device
                    .run_until(start + Duration::from_secs_f64(*at), &mut |doc, am| {
                        notice(doc, am, &mut arrivals)
                    })
                    .await?;
                let d = mine[k % mine.len()];
                let hash = device.write(&ids[d], &format!("d{n}-{k}"), &fixture::entry_text(k))?;
                ledger.record(d, hash, n);
                if let (Some(sharing), Some(am)) = (&sharing, device.document(&ids[d])) {
                    sharing.offer(am, hash);
                }
                device.sync_doc(&ids[d]).await?;
            }
            line.finished_writing();
            let end = start + Duration::from_secs_f64(seconds);
            device
                .run_until(end, &mut |doc, am| notice(doc, am, &mut arrivals))
                .await?;
            // The drain: until every change made on its documents has arrived (or 20 s).
            let drain_until = end + Duration::from_secs(20);
            while Instant::now() < drain_until {
                if arrivals.caught_up(&ledger, mine.iter().copied()) && line.all_written() {
                    break;
                }
                let until = Instant::now() + Duration::from_millis(100);
                device
                    .run_until(until, &mut |doc, am| notice(doc, am, &mut arrivals))
                    .await?;
            }
            anyhow::Ok((arrivals.arrived, device.errors))
        }));
    }
    line.all_connected().await;
    let before = server.stats();
    let at_end = {
        let pid = server.child.id();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            process_stats(pid)
        })
    };
    line.go().await;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await?);
    }
    let after = at_end.await?;
    let by_hash = ledger.by_hash();
    let mut outcome = LiveOutcome {
        latencies: Vec::new(),
        made: by_hash.len() as f64,
        expected: load.deliveries_owed(&ledger) as f64,
        errors: 0.0,
        cpu_percent: (after.cpu_seconds - before.cpu_seconds) / seconds * 100.0,
        peak_rss_mb: after.peak_rss_mb,
    };
    for result in results {
        match result {
            Ok((arrivals, errors)) => {
                outcome.errors += errors as f64;
                for (hash, at) in arrivals {
                    if let Some((made, _)) = by_hash.get(&hash) {
                        outcome
                            .latencies
                            .push(at.duration_since(made.at).as_secs_f64() * 1000.0);
                    }
                }
            }
            // A device whose connection failed counts as an error; its deliveries go missing.
            Err(_) => outcome.errors += 1.0,
        }
    }
    Ok(outcome)
}
