//! `casebook-bench`: the benchmark driver `cargo xtask bench` runs (see `tests/src/bench/`).
//!
//! ```text
//! casebook-bench --server PATH [--engine sqlite|postgres|both] [--runs N] [--smoke]
//!                [--only catch-up,cover,live,overload,scale,instances,automerge-repo,app]
//!                [--json bench/results.json] [--markdown docs/performance.md]
//!                [--method bench/method.md] [--dist DIR (the built app: app figures)]
//! ```

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
            other => bail!("unknown argument {other}"),
        }
    }
    if o.server.as_os_str().is_empty() {
        bail!("--server PATH (the casebook-server binary to measure) is required");
    }
    Ok(o)
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
            bench::catch_up::bench(&more, &mut report).await?;
        }
        if wanted("cover") {
            println!("cover pickup...");
            bench::cover::bench(&settings, &mut report).await?;
        }
        let mut normal_p99 = None;
        if wanted("live") {
            println!("live load...");
            normal_p99 = bench::live::bench(&settings, &mut report).await?;
        }
        if wanted("overload") {
            println!("overload...");
            bench::live::overload(&settings, &mut report, normal_p99.unwrap_or(50.0)).await?;
        }
        if wanted("scale") {
            println!("stored scale...");
            bench::scale::bench(&settings, &mut report).await?;
        }
        if wanted("instances") && *engine == "postgres" {
            println!("several instances...");
            bench::live::instances(&settings, &mut report).await?;
        }
    }
    if wanted("automerge-repo") && !o.smoke {
        println!("automerge-repo side by side...");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace root")?;
        let dir = bench::node::prepare(root)?;
        let settings = Settings {
            server: o.server.clone(),
            engine: "sqlite",
            smoke: o.smoke,
            runs: o.runs.unwrap_or(3),
        };
        bench::node::catch_up(&dir, o.runs.unwrap_or(5), o.smoke, &mut report).await?;
        for _ in 0..settings.runs {
            bench::node::live(&dir, &bench::live::standard(&settings), &mut report).await?;
        }
    }
    if let Some(dist) = &o.dist
        && wanted("app")
    {
        println!("app...");
        bench::app::bundle(dist, &mut report)?;
        let settings = Settings {
            server: o.server.clone(),
            engine: "sqlite",
            smoke: o.smoke,
            runs: o.runs.unwrap_or(if o.smoke { 1 } else { 3 }),
        };
        bench::app::browser(&settings, dist, &mut report).await?;
    }
    println!("\n{}", report.table());
    if let (Some(json), Some(markdown)) = (&o.json, &o.markdown) {
        let method = match &o.method {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => "# Performance".into(),
        };
        report.write(json, markdown, &method, &bench::machine())?;
        println!("wrote {} and {}", json.display(), markdown.display());
    }
    Ok(())
}
