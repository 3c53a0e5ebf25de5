//! One record (visit note, form, plan, review, ...), drawn from its kind's field table in
//! `casebook_shared::records`. Every change is written to the document on the device as it is
//! made (nothing waits for a save button), merges with co-workers' edits, and syncs when it can.

use crate::random_bytes;
use crate::state::{AppCtx, Page};
use crate::sync_client;
use casebook_shared::ids::DocumentId;
use casebook_shared::records::{self, Field, FieldType, Item, Kind, Record};
use leptos::prelude::*;
use std::collections::BTreeMap;

/// The record page.
#[component]
pub fn RecordPage(
    /// The record's document.
    doc: DocumentId,
) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    // Opening a record is a consultation for the audit log.
    sync_client::record_view(doc);
    let identity = Memo::new(move |_| {
        ctx.revision.track();
        sync_client::read(|core| core.document(doc).and_then(records::identity)).flatten()
    });
    // Once asked for, the completeness check follows the record as it changes (the list
    // shrinks as fields are filled in). It reads the record as the page shows it, which is
    // refreshed just after each change: a check tapped in the same moment as a change shows
    // the answer including it a moment later, rather than a stale "still needed".
    let checked = RwSignal::new(false);
    // Presence: where this person is in the record, sent when it changes and every few
    // seconds; others' presence shown at the top and on the field they are in.
    let section = StoredValue::new(String::from("Opened the record"));
    sync_client::presence(doc, &section.get_value());
    let heartbeat = leptos::prelude::set_interval_with_handle(
        move || sync_client::presence(doc, &section.get_value()),
        std::time::Duration::from_secs(PRESENCE_EVERY_S),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = heartbeat {
            h.clear();
        }
        sync_client::presence(doc, "");
    });
    let now_tick = RwSignal::new(crate::now_ms());
    let ticker = leptos::prelude::set_interval_with_handle(
        move || now_tick.set(crate::now_ms()),
        std::time::Duration::from_secs(2),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    let others = Memo::new(move |_| {
        let now = now_tick.get();
        ctx.presence.with(|list| {
            list.iter()
                .filter(|p| p.doc == doc && now - p.at < PRESENCE_EXPIRES_MS)
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    provide_context(PresenceHere { others, section });
    view! {
        {move || match identity.get() {
            None => view! {
                <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
                <p class="card">"This record is not on this device yet. It arrives as soon as you are online."</p>
            }.into_any(),
            Some((kind, case)) => {
                let case_id = case.parse().ok();
                let record = Memo::new(move |_| {
                    ctx.revision.track();
                    sync_client::read(|core| core.document(doc).map(|am| records::read(am, kind)))
                        .flatten()
                        .unwrap_or_default()
                });
                let check = move |_| checked.set(true);
                // A memo: the notice is redrawn (and announced) only when what is missing
                // changes, not on every keystroke.
                let problems = Memo::new(move |_| checked.get().then(|| records::missing(kind, &record.get())));
                view! {
                    <p>
                        <a href="#/" on:click=move |ev| {
                            ev.prevent_default();
                            match case_id { Some(id) => ctx.go(Page::Case(id)), None => ctx.go(Page::Cases) }
                        }>"← Back to the case"</a>
                    </p>
                    <h2>{kind.title()}</h2>
                    {move || {
                        let list = others.get();
                        (!list.is_empty()).then(|| view! {
                            <p class="notice presence" role="status" id="presence">
                                {list.into_iter().map(|p| format!("{} is here too, in “{}”. ", p.name, p.section)).collect::<String>()}
                                "Your changes and theirs merge as you both type."
                            </p>
                        })
                    }}
                    <p class="hint">"Saved on this device as you type, and synced when you are online. Fields marked * are needed to complete it."</p>
                    <form class="card record-form" id="record-form" on:submit=|ev| ev.prevent_default()>
                        {kind.fields().iter().map(|field| view! { <FieldInput doc=doc kind=kind field=*field record=record /> }).collect_view()}
                        <div class="actions">
                            <button type="button" class="secondary" id="check-record" on:click=check>"Check it is complete"</button>
                        </div>
                        <RecordActions doc=doc kind=kind />
                        {move || problems.get().map(|list| if list.is_empty() {
                            view! { <p class="notice" role="status" id="record-complete">"Everything needed is filled in."</p> }.into_any()
                        } else {
                            view! {
                                <div class="notice error" role="alert" id="record-missing">
                                    <p>"Still needed:"</p>
                                    <ul>{list.into_iter().map(|m| view! { <li>{m.message}</li> }).collect_view()}</ul>
                                </div>
                            }.into_any()
                        })}
                    </form>
                }.into_any()
            }
        }}
    }
}

fn write(
    doc: DocumentId,
    change: impl FnOnce(&mut automerge::AutoCommit) -> Result<(), records::RecordError>,
) {
    let ctx = expect_context::<AppCtx>();
    match sync_client::edit(doc, change) {
        Some(Ok(())) => {}
        Some(Err(e)) => ctx.notice.set(Some(format!("Not saved: {e}."))),
        None => ctx
            .notice
            .set(Some("This record is not on the device.".into())),
    }
}

/// How often presence is repeated while a record is open, in seconds.
const PRESENCE_EVERY_S: u64 = 5;
/// Presence not repeated for this long has gone (the other device closed or lost signal).
const PRESENCE_EXPIRES_MS: f64 = 15_000.0;

/// Others on this record, and where this person is in it (shared with the fields).
#[derive(Clone, Copy)]
struct PresenceHere {
    others: Memo<Vec<crate::state::Presence>>,
    section: StoredValue<String>,
}

/// One field: its input, and (where it applies) "withheld from the person".
#[component]
fn FieldInput(doc: DocumentId, kind: Kind, field: Field, record: Memo<Record>) -> impl IntoView {
    let key = field.key;
    let id = format!("field-{key}");
    let label = if field.required {
        format!("{} *", field.label)
    } else {
        field.label.to_owned()
    };
    let value = move || record.with(|r| r.value(key).to_owned());
    let set = move |v: String| write(doc, move |am| records::set(am, kind, key, &v));
    let input = match field.ty {
        FieldType::Text => view! {
            <label for=id.clone()>{label}</label>
            <textarea id=id.clone() prop:value=value on:input=move |ev| set(event_target_value(&ev))></textarea>
        }
        .into_any(),
        FieldType::Line => view! {
            <label for=id.clone()>{label}</label>
            // Written as typed (like the text areas): a value shown is always a value saved, so a
            // co-worker's change elsewhere never resets half-typed text.
            <input type="text" id=id.clone() prop:value=value on:input=move |ev| set(event_target_value(&ev)) />
        }
        .into_any(),
        FieldType::Date => view! {
            <label for=id.clone()>{label}</label>
            <input type="date" id=id.clone() prop:value=value on:change=move |ev| set(event_target_value(&ev)) />
        }
        .into_any(),
        FieldType::Bool => view! {
            <label class="check" for=id.clone()>
                <input type="checkbox" id=id.clone() prop:checked=move || value() == "true"
                    on:change=move |ev| set(if event_target_checked(&ev) { "true".into() } else { String::new() }) />
                {label}
            </label>
        }
        .into_any(),
        FieldType::Choice(options) => view! {
            <label for=id.clone()>{label}</label>
            <select id=id.clone() prop:value=value on:change=move |ev| set(event_target_value(&ev))>
                <option value="">"Choose…"</option>
                {options.iter().map(|o| view! { <option value=*o>{*o}</option> }).collect_view()}
            </select>
        }
        .into_any(),
        FieldType::Items(item_fields) => view! {
            <ItemList doc=doc kind=kind field=field item_fields=item_fields record=record />
        }
        .into_any(),
    };
    let withhold_id = format!("withhold-{key}");
    let withheld = move || record.with(|r| r.withheld.contains(key));
    let withholdable = !matches!(field.ty, FieldType::Items(_) | FieldType::Bool);
    let here = use_context::<PresenceHere>();
    let label_text = field.label;
    let others_here = move || {
        here.map(|h| {
            h.others
                .get()
                .into_iter()
                .filter(|p| p.section == label_text)
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let focus = move |_| {
        if let Some(h) = here {
            h.section.set_value(label_text.to_owned());
            sync_client::presence(doc, label_text);
        }
    };
    view! {
        <div class="field" data-field=key on:focusin=focus>
            {move || {
                let names = others_here();
                (!names.is_empty()).then(|| view! { <p class="presence-here">{format!("{names} is working here")}</p> })
            }}
            {input}
            {withholdable.then(|| view! {
                <label class="check withhold" for=withhold_id.clone()>
                    <input type="checkbox" id=withhold_id.clone() prop:checked=withheld
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            write(doc, move |am| records::set_withheld(am, kind, key, on));
                        } />
                    "Withhold from the person"
                </label>
            })}
        </div>
    }
}

/// A list field: each item with its own fields and withheld flag; add and remove items.
#[component]
fn ItemList(
    doc: DocumentId,
    kind: Kind,
    field: Field,
    item_fields: &'static [Field],
    record: Memo<Record>,
) -> impl IntoView {
    let key = field.key;
    let items = move || record.with(|r| r.items.get(key).cloned().unwrap_or_default());
    let add = move |_| {
        let id = format!("{:032x}", u128::from_be_bytes(random_bytes()));
        write(doc, move |am| {
            records::set_item(am, kind, key, &id, &BTreeMap::new(), None)
        });
    };
    let label = if field.required {
        format!("{} *", field.label)
    } else {
        field.label.to_owned()
    };
    view! {
        <fieldset class="field items" id=format!("items-{key}")>
            <legend>{label}</legend>
            <For
                each=items
                key=|item: &Item| item.id.clone()
                children=move |item: Item| {
                    let item_id = item.id.clone();
                    let current = move || {
                        record.with(|r| r.items.get(key).and_then(|list| list.iter().find(|i| i.id == item_id).cloned()))
                            .unwrap_or_default()
                    };
                    let item_id = item.id.clone();
                    let remove = {
                        let item_id = item_id.clone();
                        move |_| {
                            let item_id = item_id.clone();
                            write(doc, move |am| records::remove_item(am, kind, key, &item_id));
                        }
                    };
                    let withhold_id = format!("withhold-{key}-{item_id}");
                    // Each control writes only what it changes: the page's copy of the record
                    // is refreshed a moment after each change, and writing back a value read
                    // from it would undo a change made in that moment.
                    let withhold = {
                        let item_id = item_id.clone();
                        move |ev| {
                            let on = event_target_checked(&ev);
                            let item_id = item_id.clone();
                            write(doc, move |am| records::set_item(am, kind, key, &item_id, &BTreeMap::new(), Some(on)));
                        }
                    };
                    view! {
                        <div class="card item">
                            {item_fields.iter().map(|f| {
                                let (f_key, item_id, current) = (f.key, item_id.clone(), current.clone());
                                let input_id = format!("item-{key}-{item_id}-{f_key}");
                                let value = {
                                    let current = current.clone();
                                    move || current().values.get(f_key).cloned().unwrap_or_default()
                                };
                                let on_change = move |ev: leptos::ev::Event| {
                                    let v = event_target_value(&ev);
                                    let item_id = item_id.clone();
                                    let values = BTreeMap::from([(f_key.to_owned(), v)]);
                                    write(doc, move |am| records::set_item(am, kind, key, &item_id, &values, None));
                                };
                                let label = if f.required { format!("{} *", f.label) } else { f.label.to_owned() };
                                let control = match f.ty {
                                    FieldType::Choice(options) => view! {
                                        <select id=input_id.clone() prop:value=value on:change=on_change>
                                            <option value="">"Choose…"</option>
                                            {options.iter().map(|o| view! { <option value=*o>{*o}</option> }).collect_view()}
                                        </select>
                                    }.into_any(),
                                    FieldType::Date => view! { <input type="date" id=input_id.clone() prop:value=value on:change=on_change /> }.into_any(),
                                    FieldType::Text => view! { <textarea id=input_id.clone() prop:value=value on:input=on_change></textarea> }.into_any(),
                                    _ => view! { <input type="text" id=input_id.clone() prop:value=value on:input=on_change /> }.into_any(),
                                };
                                view! { <div class="field"><label for=input_id>{label}</label>{control}</div> }
                            }).collect_view()}
                            <div class="actions">
                                <label class="check grow" for=withhold_id.clone()>
                                    <input type="checkbox" id=withhold_id.clone() prop:checked=move || current().withheld on:change=withhold />
                                    "Withhold from the person"
                                </label>
                                <button type="button" class="secondary" on:click=remove>"Remove"</button>
                            </div>
                        </div>
                    }
                }
            />
            <button type="button" class="secondary add-item" on:click=add>{format!("Add to “{}”", field.label)}</button>
        </fieldset>
    }
}

/// What can be done with a record beyond editing it: submit an identification for a decision,
/// sign off a plan or complete a review (seniors), produce the person's copy. Server calls,
/// so they need a connection; the record itself is already saved.
#[component]
fn RecordActions(doc: DocumentId, kind: Kind) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let message = RwSignal::new(None::<String>);
    let copy = RwSignal::new(None::<casebook_shared::api::RecordCopy>);
    let recipient = RwSignal::new(String::new());
    let senior = move || {
        ctx.me
            .get()
            .is_some_and(|m| m.role == "senior" || m.role == "manager")
    };
    let call = move |path: String, done: &'static str| {
        leptos::task::spawn_local(async move {
            let result = if path == "/api/identifications" {
                crate::http::post::<_, serde_json::Value>(
                    &path,
                    &casebook_shared::api::SubmitIdentification { document: doc },
                )
                .await
            } else {
                crate::http::post::<_, serde_json::Value>(&path, &()).await
            };
            message.set(Some(match result {
                Ok(_) => done.to_owned(),
                Err(crate::http::ApiFailure::Refused(m)) => m,
                Err(_) => "This needs a connection (the record is saved on the device).".to_owned(),
            }));
        });
    };
    let produce = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = casebook_shared::api::PersonsCopyRequest {
            recipient: recipient.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match crate::http::post::<_, casebook_shared::api::RecordCopy>(
                &format!("/api/records/{doc}/persons-copy"),
                &request,
            )
            .await
            {
                Ok(made) => copy.set(Some(made)),
                Err(crate::http::ApiFailure::Refused(m)) => message.set(Some(m)),
                Err(_) => message.set(Some(
                    "The person's copy is produced by the server: it needs a connection.".into(),
                )),
            }
        });
    };
    view! {
        <div class="actions no-print">
            {(kind == Kind::Identification).then(|| view! {
                <button type="button" id="submit-identification" on:click=move |_| call("/api/identifications".into(), "Submitted for a senior's decision.")>
                    "Submit for a senior's decision"
                </button>
            })}
            <Show when=move || senior() && kind == Kind::RiskPlan>
                <button type="button" id="sign-off-plan" on:click=move |_| call(format!("/api/plans/{doc}/sign-off"), "Plan signed off.")>"Sign off the plan"</button>
            </Show>
            <Show when=move || senior() && kind == Kind::Review>
                <button type="button" id="complete-review" on:click=move |_| call(format!("/api/reviews/{doc}/complete"), "Review completed; the next review date is set.")>"Complete the review"</button>
            </Show>
        </div>
        {move || message.get().map(|m| view! { <p class="notice" role="status" id="record-action-status">{m}</p> })}
        <details class="card no-print">
            <summary>"The person's copy"</summary>
            <form on:submit=produce>
                <p class="hint">"Everything not marked “withheld from the person”. Producing it is recorded in the audit log."</p>
                <label for="record-recipient">"Who receives it"</label>
                <input type="text" id="record-recipient" bind:value=recipient required />
                <div class="actions"><button type="submit" id="produce-record-copy">"Produce the copy"</button></div>
            </form>
        </details>
        {move || copy.get().map(|made| view! {
            <article class="print-copy" id="record-copy">
                <h2>{format!("{} for {}", made.title, made.person_name)}</h2>
                <p class="case-meta">{format!("Case {} · produced by {} on {} for {}", made.reference, made.produced_by, crate::format::date_time(made.produced_at), made.recipient)}</p>
                <table class="copy-table">
                    <tbody>
                        {made.lines.into_iter().map(|l| view! { <tr><th scope="row">{l.label}</th><td class="entry-what">{l.value}</td></tr> }).collect_view()}
                    </tbody>
                </table>
                <div class="actions no-print">
                    <button type="button" on:click=move |_| { if let Some(w) = web_sys::window() { let _ = w.print(); } }>"Print or save as PDF"</button>
                </div>
            </article>
        })}
    }
}
