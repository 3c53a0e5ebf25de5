//! One case: its chronology, with adding and editing entries. Works the same offline.

use crate::components::entry_form::EntryForm;
use crate::state::{AppCtx, Page};
use crate::{now_ms, random_bytes, sync_client};
use casebook_shared::api::ActorAuthor;
use casebook_shared::chronology::{
    self, ChronologyEntry, ChronologyError, EntryDraft, FieldError, Recorder,
};
use casebook_shared::dates::Date;
use casebook_shared::ids::{CaseId, DocumentId};
use casebook_shared::records::{self, Kind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;

/// Verified authors of a case's records by actor id: the copy on the device at once, then the
/// server's list when it answers (kept on the device, encrypted, for offline use).
/// `loaded` becomes true once the server has been asked (answered or not).
fn load_authors(case: CaseId, authors: RwSignal<HashMap<String, String>>, loaded: RwSignal<bool>) {
    spawn_local(async move {
        let key = format!("authors/{case}");
        let store = crate::pages::store();
        if let Some(store) = &store
            && let Some(known) = store.get::<Vec<ActorAuthor>>(&key).await
        {
            authors.set(known.into_iter().map(|a| (a.actor, a.name)).collect());
        }
        if let Ok(fresh) =
            crate::http::get::<Vec<ActorAuthor>>(&format!("/api/cases/{case}/authors")).await
        {
            if let Some(store) = &store {
                let _ = store.set(&key, &fresh).await;
            }
            authors.set(fresh.into_iter().map(|a| (a.actor, a.name)).collect());
        }
        loaded.set(true);
    });
}

/// Who wrote an entry, from the verified author of its first change (never from the name the
/// recording device put in the entry).
fn author_of(entry: &ChronologyEntry, authors: &HashMap<String, String>, me: &str) -> String {
    if let Some(name) = authors.get(&entry.author_actor) {
        return name.clone();
    }
    if sync_client::read(|core| core.wrote_with(&entry.author_actor)).unwrap_or(false) {
        return me.to_owned();
    }
    "a colleague (confirmed when this device next syncs)".into()
}

fn save_result(result: Option<Result<(), ChronologyError>>) -> Result<(), Vec<FieldError>> {
    match result {
        Some(Ok(())) => Ok(()),
        Some(Err(ChronologyError::Invalid(problems))) => Err(problems),
        Some(Err(e)) => Err(vec![FieldError {
            field: "what_happened",
            message: format!("Could not save: {e}"),
        }]),
        None => Err(vec![FieldError {
            field: "what_happened",
            message: "This chronology is not on the device yet; connect once to download it."
                .into(),
        }]),
    }
}

/// The case page.
#[component]
pub fn CasePage(
    /// The case to show.
    id: CaseId,
) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let case = move || ctx.cases.get().into_iter().find(|c| c.id == id);
    // The sections below are built once per chronology: a refreshed case list (which comes
    // now and then) must not rebuild them, or a half-filled form in them would be lost.
    let chronology = Memo::new(move |_| {
        ctx.cases
            .with(|cases| cases.iter().find(|c| c.id == id).map(|c| c.chronology))
    });
    let field = move |f: fn(&casebook_shared::api::CaseSummary) -> String| {
        move || case().map(|c| f(&c)).unwrap_or_default()
    };
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← My cases"</a></p>
        {move || match chronology.get() {
            None => view! { <p class="card">"This case is not in your case list on this device."</p> }.into_any(),
            Some(chronology) => view! {
                <h2>{field(|c| c.person_name.clone())}</h2>
                <p class="case-meta">{field(|c| format!("{} · {} · allocated to {}", c.reference, c.order_type, c.worker_name))}</p>
                <p class="actions">
                    <a class="button" id="open-handover" href=Page::Handover(id).hash()
                        on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Handover(id)); }>
                        "Handover summary"
                    </a>
                    <a class="button secondary" id="open-persons-copy" href=Page::PersonsCopy(id).hash()
                        on:click=move |ev| { ev.prevent_default(); ctx.go(Page::PersonsCopy(id)); }>
                        "The person's copy"
                    </a>
                </p>
                <Partners case=id />
                <Records case=id />
                <Chronology case=id doc=chronology />
            }.into_any(),
        }}
    }
}

/// The chronology of one case.
#[component]
fn Chronology(case: CaseId, doc: DocumentId) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let authors = RwSignal::new(HashMap::new());
    let authors_loaded = RwSignal::new(false);
    load_authors(case, authors, authors_loaded);
    // Entries from an author this device has not heard of yet: ask the server again (once
    // per new actor; the server lists an actor as soon as it has stored its changes).
    let asked = StoredValue::new(std::collections::HashSet::<String>::new());
    // Opening the chronology is a consultation for the audit log (kept on the device while
    // offline, uploaded with its time on the next connection).
    sync_client::record_view(doc);
    let adding = RwSignal::new(false);
    let editing = RwSignal::new(None::<String>);
    let entries = Memo::new(move |_| {
        ctx.revision.track();
        sync_client::read(|core| core.document(doc).map(chronology::entries)).flatten()
    });
    Effect::new(move |_| {
        let Some(list) = entries.get() else { return };
        if !authors_loaded.get() {
            return;
        }
        let unknown: Vec<String> = authors.with_untracked(|known| {
            list.iter()
                .map(|e| e.author_actor.clone())
                .filter(|a| !known.contains_key(a))
                .filter(|a| !asked.with_value(|asked| asked.contains(a)))
                .filter(|a| !sync_client::read(|core| core.wrote_with(a)).unwrap_or(false))
                .collect()
        });
        if !unknown.is_empty() {
            asked.update_value(|asked| asked.extend(unknown));
            load_authors(case, authors, authors_loaded);
        }
    });
    let add = Callback::new(move |draft: EntryDraft| {
        let Some(me) = ctx.me.get_untracked() else {
            return Err(Vec::new());
        };
        let recorder = Recorder {
            staff: me.id,
            name: me.name.clone(),
            now_ms: now_ms() as i64,
        };
        let entry_id = chronology::new_entry_id(random_bytes());
        let result = save_result(sync_client::edit(doc, |am| {
            chronology::add_entry(am, &entry_id, &draft, &recorder)
        }));
        if result.is_ok() {
            adding.set(false);
        }
        result
    });
    let today = Date::from_unix_millis(now_ms() as i64).to_string();
    // Whether there is a list to show (none yet, empty, some): the list itself is rebuilt
    // only when this changes, not on every change to an entry.
    let shape = Memo::new(move |_| entries.with(|e| e.as_ref().map(Vec::is_empty)));
    view! {
        <section aria-labelledby="chronology-heading">
            <div class="actions">
                <h2 id="chronology-heading" class="grow">"Chronology"</h2>
                <Show when=move || !adding.get()>
                    <button type="button" id="add-entry" on:click=move |_| adding.set(true)>"Add an entry"</button>
                </Show>
            </div>
            <Show when=move || adding.get()>
                <EntryForm
                    initial=EntryDraft { event_date: today.clone(), ..Default::default() }
                    id_prefix="new-entry".into()
                    save_label="Save entry"
                    on_save=add
                    on_cancel=Callback::new(move |()| adding.set(false))
                />
            </Show>
            {move || match shape.get() {
                None => view! { <p class="card">"This chronology has not downloaded to this device yet. It will as soon as you are online."</p> }.into_any(),
                Some(true) => view! { <p class="card">"No entries yet."</p> }.into_any(),
                Some(false) => view! {
                    <ol class="chronology" id="chronology">
                        // Keyed by the entry and how it reads now: an entry nobody changed keeps
                        // its place and state (an open form) when others change. Its author's
                        // name follows on its own as the device learns it.
                        <For
                            each=move || {
                                entries.get().unwrap_or_default().into_iter().map(|entry| {
                                    (entry_key(&entry), entry)
                                }).collect::<Vec<_>>()
                            }
                            key=|(key, _)| key.clone()
                            children=move |(_, entry)| {
                                let author = {
                                    let entry = entry.clone();
                                    Signal::derive(move || {
                                        let me = ctx.me.get().map(|m| m.name).unwrap_or_default();
                                        authors.with(|a| author_of(&entry, a, &me))
                                    })
                                };
                                view! { <EntryItem case=case doc=doc entry=entry author=author editing=editing /> }
                            }
                        />
                    </ol>
                }.into_any(),
            }}
        </section>
    }
}

/// A chronology row's key: the entry and every field as it reads now, so an entry nobody
/// changed keeps its row (and an open form) while a changed one is drawn afresh.
fn entry_key(entry: &ChronologyEntry) -> String {
    let draft = serde_json::to_string(&entry.draft).unwrap_or_default();
    format!("{}|{draft}", entry.id)
}

/// One entry, shown or being edited.
#[component]
fn EntryItem(
    case: CaseId,
    doc: DocumentId,
    entry: ChronologyEntry,
    author: Signal<String>,
    editing: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = entry.id.clone();
    let is_editing = {
        let id = id.clone();
        move || editing.get().as_deref() == Some(id.as_str())
    };
    let d = entry.draft.clone();
    let impact = d.impact.as_str();
    let recorded_at = entry.recorded_at;
    let recorded = move || {
        let author = author.get();
        if recorded_at > 0 {
            format!(
                "Recorded by {author} on {}",
                Date::from_unix_millis(recorded_at)
            )
        } else {
            format!("Recorded by {author}")
        }
    };
    let save = {
        let id = id.clone();
        Callback::new(move |draft: EntryDraft| {
            let result = save_result(sync_client::edit(doc, |am| {
                chronology::update_entry(am, &id, &draft)
            }));
            if result.is_ok() {
                editing.set(None);
            }
            result
        })
    };
    let start_edit = {
        let id = id.clone();
        move |_| editing.set(Some(id.clone()))
    };
    let form_prefix = format!("edit-{id}");
    let ctx = expect_context::<AppCtx>();
    let entry_id = id.clone();
    view! {
        <li class=impact data-entry=id>
            <Show
                when=is_editing
                fallback={
                    let d = d.clone();
                    let start_edit = start_edit.clone();
                    move || view! {
                        <div class="entry-head">
                            <span class="entry-date">{d.event_date.clone()}{if d.date_approximate { " (approx.)" } else { "" }}</span>
                            <span class="badge">{d.category.clone()}</span>
                            <span class=format!("badge {}", d.impact.as_str())>{d.impact.as_str()}</span>
                            {d.withheld.then(|| view! { <span class="badge withheld">"withheld from the person"</span> })}
                        </div>
                        <p class="entry-what">{d.what_happened.clone()}</p>
                        <p class="entry-foot">"Source: "{d.source.clone()}</p>
                        {(!d.action_taken.is_empty()).then(|| view! { <p class="entry-foot">"Action taken: "{d.action_taken.clone()}</p> })}
                        <div class="actions">
                            <span class="entry-foot grow">{recorded}</span>
                            <button type="button" class="secondary edit-entry" on:click=start_edit.clone()>"Edit"</button>
                        </div>
                        {
                            let entry_id = entry_id.clone();
                            view! {
                                <Show when=move || ctx.me.get().is_some_and(|m| m.role == "manager")>
                                    <Erase case=case entry_id=entry_id.clone() />
                                </Show>
                            }
                        }
                    }
                }
            >
                <EntryForm
                    initial=d.clone()
                    id_prefix=form_prefix.clone()
                    save_label="Save changes"
                    on_save=save
                    on_cancel=Callback::new(move |()| editing.set(None))
                />
            </Show>
        </li>
    }
}

/// A manager erases an entry for good (rebuilding the chronology on the server).
#[component]
fn Erase(case: CaseId, entry_id: String) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let open = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let field = format!("erase-reason-{entry_id}");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let request = casebook_shared::api::ErasureRequest {
            entry_id: entry_id.clone(),
            reason: reason.get_untracked(),
        };
        spawn_local(async move {
            let path = format!("/api/cases/{case}/erasures");
            match crate::http::post::<_, casebook_shared::api::ErasureDone>(&path, &request).await {
                Ok(_) => {
                    open.set(false);
                    ctx.notice.set(Some("The entry was erased and the chronology rebuilt without it. Every device replaces its copy within a few seconds.".into()));
                    crate::pages::refresh(ctx).await;
                }
                Err(crate::http::ApiFailure::Refused(message)) => error.set(Some(message)),
                Err(_) => error.set(Some("Erasing needs a connection.".into())),
            }
            busy.set(false);
        });
    };
    view! {
        <Show
            when=move || open.get()
            fallback=move || view! { <button type="button" class="secondary erase-entry" on:click=move |_| open.set(true)>"Erase…"</button> }
        >
            <form class="card erase-form" on:submit=submit.clone()>
                <p>"Erasing removes this entry and all its earlier versions for good, on the server and on every device. Changes to this chronology still waiting on a device are refused. The audit log records who erased it and why."</p>
                {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
                <div class="field">
                    <label for=field.clone()>"Reason (do not repeat the erased details)"</label>
                    <input type="text" id=field.clone() bind:value=reason required maxlength="300" />
                </div>
                <div class="actions">
                    <button type="submit" class="danger" disabled=move || busy.get()>"Erase for good"</button>
                    <button type="button" class="secondary" on:click=move |_| open.set(false)>"Cancel"</button>
                </div>
            </form>
        </Show>
    }
}

/// Kinds of record a worker starts from the case page.
const NEW_RECORDS: [Kind; 7] = [
    Kind::VisitNote,
    Kind::Identification,
    Kind::RiskPlan,
    Kind::Review,
    Kind::SafetyPlan,
    Kind::ExitQuestionnaire,
    Kind::LearningReview,
];

/// The case's records on this device (visit notes, plans, reviews...), and starting new ones
/// (offline too).
#[component]
fn Records(case: CaseId) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let list = Memo::new(move |_| {
        ctx.revision.track();
        let case_text = case.to_string();
        let cases = ctx.cases.get();
        sync_client::read(|core| {
            let summary = cases.iter().find(|c| c.id == case);
            let mut found: Vec<(DocumentId, Kind, String)> =
                sync_client::documents_of(core, summary)
                    .into_iter()
                    .filter_map(|doc| {
                        let am = core.document(doc)?;
                        let (kind, of_case) = records::identity(am)?;
                        (of_case == case_text && kind != Kind::Partners)
                            .then(|| (doc, kind, records::summary(kind, &records::read(am, kind))))
                    })
                    .collect();
            found.sort_by(|a, b| (a.1, &b.2).cmp(&(b.1, &a.2)));
            found
        })
        .unwrap_or_default()
    });
    let start = move |kind: Kind| {
        let doc = DocumentId::from_random_bytes(random_bytes());
        let creation = casebook_shared::sync::client::Creation {
            doc,
            case,
            kind: kind.as_str().to_owned(),
        };
        let made = sync_client::create(creation, |am| records::start(am, kind, &case.to_string()));
        match made {
            Some(Ok(())) => ctx.go(Page::Record(doc)),
            _ => ctx
                .notice
                .set(Some("The record could not be made on this device.".into())),
        }
    };
    view! {
        <section aria-labelledby="records-heading">
            <h2 id="records-heading">"Records"</h2>
            <div class="actions">
                {NEW_RECORDS.into_iter().map(|kind| view! {
                    <button type="button" class="secondary new-record" data-kind=kind.as_str() on:click=move |_| start(kind)>
                        "New "{kind.title()}
                    </button>
                }).collect_view()}
            </div>
            {move || {
                let items = list.get();
                (!items.is_empty()).then(|| view! {
                    <ul class="case-list" id="records">
                        {items.into_iter().map(|(doc, kind, summary)| view! {
                            <li>
                                <a href=Page::Record(doc).hash() data-record=doc.to_string()
                                    on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Record(doc)); }>
                                    <span class="case-name">{kind.title()}</span>
                                    <br />
                                    <span class="case-meta">{if summary.is_empty() { "Draft".to_owned() } else { summary }}</span>
                                </a>
                            </li>
                        }).collect_view()}
                    </ul>
                })
            }}
        </section>
    }
}

/// The partners to call about the case (police named person, NHS single point of contact,
/// SOLO, MAPPA coordinator), one tap away; kept in the case's partners record.
#[component]
fn Partners(case: CaseId) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let found = Memo::new(move |_| {
        ctx.revision.track();
        let case_text = case.to_string();
        let cases = ctx.cases.get();
        sync_client::read(|core| {
            let summary = cases.iter().find(|c| c.id == case);
            sync_client::documents_of(core, summary)
                .into_iter()
                .find_map(|doc| {
                    let am = core.document(doc)?;
                    match records::identity(am)? {
                        (Kind::Partners, of) if of == case_text => {
                            Some((doc, records::read(am, Kind::Partners)))
                        }
                        _ => None,
                    }
                })
        })
        .flatten()
    });
    let add = move |_| {
        let doc = DocumentId::from_random_bytes(random_bytes());
        let creation = casebook_shared::sync::client::Creation {
            doc,
            case,
            kind: Kind::Partners.as_str().to_owned(),
        };
        if let Some(Ok(())) = sync_client::create(creation, |am| {
            records::start(am, Kind::Partners, &case.to_string())
        }) {
            ctx.go(Page::Record(doc));
        }
    };
    const ROLES: [(&str, &str, &str); 4] = [
        ("police_named_person", "police_phone", "Police named person"),
        ("nhs_spoc", "nhs_phone", "NHS single point of contact"),
        ("solo", "solo_phone", "SOLO"),
        ("mappa_coordinator", "mappa_phone", "MAPPA coordinator"),
    ];
    view! {
        <section class="card" aria-labelledby="partners-heading" id="partners">
            <h2 id="partners-heading">"Partners"</h2>
            {move || match found.get() {
                None => view! {
                    <p class="hint">"No partners recorded for this case yet."</p>
                    <button type="button" class="secondary" id="add-partners" on:click=add>"Record partners"</button>
                }.into_any(),
                Some((doc, record)) => view! {
                    <ul class="partners">
                        {ROLES.iter().filter(|(name, _, _)| !record.value(name).is_empty()).map(|(name, phone, role)| {
                            let number = record.value(phone).to_owned();
                            view! {
                                <li>
                                    <strong>{*role}": "</strong>{record.value(name).to_owned()}
                                    {(!number.is_empty()).then(|| view! {
                                        " · "<a class="button secondary" href=format!("tel:{}", number.replace(' ', ""))>{format!("Call {number}")}</a>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <a href=Page::Record(doc).hash() on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Record(doc)); }>"Edit partners"</a>
                }.into_any(),
            }}
        </section>
    }
}
