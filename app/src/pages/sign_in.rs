//! Sign-in.

use crate::http::{self, ApiFailure};
use crate::state::AppCtx;
use casebook_shared::api::{Me, SignIn};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The sign-in form.
#[component]
pub fn SignInPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let form = SignIn {
            username: username.get_untracked(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match http::post::<_, Me>("/api/session", &form).await {
                Ok(me) => {
                    crate::mark_once("casebook:signed-in");
                    password.set(String::new());
                    // The password also protects the copy of the device key used offline.
                    if let Err(message) = super::signed_in(ctx, me, &form.password).await {
                        error.set(Some(message));
                    }
                }
                Err(ApiFailure::Offline) => error.set(Some("Casebook cannot reach the server. Signing in needs a connection; once signed in you can work offline.".into())),
                Err(ApiFailure::SignedOut) => error.set(Some("The username or password is not right.".into())),
                Err(ApiFailure::Refused(message)) => error.set(Some(message)),
                Err(ApiFailure::Revoked) => error.set(Some("This device has been reported lost.".into())),
            }
            busy.set(false);
        });
    };
    view! {
        <h2>"Sign in"</h2>
        <form class="card" on:submit=submit id="sign-in-form">
            {move || error.get().map(|e| view! { <div class="notice error" role="alert" id="sign-in-error">{e}</div> })}
            <div class="field">
                <label for="username">"Username"</label>
                <input type="text" id="username" autocomplete="username" autocapitalize="none" bind:value=username required />
            </div>
            <div class="field">
                <label for="password">"Password"</label>
                <input type="password" id="password" autocomplete="current-password" bind:value=password required />
            </div>
            <div class="actions">
                <button type="submit" id="sign-in" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </div>
        </form>
    }
}
