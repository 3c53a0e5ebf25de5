//! `cargo xtask bench`: Casebook's performance figures, measured the same way every time.
//!
//! Every scenario runs the real server binary (release build) as its own process on a fresh
//! database, with native sync clients built on the app's protocol core
//! ([`crate::device::NativeDevice`]) over loopback WebSockets. Data beyond the demo is written
//! straight into the database first ([`fixture`]), as a long-running server would hold it.
//!
//! # Layout
//! - [`fixture`]: bench data (staff, sessions, cases, documents).
//! - [`report`]: figures over several runs, the table, `bench/results.json`, `docs/performance.md`.
//! - [`catch_up`]: a device reconnecting with changes made offline.
//! - [`cover`]: a fresh device pulling down 50 cases.
//! - [`applied_once`]: the simulated devices of a load run apply each change once between them.
//! - [`live`]: many devices writing at a steady rate (live load, overload, several instances).
//! - [`scale`]: 100,000 stored documents.
//! - [`node`]: the same catch-up and live load against an automerge-repo sync server.
//! - [`repo_client`]: a native client of that server, for the live load.
//! - [`app`]: the wasm bundle, opening offline, and cover pickup in Chromium.

pub mod app;
pub mod applied_once;
pub mod catch_up;
pub mod cover;
pub mod fixture;
pub mod ladder;
pub mod live;
pub mod node;
pub mod repo_client;
pub mod report;
pub mod scale;

use crate::database::TestDatabase;
use crate::server::ServerProcess;
use std::path::PathBuf;

/// What a bench run needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The server binary to measure.
    pub server: PathBuf,
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// Tiny sizes (the smoke run under `cargo xtask test`).
    pub smoke: bool,
    /// Runs per scenario (the figures are medians over them).
    pub runs: usize,
}

impl Settings {
    /// `full` normally, `small` in a smoke run.
    pub fn size(&self, full: usize, small: usize) -> usize {
        if self.smoke { small } else { full }
    }

    /// Starts the server binary on `database` (already filled).
    pub async fn serve(&self, database: &TestDatabase) -> anyhow::Result<ServerProcess> {
        ServerProcess::start(&self.server.to_string_lossy(), &database.url, "127.0.0.1:0").await
    }
}

/// CPU time used so far and memory of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory now, in MB.
    pub rss_mb: f64,
    /// Peak resident memory, in MB.
    pub peak_rss_mb: f64,
}

/// Reads `pid`'s CPU time and memory (zeros where `/proc` is missing).
pub fn process_stats(pid: Option<u32>) -> ProcessStats {
    let Some(pid) = pid else {
        return ProcessStats::default();
    };
    let mut stats = ProcessStats::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        stats.cpu_seconds = ticks / clock_ticks_per_second();
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    / 1024.0
            };
            if line.starts_with("VmRSS:") {
                stats.rss_mb = kb(line);
            } else if line.starts_with("VmHWM:") {
                stats.peak_rss_mb = kb(line);
            }
        }
    }
    stats
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux this runs on.
    100.0
}

/// A short description of the machine (cores, memory, CPU model).
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cpus} cores ({model}), {memory:.0} GiB memory, Linux, loopback connections")
}
