//! Cover pickup: a fresh device of a worker given 50 cases (each a chronology of 500 entries,
//! 20 visit notes and a risk management plan) until everything is stored locally.

use super::fixture::{self, Fixture, SeedDocument};
use super::report::{Report, Run, Target};
use super::{Settings, process_stats};
use crate::database::TestDatabase;
use crate::device::NativeDevice;
use anyhow::bail;
use casebook_shared::ids::{CaseId, DocumentId, StaffId};
use casebook_shared::records::Kind;
use std::time::{Duration, Instant};

/// The caseload: `cases` cases worked by `owner`, with `cover` as co-worker.
pub async fn caseload(
    fixture: &mut Fixture,
    cases: usize,
    entries: usize,
    notes: usize,
    owner: StaffId,
    cover: StaffId,
) -> anyhow::Result<Vec<CaseId>> {
    let ids = fixture.cases(cases, |_| vec![owner, cover]).await?;
    for case in &ids {
        let mut seeds = vec![
            SeedDocument {
                id: DocumentId(uuid::Uuid::new_v4()),
                case: *case,
                kind: Kind::Chronology,
                author: owner,
                am: fixture::chronology(entries, owner)?,
            },
            SeedDocument {
                id: DocumentId(uuid::Uuid::new_v4()),
                case: *case,
                kind: Kind::RiskPlan,
                author: owner,
                am: fixture::record(Kind::RiskPlan, *case, fixture::RISK_PLAN, false)?,
            },
        ];
        for _ in 0..notes {
            seeds.push(SeedDocument {
                id: DocumentId(uuid::Uuid::new_v4()),
                case: *case,
                kind: Kind::VisitNote,
                author: owner,
                am: fixture::record(Kind::VisitNote, *case, fixture::VISIT_NOTE, false)?,
            });
        }
        fixture.documents(seeds).await?;
    }
    Ok(ids)
}

/// Runs the native scenario `settings.runs` times and adds its figures to `report`.
pub async fn bench(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    let cases = settings.size(50, 3);
    let entries = settings.size(500, 20);
    let notes = settings.size(20, 2);
    let database = TestDatabase::on(settings.engine).await?;
    let mut fixture = Fixture::open(&database.url).await?;
    let staff = fixture.staff("bench.cover", 2).await?;
    caseload(&mut fixture, cases, entries, notes, staff[0], staff[1]).await?;
    let cookies = fixture.sessions(&staff).await?;
    fixture.db.close().await;
    let server = settings.serve(&database).await?;
    let ws = crate::server::ws_url(&server.base);
    let me = fixture::practitioner(staff[1], "bench.cover.2");
    let expected = cases * (notes + 2);
    for _ in 0..settings.runs {
        let mut device = NativeDevice::new(me.clone());
        let (server_before, device_before) = (
            process_stats(server.pid()),
            process_stats(Some(std::process::id())),
        );
        let started = Instant::now();
        device.connect(&ws, &cookies[1]).await?;
        let waited = device
            .pump_until(Duration::from_secs(120), |d| {
                d.storage.len() >= expected && d.core.all_in_step()
            })
            .await;
        if let Err(e) = waited {
            let docs: Vec<_> = device.core.documents().collect();
            let in_step = docs.iter().filter(|d| device.core.in_step(**d)).count();
            bail!(
                "waiting for the caseload: {e:#} ({} of {expected} stored, {in_step} in step)",
                device.storage.len()
            );
        }
        let took = started.elapsed();
        let (server_after, device_after) = (
            process_stats(server.pid()),
            process_stats(Some(std::process::id())),
        );
        if device.storage.len() != expected {
            bail!(
                "stored {} documents, expected {expected}",
                device.storage.len()
            );
        }
        let stored: usize = device
            .storage
            .values()
            .map(|(chunks, _)| chunks.iter().map(Vec::len).sum::<usize>())
            .sum();
        let mut run = Run::default();
        run.add(
            "all stored locally (native)",
            "ms",
            took.as_secs_f64() * 1000.0,
            Some(Target::AtMost(2000.0)),
        );
        run.add("documents", "", expected as f64, None);
        run.add(
            "server CPU time",
            "ms",
            (server_after.cpu_seconds - server_before.cpu_seconds) * 1000.0,
            None,
        );
        run.add(
            "device CPU time",
            "ms",
            (device_after.cpu_seconds - device_before.cpu_seconds) * 1000.0,
            None,
        );
        run.add("stored on the device", "MB", stored as f64 / 1e6, None);
        run.add(
            "bytes received",
            "MB",
            device.bytes_received as f64 / 1e6,
            None,
        );
        report.gather("cover pickup", "casebook", settings.engine, run);
        device.disconnect().await;
    }
    Ok(())
}
