//! Cover pickup: a fresh device of a worker given 50 cases (each a chronology of 500 entries,
//! 20 visit notes and a risk management plan) until everything is stored locally.

use super::fixture::{self, Fixture, SeedDocument};
use super::report::{Report, Run, Target};
use super::{Settings, process_stats};
use crate::database::TestDatabase;
use crate::device::NativeDevice;
use anyhow::{Context, bail};
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
    let me = fixture::practitioner(staff[1], "bench.cover.2");
    let expected = cases * (notes + 2);
    for _ in 0..settings.runs {
        // A server just started (nothing loaded: the morning a cover worker picks the
        // caseload up), then the same again with the documents in memory.
        let server = settings.serve(&database).await?;
        let ws = crate::server::ws_url(&server.base);
        let cold = pickup(&server, &ws, &cookies[1], &me, expected).await?;
        let warm = pickup(&server, &ws, &cookies[1], &me, expected).await?;
        let mut run = Run::default();
        run.add(
            "all stored locally (native, server just started)",
            "ms",
            cold.took_ms,
            Some(Target::AtMost(2000.0)),
        );
        run.add(
            "all stored locally (native, documents already loaded)",
            "ms",
            warm.took_ms,
            None,
        );
        run.add("documents", "", expected as f64, None);
        run.add(
            "server CPU time (just started)",
            "ms",
            cold.server_cpu_ms,
            None,
        );
        run.add(
            "device CPU time (just started)",
            "ms",
            cold.device_cpu_ms,
            None,
        );
        run.add("stored on the device", "MB", cold.stored as f64 / 1e6, None);
        run.add("bytes received", "MB", cold.received as f64 / 1e6, None);
        report.gather("cover pickup", "casebook", settings.engine, run);
    }
    Ok(())
}

/// What one pickup measured.
struct Pickup {
    took_ms: f64,
    server_cpu_ms: f64,
    device_cpu_ms: f64,
    stored: usize,
    received: usize,
}

/// A fresh device of the cover worker connects and syncs until it holds all `expected`
/// documents, each stored and known to be in step.
async fn pickup(
    server: &crate::server::ServerProcess,
    ws: &str,
    cookie: &str,
    me: &casebook_shared::api::Me,
    expected: usize,
) -> anyhow::Result<Pickup> {
    let mut device = NativeDevice::new(me.clone());
    let (server_before, device_before) = (
        process_stats(server.pid()),
        process_stats(Some(std::process::id())),
    );
    let started = Instant::now();
    device.connect(ws, cookie).await?;
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
    // Outside the timing: what the device stored is every document whole. A fresh device
    // keeps what arrives unloaded until it is opened, so each is loaded here once, and must
    // come to the heads the device is in step at (the server's).
    for (id, (chunks, persisted)) in &device.storage {
        let mut doc = automerge::AutoCommit::load(&chunks.concat())
            .with_context(|| format!("the stored document {id} does not load"))?;
        let heads = casebook_shared::sync::heads_to_wire(&doc.get_heads());
        let mut persisted = persisted.clone();
        persisted.sort();
        anyhow::ensure!(
            !heads.is_empty() && heads == persisted,
            "the stored document {id} is not at the heads the server stored"
        );
    }
    let stored = device
        .storage
        .values()
        .map(|(chunks, _)| chunks.iter().map(Vec::len).sum::<usize>())
        .sum();
    device.disconnect().await;
    Ok(Pickup {
        took_ms: took.as_secs_f64() * 1000.0,
        server_cpu_ms: (server_after.cpu_seconds - server_before.cpu_seconds) * 1000.0,
        device_cpu_ms: (device_after.cpu_seconds - device_before.cpu_seconds) * 1000.0,
        stored,
        received: device.bytes_received,
    })
}
