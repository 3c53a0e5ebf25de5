//! The signed-in user's cases.

use crate::state::{AppCtx, Page};
use crate::sync_client;
use casebook_shared::ids::DocumentId;
use casebook_shared::records;
use leptos::prelude::*;

/// The case list.
#[component]
pub fn CaseListPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    // Which cases are ready to open with no network: every record of the case is written
    // to the device's storage and in step with the server (records arrive in the background after sign-in
    // and whenever a case is allocated or covered). The case list names each case's
    // records, so a case whose visit notes have not arrived yet is not counted ready on its
    // chronology alone, and the check is one look per record. This runs after every message
    // while a caseload arrives: reading each record's case out of the record itself (as a
    // list kept from an older version still needs) made a cover worker's pickup of 1,100
    // records take seconds longer with the list on screen.
    let ready = Memo::new(move |_| {
        ctx.revision.track();
        ctx.sync.track();
        let cases = ctx.cases.get();
        let mut of_case: std::collections::HashMap<String, Vec<DocumentId>> = Default::default();
        if cases.iter().any(|c| c.records.is_empty()) {
            sync_client::read(|core| {
                for doc in core.documents().collect::<Vec<_>>() {
                    if let Some((_, case)) = core.document(doc).and_then(records::identity) {
                        of_case.entry(case).or_default().push(doc);
                    }
                }
            });
        }
        sync_client::with_ready_check(|ready| {
            cases
                .iter()
                .filter(|c| {
                    ready(c.chronology)
                        && c.records.iter().all(|d| ready(*d))
                        && of_case
                            .get(&c.id.to_string())
                            .is_none_or(|docs| docs.iter().all(|d| ready(*d)))
                })
                .map(|c| c.id)
                .collect::<std::collections::HashSet<_>>()
        })
        .unwrap_or_default()
    });
    // When the list first shows cases (`cargo xtask bench` times the offline open by it),
    // and when every case is first ready offline (the bench's cover pickup in Chromium).
    Effect::new(move |_| {
        let total = ctx.cases.get().len();
        if total > 0 {
            crate::mark_once("casebook:case-list");
            if ready.get().len() == total {
                crate::mark_once("casebook:all-ready");
            }
        }
    });
    view! {
        <h2>{move || match ctx.me.get().map(|m| m.role) {
            Some(role) if role == "manager" => "Every case",
            Some(role) if role == "senior" => "My team's cases",
            _ => "My cases",
        }}</h2>
        {move || {
            let today = casebook_shared::dates::Date::from_unix_millis(crate::now_ms() as i64).to_string();
            ctx.duty.get().into_iter().find(|d| d.day == today).map(|d| view! {
                <p class="card duty" id="duty-senior">
                    <strong>"Duty senior today: "</strong>{d.name.clone()}" · "
                    <a class="button secondary" href=format!("tel:{}", d.phone.replace(' ', ""))>{format!("Call {}", d.phone)}</a>
                </p>
            })
        }}
        <Show when=move || !ctx.cases.get().is_empty()>
            {move || {
                let (done, total) = (ready.get().len(), ctx.cases.get().len());
                view! {
                    <p class="offline-progress" id="offline-progress">
                        <label for="offline-bar">{format!("{done} of {total} cases ready offline")}</label>
                        <progress id="offline-bar" max=total value=done></progress>
                    </p>
                }
            }}
        </Show>
        <Show when=move || { ctx.cases.get().len() > 1 }>
            <p class="actions">
                <a class="button secondary" href=Page::Combined.hash() id="open-combined" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Combined); }>
                    "Combine chronologies of linked cases"
                </a>
            </p>
        </Show>
        <Show
            when=move || !ctx.cases.get().is_empty()
            fallback=|| view! { <p class="card">"No cases are allocated to you yet. When a case is allocated it appears here (you need to be online once to see it)."</p> }
        >
            <ul class="case-list" id="case-list">
                {move || ctx.cases.get().into_iter().map(|case| {
                    let id = case.id;
                    let relation = match case.relation.as_str() {
                        "worker" => String::new(),
                        "co-worker" => format!(" · co-worker (allocated to {})", case.worker_name),
                        "cover" => format!(" · you are covering for {}", case.worker_name),
                        "duty" => format!(" · duty access (allocated to {})", case.worker_name),
                        _ => format!(" · allocated to {}", case.worker_name),
                    };
                    view! {
                        <li>
                            <a
                                href=Page::Case(id).hash()
                                data-case=id.to_string()
                                on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Case(id)); }
                            >
                                <span class="case-name">{case.person_name.clone()}</span>
                                <br />
                                <span class="case-meta">{format!("{} · {}{}", case.reference, case.order_type, relation)}</span>
                                {move || if ready.with(|r| r.contains(&id)) {
                                    view! { <span class="badge ready">" ready offline"</span> }.into_any()
                                } else {
                                    view! { <span class="badge">" downloading…"</span> }.into_any()
                                }}
                            </a>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}
