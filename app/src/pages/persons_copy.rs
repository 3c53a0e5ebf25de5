//! The person's copy of a case's chronology: produced by the server (which leaves out every
//! entry withheld from the person and logs the disclosure with its recipient), shown as a
//! print-ready page; the browser's print makes the PDF.

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::{PersonsCopy, PersonsCopyRequest};
use casebook_shared::ids::CaseId;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The person's copy page.
#[component]
pub fn PersonsCopyPage(
    /// The case.
    id: CaseId,
) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let recipient = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let copy = RwSignal::new(None::<PersonsCopy>);
    let case = move || ctx.cases.get().into_iter().find(|c| c.id == id);
    let produce = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let request = PersonsCopyRequest {
            recipient: recipient.get_untracked(),
        };
        spawn_local(async move {
            match http::post::<_, PersonsCopy>(&format!("/api/cases/{id}/persons-copy"), &request)
                .await
            {
                Ok(made) => copy.set(Some(made)),
                Err(ApiFailure::Offline) => error.set(Some(
                    "The person's copy is produced by the server, so it needs a connection.".into(),
                )),
                Err(ApiFailure::Refused(message)) => error.set(Some(message)),
                Err(_) => error.set(Some("Sign in again to produce the copy.".into())),
            }
            busy.set(false);
        });
    };
    let print = move |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.print();
        }
    };
    view! {
        <p class="no-print">
            <a href=Page::Case(id).hash() on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Case(id)); }>"← Back to the case"</a>
        </p>
        {move || match copy.get() {
            None => view! {
                <h2>"The person's copy"</h2>
                <form class="card" on:submit=produce id="persons-copy-form">
                    <p>
                        {move || case().map(|c| format!("A copy of the chronology for {} ({}). ", c.person_name, c.reference))}
                        "Entries marked “withheld from the person” are left out. Producing the copy is recorded in the audit log with who receives it."
                    </p>
                    {move || error.get().map(|e| view! { <div class="notice error" role="alert" id="persons-copy-error">{e}</div> })}
                    <div class="field">
                        <label for="recipient">"Who receives it"</label>
                        <span class="hint" id="recipient-hint">"For example: the person, handed over at a home visit; or their solicitor."</span>
                        <input type="text" id="recipient" aria-describedby="recipient-hint" bind:value=recipient required maxlength="300" />
                    </div>
                    <div class="actions">
                        <button type="submit" id="produce-copy" disabled=move || busy.get()>
                            {move || if busy.get() { "Producing…" } else { "Produce the copy" }}
                        </button>
                    </div>
                </form>
            }.into_any(),
            Some(made) => view! {
                <article class="print-copy" id="persons-copy">
                    <h2>{format!("Chronology for {}", made.person_name)}</h2>
                    <p class="case-meta">
                        {format!("Case {} · produced by {} on {} for {}", made.reference, made.produced_by, crate::format::date_time(made.produced_at), made.recipient)}
                    </p>
                    {if made.entries.is_empty() {
                        view! { <p>"There are no entries to share."</p> }.into_any()
                    } else {
                        view! {
                            <table class="copy-table">
                                <thead><tr><th scope="col">"Date"</th><th scope="col">"What happened"</th><th scope="col">"Source"</th><th scope="col">"Action taken"</th></tr></thead>
                                <tbody>
                                    {made.entries.into_iter().map(|e| view! {
                                        <tr>
                                            <td>{e.event_date.clone()}{if e.date_approximate { " (approx.)" } else { "" }}</td>
                                            <td class="entry-what">{e.what_happened.clone()}</td>
                                            <td>{e.source.clone()}</td>
                                            <td>{e.action_taken.clone()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                    <div class="actions no-print">
                        <button type="button" id="print-copy" on:click=print>"Print or save as PDF"</button>
                    </div>
                </article>
            }.into_any(),
        }}
    }
}
