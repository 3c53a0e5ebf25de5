//! The sync status, always visible in the app bar: online or offline, changes waiting, and
//! when everything was last saved on the server.

use crate::state::AppCtx;
use leptos::prelude::*;

/// The badge.
#[component]
pub fn SyncBadge() -> impl IntoView {
    let ctx = expect_context::<AppCtx>();
    let text = move || {
        let s = ctx.sync.get();
        let state = if s.online { "Online" } else { "Offline" };
        let detail = match (s.waiting, s.last_synced_ms) {
            (0, Some(ms)) if s.online => {
                format!("all changes saved · {}", crate::format::clock(ms))
            }
            (0, _) if s.online => "syncing…".to_owned(),
            (0, _) => "no changes waiting".to_owned(),
            (1, _) => "1 change waiting".to_owned(),
            (n, _) => format!("{n} changes waiting"),
        };
        (state, detail)
    };
    view! {
        <div
            id="sync-status"
            class=move || if ctx.sync.get().online { "sync-status online" } else { "sync-status offline" }
            role="status"
            aria-live="polite"
        >
            <span class="dot" aria-hidden="true"></span>
            <span class="state">{move || text().0}</span>
            <span class="detail">{move || text().1}</span>
        </div>
    }
}
