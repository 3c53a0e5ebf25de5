//! Several cases' chronologies in one date order (for example for a MAPPA meeting about
//! linked cases). Produced by the server, which checks access to every case and logs the
//! combination on each, with the purpose given here.

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::{CombineRequest, Combined};
use casebook_shared::ids::CaseId;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeSet;

/// The combined chronology page.
#[component]
pub fn CombinedPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let chosen = RwSignal::new(BTreeSet::<CaseId>::new());
    let purpose = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let result = RwSignal::new(None::<Combined>);
    let combine = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let request = CombineRequest {
            cases: chosen.get_untracked().into_iter().collect(),
            purpose: purpose.get_untracked(),
        };
        spawn_local(async move {
            match http::post::<_, Combined>("/api/combined-chronology", &request).await {
                Ok(combined) => result.set(Some(combined)),
                Err(ApiFailure::Offline) => error.set(Some(
                    "Combining chronologies is done by the server, so it needs a connection."
                        .into(),
                )),
                Err(ApiFailure::Refused(message)) => error.set(Some(message)),
                Err(_) => error.set(Some("Sign in again to combine chronologies.".into())),
            }
            busy.set(false);
        });
    };
    view! {
        <p class="no-print"><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"Combined chronology"</h2>
        <Show when=move || result.get().is_none()>
            <form class="card" on:submit=combine id="combine-form">
                <p>"Put the chronologies of linked cases into one date order. This is recorded in the audit log on every case you choose, with your reason."</p>
                {move || error.get().map(|e| view! { <div class="notice error" role="alert" id="combine-error">{e}</div> })}
                <fieldset class="field">
                    <legend>"Cases to combine (choose two or more)"</legend>
                    {move || ctx.cases.get().into_iter().map(|case| {
                        let id = case.id;
                        let input_id = format!("combine-{id}");
                        let label_for = input_id.clone();
                        view! {
                            <label class="check" for=label_for>
                                <input
                                    type="checkbox"
                                    id=input_id
                                    prop:checked=move || chosen.with(|c| c.contains(&id))
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        chosen.update(|c| { if on { c.insert(id); } else { c.remove(&id); } });
                                    }
                                />
                                {format!("{} ({})", case.person_name, case.reference)}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <div class="field">
                    <label for="combine-purpose">"Why they are combined"</label>
                    <input type="text" id="combine-purpose" bind:value=purpose required maxlength="300" />
                </div>
                <div class="actions">
                    <button type="submit" id="combine" disabled=move || busy.get()>
                        {move || if busy.get() { "Combining…" } else { "Combine" }}
                    </button>
                </div>
            </form>
        </Show>
        {move || result.get().map(|combined| view! {
            <table class="copy-table" id="combined-chronology">
                <thead><tr><th scope="col">"Date"</th><th scope="col">"Case"</th><th scope="col">"What happened"</th><th scope="col">"Source"</th></tr></thead>
                <tbody>
                    {combined.entries.into_iter().map(|e| view! {
                        <tr>
                            <td>{e.event_date.clone()}{if e.date_approximate { " (approx.)" } else { "" }}</td>
                            <td>{e.reference.clone()}</td>
                            <td class="entry-what">{e.what_happened.clone()}{e.withheld.then_some(" (withheld from the person)")}</td>
                            <td>{e.source.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <div class="actions no-print">
                <button type="button" class="secondary" on:click=move |_| result.set(None)>"Combine others"</button>
            </div>
        })}
    }
}
