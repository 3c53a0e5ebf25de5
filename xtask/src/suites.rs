//! `cargo xtask test`: every suite, then a summary. Exits non-zero if any suite failed, and
//! under `CI=true` also if the PostgreSQL suite could not run.

use crate::{bundle, cargo, setup};
use anyhow::bail;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

enum Status {
    Passed,
    Failed(String),
    NotRun(String),
}

struct Outcome {
    name: &'static str,
    status: Status,
    seconds: f64,
}

fn cargo_test(args: &[&str], env: &[(&str, &str)]) -> Status {
    let mut command = Command::new(cargo());
    command.arg("test").args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    match command.status() {
        Ok(s) if s.success() => Status::Passed,
        Ok(s) => Status::Failed(format!("cargo test exited with {s}")),
        Err(e) => Status::Failed(format!("could not run cargo test: {e}")),
    }
}

fn timed(name: &'static str, f: impl FnOnce() -> Status) -> Outcome {
    println!("\n=== {name} ===");
    let start = Instant::now();
    let status = f();
    Outcome {
        name,
        status,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The PostgreSQL server the tests use, if one answers.
fn postgres_reachable() -> Result<(), String> {
    let url = std::env::var("CASEBOOK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let host_port = url
        .split('@')
        .next_back()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let host_port = if host_port.contains(':') {
        host_port
    } else {
        format!("{host_port}:5432")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host_port}"))?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map(|_| ())
        .map_err(|e| format!("no PostgreSQL at {host_port}: {e}"))
}

/// The server integration suite (run once per database engine).
const INTEGRATION: &[&str] = &[
    "-p",
    "casebook-tests",
    "--test",
    "sync",
    "--test",
    "bad_input",
    "--test",
    "http_api",
    "--test",
    "attribution",
    "--test",
    "disclosure",
    "--test",
    "records",
    "--test",
    "hro",
    "--test",
    "cover",
    "--test",
    "cover_clock",
    "--test",
    "instances",
    "--test",
    "access",
    "--test",
    "accounts",
    "--test",
    "audit",
    "--test",
    "devices",
    "--test",
    "bench_smoke",
];

/// Runs every suite.
pub fn test_all(root: &Path) -> anyhow::Result<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let started = Instant::now();
    let mut outcomes = Vec::new();

    outcomes.push(timed("unit tests", || {
        cargo_test(
            &[
                "-p",
                "casebook-shared",
                "--lib",
                "-p",
                "casebook-server",
                "-p",
                "xtask",
                "-p",
                "casebook-tests",
            ],
            &[],
        )
    }));
    outcomes.push(timed("sync simulation (500 seeds)", || {
        cargo_test(
            &["--release", "-p", "casebook-shared", "--test", "simulation"],
            &[],
        )
    }));
    outcomes.push(timed("server integration on SQLite", || {
        cargo_test(INTEGRATION, &[("CASEBOOK_TEST_ENGINE", "sqlite")])
    }));
    outcomes.push(timed(
        "server integration on PostgreSQL",
        || match postgres_reachable() {
            Ok(()) => cargo_test(INTEGRATION, &[("CASEBOOK_TEST_ENGINE", "postgres")]),
            Err(why) => Status::NotRun(why),
        },
    ));
    outcomes.push(timed("browser end to end (headless Chromium)", || {
        let prepared = setup::wasm_target()
            .and_then(|()| setup::chromium())
            .and_then(|()| bundle::build(root, bundle::Profile::Release));
        match prepared {
            // Four at a time: on two cores that is quicker than all nine at once (each test
            // runs one to three Chromium pages).
            Ok(dist) => cargo_test(
                &[
                    "-p",
                    "casebook-tests",
                    "--test",
                    "browser",
                    "--",
                    "--test-threads=4",
                ],
                &[("CASEBOOK_DIST", &dist.to_string_lossy())],
            ),
            Err(e) => Status::Failed(format!("{e:#}")),
        }
    }));

    println!(
        "\n=== summary ({:.0} s) ===",
        started.elapsed().as_secs_f64()
    );
    let mut failed = 0;
    for o in &outcomes {
        match &o.status {
            Status::Passed => println!("  passed   {:<42} {:>6.1} s", o.name, o.seconds),
            Status::Failed(why) => {
                failed += 1;
                println!("  FAILED   {:<42} {:>6.1} s  {why}", o.name, o.seconds);
            }
            Status::NotRun(why) => {
                if ci {
                    failed += 1;
                }
                println!("  NOT RUN  {:<42}           {why}", o.name);
            }
        }
    }
    if outcomes
        .iter()
        .any(|o| matches!(o.status, Status::NotRun(_)))
    {
        println!(
            "\n  !!! THE POSTGRESQL SUITE DID NOT RUN: start PostgreSQL on 127.0.0.1:5432 (user postgres,"
        );
        println!(
            "  !!! trust auth) or set CASEBOOK_TEST_POSTGRES_URL. Under CI=true this is a failure."
        );
    }
    let passed = outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Passed))
        .count();
    println!("\nsuites: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} suite(s) failed");
    }
    Ok(())
}
