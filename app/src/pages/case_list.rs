//! The signed-in user's cases.

use crate::state::{AppCtx, Page};
use leptos::prelude::*;

/// The case list.
#[component]
pub fn CaseListPage() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    view! {
        <h2>{move || match ctx.me.get().map(|m| m.role) {
            Some(role) if role == "manager" => "Every case",
            Some(role) if role == "senior" => "My team's cases",
            _ => "My cases",
        }}</h2>
        <Show when=move || { ctx.cases.get().len() > 1 }>
            <p class="actions">
                <a class="button secondary" href=Page::Combined.hash() id="open-combined" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Combined); }>
                    "Combine chronologies of linked cases"
                </a>
            </p>
        </Show>
        <Show
            when=move || !ctx.cases.get().is_empty()
            fallback=|| view! { <p class="card">"No cases are allocated to you yet. When a case is allocated it appears here (you need to be online once to see it)."</p> }
        >
            <ul class="case-list" id="case-list">
                {move || ctx.cases.get().into_iter().map(|case| {
                    let id = case.id;
                    let relation = match case.relation.as_str() {
                        "worker" => String::new(),
                        "co-worker" => format!(" · co-worker (allocated to {})", case.worker_name),
                        "cover" => format!(" · you are covering for {}", case.worker_name),
                        "duty" => format!(" · duty access (allocated to {})", case.worker_name),
                        _ => format!(" · allocated to {}", case.worker_name),
                    };
                    view! {
                        <li>
                            <a
                                href=Page::Case(id).hash()
                                data-case=id.to_string()
                                on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Case(id)); }
                            >
                                <span class="case-name">{case.person_name.clone()}</span>
                                <br />
                                <span class="case-meta">{format!("{} · {}{}", case.reference, case.order_type, relation)}</span>
                            </a>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}
