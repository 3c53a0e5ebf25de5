//! For the service manager: out-of-allocation (duty) access to review, with each reason.

use crate::http;
use crate::state::{AppCtx, Page};
use casebook_shared::api::DutyAccessRecord;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The oversight page (needs a connection).
#[component]
pub fn OversightPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let records = RwSignal::new(None::<Result<Vec<DutyAccessRecord>, String>>);
    spawn_local(async move {
        records.set(Some(
            http::get::<Vec<DutyAccessRecord>>("/api/duty-access")
                .await
                .map_err(|_| {
                    "The list can only be seen while online, by the service manager.".to_owned()
                }),
        ));
    });
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"Out-of-allocation access"</h2>
        <p class="hint">"Seniors who opened a case outside their team in the last 90 days, and why. Every view and change they made is in the audit log."</p>
        {move || match records.get() {
            None => view! { <p>"Loading…"</p> }.into_any(),
            Some(Err(message)) => view! { <p class="notice">{message}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <p class="card">"No out-of-allocation access in the last 90 days."</p> }.into_any(),
            Some(Ok(list)) => view! {
                <ul class="case-list" id="duty-access">
                    {list.into_iter().map(|r| view! {
                        <li class="card">
                            <strong>{r.senior_name.clone()}</strong>
                            {format!(" opened {} on {} (until {})", r.case_reference, crate::format::date_time(r.opened_at), crate::format::date_time(r.expires_at))}
                            <p class="entry-what">{r.reason.clone()}</p>
                        </li>
                    }).collect_view()}
                </ul>
            }.into_any(),
        }}
    }
}
