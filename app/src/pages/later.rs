//! The pages not used on a visit, kept out of the app's first download.
//!
//! What a worker uses in a client's home (sign-in and unlock, the case list, a case, its
//! records) is in the first download. The rest (the HRO process, the team's and the
//! manager's pages, staff accounts, devices, the person's copy, combined chronologies, the
//! handover summary) are split points: the build
//! (`cargo xtask build-app`, `xtask/src/split.rs`) moves their code into a module of its own,
//! which the browser fetches the first time one of them opens. The service worker stores
//! that module with the rest of the app when it installs, so they open with no network as
//! every other page does. If it cannot be had (the app opened before the service worker
//! finished, then the network went; or a page still running a build that has since been
//! replaced, which also shows the notice to reload, `components::update_notice`), the page
//! says so and nothing else is affected.
//!
//! Everything here is one module (`seldom`): one download, whichever opens first.

use super::{audit_search, combined, devices, handover, hro, oversight, persons_copy, staff, team};
use crate::state::{AppCtx, Page};
use casebook_shared::ids::CaseId;
use leptos::prelude::*;
use std::future::Future;
use wasm_split_helpers::{SplitLoaderError, wasm_split};

/// The page `view` makes once its module is loaded ("Opening…" until then, seldom seen: the
/// module comes from the device's own cache), or, when the module cannot be had, a notice
/// saying so with the way back to the case list.
pub fn page(view: impl Future<Output = Result<AnyView, NotHere>> + Send + 'static) -> AnyView {
    let ctx = expect_context::<AppCtx>();
    view! {
        <Suspense fallback=|| view! { <p>"Opening…"</p> }>
            {Suspend::new(async move {
                view.await.unwrap_or_else(|NotHere| {
                    view! {
                        <p><a href="#/" id="back-to-cases" on:click=move |ev| { ev.prevent_default(); ctx.go(Page::Cases); }>"← My cases"</a></p>
                        <div class="notice" role="alert" id="not-here">
                            "This page could not be loaded onto this device. Reload Casebook while connected to the network to get it; your records and every other page work as before."
                        </div>
                    }
                    .into_any()
                })
            })}
        </Suspense>
    }
    .into_any()
}

/// The module holding the page could not be fetched.
pub struct NotHere;

impl From<SplitLoaderError> for NotHere {
    fn from(_: SplitLoaderError) -> Self {
        NotHere
    }
}

#[wasm_split(seldom, fallible)]
pub fn devices() -> Result<AnyView, NotHere> {
    Ok(view! { <devices::DevicesPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn oversight() -> Result<AnyView, NotHere> {
    Ok(view! { <oversight::OversightPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn audit_search() -> Result<AnyView, NotHere> {
    Ok(view! { <audit_search::AuditSearchPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn staff() -> Result<AnyView, NotHere> {
    Ok(view! { <staff::StaffPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn persons_copy(id: CaseId) -> Result<AnyView, NotHere> {
    Ok(view! { <persons_copy::PersonsCopyPage id=id /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn combined() -> Result<AnyView, NotHere> {
    Ok(view! { <combined::CombinedPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn handover(id: CaseId) -> Result<AnyView, NotHere> {
    Ok(view! { <handover::HandoverPage id=id /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn team() -> Result<AnyView, NotHere> {
    Ok(view! { <team::TeamPage /> }.into_any())
}

#[wasm_split(seldom, fallible)]
pub fn hro() -> Result<AnyView, NotHere> {
    Ok(view! { <hro::HroPage /> }.into_any())
}
