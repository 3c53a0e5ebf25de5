//! `casebook-bench`: the benchmark driver `cargo xtask bench` runs (see `tests/src/bench/`).
//!
//! ```text
//! casebook-bench --server PATH [--engine sqlite|postgres|both] [--runs N] [--smoke]
//!                [--only catch-up,cover,live,live-held,ladder,overload,scale,instances,automerge-repo,app]
//!                [--json bench/results.json] [--markdown docs/performance.md]
//!                [--method bench/method.md] [--dist DIR (the built app: app figures)]
//!                [--root DIR (the workspace, for bench/automerge-repo; default .)]
//!                [--merge (keep the earlier figures of scenarios this run does not measure)]
//! ```

/// The server's allocator for the simulated devices too (`server/src/main.rs`): they run
/// the same Automerge code.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use casebook_tests::bench::report::Report;
use casebook_tests::bench::{self, Settings};
use std::path::PathBuf;

struct Options {
    server: PathBuf,
    engines: Vec<&'static str>,
    runs: Option<usize>,
    smoke: bool,
    only: Option<Vec<String>>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    method: Option<PathBuf>,
    dist: Option<PathBuf>,
    root: PathBuf,
    merge: bool,
    /// The earlier `results.json`, read at the start (for `--merge`).
    earlier: Option<serde_json::Value>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        server: PathBuf::new(),
        engines: vec!["sqlite", "postgres"],
        runs: None,
        smoke: false,
        only: None,
        json: None,
        markdown: None,
        method: None,
        dist: None,
        root: PathBuf::from("."),
        merge: false,
        earlier: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--server" => o.server = value()?.into(),
            "--engine" => {
                o.engines = match value()?.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    "both" => vec!["sqlite", "postgres"],
                    other => bail!("unknown engine {other}"),
                }
            }
            "--runs" => o.runs = Some(value()?.parse().context("--runs")?),
            "--smoke" => o.smoke = true,
            "--only" => o.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--json" => o.json = Some(value()?.into()),
            "--markdown" => o.markdown = Some(value()?.into()),
            "--method" => o.method = Some(value()?.into()),
            "--dist" => o.dist = Some(value()?.into()),
            "--root" => o.root = value()?.into(),
            "--merge" => o.merge = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if o.merge
        && let Some(json) = &o.json
    {
        let text = std::fs::read_to_string(json)
            .with_context(|| format!("--merge: reading {}", json.display()))?;
        o.earlier = Some(serde_json::from_str(&text)?);
    }
    if o.server.as_os_str().is_empty() {
        bail!("--server PATH (the casebook-server binary to measure) is required");
    }
    // Figures are written to both or neither: one alone used to be accepted and the run's
    // figures then written nowhere (found after three ladders, 7 December).
    if o.json.is_some() != o.markdown.is_some() {
        bail!("--json and --markdown go together (the figures are written to both)");
    }
    Ok(o)
}

/// Records a scenario's failure as a note (the other scenarios still run) and writes what
/// has been measured so far, so a failure late in a long run loses nothing before it.
fn settle(o: &Options, report: &mut Report, scenario: &str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("{scenario} failed: {e:#}");
        report
            .notes
            .push(format!("{scenario} did not complete: {e:#}"));
    }
    if let Err(e) = write(o, report) {
        eprintln!("could not write the results: {e:#}");
    }
}

fn write(o: &Options, report: &Report) -> anyhow::Result<()> {
    if let (Some(json), Some(markdown)) = (&o.json, &o.markdown) {
        let mut machine = bench::machine();
        let fresh = report.clone().measured_on(&machine);
        let report = match &o.earlier {
            Some(earlier) if o.merge => {
                // Figures written before figures carried their machine were all measured
                // on the one the file names.
                let earlier_machine = earlier
                    .get("machine")
                    .and_then(|m| m.as_str())
                    .unwrap_or("not recorded")
                    .to_owned();
                let earlier: Report = serde_json::from_value(earlier["report"].clone())?;
                // Nothing measured (only the method rewritten): the file still names the
                // machine of its last measurements, not this one.
                if report.figures.is_empty() {
                    machine = earlier_machine.clone();
                }
                fresh.merged_over(earlier.measured_on(&earlier_machine))
            }
            _ => fresh,
        };
        let method = match &o.method {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => "# Performance".into(),
        };
        report.write(json, markdown, &method, &machine)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let wanted = |name: &str| o.only.as_ref().is_none_or(|l| l.iter().any(|n| n == name));
    let mut report = Report::default();
    for engine in &o.engines {
        let settings = Settings {
            server: o.server.clone(),
            engine,
            smoke: o.smoke,
            runs: o.runs.unwrap_or(if o.smoke { 1 } else { 3 }),
        };
        println!("--- {engine} ---");
        if wanted("catch-up") {
            println!("catch-up...");
            let more = Settings {
                runs: o.runs.unwrap_or(if o.smoke { 1 } else { 5 }),
                ..settings.clone()
            };
            let r = bench::catch_up::bench(&more, &mut report).await;
            settle(&o, &mut report, &format!("catch-up ({engine})"), r);
        }
        if wanted("cover") {
            println!("cover pickup...");
            let r = bench::cover::bench(&settings, &mut report).await;
            settle(&o, &mut report, &format!("cover pickup ({engine})"), r);
        }
        if wanted("live") {
            println!("live load...");
            let r = bench::live::bench(&settings, &mut report).await;
            settle(&o, &mut report, &format!("live load ({engine})"), r);
        }
        if wanted("live") || wanted("live-held") {
            println!("live load at the held rate...");
            let r = bench::live::held(&settings, &mut report).await;
            settle(
                &o,
                &mut report,
                &format!("live load, held rate ({engine})"),
                r,
            );
        }
        // The overload is twice the highest rate the ladder held, so it needs the ladder.
        let mut held = None;
        if wanted("ladder") || wanted("overload") {
            println!("live load ladder...");
            let r = bench::ladder::climb(&settings, None, &mut report).await;
            let r = r.map(|h| held = Some(h));
            settle(&o, &mut report, &format!("live load ladder ({engine})"), r);
        }
        if wanted("overload") {
            println!("overload...");
            let r = match held {
                Some(held) if held.rate > 0.0 => {
                    bench::live::overload(&settings, &mut report, held).await
                }
                _ => Err(anyhow::anyhow!("the ladder held no rate to double")),
            };
            settle(&o, &mut report, &format!("overload ({engine})"), r);
        }
        if wanted("scale") {
            println!("stored scale...");
            let r = bench::scale::bench(&settings, &mut report).await;
            settle(&o, &mut report, &format!("stored scale ({engine})"), r);
        }
        if wanted("instances") && *engine == "postgres" {
            println!("several instances...");
            let r = bench::live::instances(&settings, &mut report).await;
            settle(&o, &mut report, "several instances", r);
        }
    }
    if wanted("automerge-repo") && !o.smoke {
        println!("automerge-repo side by side...");
        let settings = Settings {
            server: o.server.clone(),
            engine: "sqlite",
            smoke: o.smoke,
            runs: o.runs.unwrap_or(3),
        };
        let r = async {
            let dir = bench::node::prepare(&o.root)?;
            bench::node::catch_up(&dir, o.runs.unwrap_or(5), o.smoke, &mut report).await?;
            println!("live load ladder, automerge-repo...");
            bench::ladder::climb(&settings, Some(&dir), &mut report).await?;
            anyhow::Ok(())
        }
        .await;
        settle(&o, &mut report, "automerge-repo side by side", r);
    }
    if let Some(dist) = &o.dist
        && wanted("app")
    {
        println!("app...");
        let settings = Settings {
            server: o.server.clone(),
            engine: "sqlite",
            smoke: o.smoke,
            runs: o.runs.unwrap_or(if o.smoke { 1 } else { 3 }),
        };
        let r = bench::app::bundle(dist, &mut report);
        settle(&o, &mut report, "app bundle", r);
        let r = bench::app::browser(&settings, dist, &mut report).await;
        settle(&o, &mut report, "app in Chromium", r);
    }
    println!("\n{}", report.table());
    write(&o, &report)?;
    if let (Some(json), Some(markdown)) = (&o.json, &o.markdown) {
        println!("wrote {} and {}", json.display(), markdown.display());
    }
    if !report.notes.is_empty() {
        for note in &report.notes {
            println!("note: {note}");
        }
    }
    Ok(())
}
