//! The benchmark scenarios of `cargo xtask bench` at tiny sizes, so they keep working: every
//! scenario runs against the real server binary and produces its figures, and the ones that
//! count losses count none. (Speed is not checked here: `cargo xtask bench` measures it.)

use casebook_tests::bench::report::Report;
use casebook_tests::bench::{self, Settings};
use casebook_tests::database::engine;

fn settings() -> Settings {
    Settings {
        server: env!("CARGO_BIN_EXE_casebook-server-under-test").into(),
        engine: engine(),
        smoke: true,
        runs: 1,
    }
}

fn figure(report: &Report, scenario: &str, name: &str) -> f64 {
    report
        .figures
        .iter()
        .find(|f| f.scenario == scenario && f.name == name)
        .unwrap_or_else(|| panic!("no figure {scenario} / {name}:\n{}", report.table()))
        .median()
}

#[tokio::test]
async fn catch_up_and_cover_pickup_run_and_measure() {
    let mut report = Report::default();
    bench::catch_up::bench(&settings(), &mut report)
        .await
        .unwrap();
    bench::cover::bench(&settings(), &mut report).await.unwrap();
    assert!(figure(&report, "catch-up", "acknowledged and received") > 0.0);
    assert!(figure(&report, "catch-up", "bytes sent / encoded changes") > 0.0);
    for name in [
        "all stored locally (native, server just started)",
        "all stored locally (native, documents already loaded)",
    ] {
        assert!(figure(&report, "cover pickup", name) > 0.0, "{name}");
    }
    assert_eq!(figure(&report, "cover pickup", "documents"), 3.0 * 4.0);
}

#[tokio::test]
async fn live_load_ladder_and_overload_lose_nothing_at_smoke_size() {
    let mut report = Report::default();
    bench::live::bench(&settings(), &mut report).await.unwrap();
    bench::live::held(&settings(), &mut report).await.unwrap();
    let held = bench::ladder::climb(&settings(), None, &mut report)
        .await
        .unwrap();
    assert_eq!(held.rate, bench::ladder::SMOKE_RATE, "{}", report.table());
    assert_eq!(
        figure(
            &report,
            bench::ladder::SCENARIO,
            "highest rate held (p99 <= 1000 ms, nothing missing)"
        ),
        bench::ladder::SMOKE_RATE
    );
    bench::live::overload(&settings(), &mut report, held)
        .await
        .unwrap();
    assert_eq!(
        figure(&report, "overload", "offered rate"),
        2.0 * bench::ladder::SMOKE_RATE
    );
    let held_scenario = format!("live load at {} changes/s", bench::live::HELD_RATE);
    for scenario in ["live load", held_scenario.as_str(), "overload"] {
        for name in [
            "changes still waiting after a 20 s drain (kept on the devices)",
            "deliveries missing",
            "errors",
            "devices disconnected",
        ] {
            assert_eq!(figure(&report, scenario, name), 0.0, "{scenario} / {name}");
        }
    }
    assert!(figure(&report, "live load", "latency p99") > 0.0);
    assert!(figure(&report, "live load", "server peak RSS") > 0.0);
}

#[tokio::test]
async fn stored_scale_opens_a_cold_case() {
    let mut report = Report::default();
    bench::scale::bench(&settings(), &mut report).await.unwrap();
    assert_eq!(figure(&report, "stored scale", "stored documents"), 200.0);
    assert!(figure(&report, "stored scale", "server RSS after start") > 0.0);
}

#[tokio::test]
async fn several_instances_converge_in_the_bench() {
    if engine() != "postgres" {
        eprintln!("several instances need PostgreSQL: run with CASEBOOK_TEST_ENGINE=postgres");
        return;
    }
    let mut report = Report::default();
    bench::live::instances(&settings(), &mut report)
        .await
        .unwrap();
    assert_eq!(
        figure(&report, "several instances", "deliveries missing"),
        0.0
    );
    assert!(figure(&report, "several instances", "cross-instance latency p99") > 0.0);
}
