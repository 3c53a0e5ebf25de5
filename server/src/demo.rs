//! The synthetic demo service: four teams, staff in every role, 60 people under supervision
//! with chronologies; ten of them on the HRO register with plans, reviews (one overdue), visit
//! notes and partners; an open sweep in North with a pending identification that carries a
//! high score. Every name and event is invented; nothing here is about a real person.

use crate::auth::hash_password;
use crate::db::Db;
use crate::documents::{Author, store_new_document};
use crate::{now_ms, on_pool};
use anyhow::Context;
use automerge::{ActorId, AutoCommit};
use casebook_shared::chronology::{self, CATEGORIES, EntryDraft, Impact, Recorder};
use casebook_shared::dates::Date;
use casebook_shared::ids::{CaseId, DeviceId, DocumentId, StaffId};
use casebook_shared::records::{self, Kind};
use casebook_shared::schedule::next_review;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo-casebook-2026";

const TEAMS: [&str; 4] = ["North", "South", "East", "West"];
const FIRST: [&str; 20] = [
    "Aiden", "Bryony", "Callum", "Dana", "Euan", "Fiona", "Gregor", "Heather", "Innes", "Jodie",
    "Kyle", "Lorna", "Murray", "Nadia", "Owen", "Petra", "Ross", "Shona", "Torin", "Vari",
];
const LAST: [&str; 15] = [
    "Abernethy",
    "Baird",
    "Cowie",
    "Drummond",
    "Elder",
    "Fyfe",
    "Gilmour",
    "Haldane",
    "Imrie",
    "Jardine",
    "Kinnear",
    "Lennox",
    "Moffat",
    "Nairn",
    "Orrock",
];
const ORDERS: [&str; 4] = [
    "Community Payback Order with supervision",
    "Licence (long-term prisoner)",
    "Extended sentence licence",
    "Order for Lifelong Restriction",
];
const EVENTS: [(&str, &str, Impact); 8] = [
    (
        "Attended supervision; discussed triggers and weekend plans.",
        "Supervising officer",
        Impact::Positive,
    ),
    (
        "Police report a call-out to the address; no charges.",
        "Police Scotland",
        Impact::Negative,
    ),
    (
        "Started college course in joinery.",
        "The person",
        Impact::Positive,
    ),
    (
        "Failed to attend planned appointment; later gave a reason.",
        "Supervising officer",
        Impact::Negative,
    ),
    (
        "Housing officer confirms new tenancy signed.",
        "Housing services",
        Impact::Positive,
    ),
    (
        "GP reports missed medication review.",
        "NHS",
        Impact::Neutral,
    ),
    (
        "Contact with a former partner reported by a neighbour.",
        "Neighbour (via police)",
        Impact::Negative,
    ),
    (
        "Completed group work session.",
        "Programme staff",
        Impact::Positive,
    ),
];

/// A tiny deterministic generator, so the demo is the same on every machine.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn id_bytes(kind: u8, n: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = 0xca;
    b[1] = kind;
    b[8..16].copy_from_slice(&(n as u64).to_be_bytes());
    b
}

struct DemoStaff {
    id: StaffId,
    username: String,
    name: String,
    role: &'static str,
    team: Option<usize>,
}

fn demo_staff() -> Vec<DemoStaff> {
    let mut staff = vec![
        DemoStaff {
            id: StaffId::from_random_bytes(id_bytes(1, 0)),
            username: "manager".into(),
            name: "Morgan Reid".into(),
            role: "manager",
            team: None,
        },
        DemoStaff {
            id: StaffId::from_random_bytes(id_bytes(1, 1)),
            username: "admin".into(),
            name: "Ash Patel".into(),
            role: "admin",
            team: None,
        },
    ];
    let people = [
        ("Sam Kerr", "Jo Ritchie", "Lee Watt"),
        ("Pat Boyd", "Chris Munro", "Robin Shaw"),
        ("Kim Fraser", "Alex Grant", "Jamie Hay"),
        ("Ali Reid", "Casey Lamb", "Drew Ness"),
    ];
    for (t, team) in TEAMS.iter().enumerate() {
        let lower = team.to_lowercase();
        let (senior, w1, w2) = people[t];
        for (k, (username, name, role)) in [
            (format!("senior.{lower}"), senior, "senior"),
            (format!("worker.{lower}1"), w1, "practitioner"),
            (format!("worker.{lower}2"), w2, "practitioner"),
        ]
        .into_iter()
        .enumerate()
        {
            staff.push(DemoStaff {
                id: StaffId::from_random_bytes(id_bytes(1, 10 + t * 3 + k)),
                username,
                name: name.into(),
                role,
                team: Some(t),
            });
        }
    }
    staff
}

/// Creates the demo service if the database has no staff. Returns the sign-ins to print, or
/// `None` when there was already data.
pub async fn seed_if_empty(db: &Db) -> anyhow::Result<Option<String>> {
    let (count,): (i64,) =
        on_pool!(db, pool => sqlx::query_as("select count(*) from staff").fetch_one(pool).await)?;
    if count > 0 {
        return Ok(None);
    }
    let now = now_ms();
    let team_ids: Vec<String> = (0..TEAMS.len())
        .map(|t| uuid::Uuid::from_bytes(id_bytes(0, t)).to_string())
        .collect();
    for (t, name) in TEAMS.iter().enumerate() {
        on_pool!(db, pool => sqlx::query("insert into teams (id, name) values ($1, $2)")
            .bind(&team_ids[t]).bind(name).execute(pool).await.map(|_| ()))?;
    }
    let staff = demo_staff();
    // Every demo account shares one password: hash it once.
    let hash = tokio::task::spawn_blocking(|| hash_password(DEMO_PASSWORD)).await??;
    for s in &staff {
        on_pool!(db, pool => sqlx::query(
            "insert into staff (id, username, name, role, team_id, password_hash, disabled, created_at)
             values ($1, $2, $3, $4, $5, $6, false, $7)")
            .bind(s.id.to_string()).bind(&s.username).bind(&s.name).bind(s.role)
            .bind(s.team.map(|t| team_ids[t].clone())).bind(&hash).bind(now)
            .execute(pool).await.map(|_| ()))?;
    }
    let seed_device = DeviceId::from_random_bytes(id_bytes(9, 0));
    let mut rng = Lcg(2026);
    let mut cases: Vec<(CaseId, StaffId, usize)> = Vec::new();
    let today = Date::from_unix_millis(now);
    for n in 0..60 {
        let team = n % TEAMS.len();
        let workers: Vec<&DemoStaff> = staff
            .iter()
            .filter(|s| s.team == Some(team) && s.role == "practitioner")
            .collect();
        let worker = workers[(n / TEAMS.len()) % workers.len()];
        let co_worker = (n % 5 == 0).then(|| workers[(n / TEAMS.len() + 1) % workers.len()]);
        let person_id = uuid::Uuid::from_bytes(id_bytes(2, n)).to_string();
        let case_id = CaseId::from_random_bytes(id_bytes(3, n));
        let doc_id = DocumentId::from_random_bytes(id_bytes(4, n));
        let name = format!(
            "{} {}",
            FIRST[(n * 7) % FIRST.len()],
            LAST[(n * 11) % LAST.len()]
        );
        let born = Date::new(
            1960 + (n * 3 % 40) as i32,
            (n % 12 + 1) as u8,
            (n % 28 + 1) as u8,
        )?;
        on_pool!(db, pool => sqlx::query("insert into people (id, name, date_of_birth) values ($1, $2, $3)")
            .bind(&person_id).bind(&name).bind(born.to_string()).execute(pool).await.map(|_| ()))?;
        on_pool!(db, pool => sqlx::query(
            "insert into cases (id, person_id, reference, order_type, team_id, created_at) values ($1, $2, $3, $4, $5, $6)")
            .bind(case_id.to_string()).bind(&person_id).bind(format!("CJ-2026-{:04}", n + 1))
            .bind(ORDERS[n % ORDERS.len()]).bind(&team_ids[team]).bind(now)
            .execute(pool).await.map(|_| ()))?;
        for (who, relation) in
            std::iter::once((worker, "worker")).chain(co_worker.map(|c| (c, "co-worker")))
        {
            on_pool!(db, pool => sqlx::query("insert into allocations (case_id, staff_id, relation) values ($1, $2, $3)")
                .bind(case_id.to_string()).bind(who.id.to_string()).bind(relation).execute(pool).await.map(|_| ()))?;
        }
        on_pool!(db, pool => sqlx::query("insert into documents (id, case_id, kind, created_at) values ($1, $2, 'chronology', $3)")
            .bind(doc_id.to_string()).bind(case_id.to_string()).bind(now).execute(pool).await.map(|_| ()))?;

        let mut am = AutoCommit::new().with_actor(ActorId::from(id_bytes(5, n).as_slice()));
        let recorder = Recorder {
            staff: worker.id,
            name: worker.name.clone(),
            now_ms: now,
        };
        let entries = 3 + rng.next(6);
        for e in 0..entries {
            let (what, source, impact) = EVENTS[rng.next(EVENTS.len())];
            let draft = EntryDraft {
                event_date: today
                    .add_days(-((entries - e) as i64 * 19 + rng.next(10) as i64))
                    .to_string(),
                date_approximate: rng.next(6) == 0,
                what_happened: what.into(),
                source: source.into(),
                impact,
                action_taken: if impact == Impact::Negative {
                    "Discussed at next supervision; senior informed.".into()
                } else {
                    String::new()
                },
                category: CATEGORIES[rng.next(CATEGORIES.len())].into(),
                withheld: false,
            };
            chronology::add_entry(&mut am, &format!("seed-{n}-{e}"), &draft, &recorder)
                .context("demo entry")?;
        }
        store_new_document(
            db,
            doc_id,
            &Author {
                staff: worker.id,
                device: seed_device,
            },
            am,
        )
        .await?;
        cases.push((case_id, worker.id, team));
    }
    seed_hro(db, &staff, &team_ids, &cases, seed_device, today, now).await?;
    Ok(Some(sign_ins()))
}

/// Writes one record document of `kind` for `case`, as `author` wrote it, and its projection.
#[allow(clippy::too_many_arguments)]
async fn seed_record(
    db: &Db,
    case: CaseId,
    kind: Kind,
    values: &[(&str, String)],
    items: &[(&str, Vec<(&str, &str)>)],
    author: StaffId,
    device: DeviceId,
    id: (u8, usize),
) -> anyhow::Result<DocumentId> {
    let doc = DocumentId::from_random_bytes(id_bytes(id.0, id.1));
    let now = now_ms();
    on_pool!(db, pool => sqlx::query("insert into documents (id, case_id, kind, created_at) values ($1, $2, $3, $4)")
        .bind(doc.to_string()).bind(case.to_string()).bind(kind.as_str()).bind(now).execute(pool).await.map(|_| ()))?;
    let mut actor = id_bytes(id.0.wrapping_add(100), id.1).to_vec();
    actor.truncate(16);
    let mut am = AutoCommit::new().with_actor(ActorId::from(actor.as_slice()));
    records::start(&mut am, kind, &case.to_string())?;
    for (key, value) in values {
        records::set(&mut am, kind, key, value)?;
    }
    for (n, (key, item)) in items.iter().enumerate() {
        let values = item
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        records::set_item(&mut am, kind, key, &format!("item-{n}"), &values, None)?;
    }
    am.commit();
    let record = records::read(&am, kind);
    store_new_document(
        db,
        doc,
        &Author {
            staff: author,
            device,
        },
        am,
    )
    .await?;
    crate::projections::update(db, doc, &case.to_string(), kind, &record).await?;
    Ok(doc)
}

/// The HRO process in the demo: registered cases with plans, reviews (one overdue), visit
/// notes and partners; a pending identification with a high score; an open sweep for North.
async fn seed_hro(
    db: &Db,
    staff: &[DemoStaff],
    team_ids: &[String],
    cases: &[(CaseId, StaffId, usize)],
    device: DeviceId,
    today: Date,
    now: i64,
) -> anyhow::Result<()> {
    const ROUTES: [(&str, &str, &str); 4] = [
        ("MAPPA", "2", "2"),
        ("MAPPA", "1", "1"),
        ("MARS", "", ""),
        ("In-house", "", ""),
    ];
    let senior_of = |team: usize| {
        staff
            .iter()
            .find(|s| s.team == Some(team) && s.role == "senior")
            .map(|s| s.id)
            .expect("a senior per team")
    };
    for (k, (case, worker, team)) in cases.iter().enumerate().filter(|(n, _)| n % 6 == 0) {
        let (route, category, level) = ROUTES[k / 6 % ROUTES.len()];
        // Registered between 1 and 5 months ago; the second case's review is overdue.
        let start = today.add_days(-(30 + (k as i64 * 7) % 120));
        let form = seed_record(
            db,
            *case,
            Kind::Identification,
            &[
                ("index_offence", "Assault to severe injury".into()),
                ("convicted_on_indictment", "Yes".into()),
                ("criterion_a", "true".into()),
                (
                    "part1_reasons",
                    "Convicted on indictment of a serious violent offence.".into(),
                ),
                ("criterion_i", "true".into()),
                (
                    "part2_evidence",
                    "LS/CMI high; police intelligence of continued threats.".into(),
                ),
                ("lscmi_level", "Medium".into()),
                ("lscmi_date", start.add_days(-20).to_string()),
                ("at_risk", "Known adult (former partner)".into()),
                ("proposed_route", route.into()),
                ("mappa_category", category.into()),
                ("mappa_level", level.into()),
            ],
            &[],
            *worker,
            device,
            (20, k),
        )
        .await?;
        let senior = senior_of(*team);
        on_pool!(db, pool => sqlx::query("insert into identifications (document_id, case_id, submitted_by, submitted_at, status, decided_by, decided_at, rationale)
            values ($1, $2, $3, $4, 'approved', $5, $4, 'Meets parts 1(a) and 2(i).')")
            .bind(form.to_string()).bind(case.to_string()).bind(worker.to_string()).bind(now).bind(senior.to_string())
            .execute(pool).await.map(|_| ()))?;
        let reviewed = k % 12 == 0;
        let next = if k == 6 {
            today.add_days(-9)
        } else {
            next_review(if reviewed { today.add_days(-10) } else { start })
        };
        on_pool!(db, pool => sqlx::query("insert into hro_register (id, case_id, route, mappa_category, mappa_level, caledonian, csogp,
            start_date, next_review, identification_id, registered_by, registered_at) values ($1, $2, $3, $4, $5, $6, false, $7, $8, $9, $10, $11)")
            .bind(uuid::Uuid::from_bytes(id_bytes(21, k)).to_string()).bind(case.to_string()).bind(route).bind(category).bind(level)
            .bind(k % 18 == 0).bind(start.to_string()).bind(next.to_string()).bind(form.to_string()).bind(senior.to_string()).bind(now)
            .execute(pool).await.map(|_| ()))?;
        let plan = seed_record(
            db,
            *case,
            Kind::RiskPlan,
            &[
                ("risks", "Domestic abuse; general violence".into()),
                (
                    "scenarios",
                    "Contact with the former partner after drinking, at weekends.".into(),
                ),
                ("who_at_risk", "Former partner; new partners.".into()),
                ("nature", "Physical violence, coercive control.".into()),
                (
                    "increases",
                    "Alcohol, unemployment, contact with the former partner.".into(),
                ),
                (
                    "reduces",
                    "Stable work, Caledonian programme, family support.".into(),
                ),
                (
                    "strengths",
                    "Motivated to keep his job; good relationship with his sister.".into(),
                ),
                ("review_date", next.to_string()),
            ],
            &[
                (
                    "actions",
                    vec![
                        ("area", "Supervision"),
                        ("action", "Weekly home visits"),
                        ("owner", "Allocated worker"),
                        ("agency", "CJSW"),
                        ("frequency", "Weekly"),
                        ("status", "In progress"),
                    ],
                ),
                (
                    "actions",
                    vec![
                        ("area", "Victim safety planning"),
                        ("action", "Liaise with the victim's advocate"),
                        ("owner", "Allocated worker"),
                        ("agency", "ASSIST"),
                        ("frequency", "Monthly"),
                        ("status", "In progress"),
                    ],
                ),
                (
                    "contingency",
                    vec![
                        ("trigger", "Missed appointment"),
                        ("action", "Same-day home visit and police check"),
                        ("who", "Duty senior"),
                    ],
                ),
            ],
            *worker,
            device,
            (22, k),
        )
        .await?;
        if k % 12 == 0 {
            on_pool!(db, pool => sqlx::query("insert into plan_signoffs (document_id, case_id, signed_by, signed_at) values ($1, $2, $3, $4)")
                .bind(plan.to_string()).bind(case.to_string()).bind(senior.to_string()).bind(now)
                .execute(pool).await.map(|_| ()))?;
        }
        if reviewed {
            let held = today.add_days(-10);
            let review = seed_record(
                db,
                *case,
                Kind::Review,
                &[
                    ("held_on", held.to_string()),
                    (
                        "attendees",
                        "Allocated worker, SSW, police named person".into(),
                    ),
                    ("ssw_present", "true".into()),
                    ("person_present", "Yes".into()),
                    (
                        "action_progress",
                        "Home visits weekly; advocate contacted monthly.".into(),
                    ),
                    (
                        "persons_view",
                        "Supervision is helping; getting to appointments after work is hard."
                            .into(),
                    ),
                    ("service_improvement", "Appointments after 5pm.".into()),
                    ("decision", "Continue".into()),
                ],
                &[],
                *worker,
                device,
                (23, k),
            )
            .await?;
            on_pool!(db, pool => sqlx::query("insert into review_completions (document_id, case_id, held_on, decision, next_review, completed_by, completed_at)
                values ($1, $2, $3, 'Continue', $4, $5, $6)")
                .bind(review.to_string()).bind(case.to_string()).bind(held.to_string()).bind(next.to_string()).bind(senior.to_string()).bind(now)
                .execute(pool).await.map(|_| ()))?;
        }
        seed_record(
            db,
            *case,
            Kind::VisitNote,
            &[
                ("date", today.add_days(-3).to_string()),
                ("contact_type", "Home visit".into()),
                ("planned", "Planned".into()),
                ("location", "Home address".into()),
                ("workers_present", "Allocated worker".into()),
                ("children_seen", "No children in the household".into()),
                (
                    "discussed",
                    "Work, drinking at weekends, the Caledonian group.".into(),
                ),
                ("outcome", "Attended and complied".into()),
                ("lone_working_check_in", "true".into()),
            ],
            &[(
                "follow_up",
                vec![
                    ("task", "Check with the group facilitator"),
                    ("owner", "Allocated worker"),
                ],
            )],
            *worker,
            device,
            (24, k),
        )
        .await?;
        seed_record(
            db,
            *case,
            Kind::Partners,
            &[
                ("police_named_person", "PC Morven Baird".into()),
                ("police_phone", "01234 500 101".into()),
                (
                    "nhs_spoc",
                    "Dr Lewis Grant (community mental health)".into(),
                ),
                ("nhs_phone", "01234 500 202".into()),
                ("mappa_coordinator", "Fiona Marr".into()),
                ("mappa_phone", "01234 500 303".into()),
            ],
            &[],
            *worker,
            device,
            (25, k),
        )
        .await?;
    }
    // The duty senior rota for the next two weeks, the four seniors in turn.
    let seniors: Vec<&DemoStaff> = staff.iter().filter(|s| s.role == "senior").collect();
    for d in 0..14 {
        let senior = seniors[d % seniors.len()];
        on_pool!(db, pool => sqlx::query("insert into duty_rota (day, staff_id, phone, set_by, set_at) values ($1, $2, $3, $2, $4)")
            .bind(today.add_days(d as i64).to_string()).bind(senior.id.to_string())
            .bind(format!("07700 900 {:03}", 100 + d % seniors.len())).bind(now)
            .execute(pool).await.map(|_| ()))?;
    }
    // North: an open sweep; worker.north1 has returned a form with a high score (pending), and
    // worker.north2 has not returned yet.
    let north = 0;
    let senior = senior_of(north);
    let sweep = uuid::Uuid::from_bytes(id_bytes(26, 0)).to_string();
    on_pool!(db, pool => sqlx::query("insert into sweeps (id, team_id, period, due_on, opened_by, opened_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(&sweep).bind(&team_ids[north]).bind("October to December 2026").bind(today.add_days(14).to_string())
        .bind(senior.to_string()).bind(now).execute(pool).await.map(|_| ()))?;
    if let Some((case, worker, _)) = cases
        .iter()
        .enumerate()
        .find(|(n, c)| n % 6 != 0 && c.2 == north)
        .map(|(_, c)| c)
    {
        let form = seed_record(
            db,
            *case,
            Kind::Identification,
            &[
                (
                    "index_offence",
                    "Threatening or abusive behaviour (domestic)".into(),
                ),
                ("convicted_on_indictment", "No".into()),
                ("criterion_c", "true".into()),
                (
                    "part1_reasons",
                    "Escalating threats to a new partner since release.".into(),
                ),
                ("criterion_ii", "true".into()),
                (
                    "part2_evidence",
                    "Police concern reports in the last month.".into(),
                ),
                ("lscmi_level", "High".into()),
                ("at_risk", "Known adult (new partner)".into()),
                ("proposed_route", "MARS".into()),
                ("domestic_abuse", "true".into()),
            ],
            &[],
            *worker,
            device,
            (27, 0),
        )
        .await?;
        on_pool!(db, pool => sqlx::query("insert into identifications (document_id, case_id, sweep_id, submitted_by, submitted_at, status)
            values ($1, $2, $3, $4, $5, 'submitted')")
            .bind(form.to_string()).bind(case.to_string()).bind(&sweep).bind(worker.to_string()).bind(now)
            .execute(pool).await.map(|_| ()))?;
        on_pool!(db, pool => sqlx::query("insert into sweep_returns (sweep_id, staff_id, nil_return, returned_at) values ($1, $2, false, $3)")
            .bind(&sweep).bind(worker.to_string()).bind(now).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// The demo sign-ins, printed at every start of `cargo xtask run`.
pub fn sign_ins() -> String {
    let mut summary = String::from("Demo service (synthetic data). Sign in with any of:\n");
    for s in demo_staff() {
        let team = s
            .team
            .map_or(String::from("all teams"), |t| format!("{} team", TEAMS[t]));
        summary.push_str(&format!(
            "  {:<16} {:<12} {:<13} {}\n",
            s.username, s.role, s.name, team
        ));
    }
    summary.push_str(&format!(
        "Password for every demo account: {DEMO_PASSWORD}\n"
    ));
    summary.push_str("worker.north1 and worker.north2 co-work several cases: sign in as each in two browsers to watch edits merge.\n");
    summary
}
