//! Catch-up: a device made 200 changes offline across 20 documents and reconnects; the time
//! until the server has acknowledged all of them and a second, connected device has
//! received all of them, and the bytes sent against the encoded size of the changes.

use super::Settings;
use super::fixture::{self, Fixture, SeedDocument};
use super::report::{Report, Run, Target};
use crate::database::TestDatabase;
use crate::device::{NativeDevice, draft};
use anyhow::{Context, bail};
use automerge::ChangeHash;
use casebook_shared::ids::DocumentId;
use casebook_shared::records::Kind;
use std::time::{Duration, Instant};

/// Runs the scenario `settings.runs` times and adds its figures to `report`.
pub async fn bench(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    let documents = settings.size(20, 4);
    let per_document = settings.size(10, 2);
    let database = TestDatabase::on(settings.engine).await?;
    let mut fixture = Fixture::open(&database.url).await?;
    let staff = fixture.staff("bench.catchup", 2).await?;
    let cases = fixture.cases(documents, |_| staff.clone()).await?;
    let mut seeds = Vec::new();
    for case in &cases {
        seeds.push(SeedDocument {
            id: DocumentId(uuid::Uuid::new_v4()),
            case: *case,
            kind: Kind::Chronology,
            author: staff[0],
            am: fixture::chronology(50, staff[0])?,
        });
    }
    fixture.documents(seeds).await?;
    let cookies = fixture.sessions(&staff).await?;
    fixture.db.close().await;
    let server = settings.serve(&database).await?;
    let ws = crate::server::ws_url(&server.base);
    let me = |n: usize| fixture::practitioner(staff[n], &format!("bench.catchup.{}", n + 1));

    for _ in 0..settings.runs {
        let mut writer = NativeDevice::new(me(0));
        writer.connect(&ws, &cookies[0]).await?;
        writer.sync().await?;
        let docs: Vec<DocumentId> = writer.core.documents().collect();
        writer.disconnect().await;
        let mut reader = NativeDevice::new(me(1));
        reader.connect(&ws, &cookies[1]).await?;
        reader.sync().await?;

        // Offline: 200 new entries, as a day of visits in a car park with no signal would.
        let before: Vec<(DocumentId, Vec<ChangeHash>)> = docs
            .iter()
            .map(|d| (*d, writer.document(*d).expect("held").clone().get_heads()))
            .collect();
        for n in 0..per_document {
            for doc in &docs {
                writer
                    .add_entry(*doc, &draft(&fixture::entry_text(n)))
                    .await?;
            }
        }
        let mut expected: Vec<(DocumentId, ChangeHash)> = Vec::new();
        let mut encoded = 0usize;
        for (doc, heads) in &before {
            let mut am = writer.document(*doc).expect("held").clone();
            for change in am.get_changes(heads) {
                encoded += change.raw_bytes().len();
                expected.push((*doc, change.hash()));
            }
        }
        if expected.len() != documents * per_document {
            bail!(
                "made {} changes, expected {}",
                expected.len(),
                documents * per_document
            );
        }

        // The other device has every change once it is at the writer's heads (it cannot hold
        // more). Asked of its heads, not its documents: it keeps a document it has not
        // opened unloaded, and asking for the document would load it inside the timing.
        let mut want: Vec<(DocumentId, Vec<ChangeHash>)> = Vec::new();
        for (doc, _) in &before {
            let heads = writer.core.heads(*doc).context("held")?;
            want.push((*doc, heads));
        }
        let sent_before = writer.bytes_sent;
        let started = Instant::now();
        let receiving = tokio::spawn(async move {
            reader
                .pump_until(Duration::from_secs(60), |d| {
                    want.iter()
                        .all(|(doc, heads)| d.core.heads(*doc).as_ref() == Some(heads))
                })
                .await?;
            anyhow::Ok((started.elapsed(), reader))
        });
        writer.connect(&ws, &cookies[0]).await?;
        writer
            .pump_until(Duration::from_secs(60), |d| {
                d.core.waiting() == 0 && d.core.all_in_step()
            })
            .await
            .context("waiting for the server to acknowledge the offline changes")?;
        let acknowledged = started.elapsed();
        let (received, reader) = receiving.await??;
        // Outside the timing, and once the writer is done: each change is there. Checking
        // it loads the reader's documents (about 130 ms of CPU), which inside the receiving
        // task held up the writer's task queued behind it on the same runtime thread, and
        // with it the `acknowledged` time (in two or three runs of eight on a fifteenth
        // machine, by 100-150 ms).
        for (doc, hash) in &expected {
            let held = reader
                .document(*doc)
                .is_some_and(|am| fixture::has_change(am, hash));
            anyhow::ensure!(held, "the other device lacks a change");
        }
        let sent = writer.bytes_sent - sent_before;

        let mut run = Run::default();
        run.add(
            "acknowledged and received",
            "ms",
            acknowledged.max(received).as_secs_f64() * 1000.0,
            Some(Target::AtMost(100.0)),
        );
        run.add(
            "acknowledged",
            "ms",
            acknowledged.as_secs_f64() * 1000.0,
            None,
        );
        run.add(
            "received by the other device",
            "ms",
            received.as_secs_f64() * 1000.0,
            None,
        );
        run.add(
            "bytes sent / encoded changes",
            "x",
            sent as f64 / encoded as f64,
            Some(Target::AtMost(0.5)),
        );
        run.add("encoded changes", "KB", encoded as f64 / 1024.0, None);
        run.add("bytes sent", "KB", sent as f64 / 1024.0, None);
        report.gather("catch-up", "casebook", settings.engine, run);
        writer.disconnect().await;
    }
    Ok(())
}
