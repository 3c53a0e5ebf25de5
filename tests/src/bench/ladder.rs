//! Side by side at equal latency: Casebook and automerge-repo under the same live load, at
//! rising rates, each until it no longer holds the latency bound. 100 devices on 20
//! documents (5 each, 25 devices per document), 20 s at each rate of [`RATES`]. The climb is
//! repeated `--runs` times (three by default), so its figures are medians with min and max
//! like every other scenario's.
//!
//! Both systems are driven by native clients in this process (Casebook's devices, and
//! [`super::repo_client::RepoDevice`] for automerge-repo). The figure that compares them is
//! the highest rate each holds with p99 latency within [`BOUND_MS`] and nothing missing,
//! with the server's memory at every rate.

use super::Settings;
use super::live::{self, Load, Phase};
use super::node;
use super::report::{Report, Run, percentile};
use std::path::Path;

/// Changes per second over all devices, climbed in order: steps of 25/s from 25/s to
/// 400/s (a quarter or less of the rates above 100/s), so that the highest rate held, and
/// the ratio of the two systems' rates, are known to within them.
pub const RATES: [f64; 16] = [
    25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0, 225.0, 250.0, 275.0, 300.0, 325.0, 350.0,
    375.0, 400.0,
];

/// The one rate of a smoke run.
pub const SMOKE_RATE: f64 = 10.0;

/// The latency (p99, ms) both systems are held to.
pub const BOUND_MS: f64 = 1000.0;

/// The scenario name in the report.
pub const SCENARIO: &str = "live load ladder (100 devices)";

/// The shape at one rate.
pub fn shape(settings: &Settings, rate: f64) -> Load {
    Load {
        devices: settings.size(100, 12),
        documents: settings.size(20, 4),
        per_device: settings.size(5, 2),
        phases: vec![Phase {
            rate,
            seconds: settings.size(20, 3) as f64,
        }],
        instances: 1,
    }
}

/// One rung: p99 latency (ms), deliveries missing, server peak memory (MB) and server CPU
/// (percent of one core).
struct Rung {
    p99: f64,
    missing: f64,
    rss: f64,
    cpu: f64,
}

/// The highest rate a system held, and its p99 latency (ms) there.
#[derive(Clone, Copy, Debug, Default)]
pub struct Held {
    /// Changes per second (0 when not even the first rate was held).
    pub rate: f64,
    /// p99 latency at that rate.
    pub p99: f64,
}

/// Climbs the rates `settings.runs` times for Casebook (on `settings.engine`), or for
/// automerge-repo when `automerge_repo` names the prepared driver folder. Each climb is one
/// run of the scenario's figures (so the table gives each rung's median, min and max over
/// the climbs that reached it); returns the median climb's highest rate held ([`median`]).
pub async fn climb(
    settings: &Settings,
    automerge_repo: Option<&Path>,
    report: &mut Report,
) -> anyhow::Result<Held> {
    let mut climbs = Vec::with_capacity(settings.runs);
    for n in 1..=settings.runs {
        if settings.runs > 1 {
            println!("  climb {n} of {}", settings.runs);
        }
        climbs.push(climb_once(settings, automerge_repo, report).await?);
    }
    Ok(median(climbs))
}

/// The climb whose highest rate held is the median (the lower of the middle two for an even
/// number, as [`super::report::median`] takes), with its p99 there.
fn median(mut climbs: Vec<Held>) -> Held {
    climbs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let middle = climbs.len().saturating_sub(1) / 2;
    climbs.get(middle).copied().unwrap_or_default()
}

/// One climb: the rates in order until one is not held.
async fn climb_once(
    settings: &Settings,
    automerge_repo: Option<&Path>,
    report: &mut Report,
) -> anyhow::Result<Held> {
    let rates: &[f64] = if settings.smoke {
        &[SMOKE_RATE]
    } else {
        &RATES
    };
    let (system, storage) = match automerge_repo {
        None => ("casebook", settings.engine),
        Some(_) => ("automerge-repo", "nodefs"),
    };
    let mut run = Run::default();
    let mut held = Held::default();
    for &rate in rates {
        let load = shape(settings, rate);
        let rung = match automerge_repo {
            None => {
                let o = live::run(settings, &load).await?;
                Rung {
                    p99: percentile(&o.latencies(0.0, f64::INFINITY, false), 99.0),
                    missing: o.undelivered as f64,
                    rss: o.server_peak_rss_mb(),
                    cpu: o.server_cpu_percent(),
                }
            }
            Some(dir) => {
                let o = node::run_live(dir, &load).await?;
                Rung {
                    p99: percentile(&o.latencies, 99.0),
                    missing: o.missing(),
                    rss: o.peak_rss_mb,
                    cpu: o.cpu_percent,
                }
            }
        };
        println!(
            "  {system} at {rate}/s: p99 {:.0} ms, {} missing, {:.0} MB, server {:.0}% of a core",
            rung.p99, rung.missing, rung.rss, rung.cpu
        );
        run.add(&format!("latency p99 at {rate}/s"), "ms", rung.p99, None);
        run.add(
            &format!("server peak RSS at {rate}/s"),
            "MB",
            rung.rss,
            None,
        );
        run.add(
            &format!("server CPU at {rate}/s"),
            "% of a core",
            rung.cpu,
            None,
        );
        if rung.p99 > BOUND_MS || rung.missing > 0.0 {
            break;
        }
        held = Held {
            rate,
            p99: rung.p99,
        };
    }
    run.add(
        &format!("highest rate held (p99 <= {BOUND_MS} ms, nothing missing)"),
        "/s",
        held.rate,
        None,
    );
    report.gather(SCENARIO, system, storage, run);
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::{Held, median};

    fn held(rate: f64, p99: f64) -> Held {
        Held { rate, p99 }
    }

    #[test]
    fn the_median_climb_is_taken_with_its_own_latency() {
        let m = median(vec![
            held(275.0, 900.0),
            held(225.0, 120.0),
            held(250.0, 400.0),
        ]);
        assert_eq!((m.rate, m.p99), (250.0, 400.0));
        let m = median(vec![held(250.0, 400.0), held(200.0, 90.0)]);
        assert_eq!((m.rate, m.p99), (200.0, 90.0));
        assert_eq!(median(vec![held(100.0, 50.0)]).rate, 100.0);
        assert_eq!(median(Vec::new()).rate, 0.0);
    }
}
