//! For seniors (their team) and the manager: workload per worker, absences and cover for a
//! whole caseload in one action, and every case with its allocation, cover, next review and
//! last contact. Server calls, so this screen needs a connection.

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::{
    Absence, AbsenceRequest, BulkCoverCreated, BulkCoverRequest, TeamOverview,
};
use casebook_shared::dates::Date;
use casebook_shared::ids::StaffId;
use leptos::prelude::*;
use leptos::task::spawn_local;

const DAY_MS: i64 = 86_400_000;

fn message_of(e: ApiFailure) -> String {
    match e {
        ApiFailure::Refused(m) => m,
        ApiFailure::Offline => "This needs a connection.".into(),
        _ => "Sign in again to carry on.".into(),
    }
}

/// The team page.
#[component]
pub fn TeamPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let team = RwSignal::new(None::<Result<(TeamOverview, Vec<Absence>), String>>);
    let status = RwSignal::new(None::<String>);
    let reload = move || {
        spawn_local(async move {
            let loaded = async {
                let overview = http::get::<TeamOverview>("/api/team").await?;
                let absences = http::get::<Vec<Absence>>("/api/absences").await?;
                Ok::<_, ApiFailure>((overview, absences))
            }
            .await
            .map_err(message_of);
            team.set(Some(loaded));
        })
    };
    reload();
    // Record an absence, and cover every case of the absent worker in one action.
    let absent = RwSignal::new(String::new());
    let cover = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let planned = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Ok(absent_id), Ok(cover_id)) = (
            absent.get_untracked().parse::<StaffId>(),
            cover.get_untracked().parse::<StaffId>(),
        ) else {
            status.set(Some("Choose the absent worker and who covers.".into()));
            return;
        };
        let Ok(last_day) = until.get_untracked().parse::<Date>() else {
            status.set(Some("Give the last day of the absence.".into()));
            return;
        };
        let starts_at = crate::now_ms() as i64;
        let ends_at = (last_day.days_since_epoch() + 1) * DAY_MS;
        let planned = planned.get_untracked();
        spawn_local(async move {
            let absence = AbsenceRequest {
                staff: absent_id,
                starts_at,
                ends_at,
                planned,
            };
            let cover = BulkCoverRequest {
                absent: absent_id,
                worker: cover_id,
                starts_at,
                ends_at,
                reason: if planned {
                    "Planned absence".into()
                } else {
                    "Unplanned absence".into()
                },
            };
            let result = async {
                http::post::<_, String>("/api/absences", &absence).await?;
                http::post::<_, BulkCoverCreated>("/api/cover/bulk", &cover).await
            }
            .await;
            match result {
                Ok(made) => status.set(Some(format!("Absence recorded; {} case(s) covered until {last_day}. The covering worker's devices receive them now.", made.cases.len()))),
                Err(e) => status.set(Some(message_of(e))),
            }
            reload();
        });
    };
    let duty_reference = RwSignal::new(String::new());
    let duty_reason = RwSignal::new(String::new());
    let open_duty = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (reference, reason) = (duty_reference.get_untracked(), duty_reason.get_untracked());
        spawn_local(async move {
            let result = async {
                let case = http::get::<casebook_shared::ids::CaseId>(&format!(
                    "/api/case-by-reference/{}",
                    reference.trim()
                ))
                .await?;
                http::post::<_, serde_json::Value>(
                    &format!("/api/cases/{case}/duty-access"),
                    &casebook_shared::api::DutyAccessRequest { reason },
                )
                .await?;
                Ok::<_, ApiFailure>(case)
            }
            .await;
            match result {
                Ok(case) => {
                    crate::pages::refresh(ctx).await;
                    ctx.go(Page::Case(case));
                }
                Err(e) => status.set(Some(message_of(e))),
            }
        });
    };
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"Team"</h2>
        <details class="card">
            <summary>"On duty: open a case outside your team"</summary>
            <form on:submit=open_duty id="duty-form">
                <p class="hint">"The reason is recorded and shown to the service manager. The case stays on your device for 12 hours; with no network you can only open cases already on it."</p>
                <div class="row">
                    <div class="field">
                        <label for="duty-reference">"Case reference"</label>
                        <input type="text" id="duty-reference" bind:value=duty_reference required />
                    </div>
                    <div class="field">
                        <label for="duty-reason">"Reason"</label>
                        <input type="text" id="duty-reason" bind:value=duty_reason required />
                    </div>
                </div>
                <button type="submit" id="open-duty">"Open the case"</button>
            </form>
        </details>
        {move || status.get().map(|s| view! { <p class="notice" role="status" id="team-status">{s}</p> })}
        {move || match team.get() {
            None => view! { <p>"Loading…"</p> }.into_any(),
            Some(Err(m)) => view! { <p class="notice error">{m}</p> }.into_any(),
            Some(Ok((overview, absences))) => {
                let workers = overview.workers.clone();
                view! {
                    <section aria-labelledby="workload-heading">
                        <h2 id="workload-heading">"Workload"</h2>
                        <table class="copy-table" id="workload">
                            <thead><tr><th scope="col">"Worker"</th><th scope="col">"Cases"</th><th scope="col">"Covering"</th><th scope="col">"Today"</th></tr></thead>
                            <tbody>
                                {overview.workers.iter().map(|w| view! {
                                    <tr><td>{w.name.clone()}</td><td>{w.cases}</td><td>{w.covering}</td><td>{if w.absent { "absent" } else { "" }}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <section class="card" aria-labelledby="absence-heading">
                        <h2 id="absence-heading">"Absence and cover"</h2>
                        <ul id="absences">
                            {absences.into_iter().map(|a| view! {
                                <li>{format!("{}: {} to {} ({}) · {} of {} case(s) covered", a.name, Date::from_unix_millis(a.starts_at), Date::from_unix_millis(a.ends_at - 1), if a.planned { "planned" } else { "unplanned" }, a.covered, a.cases)}</li>
                            }).collect_view()}
                        </ul>
                        <form on:submit=submit id="cover-form">
                            <div class="row">
                                <div class="field">
                                    <label for="absent-worker">"Absent worker"</label>
                                    <select id="absent-worker" on:change=move |ev| absent.set(event_target_value(&ev))>
                                        <option value="">"Choose…"</option>
                                        {workers.iter().map(|w| view! { <option value=w.staff.to_string()>{w.name.clone()}</option> }).collect_view()}
                                    </select>
                                </div>
                                <div class="field">
                                    <label for="cover-worker">"Covered by"</label>
                                    <select id="cover-worker" on:change=move |ev| cover.set(event_target_value(&ev))>
                                        <option value="">"Choose…"</option>
                                        {workers.iter().map(|w| view! { <option value=w.staff.to_string()>{w.name.clone()}</option> }).collect_view()}
                                    </select>
                                </div>
                                <div class="field">
                                    <label for="absent-until">"Last day of the absence"</label>
                                    <input type="date" id="absent-until" bind:value=until required />
                                </div>
                                <div class="field">
                                    <label class="check" for="absence-planned">
                                        <input type="checkbox" id="absence-planned" bind:checked=planned />
                                        "Planned absence"
                                    </label>
                                </div>
                            </div>
                            <button type="submit" id="cover-all">"Record the absence and cover all their cases"</button>
                        </form>
                    </section>
                    <section aria-labelledby="team-cases-heading">
                        <h2 id="team-cases-heading">"Cases"</h2>
                        <table class="copy-table" id="team-cases">
                            <thead><tr><th scope="col">"Person"</th><th scope="col">"Worker"</th><th scope="col">"Cover"</th><th scope="col">"Next review"</th><th scope="col">"Last contact"</th></tr></thead>
                            <tbody>
                                {overview.cases.into_iter().map(|c| view! {
                                    <tr>
                                        <td>
                                            {format!("{} ({})", c.person_name, c.reference)}
                                            <Allocation case=c.case co_workers=c.co_workers.clone() workers=workers.clone() status=status on_done=Callback::new(move |()| reload()) />
                                        </td>
                                        <td>{c.worker}{(!c.co_workers.is_empty()).then(|| format!(" (co-worker: {})", c.co_workers.iter().map(|w| w.1.clone()).collect::<Vec<_>>().join(", ")))}</td>
                                        <td>{c.cover.unwrap_or_default()}</td>
                                        <td>{c.next_review.unwrap_or_default()}</td>
                                        <td>{c.last_contact.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                }.into_any()
            }
        }}
    }
}

/// Changing a case's allocation: a new allocated worker, or a co-worker added or removed,
/// each with a reason kept in the history.
#[component]
fn Allocation(
    case: casebook_shared::ids::CaseId,
    co_workers: Vec<(StaffId, String)>,
    workers: Vec<casebook_shared::api::TeamWorker>,
    status: RwSignal<Option<String>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let chosen = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let act = move |path: &'static str, done: &'static str| {
        let Ok(worker) = chosen.get_untracked().parse::<StaffId>() else {
            status.set(Some("Choose a worker.".into()));
            return;
        };
        let reason = reason.get_untracked();
        spawn_local(async move {
            let url = format!("/api/cases/{case}/{path}");
            let result = if path == "reallocate" {
                http::post::<_, serde_json::Value>(
                    &url,
                    &casebook_shared::api::ReallocateRequest { worker, reason },
                )
                .await
            } else {
                http::post::<_, serde_json::Value>(
                    &url,
                    &casebook_shared::api::CoWorkerChange { worker, reason },
                )
                .await
            };
            match result {
                Ok(_) => {
                    status.set(Some(done.into()));
                    on_done.run(());
                }
                Err(e) => status.set(Some(message_of(e))),
            }
        });
    };
    let (select_id, reason_id) = (
        format!("allocate-{case}"),
        format!("allocate-reason-{case}"),
    );
    view! {
        <details class="allocation">
            <summary>"Change allocation"</summary>
            <label for=select_id.clone()>"Worker"</label>
            <select id=select_id on:change=move |ev| chosen.set(event_target_value(&ev))>
                <option value="">"Choose…"</option>
                {workers.iter().map(|w| view! { <option value=w.staff.to_string()>{w.name.clone()}</option> }).collect_view()}
                {co_workers.iter().map(|w| view! { <option value=w.0.to_string()>{format!("{} (co-worker)", w.1)}</option> }).collect_view()}
            </select>
            <label for=reason_id.clone()>"Reason (kept in the history)"</label>
            <input type="text" id=reason_id bind:value=reason />
            <div class="actions">
                <button type="button" on:click=move |_| act("reallocate", "Reallocated; the case moves to the new worker's devices now.")>"Allocate to them"</button>
                <button type="button" class="secondary" on:click=move |_| act("co-workers", "Co-worker added.")>"Add as co-worker"</button>
                <button type="button" class="secondary" on:click=move |_| act("co-workers/remove", "Co-worker removed.")>"Remove co-worker"</button>
            </div>
        </details>
    }
}
