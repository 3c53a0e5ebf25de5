//! JSON types of the HTTP API (`/api/...`), shared by the server and the app.

use crate::ids::{CaseId, DocumentId, StaffId};
use serde::{Deserialize, Serialize};

/// `POST /api/session`: sign in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignIn {
    /// The staff member's username.
    pub username: String,
    /// Their password.
    pub password: String,
}

/// `GET /api/me` and the answer to a sign-in: who is signed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    /// Staff id.
    pub id: StaffId,
    /// Username used to sign in.
    pub username: String,
    /// Display name.
    pub name: String,
    /// `practitioner`, `senior`, `manager` or `admin`.
    pub role: String,
    /// Name of the staff member's team.
    pub team: String,
}

/// One row of `GET /api/cases`: a case the signed-in user may open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    /// The case.
    pub id: CaseId,
    /// The person's name.
    pub person_name: String,
    /// Case reference shown to staff (for example `CJ-2026-0042`).
    pub reference: String,
    /// Order or licence the person is on.
    pub order_type: String,
    /// The allocated worker's name.
    pub worker_name: String,
    /// The basis on which the signed-in user may open the case: `worker`, `co-worker`,
    /// `cover`, `senior`, `manager` or `duty`.
    pub relation: String,
    /// The case's chronology document.
    pub chronology: DocumentId,
    /// Every record (document) of the case the user's device syncs, the chronology among
    /// them: the case is ready offline once each is on the device and in step. Empty in a
    /// list kept from before the server sent it.
    #[serde(default)]
    pub records: Vec<DocumentId>,
    /// Its HRO registration, if it is on the register (kept with the case list on the device,
    /// so the handover summary shows it offline).
    #[serde(default)]
    pub hro: Option<HroStatus>,
}

/// A case's place on the HRO register, as the case list carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HroStatus {
    /// `MAPPA`, `MARS` or `In-house`.
    pub route: String,
    /// MAPPA category ("" if not MAPPA).
    pub mappa_category: String,
    /// MAPPA level ("" if not MAPPA).
    pub mappa_level: String,
    /// Registered from.
    pub start_date: String,
    /// Next review due.
    pub next_review: String,
}

/// The body of every error answer from the HTTP API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable code (`unauthorised`, `invalid`, ...).
    pub code: String,
    /// A sentence for the person using the app.
    pub message: String,
}

/// `POST /api/cases/{case}/duty-access`: a senior opens a case outside their team.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DutyAccessRequest {
    /// Why (required; recorded and shown to the manager).
    pub reason: String,
}

/// `POST /api/cases/{case}/reallocate`: a senior (of the case's team) or the manager gives
/// the case to another worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReallocateRequest {
    /// The new allocated worker.
    pub worker: StaffId,
    /// Why (required, kept in the history).
    pub reason: String,
}

/// `POST /api/cases/{case}/cover`: a senior or the manager asks a worker to cover a case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoverRequest {
    /// The covering worker.
    pub worker: StaffId,
    /// Start (Unix ms, inclusive).
    pub starts_at: i64,
    /// End (Unix ms, exclusive).
    pub ends_at: i64,
    /// Why (required).
    pub reason: String,
}

/// Answer to creating a cover assignment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoverCreated {
    /// The assignment's id (to end it early with `POST /api/cover/{id}/end`).
    pub id: String,
}

/// One out-of-allocation (duty) access, as `GET /api/duty-access` lists it for managers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DutyAccessRecord {
    /// The senior who opened the case.
    pub senior_name: String,
    /// The case reference.
    pub case_reference: String,
    /// The reason they gave.
    pub reason: String,
    /// Opened at (Unix ms).
    pub opened_at: i64,
    /// Access ends at (Unix ms).
    pub expires_at: i64,
}

/// `POST /api/devices/{id}/key`: the key that unwraps the device's data key, released only to
/// its owner's live session while the device is not revoked (see `docs/security.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceKey {
    /// 32 random bytes, made by the server on the first request for this device.
    pub key: Vec<u8>,
}

/// One row of `GET /api/cases/{case}/authors`: a verified author of changes to the case's
/// records (the server stored changes from this actor only when its registered user sent them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorAuthor {
    /// Automerge actor id, hex.
    pub actor: String,
    /// The staff member it is registered to.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
}

/// `POST /api/cases/{case}/persons-copy`: the person's copy of the chronology (a disclosure).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersonsCopyRequest {
    /// Who receives it (for example "The person, handed over at a home visit"). Required;
    /// recorded in the audit log.
    pub recipient: String,
}

/// One entry as it appears in a copy or a combined chronology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyEntry {
    /// Case reference (in a combined chronology; the case's own in a person's copy).
    pub reference: String,
    /// When it happened (`YYYY-MM-DD`).
    pub event_date: String,
    /// The date is approximate.
    pub date_approximate: bool,
    /// Category.
    pub category: String,
    /// What happened.
    pub what_happened: String,
    /// Source.
    pub source: String,
    /// Action taken.
    pub action_taken: String,
    /// Withheld from the person (never present in a person's copy).
    pub withheld: bool,
}

/// The person's copy, produced by the server from its own merged record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonsCopy {
    /// The person's name.
    pub person_name: String,
    /// Case reference.
    pub reference: String,
    /// Who it was produced for.
    pub recipient: String,
    /// Who produced it.
    pub produced_by: String,
    /// When (Unix ms).
    pub produced_at: i64,
    /// The entries not withheld from the person, by date.
    pub entries: Vec<CopyEntry>,
}

/// `POST /api/combined-chronology`: the chronologies of several cases in one date order (a
/// combination), for example for a MAPPA meeting about linked cases.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CombineRequest {
    /// The cases (two or more, each one the user may open).
    pub cases: Vec<CaseId>,
    /// Why they are combined. Required; recorded in the audit log.
    pub purpose: String,
}

/// The combined chronology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    /// Every entry of every case, by date.
    pub entries: Vec<CopyEntry>,
}

/// `POST /api/cases/{case}/erasures`: a manager erases one chronology entry for good.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErasureRequest {
    /// The entry's id.
    pub entry_id: String,
    /// Why (required; recorded in the audit log, so it must not repeat the erased content).
    pub reason: String,
}

/// The answer to an erasure: the chronology's new document (its old lineage is refused).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErasureDone {
    /// The rebuilt chronology.
    pub chronology: DocumentId,
}

/// The roles an account can have.
pub const ROLES: [&str; 4] = ["practitioner", "senior", "manager", "admin"];

/// One account, as `GET /api/staff` lists it (admins and managers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRecord {
    /// Staff id.
    pub id: StaffId,
    /// Username.
    pub username: String,
    /// Name.
    pub name: String,
    /// `practitioner`, `senior`, `manager` or `admin`.
    pub role: String,
    /// Team name (empty for service-wide roles).
    pub team: String,
    /// The account is disabled.
    pub disabled: bool,
}

/// `POST /api/staff` (admins): a new account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewStaff {
    /// Username (letters, digits, dots, dashes, underscores).
    pub username: String,
    /// The person's name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Team name (required for practitioners and seniors).
    pub team: Option<String>,
    /// First password (the rules in `docs/security.md`).
    pub password: String,
}

/// `POST /api/staff/{username}/password` (admins): a new password; ends the person's sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewPassword {
    /// The new password.
    pub password: String,
}

/// `POST /api/staff/{username}/disabled` (admins): disable or enable an account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetDisabled {
    /// Disable (true) or enable (false).
    pub disabled: bool,
}

/// One of the signed-in user's devices, as `GET /api/devices` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// First connection (Unix ms).
    pub first_seen_at: i64,
    /// Last connection (Unix ms).
    pub last_seen_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// One of the signed-in user's sessions, as `GET /api/sessions` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// A public id for the session (a prefix of the token's hash, never the token).
    pub id: String,
    /// Signed in at (Unix ms).
    pub created_at: i64,
    /// Last used (Unix ms).
    pub last_seen_at: i64,
    /// This is the session making the request.
    pub current: bool,
}

// --- The HRO process -------------------------------------------------------------------

/// `POST /api/sweeps`: a senior (for their team) or the manager (a team, or every team)
/// opens an identification sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpenSweep {
    /// Team name; none: every team (manager only).
    pub team: Option<String>,
    /// The period it covers (for example "October to December 2026").
    pub period: String,
    /// Returns due by (`YYYY-MM-DD`).
    pub due_on: String,
}

/// One worker's part in a sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepWorker {
    /// The worker.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
    /// Their team.
    pub team: String,
    /// `None`: not returned yet; else what they returned ("nil return", "2 forms").
    pub returned: Option<String>,
}

/// An open sweep and who has returned (`GET /api/sweeps`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepStatus {
    /// Sweep id.
    pub id: String,
    /// Team name, or "Every team".
    pub team: String,
    /// Period.
    pub period: String,
    /// Due by.
    pub due_on: String,
    /// Every worker in scope.
    pub workers: Vec<SweepWorker>,
}

/// `POST /api/identifications`: a worker submits a completed identification form for a
/// senior's decision (into a sweep, when one is open for their team).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitIdentification {
    /// The form's document.
    pub document: DocumentId,
}

/// `POST /api/identifications/{doc}/decision`: a senior decides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdentificationDecision {
    /// `approve`, `decline` or `more-information`.
    pub decision: String,
    /// Why (required).
    pub rationale: String,
}

/// One case on the HRO register (`GET /api/register`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    /// The case.
    pub case: CaseId,
    /// Case reference.
    pub reference: String,
    /// The person's name.
    pub person_name: String,
    /// Team.
    pub team: String,
    /// `MAPPA`, `MARS` or `In-house`.
    pub route: String,
    /// MAPPA category ("" if not MAPPA).
    pub mappa_category: String,
    /// MAPPA level ("" if not MAPPA).
    pub mappa_level: String,
    /// On the Caledonian programme.
    pub caledonian: bool,
    /// On CSOGP.
    pub csogp: bool,
    /// Registered from.
    pub start_date: String,
    /// Next review due.
    pub next_review: String,
    /// `scheduled`, `due-soon` or `overdue` (today, on the server).
    pub review_status: String,
    /// A Risk Management Plan has been signed off by a senior.
    pub plan_signed: bool,
}

/// `POST /api/register/{case}/deregister`: a senior ends a registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deregister {
    /// Why (required).
    pub reason: String,
}

/// An identification waiting for a senior's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDecision {
    /// The form.
    pub document: DocumentId,
    /// The case.
    pub case: CaseId,
    /// Case reference.
    pub reference: String,
    /// The person's name.
    pub person_name: String,
    /// Who submitted it.
    pub submitted_by: String,
    /// When (Unix ms).
    pub submitted_at: i64,
}

/// A case a senior must discuss (a high risk score).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeniorTask {
    /// Task id.
    pub id: String,
    /// The case.
    pub case: CaseId,
    /// Case reference.
    pub reference: String,
    /// Why.
    pub reason: String,
    /// Raised (Unix ms).
    pub created_at: i64,
}

/// `POST /api/tasks/{id}/done`: the senior records the discussion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDone {
    /// What was discussed and agreed (required).
    pub discussion: String,
}

/// What seniors and the manager must act on (`GET /api/hro/oversight`), from the server's
/// projections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HroOversight {
    /// Registered cases whose review is overdue.
    pub overdue_reviews: Vec<RegisterEntry>,
    /// Registered cases without a signed Risk Management Plan.
    pub unsigned_plans: Vec<RegisterEntry>,
    /// Identifications waiting for a decision.
    pub pending_decisions: Vec<PendingDecision>,
    /// High risk scores to discuss with a senior.
    pub tasks: Vec<SeniorTask>,
    /// Reviews filled in completely, waiting for the senior to complete them.
    pub reviews_ready: Vec<ReadyRecord>,
    /// Risk Management Plans filled in completely, waiting for the senior's sign-off.
    pub plans_ready: Vec<ReadyRecord>,
}

/// A record ready for a senior's action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyRecord {
    /// The record.
    pub document: DocumentId,
    /// The case.
    pub case: CaseId,
    /// Case reference.
    pub reference: String,
    /// The person's name.
    pub person_name: String,
    /// Its summary (dates, choices).
    pub summary: String,
}

/// The person's copy of one record (`POST /api/records/{doc}/persons-copy`, with a
/// [`PersonsCopyRequest`]): every field and item not withheld from the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCopy {
    /// What the record is ("Risk Management Plan").
    pub title: String,
    /// The person's name.
    pub person_name: String,
    /// Case reference.
    pub reference: String,
    /// Who it was produced for.
    pub recipient: String,
    /// Who produced it.
    pub produced_by: String,
    /// When (Unix ms).
    pub produced_at: i64,
    /// The lines shared.
    pub lines: Vec<crate::records::CopyLine>,
}

/// `POST /api/absences`: a worker's absence (planned by the worker or a senior; unplanned by a
/// senior of their team or the manager).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AbsenceRequest {
    /// Who is absent.
    pub staff: StaffId,
    /// From (Unix ms, inclusive).
    pub starts_at: i64,
    /// To (Unix ms, exclusive).
    pub ends_at: i64,
    /// Planned (leave, training) or not (sickness, emergency).
    pub planned: bool,
}

/// An absence as `GET /api/absences` lists it, with how many of the worker's cases have cover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absence {
    /// Absence id.
    pub id: String,
    /// Who.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
    /// From (Unix ms).
    pub starts_at: i64,
    /// To (Unix ms).
    pub ends_at: i64,
    /// Planned or not.
    pub planned: bool,
    /// Their cases (allocated or co-worked).
    pub cases: usize,
    /// Of those, covered for the whole absence.
    pub covered: usize,
}

/// `POST /api/cover/bulk`: cover for every case of an absent worker, in one action.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkCoverRequest {
    /// The absent worker.
    pub absent: StaffId,
    /// The covering worker.
    pub worker: StaffId,
    /// From (Unix ms, inclusive).
    pub starts_at: i64,
    /// To (Unix ms, exclusive).
    pub ends_at: i64,
    /// Why (required).
    pub reason: String,
}

/// The answer to a bulk cover: one assignment per case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkCoverCreated {
    /// The cases now covered.
    pub cases: Vec<CaseId>,
}

/// The duty senior of a day (`GET /api/duty`: today and the next 13 days).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyDay {
    /// The day (`YYYY-MM-DD`).
    pub day: String,
    /// The duty senior.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
    /// The duty phone.
    pub phone: String,
}

/// `PUT /api/duty/{day}` (seniors, the manager): who is on duty that day.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetDuty {
    /// The senior.
    pub staff: StaffId,
    /// The duty phone.
    pub phone: String,
}

/// One worker in `GET /api/team`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamWorker {
    /// The worker.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
    /// Cases allocated or co-worked.
    pub cases: usize,
    /// Cases covered for someone else now.
    pub covering: usize,
    /// Absent now.
    pub absent: bool,
}

/// One case in `GET /api/team`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamCase {
    /// The case.
    pub case: CaseId,
    /// Reference.
    pub reference: String,
    /// The person's name.
    pub person_name: String,
    /// Allocated worker.
    pub worker: String,
    /// Co-workers.
    pub co_workers: Vec<(StaffId, String)>,
    /// Covering worker now, if any.
    pub cover: Option<String>,
    /// Next HRO review, if registered.
    pub next_review: Option<String>,
    /// Last contact recorded in a visit note (`YYYY-MM-DD`), if any.
    pub last_contact: Option<String>,
}

/// A senior's view of their team (the manager: every team): workload and cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamOverview {
    /// Workers and their workload.
    pub workers: Vec<TeamWorker>,
    /// The team's cases.
    pub cases: Vec<TeamCase>,
}

/// `POST /api/cases/{case}/co-workers` (add) and
/// `POST /api/cases/{case}/co-workers/remove` (remove): a senior changes who co-works a case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoWorkerChange {
    /// The co-worker.
    pub worker: StaffId,
    /// Why (required, kept in the history).
    pub reason: String,
}
