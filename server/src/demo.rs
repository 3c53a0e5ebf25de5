//! The synthetic demo service: four teams, staff in every role, 60 people under supervision
//! with chronologies. Every name and event is invented; nothing here is about a real person.

use crate::auth::hash_password;
use crate::db::Db;
use crate::documents::{Author, store_new_document};
use crate::{now_ms, on_pool};
use anyhow::Context;
use automerge::{ActorId, AutoCommit};
use casebook_shared::chronology::{self, CATEGORIES, EntryDraft, Impact, Recorder};
use casebook_shared::dates::Date;
use casebook_shared::ids::{CaseId, DeviceId, DocumentId, StaffId};

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
    }
    Ok(Some(sign_ins()))
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
