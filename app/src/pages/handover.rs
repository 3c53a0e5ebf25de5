//! The handover summary: for anyone picking up a case (cover, duty, a new worker), one screen
//! readable in a minute, drawn only from what is on the device, so it opens with no network.
//! Who the person is, why they are an HRO, the risk summary, the plan's current actions and
//! contingency, the next review, partners to call, the last five chronology entries, the last
//! visit and its follow-up tasks.

use crate::state::{AppCtx, Page};
use crate::sync_client;
use casebook_shared::api::CaseSummary;
use casebook_shared::chronology::{self, ChronologyEntry};
use casebook_shared::ids::CaseId;
use casebook_shared::records::{self, Kind, Record};
use leptos::prelude::*;

/// The facts the summary shows, gathered from the device's documents.
#[derive(Clone, Debug, Default, PartialEq)]
struct Facts {
    identification: Option<Record>,
    plan: Option<Record>,
    partners: Option<Record>,
    last_visit: Option<Record>,
    recent: Vec<ChronologyEntry>,
}

fn gather(case: CaseId, summary: Option<&CaseSummary>) -> Facts {
    let case_text = case.to_string();
    let chronology_doc = summary.map(|s| s.chronology);
    sync_client::read(|core| {
        let mut facts = Facts::default();
        let latest = |current: &Option<Record>, candidate: Record, key: &str| match current {
            Some(existing) if existing.value(key) >= candidate.value(key) => existing.clone(),
            _ => candidate,
        };
        for doc in sync_client::documents_of(core, summary) {
            let Some(am) = core.document(doc) else {
                continue;
            };
            let Some((kind, of)) = records::identity(am) else {
                continue;
            };
            if of != case_text {
                continue;
            }
            let record = records::read(am, kind);
            match kind {
                Kind::Identification => {
                    facts.identification = Some(latest(&facts.identification, record, "lscmi_date"))
                }
                Kind::RiskPlan => facts.plan = Some(latest(&facts.plan, record, "review_date")),
                Kind::Partners => facts.partners = Some(record),
                Kind::VisitNote => {
                    facts.last_visit = Some(latest(&facts.last_visit, record, "date"))
                }
                _ => {}
            }
        }
        if let Some(am) = chronology_doc.and_then(|d| core.document(d)) {
            let mut entries = chronology::entries(am);
            entries.sort_by(|a, b| b.draft.event_date.cmp(&a.draft.event_date));
            entries.truncate(5);
            facts.recent = entries;
        }
        facts
    })
    .unwrap_or_default()
}

fn line(label: &'static str, value: String) -> impl IntoView {
    (!value.is_empty()).then(
        || view! { <p><strong>{label}": "</strong><span class="entry-what">{value}</span></p> },
    )
}

/// The handover summary page.
#[component]
pub fn HandoverPage(
    /// The case.
    id: CaseId,
) -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let case = move || ctx.cases.get().into_iter().find(|c| c.id == id);
    let facts = Memo::new(move |_| {
        ctx.revision.track();
        gather(id, case().as_ref())
    });
    view! {
        <p class="no-print">
            <a href=Page::Case(id).hash() on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Case(id)); }>"← The full case"</a>
        </p>
        {move || match case() {
            None => view! { <p class="card">"This case is not on this device."</p> }.into_any(),
            Some(case) => {
                let f = facts.get();
                let why = case.hro.as_ref().map(|h| {
                    let route = if h.route == "MAPPA" {
                        format!("MAPPA category {} level {}", h.mappa_category, h.mappa_level)
                    } else {
                        h.route.clone()
                    };
                    format!("On the HRO register since {} · {}", h.start_date, route)
                });
                let next_review = case.hro.as_ref().map(|h| h.next_review.clone()).unwrap_or_default();
                let plan = f.plan.clone().unwrap_or_default();
                let actions: Vec<String> = plan.items.get("actions").into_iter().flatten()
                    .filter(|a| a.values.get("status").map(String::as_str) != Some("Done"))
                    .map(|a| {
                        let v = |k: &str| a.values.get(k).cloned().unwrap_or_default();
                        format!("{} — {} ({}, {}, {})", v("area"), v("action"), v("owner"), v("agency"), v("frequency"))
                    })
                    .collect();
                let contingency: Vec<String> = plan.items.get("contingency").into_iter().flatten()
                    .map(|c| {
                        let v = |k: &str| c.values.get(k).cloned().unwrap_or_default();
                        format!("If {}: {} ({})", v("trigger"), v("action"), v("who"))
                    })
                    .collect();
                let partners = f.partners.clone().unwrap_or_default();
                let visit = f.last_visit.clone();
                let identification = f.identification.clone().unwrap_or_default();
                view! {
                    <article id="handover">
                        <h2>{format!("Handover: {}", case.person_name)}</h2>
                        <p class="case-meta">{format!("{} · {} · allocated to {}", case.reference, case.order_type, case.worker_name)}</p>
                        <section class="card" id="handover-why">
                            <h3>"Why this is an HRO case"</h3>
                            <p>{why.unwrap_or_else(|| "Not on the HRO register.".into())}</p>
                            {line("Index offence", identification.value("index_offence").to_owned())}
                            {line("Why the criteria apply", identification.value("part1_reasons").to_owned())}
                            {line("Next review due", next_review)}
                        </section>
                        <section class="card" id="handover-risk">
                            <h3>"Risk"</h3>
                            {line("Who is at risk", plan.value("who_at_risk").to_owned())}
                            {line("What increases the risk", plan.value("increases").to_owned())}
                            {line("What reduces the risk", plan.value("reduces").to_owned())}
                            {f.plan.is_none().then(|| view! { <p>"No Risk Management Plan on this device."</p> })}
                        </section>
                        <section class="card" id="handover-plan">
                            <h3>"Current plan actions"</h3>
                            <ul>{actions.into_iter().map(|a| view! { <li>{a}</li> }).collect_view()}</ul>
                            <h3>"Contingency"</h3>
                            <ul>{contingency.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}</ul>
                        </section>
                        <section class="card" id="handover-partners">
                            <h3>"Partners to call"</h3>
                            <ul>
                                {[("police_named_person", "police_phone", "Police named person"), ("nhs_spoc", "nhs_phone", "NHS SPOC"),
                                  ("solo", "solo_phone", "SOLO"), ("mappa_coordinator", "mappa_phone", "MAPPA coordinator")]
                                    .into_iter()
                                    .filter(|(name, _, _)| !partners.value(name).is_empty())
                                    .map(|(name, phone, role)| {
                                        let number = partners.value(phone).to_owned();
                                        view! {
                                            <li>
                                                {format!("{role}: {}", partners.value(name))}
                                                {(!number.is_empty()).then(|| view! { " · "<a href=format!("tel:{}", number.replace(' ', ""))>{number.clone()}</a> })}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        </section>
                        <section class="card" id="handover-visit">
                            <h3>"Last visit"</h3>
                            {match visit {
                                None => view! { <p>"No visit note on this device."</p> }.into_any(),
                                Some(v) => {
                                    let tasks: Vec<String> = v.items.get("follow_up").into_iter().flatten()
                                        .map(|t| format!("{} ({})", t.values.get("task").cloned().unwrap_or_default(), t.values.get("owner").cloned().unwrap_or_default()))
                                        .collect();
                                    view! {
                                        <p>{format!("{} · {} · {}", v.value("date"), v.value("contact_type"), v.value("outcome"))}</p>
                                        {line("Discussed", v.value("discussed").to_owned())}
                                        <h4>"Open tasks"</h4>
                                        <ul id="handover-tasks">{tasks.into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}</ul>
                                    }.into_any()
                                }
                            }}
                        </section>
                        <section class="card" id="handover-chronology">
                            <h3>"Last five chronology entries"</h3>
                            <ol>
                                {f.recent.into_iter().map(|e| view! {
                                    <li>{format!("{} · {} · {}", e.draft.event_date, e.draft.category, e.draft.what_happened)}</li>
                                }).collect_view()}
                            </ol>
                        </section>
                    </article>
                }.into_any()
            }
        }}
    }
}
