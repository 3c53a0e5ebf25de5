//! The chronology entry form, for adding and for editing an entry.

use casebook_shared::chronology::{CATEGORIES, EntryDraft, FieldError, Impact};
use leptos::prelude::*;

/// A form over `initial`; `on_save` returns the problems to show, or `Ok` to close.
#[component]
pub fn EntryForm(
    /// Values to start from.
    initial: EntryDraft,
    /// Prefix for element ids (unique per form on the page).
    id_prefix: String,
    /// Label of the save button.
    save_label: &'static str,
    /// Called with the filled-in draft.
    on_save: Callback<EntryDraft, Result<(), Vec<FieldError>>>,
    /// Called when the person cancels.
    on_cancel: Callback<()>,
) -> impl IntoView {
    let event_date = RwSignal::new(initial.event_date.clone());
    let approximate = RwSignal::new(initial.date_approximate);
    let what = RwSignal::new(initial.what_happened.clone());
    let source = RwSignal::new(initial.source.clone());
    let impact = RwSignal::new(initial.impact.as_str().to_owned());
    let action = RwSignal::new(initial.action_taken.clone());
    let category = RwSignal::new(if initial.category.is_empty() {
        String::new()
    } else {
        initial.category.clone()
    });
    let withheld = RwSignal::new(initial.withheld);
    let errors = RwSignal::new(Vec::<FieldError>::new());

    let error_for = move |field: &'static str| {
        move || {
            errors
                .get()
                .into_iter()
                .find(|e| e.field == field)
                .map(|e| e.message)
        }
    };
    let id = move |name: &str| format!("{id_prefix}-{name}");
    let (id_date, id_approx, id_what, id_source, id_impact, id_action, id_category, id_withheld) = (
        id("date"),
        id("approximate"),
        id("what"),
        id("source"),
        id("impact"),
        id("action"),
        id("category"),
        id("withheld"),
    );

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let draft = EntryDraft {
            event_date: event_date.get_untracked(),
            date_approximate: approximate.get_untracked(),
            what_happened: what.get_untracked(),
            source: source.get_untracked(),
            impact: Impact::parse(&impact.get_untracked()),
            action_taken: action.get_untracked(),
            category: category.get_untracked(),
            withheld: withheld.get_untracked(),
        };
        match on_save.run(draft) {
            Ok(()) => errors.set(Vec::new()),
            Err(problems) => errors.set(problems),
        }
    };

    let field_class = move |field: &'static str| {
        move || {
            if error_for(field)().is_some() {
                "field has-error"
            } else {
                "field"
            }
        }
    };

    view! {
        <form class="card entry-form" on:submit=submit novalidate>
            <Show when=move || !errors.get().is_empty()>
                <div class="notice error" role="alert">"Some details are missing or need a change: see the fields marked below."</div>
            </Show>
            <div class="row">
                <div class=field_class("event_date")>
                    <label for=id_date.clone()>"Date of the event"</label>
                    <input type="date" id=id_date.clone() bind:value=event_date required />
                    <p class="field-error">{error_for("event_date")}</p>
                </div>
                <div class="field">
                    <label class="check" for=id_approx.clone()>
                        <input type="checkbox" id=id_approx.clone() bind:checked=approximate />
                        "The date is approximate"
                    </label>
                </div>
            </div>
            <div class=field_class("what_happened")>
                <label for=id_what.clone()>"What happened"</label>
                <span class="hint">"Brief and factual."</span>
                <textarea id=id_what.clone() bind:value=what required></textarea>
                <p class="field-error">{error_for("what_happened")}</p>
            </div>
            <div class="row">
                <div class=field_class("source")>
                    <label for=id_source.clone()>"Source"</label>
                    <span class="hint">"The person or agency it came from."</span>
                    <input type="text" id=id_source.clone() bind:value=source required />
                    <p class="field-error">{error_for("source")}</p>
                </div>
                <div class=field_class("category")>
                    <label for=id_category.clone()>"Category"</label>
                    <span class="hint">"Choose the closest."</span>
                    <select id=id_category.clone() bind:value=category>
                        <option value="">"Choose a category"</option>
                        {CATEGORIES.iter().map(|c| view! { <option value=*c>{*c}</option> }).collect_view()}
                    </select>
                    <p class="field-error">{error_for("category")}</p>
                </div>
                <div class="field">
                    <label for=id_impact.clone()>"Impact"</label>
                    <span class="hint">"On risk or on the person."</span>
                    <select id=id_impact.clone() bind:value=impact>
                        {Impact::ALL.iter().map(|i| view! { <option value=i.as_str()>{i.as_str()}</option> }).collect_view()}
                    </select>
                </div>
            </div>
            <div class=field_class("action_taken")>
                <label for=id_action.clone()>"Action taken"</label>
                <textarea id=id_action.clone() bind:value=action></textarea>
                <p class="field-error">{error_for("action_taken")}</p>
            </div>
            <div class="field">
                <label class="check" for=id_withheld.clone()>
                    <input type="checkbox" id=id_withheld.clone() bind:checked=withheld />
                    "Withhold from the person's copy (could put others at risk)"
                </label>
            </div>
            <div class="actions">
                <button type="submit" class="save-entry">{save_label}</button>
                <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
