//! Opening the records on the device with no network: the person's password unlocks the
//! copy of the data key kept for offline use (see [`crate::unlock`]).

use crate::state::AppCtx;
use crate::unlock::{self, UnlockFailure};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The offline unlock form.
#[component]
pub fn UnlockPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(store) = super::store() else { return };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let typed = password.get_untracked();
        spawn_local(async move {
            match unlock::with_password(&store, &typed).await {
                Ok(()) => {
                    password.set(String::new());
                    super::opened(ctx, store).await;
                }
                Err(UnlockFailure::Refused(message)) => {
                    password.set(String::new());
                    error.set(Some(message));
                }
                Err(other) => error.set(Some(format!("The records could not be opened: {other}."))),
            }
            busy.set(false);
        });
    };
    let try_online = move |_| spawn_local(super::boot(ctx));
    Effect::new(move |_| crate::mark_once("casebook:unlock"));
    view! {
        <h2>"Open your records"</h2>
        <form class="card" on:submit=submit id="unlock-form">
            <p>
                "Casebook cannot reach the server. The records on this device are encrypted; "
                "enter your password to open them and carry on working offline."
            </p>
            {move || error.get().map(|e| view! { <div class="notice error" role="alert" id="unlock-error">{e}</div> })}
            <div class="field">
                <label for="unlock-password">"Password"</label>
                <input type="password" id="unlock-password" autocomplete="current-password" bind:value=password required />
            </div>
            <div class="actions">
                <button type="submit" id="unlock" disabled=move || busy.get()>
                    {move || if busy.get() { "Opening…" } else { "Open records" }}
                </button>
                <button type="button" class="secondary" id="unlock-retry" on:click=try_online>
                    "Try the network again"
                </button>
            </div>
        </form>
    }
}
