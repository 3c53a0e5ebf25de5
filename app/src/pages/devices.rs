//! The person's devices and sessions: end a session, sign out everywhere, report a device
//! lost (it wipes itself the next time it connects).

use crate::http;
use crate::state::{AppCtx, Page};
use casebook_shared::api::{DeviceInfo, SessionInfo};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The devices and sessions page (needs a connection).
#[component]
pub fn DevicesPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let devices = RwSignal::new(None::<Vec<DeviceInfo>>);
    let sessions = RwSignal::new(Vec::<SessionInfo>::new());
    let message = RwSignal::new(None::<String>);
    let load = move || {
        spawn_local(async move {
            match http::get::<Vec<DeviceInfo>>("/api/devices").await {
                Ok(d) => devices.set(Some(d)),
                Err(_) => message.set(Some(
                    "Devices and sessions can only be seen while online.".into(),
                )),
            }
            if let Ok(s) = http::get::<Vec<SessionInfo>>("/api/sessions").await {
                sessions.set(s);
            }
        });
    };
    load();
    let this_device =
        crate::sync_client::read(|core| core.device().to_string()).unwrap_or_default();
    let act = move |path: String, delete: bool, done: &'static str| {
        spawn_local(async move {
            let result = if delete {
                http::delete(&path).await
            } else {
                http::post::<_, ()>(&path, &()).await
            };
            message.set(Some(match result {
                Ok(()) => done.to_owned(),
                Err(_) => "That did not work; check the connection and try again.".to_owned(),
            }));
            load();
        });
    };
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← My cases"</a></p>
        <h2>"Devices and sessions"</h2>
        {move || message.get().map(|m| view! { <div class="notice" role="status">{m}</div> })}
        <section class="card" aria-labelledby="devices-heading">
            <h3 id="devices-heading">"Devices"</h3>
            <p class="hint">"If a tablet or laptop is lost, report it: it is refused at once and wipes Casebook's data the next time it connects."</p>
            <ul class="case-list">
                {move || devices.get().unwrap_or_default().into_iter().map(|d| {
                    let current = d.id == this_device;
                    let path = format!("/api/devices/{}/lost", d.id);
                    view! {
                        <li class="card">
                            <strong>{if current { "This device" } else { "Device" }}</strong>
                            {format!(" {} · first used {} · last used {}", &d.id[..8], crate::format::date_time(d.first_seen_at), crate::format::date_time(d.last_seen_at))}
                            {match d.revoked_at {
                                Some(at) => view! { <p class="badge withheld">{format!("Reported lost {}", crate::format::date_time(at))}</p> }.into_any(),
                                None => view! {
                                    <div class="actions">
                                        <button type="button" class="secondary" on:click=move |_| act(path.clone(), false, "The device was reported lost.")>
                                            "Report lost"
                                        </button>
                                    </div>
                                }.into_any(),
                            }}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="sessions-heading">
            <h3 id="sessions-heading">"Sessions"</h3>
            <ul class="case-list">
                {move || sessions.get().into_iter().map(|s| {
                    let path = format!("/api/sessions/{}", s.id);
                    view! {
                        <li class="card">
                            {format!("{} · signed in {} · last used {}", if s.current { "This session" } else { "Session" }, crate::format::date_time(s.created_at), crate::format::date_time(s.last_seen_at))}
                            {(!s.current).then(|| view! {
                                <div class="actions">
                                    <button type="button" class="secondary" on:click=move |_| act(path.clone(), true, "That session has ended.")>"End this session"</button>
                                </div>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <div class="actions">
                <button type="button" on:click=move |_| act("/api/sessions".into(), true, "Every session has ended, this one too.")>"Sign out everywhere"</button>
            </div>
        </section>
    }
}
