//! The HRO process screen. Workers see open identification sweeps and make nil returns;
//! seniors and the manager also open sweeps, see who has not returned, decide identifications,
//! discuss high risk scores, complete reviews, sign off plans and keep the register. Every
//! action is a server call checked by role and team (this screen needs a connection).

use crate::http::{self, ApiFailure};
use crate::state::{AppCtx, Page};
use casebook_shared::api::{
    Deregister, HroOversight, IdentificationDecision, OpenSweep, ReadyRecord, RegisterEntry,
    SweepStatus, TaskDone,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

fn message_of(e: ApiFailure) -> String {
    match e {
        ApiFailure::Offline => {
            "This needs a connection; your records on the device are safe.".into()
        }
        ApiFailure::Refused(message) => message,
        ApiFailure::SignedOut => "Sign in again to carry on.".into(),
        ApiFailure::Revoked => "This device has been reported lost.".into(),
    }
}

/// Loaded lists.
#[derive(Clone, Default)]
struct Lists {
    sweeps: Vec<SweepStatus>,
    register: Vec<RegisterEntry>,
    oversight: Option<HroOversight>,
}

/// The HRO page.
#[component]
pub fn HroPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let lists = RwSignal::new(None::<Result<Lists, String>>);
    let status = RwSignal::new(None::<String>);
    let is_senior = move || {
        ctx.me
            .get()
            .is_some_and(|m| m.role == "senior" || m.role == "manager")
    };
    let reload = move || {
        spawn_local(async move {
            let senior = ctx
                .me
                .get_untracked()
                .is_some_and(|m| m.role == "senior" || m.role == "manager");
            let loaded = async {
                let sweeps = http::get::<Vec<SweepStatus>>("/api/sweeps").await?;
                let register = http::get::<Vec<RegisterEntry>>("/api/register").await?;
                let oversight = if senior {
                    Some(http::get::<HroOversight>("/api/hro/oversight").await?)
                } else {
                    None
                };
                Ok::<_, ApiFailure>(Lists {
                    sweeps,
                    register,
                    oversight,
                })
            }
            .await
            .map_err(message_of);
            lists.set(Some(loaded));
        });
    };
    reload();
    let done = Callback::new(move |message: String| {
        status.set(Some(message));
        reload();
    });
    view! {
        <p><a href="#/" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← Cases"</a></p>
        <h2>"High Risk Offenders"</h2>
        {move || status.get().map(|s| view! { <p class="notice" role="status" id="hro-status">{s}</p> })}
        <Show when=is_senior>
            <OpenSweepForm done=done />
        </Show>
        {move || match lists.get() {
            None => view! { <p>"Loading…"</p> }.into_any(),
            Some(Err(message)) => view! { <p class="notice error">{message}</p> }.into_any(),
            Some(Ok(l)) => view! {
                <Sweeps sweeps=l.sweeps.clone() done=done />
                {l.oversight.clone().map(|o| view! { <Oversight oversight=o done=done /> })}
                <Register entries=l.register.clone() senior=is_senior() done=done />
            }.into_any(),
        }}
    }
}

fn go_record(doc: casebook_shared::ids::DocumentId) -> impl Fn(leptos::ev::MouseEvent) + Clone {
    move |ev| {
        ev.prevent_default();
        expect_context::<AppCtx>().go(Page::Record(doc));
    }
}

async fn act<B: serde::Serialize>(
    path: String,
    body: B,
    success: String,
    done: Callback<String>,
    error: RwSignal<Option<String>>,
) {
    match http::post::<_, serde_json::Value>(&path, &body).await {
        Ok(_) => done.run(success),
        Err(e) => error.set(Some(message_of(e))),
    }
}

#[component]
fn OpenSweepForm(done: Callback<String>) -> impl IntoView {
    let period = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = OpenSweep {
            team: None,
            period: period.get_untracked(),
            due_on: due.get_untracked(),
        };
        spawn_local(act(
            "/api/sweeps".into(),
            request,
            "Sweep opened: every worker in scope is asked for a return.".into(),
            done,
            error,
        ));
    };
    view! {
        <details class="card">
            <summary>"Open an identification sweep"</summary>
            <form on:submit=submit id="open-sweep-form">
                {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
                <div class="row">
                    <div class="field">
                        <label for="sweep-period">"Period it covers"</label>
                        <input type="text" id="sweep-period" bind:value=period required />
                    </div>
                    <div class="field">
                        <label for="sweep-due">"Returns due by"</label>
                        <input type="date" id="sweep-due" bind:value=due required />
                    </div>
                </div>
                <div class="actions"><button type="submit" id="open-sweep">"Open sweep"</button></div>
            </form>
        </details>
    }
}

#[component]
fn Sweeps(sweeps: Vec<SweepStatus>, done: Callback<String>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    view! {
        <section aria-labelledby="sweeps-heading">
            <h2 id="sweeps-heading">"Identification sweeps"</h2>
            <p class="hint">"Return an identification form for each candidate case (start one from the case), or a nil return if none of your cases is a candidate."</p>
            {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
            {if sweeps.is_empty() {
                view! { <p class="card">"No sweep is open."</p> }.into_any()
            } else {
                sweeps.into_iter().map(|sweep| {
                    let outstanding = sweep.workers.iter().filter(|w| w.returned.is_none()).count();
                    let id = sweep.id.clone();
                    let nil = move |_| {
                        spawn_local(act(format!("/api/sweeps/{id}/nil-return"), (), "Nil return made.".into(), done, error));
                    };
                    view! {
                        <div class="card sweep" data-sweep=sweep.id.clone()>
                            <strong>{format!("{} · {} · due {}", sweep.team, sweep.period, sweep.due_on)}</strong>
                            <p class="case-meta">{format!("{outstanding} return(s) outstanding")}</p>
                            <ul class="sweep-workers">
                                {sweep.workers.into_iter().map(|w| view! {
                                    <li>{format!("{} ({}): {}", w.name, w.team, w.returned.unwrap_or_else(|| "not returned yet".into()))}</li>
                                }).collect_view()}
                            </ul>
                            <button type="button" class="secondary nil-return" on:click=nil>"Make a nil return"</button>
                        </div>
                    }
                }).collect_view().into_any()
            }}
        </section>
    }
}

#[component]
fn Oversight(oversight: HroOversight, done: Callback<String>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let rationale = RwSignal::new(String::new());
    let ready = |list: Vec<ReadyRecord>,
                 action: &'static str,
                 label: &'static str,
                 done: Callback<String>| {
        list.into_iter().map(move |r| {
            let path = format!("/api/{action}");
            let path = path.replace("{doc}", &r.document.to_string());
            let decide = move |_| spawn_local(act(path.clone(), (), format!("{label}: done."), done, error));
            view! {
                <li class="card">
                    <a href=Page::Record(r.document).hash() on:click=go_record(r.document)>{format!("{} ({})", r.person_name, r.reference)}</a>
                    <span class="case-meta">{format!(" · {}", r.summary)}</span>
                    <div class="actions"><button type="button" class="ready-action" on:click=decide>{label}</button></div>
                </li>
            }
        }).collect_view()
    };
    view! {
        <section aria-labelledby="oversight-heading" id="hro-oversight">
            <h2 id="oversight-heading">"For a senior"</h2>
            {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
            <h3>{format!("Identifications to decide ({})", oversight.pending_decisions.len())}</h3>
            {(!oversight.pending_decisions.is_empty()).then(|| view! {
                <div class="field">
                    <label for="decision-rationale">"Rationale for your decision (required)"</label>
                    <input type="text" id="decision-rationale" bind:value=rationale />
                </div>
            })}
            <ul class="case-list" id="pending-decisions">
                {oversight.pending_decisions.into_iter().map(|p| {
                    let decide = move |decision: &'static str| {
                        let path = format!("/api/identifications/{}/decision", p.document);
                        let body = IdentificationDecision { decision: decision.into(), rationale: rationale.get_untracked() };
                        spawn_local(act(path, body, format!("Identification: {decision}."), done, error));
                    };
                    view! {
                        <li class="card">
                            <a href=Page::Record(p.document).hash() on:click=go_record(p.document)>{format!("{} ({})", p.person_name, p.reference)}</a>
                            <span class="case-meta">{format!(" · from {} on {}", p.submitted_by, crate::format::date_time(p.submitted_at))}</span>
                            <div class="actions">
                                <button type="button" class="approve" on:click=move |_| decide("approve")>"Approve"</button>
                                <button type="button" class="secondary" on:click=move |_| decide("more-information")>"Ask for more information"</button>
                                <button type="button" class="secondary" on:click=move |_| decide("decline")>"Decline"</button>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <h3>{format!("High risk scores to discuss ({})", oversight.tasks.len())}</h3>
            <ul class="case-list" id="senior-tasks">
                {oversight.tasks.into_iter().map(|t| {
                    let discussion = RwSignal::new(String::new());
                    let field = format!("discussion-{}", t.id);
                    let id = t.id.clone();
                    let record = move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        let body = TaskDone { discussion: discussion.get_untracked() };
                        spawn_local(act(format!("/api/tasks/{id}/done"), body, "Discussion recorded.".into(), done, error));
                    };
                    view! {
                        <li class="card">
                            <strong>{t.reference.clone()}</strong>{format!(" · {}", t.reason)}
                            <form on:submit=record>
                                <div class="field">
                                    <label for=field.clone()>"What was discussed and agreed"</label>
                                    <input type="text" id=field bind:value=discussion required />
                                </div>
                                <button type="submit">"Record the discussion"</button>
                            </form>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <h3>{format!("Reviews ready to complete ({})", oversight.reviews_ready.len())}</h3>
            <ul class="case-list" id="reviews-ready">{ready(oversight.reviews_ready, "reviews/{doc}/complete", "Complete the review", done)}</ul>
            <h3>{format!("Plans ready to sign off ({})", oversight.plans_ready.len())}</h3>
            <ul class="case-list" id="plans-ready">{ready(oversight.plans_ready, "plans/{doc}/sign-off", "Sign off the plan", done)}</ul>
            <h3>{format!("Overdue reviews ({}) · HROs without a signed plan ({})", oversight.overdue_reviews.len(), oversight.unsigned_plans.len())}</h3>
            <ul>
                {oversight.overdue_reviews.into_iter().map(|r| view! { <li class="overdue">{format!("{} ({}): review was due {}", r.person_name, r.reference, r.next_review)}</li> }).collect_view()}
                {oversight.unsigned_plans.into_iter().map(|r| view! { <li>{format!("{} ({}): no signed Risk Management Plan", r.person_name, r.reference)}</li> }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn Register(entries: Vec<RegisterEntry>, senior: bool, done: Callback<String>) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    view! {
        <section aria-labelledby="register-heading">
            <h2 id="register-heading">"HRO register"</h2>
            {move || error.get().map(|e| view! { <div class="notice error" role="alert">{e}</div> })}
            {if entries.is_empty() {
                view! { <p class="card">"No case you can see is on the register."</p> }.into_any()
            } else {
                view! {
                    <table class="copy-table" id="hro-register">
                        <thead><tr>
                            <th scope="col">"Person"</th><th scope="col">"Route"</th><th scope="col">"Next review"</th>
                            <th scope="col">"Plan"</th><th scope="col">"Since"</th>
                        </tr></thead>
                        <tbody>
                            {entries.into_iter().map(|r| {
                                let route = if r.route == "MAPPA" {
                                    format!("MAPPA category {} level {}", r.mappa_category, r.mappa_level)
                                } else {
                                    r.route.clone()
                                };
                                let flags = [(r.caledonian, "Caledonian"), (r.csogp, "CSOGP")]
                                    .iter().filter(|f| f.0).map(|f| f.1).collect::<Vec<_>>().join(", ");
                                let case = r.case;
                                let reason = RwSignal::new(String::new());
                                let end = move |ev: leptos::ev::SubmitEvent| {
                                    ev.prevent_default();
                                    let body = Deregister { reason: reason.get_untracked() };
                                    spawn_local(act(format!("/api/register/{case}/deregister"), body, "De-registered; the register keeps the history.".into(), done, error));
                                };
                                let field = format!("deregister-{case}");
                                view! {
                                    <tr class=r.review_status.clone()>
                                        <td>
                                            <a href=Page::Case(case).hash() on:click=move |ev| { ev.prevent_default(); expect_context::<AppCtx>().go(Page::Case(case)); }>
                                                {format!("{} ({})", r.person_name, r.reference)}
                                            </a>
                                            {senior.then(|| view! {
                                                <details>
                                                    <summary>"De-register"</summary>
                                                    <form on:submit=end>
                                                        <label for=field.clone()>"Reason"</label>
                                                        <input type="text" id=field.clone() bind:value=reason required />
                                                        <button type="submit" class="danger">"De-register"</button>
                                                    </form>
                                                </details>
                                            })}
                                        </td>
                                        <td>{route}{if flags.is_empty() { String::new() } else { format!(" · {flags}") }}</td>
                                        <td>{r.next_review.clone()}{match r.review_status.as_str() { "overdue" => " (overdue)", "due-soon" => " (due soon)", _ => "" }}</td>
                                        <td>{if r.plan_signed { "signed" } else { "not signed" }}</td>
                                        <td>{r.start_date.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
