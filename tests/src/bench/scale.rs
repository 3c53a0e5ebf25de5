//! Stored scale: a server over 100,000 stored documents (10,000 cases of ten documents):
//! how long it takes to start, its memory once started, and the time for a device to open
//! one case nothing has loaded yet.

use super::fixture::{self, Fixture, SeedDocument};
use super::report::{Report, Run, Target};
use super::{Settings, process_stats};
use crate::database::TestDatabase;
use crate::device::NativeDevice;
use anyhow::Context;
use casebook_shared::ids::{DocumentId, StaffId};
use casebook_shared::records::Kind;
use std::time::{Duration, Instant};

/// Runs the scenario and adds its figures to `report`. The database is filled once; each
/// run starts a new server process over it and opens a different cold case.
pub async fn bench(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    let cases = settings.size(10_000, 20);
    let per_case = 10;
    let database = TestDatabase::on(settings.engine).await?;
    let mut fixture = Fixture::open(&database.url).await?;
    // A hundred workers hold the caseload; one more worker per run co-works one case.
    let workers = fixture.staff("bench.scale", 100).await?;
    let openers = fixture.staff("bench.cold", settings.runs).await?;
    let filled = Instant::now();
    let opened_case = |k: usize| (k * 7919) % cases;
    let chosen: Vec<usize> = (0..settings.runs).map(opened_case).collect();
    let mut made = 0;
    for batch in 0..cases.div_ceil(100) {
        let first = batch * 100;
        let count = 100.min(cases - first);
        let ids = fixture
            .cases(count, |k| {
                let n = first + k;
                let mut who: Vec<StaffId> = vec![workers[n % workers.len()]];
                if let Some(run) = chosen.iter().position(|&c| c == n) {
                    who.push(openers[run]);
                }
                who
            })
            .await?;
        let mut seeds = Vec::new();
        for case in ids {
            let author = workers[made % workers.len()];
            seeds.push(SeedDocument {
                id: DocumentId(uuid::Uuid::new_v4()),
                case,
                kind: Kind::Chronology,
                author,
                am: fixture::chronology(20, author)?,
            });
            for _ in 1..per_case {
                seeds.push(SeedDocument {
                    id: DocumentId(uuid::Uuid::new_v4()),
                    case,
                    kind: Kind::VisitNote,
                    author,
                    am: fixture::record(Kind::VisitNote, case, fixture::VISIT_NOTE, true)?,
                });
            }
            made += 1;
        }
        fixture.documents(seeds).await?;
    }
    let fill_seconds = filled.elapsed().as_secs_f64();
    let cookies = fixture.sessions(&openers).await?;
    fixture.db.close().await;
    report.notes.push(format!(
        "stored scale ({}): {} documents written in {fill_seconds:.0} s before the runs",
        settings.engine,
        cases * per_case
    ));

    for (run_no, cookie) in cookies.iter().enumerate() {
        let server = settings.serve(&database).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_start = process_stats(server.pid());
        let me = fixture::practitioner(openers[run_no], &format!("bench.cold.{}", run_no + 1));
        let mut device = NativeDevice::new(me);
        let started = Instant::now();
        device
            .connect(&crate::server::ws_url(&server.base), cookie)
            .await?;
        device
            .pump_until(Duration::from_secs(30), |d| {
                d.storage.len() == per_case && d.core.all_in_step()
            })
            .await
            .context("opening the cold case")?;
        let opened = started.elapsed();
        let mut run = Run::default();
        run.add("stored documents", "", (cases * per_case) as f64, None);
        run.add(
            "server start (to listening)",
            "ms",
            server.started_in.as_secs_f64() * 1000.0,
            None,
        );
        run.add(
            "server RSS after start",
            "MB",
            after_start.rss_mb,
            Some(Target::AtMost(100.0)),
        );
        run.add(
            "open one cold case (10 documents, connect to all stored)",
            "ms",
            opened.as_secs_f64() * 1000.0,
            Some(Target::AtMost(50.0)),
        );
        report.gather("stored scale", "casebook", settings.engine, run);
        device.disconnect().await;
    }
    Ok(())
}
