//! App-wide state: signals shared by every page through Leptos context.

use casebook_shared::api::{CaseSummary, Me};
use casebook_shared::ids::{CaseId, DocumentId};
use leptos::prelude::*;

/// Which screen is showing. Mirrored in the URL hash so a reload reopens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Starting up (reading local storage).
    Loading,
    /// Sign-in form.
    SignIn,
    /// Offline: the password opens the records on the device.
    Unlock,
    /// The user's cases.
    Cases,
    /// One case.
    Case(CaseId),
    /// The person's devices and sessions.
    Devices,
    /// The manager's review of out-of-allocation access.
    Oversight,
    /// The manager's search of the audit log.
    Audit,
    /// The admin's account administration.
    Staff,
    /// The person's copy of a case's chronology (print-ready).
    PersonsCopy(CaseId),
    /// Several cases' chronologies in one date order.
    Combined,
    /// One record (visit note, form, plan, review...).
    Record(DocumentId),
    /// The HRO process: sweeps, decisions, the register.
    Hro,
    /// A case's handover summary (for cover staff; works offline).
    Handover(CaseId),
    /// A senior's team: workload, absence and cover, cases.
    Team,
}

impl Page {
    /// The URL hash for this page.
    pub fn hash(self) -> String {
        match self {
            Page::Case(id) => format!("#/case/{id}"),
            Page::PersonsCopy(id) => format!("#/case/{id}/copy"),
            Page::Devices => "#/devices".into(),
            Page::Oversight => "#/oversight".into(),
            Page::Audit => "#/audit".into(),
            Page::Staff => "#/staff".into(),
            Page::Combined => "#/combined".into(),
            Page::Record(doc) => format!("#/record/{doc}"),
            Page::Hro => "#/hro".into(),
            Page::Team => "#/team".into(),
            Page::Handover(id) => format!("#/case/{id}/handover"),
            _ => "#/".into(),
        }
    }

    /// The page a URL hash names (signed-in pages only).
    pub fn from_hash(hash: &str) -> Page {
        match hash {
            "#/devices" => return Page::Devices,
            "#/oversight" => return Page::Oversight,
            "#/audit" => return Page::Audit,
            "#/staff" => return Page::Staff,
            "#/combined" => return Page::Combined,
            "#/hro" => return Page::Hro,
            "#/team" => return Page::Team,
            _ => {}
        }
        if let Some(doc) = hash.strip_prefix("#/record/") {
            return doc.parse().map_or(Page::Cases, Page::Record);
        }
        let Some(rest) = hash.strip_prefix("#/case/") else {
            return Page::Cases;
        };
        if let Some(id) = rest.strip_suffix("/handover") {
            return id.parse().map_or(Page::Cases, Page::Handover);
        }
        match rest.strip_suffix("/copy") {
            Some(id) => id.parse().map_or(Page::Cases, Page::PersonsCopy),
            None => rest.parse().map_or(Page::Cases, Page::Case),
        }
    }
}

/// What the sync badge shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncStatus {
    /// Connected and welcomed by the server.
    pub online: bool,
    /// Changes on this device the server has not confirmed storing.
    pub waiting: usize,
    /// When the server last confirmed storing everything (device time, ms).
    pub last_synced_ms: Option<f64>,
}

/// Signals every component can reach.
#[derive(Clone, Copy)]
pub struct AppCtx {
    /// The signed-in user (also kept on the device, so the app opens offline).
    pub me: RwSignal<Option<Me>>,
    /// The current screen.
    pub page: RwSignal<Page>,
    /// The user's cases (from the server, or the copy on the device).
    pub cases: RwSignal<Vec<CaseSummary>>,
    /// Sync status for the badge.
    pub sync: RwSignal<SyncStatus>,
    /// Bumped whenever a document on the device changes, so views re-read it.
    pub revision: RwSignal<u64>,
    /// A message for the person (errors, warnings), shown at the top.
    pub notice: RwSignal<Option<String>>,
    /// Who else has a record open, and where: live only, never stored.
    pub presence: RwSignal<Vec<Presence>>,
    /// The duty senior rota (kept on the device for offline use).
    pub duty: RwSignal<Vec<casebook_shared::api::DutyDay>>,
}

/// Someone else on a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Presence {
    /// The record.
    pub doc: DocumentId,
    /// Who.
    pub staff: casebook_shared::ids::StaffId,
    /// Their name.
    pub name: String,
    /// Where in the record.
    pub section: String,
    /// When last heard (device time, ms).
    pub at: f64,
}

impl AppCtx {
    /// Fresh signals.
    pub fn new() -> Self {
        Self {
            me: RwSignal::new(None),
            page: RwSignal::new(Page::Loading),
            cases: RwSignal::new(Vec::new()),
            sync: RwSignal::new(SyncStatus::default()),
            revision: RwSignal::new(0),
            notice: RwSignal::new(None),
            presence: RwSignal::new(Vec::new()),
            duty: RwSignal::new(Vec::new()),
        }
    }

    /// Shows `page` and records it in the URL hash.
    pub fn go(&self, page: Page) {
        if let Some(window) = web_sys::window() {
            let _ = window.location().set_hash(&page.hash());
        }
        self.page.set(page);
    }
}

impl Default for AppCtx {
    fn default() -> Self {
        Self::new()
    }
}
