//! Staff accounts. Admins create staff, reset passwords, disable or enable accounts (the last
//! two end the person's sessions and live sync at once). Managers and admins see each person's
//! devices and can report one lost for them. The server checks every request.

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::{DeviceInfo, NewPassword, NewStaff, SetDisabled, StaffRecord};
use casebook_shared::ids::StaffId;
use leptos::prelude::*;
use leptos::task::spawn_local;

fn message_of(e: ApiFailure) -> String {
    match e {
        ApiFailure::Offline => "Account changes need a connection.".into(),
        ApiFailure::Refused(message) => message,
        _ => "Sign in again to manage accounts.".into(),
    }
}

/// The staff page (needs a connection).
#[component]
pub fn StaffPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let staff = RwSignal::new(None::<Result<Vec<StaffRecord>, String>>);
    let teams = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new(None::<String>);
    let is_admin = move || ctx.me.get().is_some_and(|m| m.role == "admin");
    let reload = move || {
        spawn_local(async move {
            staff.set(Some(
                http::get::<Vec<StaffRecord>>("/api/staff")
                    .await
                    .map_err(message_of),
            ));
        })
    };
    reload();
    spawn_local(async move {
        if let Ok(list) = http::get::<Vec<String>>("/api/teams").await {
            teams.set(list);
        }
    });
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"Staff accounts"</h2>
        {move || status.get().map(|s| view! { <p class="notice" role="status" id="staff-status">{s}</p> })}
        <Show when=is_admin>
            <NewAccount teams=teams status=status on_created=Callback::new(move |()| reload()) />
        </Show>
        {move || match staff.get() {
            None => view! { <p>"Loading…"</p> }.into_any(),
            Some(Err(message)) => view! { <p class="notice error">{message}</p> }.into_any(),
            Some(Ok(list)) => view! {
                <ul class="case-list" id="staff-list">
                    {list.into_iter().map(|person| view! {
                        <AccountRow person=person admin=is_admin() status=status on_changed=Callback::new(move |()| reload()) />
                    }).collect_view()}
                </ul>
            }.into_any(),
        }}
    }
}

#[component]
fn NewAccount(
    teams: RwSignal<Vec<String>>,
    status: RwSignal<Option<String>>,
    on_created: Callback<()>,
) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new("practitioner".to_owned());
    let team = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let new = NewStaff {
            username: username.get_untracked(),
            name: name.get_untracked(),
            role: role.get_untracked(),
            team: Some(team.get_untracked()).filter(|t| !t.is_empty()),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match http::post::<_, StaffId>("/api/staff", &new).await {
                Ok(_) => {
                    status.set(Some(format!("Account {} created.", new.username)));
                    for field in [username, name, password, team] {
                        field.set(String::new());
                    }
                    on_created.run(());
                }
                Err(e) => error.set(Some(message_of(e))),
            }
        });
    };
    view! {
        <details class="card">
            <summary>"New account"</summary>
            <form on:submit=submit id="new-account-form">
                {move || error.get().map(|e| view! { <div class="notice error" role="alert" id="new-account-error">{e}</div> })}
                <div class="row">
                    <div class="field">
                        <label for="new-username">"Username"</label>
                        <input type="text" id="new-username" autocapitalize="none" bind:value=username required />
                    </div>
                    <div class="field">
                        <label for="new-name">"Name"</label>
                        <input type="text" id="new-name" bind:value=name required />
                    </div>
                    <div class="field">
                        <label for="new-role">"Role"</label>
                        <select id="new-role" prop:value=move || role.get() on:change=move |ev| role.set(event_target_value(&ev))>
                            {casebook_shared::api::ROLES.iter().map(|r| view! {
                                <option value=*r>{*r}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="new-team">"Team"</label>
                        <span class="hint">"Practitioners and seniors belong to a team."</span>
                        <select id="new-team" prop:value=move || team.get() on:change=move |ev| team.set(event_target_value(&ev))>
                            <option value="">"No team (managers, admins)"</option>
                            {move || teams.get().into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="new-password">"First password"</label>
                        <span class="hint">"At least 8 characters (15 or more is better); common passwords are refused. Give it to the person in a safe way."</span>
                        <input type="password" id="new-password" autocomplete="new-password" bind:value=password required />
                    </div>
                </div>
                <div class="actions">
                    <button type="submit" id="create-account">"Create account"</button>
                </div>
            </form>
        </details>
    }
}

#[component]
fn AccountRow(
    person: StaffRecord,
    admin: bool,
    status: RwSignal<Option<String>>,
    on_changed: Callback<()>,
) -> impl IntoView {
    let resetting = RwSignal::new(false);
    let showing_devices = RwSignal::new(false);
    let devices_of = person.username.clone();
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let username = person.username.clone();
    let toggle = {
        let username = username.clone();
        let disable = !person.disabled;
        move |_| {
            let username = username.clone();
            spawn_local(async move {
                let path = format!("/api/staff/{username}/disabled");
                match http::post::<_, ()>(&path, &SetDisabled { disabled: disable }).await {
                    Ok(()) => {
                        status.set(Some(if disable {
                            format!("{username} is disabled; their sessions have ended.")
                        } else {
                            format!("{username} can sign in again.")
                        }));
                        on_changed.run(());
                    }
                    Err(e) => error.set(Some(message_of(e))),
                }
            });
        }
    };
    let reset = {
        let username = username.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let username = username.clone();
            let new = NewPassword {
                password: password.get_untracked(),
            };
            spawn_local(async move {
                let path = format!("/api/staff/{username}/password");
                match http::post::<_, ()>(&path, &new).await {
                    Ok(()) => {
                        password.set(String::new());
                        resetting.set(false);
                        status.set(Some(format!(
                            "{username}'s password was reset; their sessions have ended."
                        )));
                    }
                    Err(e) => error.set(Some(message_of(e))),
                }
            });
        }
    };
    let field_id = format!("reset-{}", person.username);
    let team = if person.team.is_empty() {
        String::new()
    } else {
        format!(" · {}", person.team)
    };
    view! {
        <li class="card" data-username=person.username.clone()>
            <div class="actions">
                <div class="grow">
                    <strong>{person.name.clone()}</strong>
                    <span class="case-meta">{format!(" {} · {}{}", person.username, person.role, team)}</span>
                    {person.disabled.then(|| view! { <span class="badge withheld">" disabled"</span> })}
                </div>
                <button type="button" class="secondary show-devices" on:click=move |_| showing_devices.update(|d| *d = !*d)>"Devices"</button>
                {admin.then(|| view! {
                    <button type="button" class="secondary reset-password" on:click=move |_| resetting.update(|r| *r = !*r)>"Reset password"</button>
                    <button type="button" class="secondary toggle-account" on:click=toggle.clone()>
                        {if person.disabled { "Enable" } else { "Disable" }}
                    </button>
                })}
            </div>
            <Show when=move || showing_devices.get()>
                <PersonsDevices username=devices_of.clone() status=status />
            </Show>
            {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
            <Show when=move || resetting.get()>
                <form on:submit=reset.clone()>
                    <div class="field">
                        <label for=field_id.clone()>"New password"</label>
                        <input type="password" id=field_id.clone() autocomplete="new-password" bind:value=password required />
                    </div>
                    <div class="actions"><button type="submit">"Set password"</button></div>
                </form>
            </Show>
        </li>
    }
}

/// Someone's devices, each of which can be reported lost (it is refused at once and wipes
/// itself when it next connects).
#[component]
fn PersonsDevices(username: String, status: RwSignal<Option<String>>) -> impl IntoView {
    let devices = RwSignal::new(None::<Result<Vec<DeviceInfo>, String>>);
    let load = {
        let username = username.clone();
        move || {
            let username = username.clone();
            spawn_local(async move {
                devices.set(Some(
                    http::get::<Vec<DeviceInfo>>(&format!("/api/staff/{username}/devices"))
                        .await
                        .map_err(message_of),
                ));
            });
        }
    };
    load();
    view! {
        {move || match devices.get() {
            None => view! { <p>"Loading…"</p> }.into_any(),
            Some(Err(message)) => view! { <p class="notice error">{message}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <p class="hint">"No devices have been used with this account."</p> }.into_any(),
            Some(Ok(list)) => view! {
                <ul class="device-list">
                    {list.into_iter().map(|d| {
                        let load = load.clone();
                        let id = d.id.clone();
                        let report = move |_| {
                            let (id, load) = (id.clone(), load.clone());
                            spawn_local(async move {
                                match http::post::<_, ()>(&format!("/api/devices/{id}/lost"), &()).await {
                                    Ok(()) => {
                                        status.set(Some("The device was reported lost: it is refused now and wipes itself when it next connects.".into()));
                                        load();
                                    }
                                    Err(e) => status.set(Some(message_of(e))),
                                }
                            });
                        };
                        view! {
                            <li class="actions">
                                <span class="grow">
                                    {format!("Device {} · last used {}", &d.id[..8], crate::format::date_time(d.last_seen_at))}
                                    {d.revoked_at.map(|at| format!(" · reported lost {}", crate::format::date_time(at)))}
                                </span>
                                {d.revoked_at.is_none().then(|| view! {
                                    <button type="button" class="danger report-lost" on:click=report>"Report lost"</button>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any(),
        }}
    }
}
