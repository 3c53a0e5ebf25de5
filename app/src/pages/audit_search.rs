//! For the service manager: searching the s.62 audit log by case, staff member and dates.
//! Every search is itself recorded in the log (by the server).

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::StaffRecord;
use casebook_shared::dates::Date;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use std::collections::HashMap;

const DAY_MS: i64 = 86_400_000;

/// One audit record as the search returns it (the fields shown here).
#[derive(Clone, Debug, Deserialize)]
struct AuditRecord {
    seq: i64,
    operation: String,
    staff_id: String,
    role: String,
    case_id: String,
    basis: String,
    occurred_at: i64,
    received_at: i64,
    recipients: String,
    detail: String,
}

fn operation_label(op: &str) -> &str {
    match op {
        "collection" => "Recorded",
        "alteration" => "Changed",
        "consultation" => "Viewed",
        "disclosure" => "Disclosed",
        "combination" => "Combined",
        "erasure" => "Erased",
        "access-granted" => "Out-of-allocation access",
        "audit-read" => "Audit log searched",
        "refused" => "Refused (needs authority)",
        other => other,
    }
}

fn day_start(text: &str) -> Option<i64> {
    text.parse::<Date>()
        .ok()
        .map(|d| d.days_since_epoch() * DAY_MS)
}

/// The audit search page (needs a connection).
#[component]
pub fn AuditSearchPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let case = RwSignal::new(String::new());
    let staff = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let people = RwSignal::new(Vec::<StaffRecord>::new());
    let results = RwSignal::new(None::<Result<Vec<AuditRecord>, String>>);
    let busy = RwSignal::new(false);
    spawn_local(async move {
        if let Ok(list) = http::get::<Vec<StaffRecord>>("/api/staff").await {
            people.set(list);
        }
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let mut query = vec![
            format!("case={}", case.get_untracked()),
            format!("staff={}", staff.get_untracked()),
        ];
        if let Some(ms) = day_start(&from.get_untracked()) {
            query.push(format!("from={ms}"));
        }
        if let Some(ms) = day_start(&to.get_untracked()) {
            query.push(format!("to={}", ms + DAY_MS)); // the whole of the last day
        }
        busy.set(true);
        spawn_local(async move {
            let found = http::get::<Vec<AuditRecord>>(&format!("/api/audit?{}", query.join("&")))
                .await
                .map_err(|e| match e {
                    ApiFailure::Offline => "The audit log can only be searched online.".to_owned(),
                    ApiFailure::Refused(message) => message,
                    _ => "Sign in again to search the audit log.".to_owned(),
                });
            results.set(Some(found));
            busy.set(false);
        });
    };
    let names = move || -> HashMap<String, String> {
        people
            .get()
            .into_iter()
            .map(|s| (s.id.to_string(), s.name))
            .collect()
    };
    let references = move || -> HashMap<String, String> {
        ctx.cases
            .get()
            .into_iter()
            .map(|c| {
                (
                    c.id.to_string(),
                    format!("{} ({})", c.reference, c.person_name),
                )
            })
            .collect()
    };
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"Audit log"</h2>
        <form class="card" on:submit=search id="audit-form">
            <p class="hint">"Every view, change, disclosure, combination and erasure, newest first (up to 1,000). Your search is recorded in the log too."</p>
            <div class="row">
                <div class="field">
                    <label for="audit-case">"Case"</label>
                    <select id="audit-case" on:change=move |ev| case.set(event_target_value(&ev))>
                        <option value="">"Any case"</option>
                        {move || ctx.cases.get().into_iter().map(|c| view! {
                            <option value=c.id.to_string()>{format!("{} ({})", c.person_name, c.reference)}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="audit-staff">"Staff member"</label>
                    <select id="audit-staff" on:change=move |ev| staff.set(event_target_value(&ev))>
                        <option value="">"Anyone"</option>
                        {move || people.get().into_iter().map(|s| view! {
                            <option value=s.id.to_string()>{format!("{} ({})", s.name, s.role)}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="audit-from">"From"</label>
                    <input type="date" id="audit-from" bind:value=from />
                </div>
                <div class="field">
                    <label for="audit-to">"To"</label>
                    <input type="date" id="audit-to" bind:value=to />
                </div>
            </div>
            <div class="actions">
                <button type="submit" id="audit-search" disabled=move || busy.get()>
                    {move || if busy.get() { "Searching…" } else { "Search" }}
                </button>
            </div>
        </form>
        {move || match results.get() {
            None => ().into_any(),
            Some(Err(message)) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <p class="card">"No records match."</p> }.into_any(),
            Some(Ok(list)) => {
                let (names, references) = (names(), references());
                view! {
                    <p id="audit-count">{format!("{} record(s)", list.len())}</p>
                    <table class="copy-table" id="audit-results">
                        <thead><tr>
                            <th scope="col">"#"</th><th scope="col">"When"</th><th scope="col">"What"</th>
                            <th scope="col">"Who"</th><th scope="col">"Case"</th><th scope="col">"Basis"</th><th scope="col">"Details"</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|r| {
                                let when = if r.occurred_at != r.received_at {
                                    format!("{} (on the device {})", crate::format::date_time(r.received_at), crate::format::date_time(r.occurred_at))
                                } else {
                                    crate::format::date_time(r.received_at)
                                };
                                let who = format!("{} ({})", names.get(&r.staff_id).cloned().unwrap_or(r.staff_id.clone()), r.role);
                                let case = references.get(&r.case_id).cloned().unwrap_or(r.case_id.clone());
                                let details = [r.recipients.as_str(), r.detail.as_str()]
                                    .iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" · ");
                                view! {
                                    <tr>
                                        <td>{r.seq}</td><td>{when}</td><td>{operation_label(&r.operation).to_owned()}</td>
                                        <td>{who}</td><td>{case}</td><td>{r.basis.clone()}</td><td>{details}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }
        }}
    }
}
