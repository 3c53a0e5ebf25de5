//! Side by side: the catch-up and live-load workloads against an automerge-repo sync server
//! (Node, `@automerge/automerge-repo` 2.5 with its WebSocket server adapter and NodeFS
//! storage), driven by automerge-repo clients. The scripts are in `bench/automerge-repo/`;
//! the bench installs their pinned packages from the npm registry (`npm install`; `npm ci`
//! refuses this lock file on npm 11 over optional platform packages of `cbor-extract`) on
//! first use.

use super::live::Load;
use super::report::{Report, Run};
use super::{ProcessStats, process_stats};
use crate::database::TempDir;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

/// Runs a live load (one phase) against a fresh automerge-repo server, with the devices
/// split over two Node driver processes (one per core).
pub async fn run_live(dir: &Path, load: &Load) -> anyhow::Result<LiveOutcome> {
    let server = SyncServer::start(dir).await?;
    let work = TempDir::new("automerge-repo-live");
    let docs_file = work.0.join("documents.json");
    let setup = Command::new("node")
        .arg("setup.mjs")
        .arg(&server.url)
        .arg(load.documents.to_string())
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .await
        .context("creating the automerge-repo documents")?;
    let urls = String::from_utf8_lossy(&setup.stdout)
        .lines()
        .find(|l| l.starts_with('['))
        .context("the automerge-repo setup printed no documents")?
        .to_owned();
    std::fs::write(&docs_file, urls)?;
    let rate = load.phases[0].rate;
    let seconds = load.phases[0].seconds;
    let drivers = 2.min(load.devices);
    let mut children = Vec::new();
    for k in 0..drivers {
        let first = load.devices * k / drivers;
        let count = load.devices * (k + 1) / drivers - first;
        let out = work.0.join(format!("live-{k}.json"));
        let mut child = Command::new("node")
            .arg("--max-old-space-size=4096")
            .arg("live.mjs")
            .arg(&server.url)
            .arg(&docs_file)
            .args([
                load.devices.to_string(),
                load.per_device.to_string(),
                rate.to_string(),
                seconds.to_string(),
                first.to_string(),
                count.to_string(),
            ])
            .arg(&out)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting an automerge-repo load driver")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        children.push((child, out));
        // Wait for this driver's devices to hold their documents.
        tokio::time::timeout(Duration::from_secs(600), async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == "ready" {
                    return Ok(());
                }
            }
            bail!("an automerge-repo load driver exited before its devices were ready")
        })
        .await
        .context("waiting for the automerge-repo devices")??;
    }
    let before = server.stats();
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64()
        * 1000.0
        + 500.0;
    for (child, _) in &mut children {
        let stdin = child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{start_at}\n").as_bytes()).await?;
        stdin.flush().await?;
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds + 0.5)).await;
    let after = server.stats();
    let (mut latencies, mut made, mut expected, mut errors) = (Vec::new(), 0.0, 0.0, 0.0);
    for (mut child, out) in children {
        let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
            .await
            .context("an automerge-repo load driver did not finish")??;
        let text = std::fs::read_to_string(&out)
            .with_context(|| format!("the load driver wrote no results ({status})"))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        for a in v["arrivals"].as_array().into_iter().flatten() {
            if let Some(ms) = a.get(0).and_then(serde_json::Value::as_f64) {
                latencies.push(ms);
            }
        }
        made += v["made"].as_f64().unwrap_or(0.0);
        expected += v["expected"].as_f64().unwrap_or(0.0);
        errors += v["errors"].as_f64().unwrap_or(0.0);
    }
    Ok(LiveOutcome {
        latencies,
        made,
        expected,
        errors,
        cpu_percent: (after.cpu_seconds - before.cpu_seconds) / seconds * 100.0,
        peak_rss_mb: after.peak_rss_mb,
    })
}
