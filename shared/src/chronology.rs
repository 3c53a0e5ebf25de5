//! The case chronology (lifeline) as an Automerge document.
//!
//! # Schema
//! The document root is a map from entry id (a UUID string) to one entry map. Entries live at
//! the root so that two devices creating entries offline never race to create a shared
//! container (two concurrently created containers under one key would hide one of them).
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `event_date` | string `YYYY-MM-DD` | when it happened |
//! | `date_approximate` | bool | the date is approximate |
//! | `what_happened` | text | brief, factual; a text object so concurrent edits merge by character |
//! | `source` | string | person or agency the information came from |
//! | `impact` | string | `positive`, `negative` or `neutral` |
//! | `action_taken` | text | what was done about it |
//! | `category` | string | one of [`CATEGORIES`] |
//! | `withheld` | bool | withheld from the person's copy |
//! | `recorded_by` | string | staff id of the author (claimed by the device; see below) |
//! | `recorded_by_name` | string | display name of the author at the time |
//! | `recorded_at` | int | Unix milliseconds on the recording device |
//!
//! The author fields are what the recording device wrote; the server separately records which
//! signed-in user and device sent every change. The app names the author from the actor that
//! created the entry ([`ChronologyEntry::author_actor`]), which the server has verified.

use crate::dates::Date;
use crate::ids::StaffId;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value, hydrate};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Longest accepted text in one field, in characters.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Categories a chronology entry can have.
pub const CATEGORIES: &[&str] = &[
    "Offence or court",
    "Supervision contact",
    "Risk assessment",
    "Police or partner information",
    "Accommodation",
    "Health",
    "Relationships",
    "Child or adult protection",
    "Employment or education",
    "Other",
];

/// Whether an event helped or harmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// The event reduced risk or helped the person.
    Positive,
    /// The event increased risk or harmed someone.
    Negative,
    /// No clear effect yet.
    #[default]
    Neutral,
}

impl Impact {
    /// Every impact, in form order.
    pub const ALL: [Impact; 3] = [Impact::Negative, Impact::Neutral, Impact::Positive];

    /// The stored and form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Positive => "positive",
            Impact::Negative => "negative",
            Impact::Neutral => "neutral",
        }
    }

    /// Parses the stored value; anything unknown reads as neutral.
    pub fn parse(s: &str) -> Self {
        match s {
            "positive" => Impact::Positive,
            "negative" => Impact::Negative,
            _ => Impact::Neutral,
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker types into the entry form: every editable field of an entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntryDraft {
    /// When it happened, as typed (`YYYY-MM-DD`).
    pub event_date: String,
    /// The date is approximate.
    pub date_approximate: bool,
    /// What happened (brief, factual).
    pub what_happened: String,
    /// Person or agency the information came from.
    pub source: String,
    /// Positive, negative or neutral.
    pub impact: Impact,
    /// What was done about it.
    pub action_taken: String,
    /// One of [`CATEGORIES`].
    pub category: String,
    /// Leave out of the person's copy.
    pub withheld: bool,
}

/// One problem with a draft, tied to the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's key (as in the schema table).
    pub field: &'static str,
    /// What to do about it, in plain words.
    pub message: String,
}

impl EntryDraft {
    /// Checks the draft; returns every problem at once so a form can show them all.
    pub fn validate(&self) -> Result<Date, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field, message: &str| {
            errors.push(FieldError {
                field,
                message: message.to_owned(),
            })
        };
        let date = self.event_date.parse::<Date>();
        if let Err(e) = &date {
            err("event_date", &e.to_string());
        }
        if self.what_happened.trim().is_empty() {
            err("what_happened", "Say briefly what happened.");
        }
        if self.source.trim().is_empty() {
            err(
                "source",
                "Say who the information came from (a person or an agency).",
            );
        }
        for (field, text) in [
            ("what_happened", &self.what_happened),
            ("action_taken", &self.action_taken),
            ("source", &self.source),
        ] {
            if text.chars().count() > MAX_TEXT_CHARS {
                err(field, "This is too long: keep it under 4,000 characters.");
            }
        }
        if !CATEGORIES.contains(&self.category.as_str()) {
            err("category", "Choose a category.");
        }
        match date {
            Ok(d) if errors.is_empty() => Ok(d),
            _ => Err(errors),
        }
    }
}

/// Who is recording an entry, as the device knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorder {
    /// Staff id of the signed-in user.
    pub staff: StaffId,
    /// Their display name.
    pub name: String,
    /// Unix milliseconds now, on the device.
    pub now_ms: i64,
}

/// One entry as read from a chronology document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChronologyEntry {
    /// The entry's key in the document.
    pub id: String,
    /// The editable fields.
    pub draft: EntryDraft,
    /// Staff id of the author, as written by the recording device.
    pub recorded_by: String,
    /// Display name of the author at the time.
    pub recorded_by_name: String,
    /// Unix milliseconds on the recording device.
    pub recorded_at: i64,
    /// Hex id of the Automerge actor that created the entry. The server accepts changes only
    /// from actors registered to the sending user, so this (looked up through
    /// `GET /api/cases/{case}/authors`) is the verified author; `recorded_by*` are only what
    /// the device claimed.
    pub author_actor: String,
}

/// Errors from changing a chronology document.
#[derive(Debug, thiserror::Error)]
pub enum ChronologyError {
    /// The draft is incomplete or wrong.
    #[error("the entry has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// No entry has that id.
    #[error("no chronology entry has that id")]
    NoSuchEntry,
    /// Automerge refused the operation.
    #[error("document error: {0}")]
    Document(#[from] automerge::AutomergeError),
}

/// A new entry id (a UUID string) from 16 random bytes supplied by the caller.
pub fn new_entry_id(random: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .to_string()
}

/// Adds a new entry with the id `entry_id` (a fresh UUID chosen by the caller).
pub fn add_entry(
    doc: &mut AutoCommit,
    entry_id: &str,
    draft: &EntryDraft,
    recorder: &Recorder,
) -> Result<(), ChronologyError> {
    draft.validate().map_err(ChronologyError::Invalid)?;
    // The whole entry in one batch: Automerge splices its operations into the document's
    // columns twice in all, where a `put` or `splice_text` for each field spliced every
    // column once per field (adding an entry cost about as much as 24 other devices
    // taking the same entry in).
    let encoding = doc.text_encoding();
    let text = |s: &str| hydrate::Value::from(hydrate::Text::new(encoding, s));
    let scalar = |v: ScalarValue| hydrate::Value::from(v);
    let mut fields: HashMap<&str, hydrate::Value> = HashMap::from([
        ("recorded_by", scalar(recorder.staff.to_string().into())),
        ("recorded_by_name", scalar(recorder.name.as_str().into())),
        ("recorded_at", scalar(recorder.now_ms.into())),
        ("what_happened", text(&draft.what_happened)),
        ("action_taken", text(&draft.action_taken)),
    ]);
    fields.extend(scalar_fields(draft).map(|(key, value)| (key, scalar(value))));
    doc.batch_create_object(ROOT, entry_id, &hydrate::Value::Map(fields.into()), false)?;
    doc.commit();
    Ok(())
}

/// Changes an existing entry to match `draft`. Only fields that differ are written, and text
/// fields are changed by character, so an edit made concurrently elsewhere to another field,
/// or to another part of the same text, survives the merge.
pub fn update_entry(
    doc: &mut AutoCommit,
    entry_id: &str,
    draft: &EntryDraft,
) -> Result<(), ChronologyError> {
    draft.validate().map_err(ChronologyError::Invalid)?;
    let entry = match doc.get(ROOT, entry_id)? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => return Err(ChronologyError::NoSuchEntry),
    };
    for (key, text) in [
        ("what_happened", &draft.what_happened),
        ("action_taken", &draft.action_taken),
    ] {
        match doc.get(&entry, key)? {
            Some((Value::Object(ObjType::Text), obj)) => {
                if doc.text(&obj)? != *text {
                    doc.update_text(&obj, text)?;
                }
            }
            _ => {
                let obj = doc.put_object(&entry, key, ObjType::Text)?;
                doc.update_text(&obj, text)?;
            }
        }
    }
    let current = read_entry(doc, entry_id, &entry)?;
    if current.draft != *draft {
        write_scalars(doc, &entry, draft)?;
    }
    doc.commit();
    Ok(())
}

/// The entry's fields other than its texts and its author, as stored.
fn scalar_fields(draft: &EntryDraft) -> [(&'static str, ScalarValue); 6] {
    [
        ("event_date", draft.event_date.trim().into()),
        ("date_approximate", draft.date_approximate.into()),
        ("source", draft.source.trim().into()),
        ("impact", draft.impact.as_str().into()),
        ("category", draft.category.as_str().into()),
        ("withheld", draft.withheld.into()),
    ]
}

fn write_scalars(
    doc: &mut AutoCommit,
    entry: &automerge::ObjId,
    draft: &EntryDraft,
) -> Result<(), automerge::AutomergeError> {
    let existing = |doc: &AutoCommit, key: &str| -> Option<ScalarValue> {
        match doc.get(entry, key).ok().flatten() {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        }
    };
    for (key, value) in scalar_fields(draft) {
        // Writing an unchanged value would still create an op that wins over a concurrent
        // real edit of the same field elsewhere: only write what changed.
        if existing(doc, key).as_ref() != Some(&value) {
            doc.put(entry, key, value)?;
        }
    }
    Ok(())
}

fn read_entry(
    doc: &AutoCommit,
    id: &str,
    obj: &automerge::ObjId,
) -> Result<ChronologyEntry, automerge::AutomergeError> {
    let string = |key: &str| -> String {
        match doc.get(obj, key).ok().flatten() {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => s.to_string(),
                _ => String::new(),
            },
            Some((Value::Object(ObjType::Text), text)) => doc.text(&text).unwrap_or_default(),
            _ => String::new(),
        }
    };
    let boolean = |key: &str| -> bool {
        matches!(
            doc.get(obj, key).ok().flatten(),
            Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Boolean(true))
        )
    };
    let recorded_at = match doc.get(obj, "recorded_at")? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Int(i) => *i,
            ScalarValue::Uint(u) => *u as i64,
            ScalarValue::Timestamp(t) => *t,
            _ => 0,
        },
        _ => 0,
    };
    Ok(ChronologyEntry {
        id: id.to_owned(),
        draft: EntryDraft {
            event_date: string("event_date"),
            date_approximate: boolean("date_approximate"),
            what_happened: string("what_happened"),
            source: string("source"),
            impact: Impact::parse(&string("impact")),
            action_taken: string("action_taken"),
            category: string("category"),
            withheld: boolean("withheld"),
        },
        recorded_by: string("recorded_by"),
        recorded_by_name: string("recorded_by_name"),
        recorded_at,
        author_actor: match obj {
            automerge::ObjId::Id(_, actor, _) => actor.to_hex_string(),
            automerge::ObjId::Root => String::new(),
        },
    })
}

/// Most keys one entry may have (the schema has 11; a few spare for later versions).
const MAX_KEYS_PER_ENTRY: usize = 24;

/// Checks that entry `key` of a merged document still fits the schema: the entry is a map,
/// known fields have their types, texts are within [`MAX_TEXT_CHARS`], and it has no more
/// than a few keys. A removed entry is fine. The server runs this on every entry a sync
/// message touched before storing anything.
pub fn check_entry(doc: &AutoCommit, key: &str) -> Result<(), String> {
    let entry = match doc.get(ROOT, key).map_err(|e| e.to_string())? {
        None => return Ok(()),
        Some((Value::Object(ObjType::Map), id)) => id,
        Some(_) => return Err("a chronology entry must be a map".into()),
    };
    if doc.length(&entry) > MAX_KEYS_PER_ENTRY {
        return Err("a chronology entry has too many fields".into());
    }
    for item in doc.map_range(&entry, ..) {
        let field = item.key.as_ref();
        let ok = match (field, &item.value) {
            ("what_happened" | "action_taken", automerge::ValueRef::Object(ObjType::Text)) => {
                doc.length(item.id()) <= MAX_TEXT_CHARS * 4
            }
            (
                "event_date" | "source" | "impact" | "category" | "recorded_by"
                | "recorded_by_name",
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)),
            ) => s.chars().count() <= MAX_TEXT_CHARS,
            (
                "date_approximate" | "withheld",
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Boolean(_)),
            ) => true,
            (
                "recorded_at",
                automerge::ValueRef::Scalar(
                    automerge::ScalarValueRef::Int(_)
                    | automerge::ScalarValueRef::Uint(_)
                    | automerge::ScalarValueRef::Timestamp(_),
                ),
            ) => true,
            (
                "what_happened" | "action_taken" | "event_date" | "source" | "impact" | "category"
                | "recorded_by" | "recorded_by_name" | "date_approximate" | "withheld"
                | "recorded_at",
                _,
            ) => false,
            // Fields of a later version: allowed, but only small scalars.
            (_, automerge::ValueRef::Scalar(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "the chronology field \"{}\" has the wrong type or size",
                field.escape_debug()
            ));
        }
    }
    Ok(())
}

/// Every entry, oldest event first (ties by recording time, then id, so every replica shows
/// the same order).
pub fn entries(doc: &AutoCommit) -> Vec<ChronologyEntry> {
    let mut out: Vec<ChronologyEntry> = doc
        .map_range(ROOT, ..)
        .filter_map(|item| match item.value {
            automerge::ValueRef::Object(ObjType::Map) => {
                read_entry(doc, item.key.as_ref(), &item.id()).ok()
            }
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.draft.event_date, a.recorded_at, &a.id).cmp(&(
            &b.draft.event_date,
            b.recorded_at,
            &b.id,
        ))
    });
    out
}

/// The erasure path: a new chronology holding every entry of `old` except `erased`, exactly
/// as it reads now, with none of the old history (so the erased text, and earlier versions of
/// every field, are gone from it). Each entry is written by the actor that created it in
/// `old`, so its verified author stays the same. Refuses an entry id that is not there.
pub fn rebuild_without(old: &AutoCommit, erased: &str) -> Result<AutoCommit, ChronologyError> {
    if !matches!(
        old.get(ROOT, erased)?,
        Some((Value::Object(ObjType::Map), _))
    ) {
        return Err(ChronologyError::NoSuchEntry);
    }
    let mut new = AutoCommit::new();
    for item in old.map_range(ROOT, ..) {
        let key = item.key.as_ref();
        let automerge::ObjId::Id(_, actor, _) = item.id() else {
            continue;
        };
        if key == erased || !matches!(item.value, automerge::ValueRef::Object(ObjType::Map)) {
            continue;
        }
        let source = item.id();
        new.set_actor(actor.clone());
        let entry = new.put_object(ROOT, key, ObjType::Map)?;
        for field in old.map_range(&source, ..) {
            match field.value.clone().into_value() {
                Value::Object(ObjType::Text) => {
                    let text = new.put_object(&entry, field.key.as_ref(), ObjType::Text)?;
                    new.splice_text(&text, 0, 0, &old.text(field.id())?)?;
                }
                Value::Scalar(scalar) => {
                    new.put(&entry, field.key.as_ref(), scalar.into_owned())?;
                }
                // The schema has no other objects inside an entry.
                Value::Object(_) => {}
            }
        }
        new.commit();
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ActorId;

    fn draft(what: &str) -> EntryDraft {
        EntryDraft {
            event_date: "2026-03-01".into(),
            what_happened: what.into(),
            source: "Police Scotland".into(),
            category: "Police or partner information".into(),
            ..Default::default()
        }
    }

    fn recorder() -> Recorder {
        Recorder {
            staff: StaffId::from_random_bytes([1; 16]),
            name: "Alex Worker".into(),
            now_ms: 5,
        }
    }

    #[test]
    fn an_added_entry_reads_back_with_its_author() {
        let mut doc = AutoCommit::new();
        add_entry(&mut doc, "e1", &draft("Arrested for breach"), &recorder()).unwrap();
        let all = entries(&doc);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].draft, draft("Arrested for breach"));
        assert_eq!(all[0].recorded_by_name, "Alex Worker");
    }

    /// An entry is made in one batch: it is one change, which another device takes in and
    /// a save loads back to the same entries, texts with any characters included, and its
    /// texts stay texts that merge by character.
    #[test]
    fn an_entry_made_in_one_batch_travels_and_loads_as_made() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(b"aaaa".as_slice()));
        add_entry(&mut a, "e1", &draft("Seen at home"), &recorder()).unwrap();
        let mut b = a.fork().with_actor(ActorId::from(b"bbbb".as_slice()));
        let before = a.get_heads();
        let mut second = draft("Visité à domicile — 🏠 calm, Ŵ");
        second.action_taken = "Referred to the MAPPA co-ordinator".into();
        second.date_approximate = true;
        second.withheld = true;
        add_entry(&mut a, "e2", &second, &recorder()).unwrap();
        let made = a.get_changes(&before);
        assert_eq!(made.len(), 1, "one change");
        b.apply_changes(made).unwrap();
        assert_eq!(entries(&b), entries(&a));
        let reloaded = AutoCommit::load(&a.save()).unwrap();
        assert_eq!(entries(&reloaded), entries(&a));
        assert_eq!(entries(&a)[1].draft, second);
        assert_eq!(check_entry(&a, "e2"), Ok(()));
        // Both devices edit the new entry's text at once: both words are kept.
        let mut edited = second.clone();
        edited.what_happened = format!("{} today", second.what_happened);
        update_entry(&mut a, "e2", &edited).unwrap();
        let mut other = second.clone();
        other.what_happened = format!("Briefly {}", second.what_happened);
        update_entry(&mut b, "e2", &other).unwrap();
        a.merge(&mut b).unwrap();
        assert_eq!(
            entries(&a)[1].draft.what_happened,
            format!("Briefly {} today", second.what_happened)
        );
    }

    #[test]
    fn a_rebuild_without_an_entry_keeps_the_rest_and_their_authors_and_no_old_text() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(b"aaaa".as_slice()));
        add_entry(&mut a, "keep", &draft("Seen at home"), &recorder()).unwrap();
        add_entry(
            &mut a,
            "erase",
            &draft("Victim lives at 12 Elm Row"),
            &recorder(),
        )
        .unwrap();
        let mut b = a.fork().with_actor(ActorId::from(b"bbbb".as_slice()));
        let mut first = draft("Called the police");
        first.source = "Informant Dale".into();
        add_entry(&mut b, "theirs", &first, &recorder()).unwrap();
        let mut edited = draft("Seen at home, calm");
        edited.withheld = true;
        update_entry(&mut b, "keep", &edited).unwrap();
        update_entry(&mut b, "theirs", &draft("Called the police")).unwrap();
        a.merge(&mut b).unwrap();

        let mut rebuilt = rebuild_without(&a, "erase").unwrap();
        let old: Vec<_> = entries(&a)
            .into_iter()
            .filter(|e| e.id != "erase")
            .collect();
        assert_eq!(
            entries(&rebuilt),
            old,
            "every other entry as it reads now, authors too"
        );
        let holds =
            |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
        let (before, after) = (a.save_nocompress(), rebuilt.save_nocompress());
        for gone in ["Elm Row", "Informant Dale"] {
            assert!(holds(&before, gone), "the old history holds {gone:?}");
            assert!(
                !holds(&after, gone),
                "the rebuilt document does not hold {gone:?}"
            );
        }
        assert!(holds(&after, "Police Scotland"));
        assert!(matches!(
            rebuild_without(&a, "not-there"),
            Err(ChronologyError::NoSuchEntry)
        ));
    }

    #[test]
    fn an_incomplete_draft_names_every_missing_field() {
        let errors = EntryDraft::default().validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["event_date", "what_happened", "source", "category"]
        );
    }

    #[test]
    fn concurrent_edits_to_one_entry_keep_both_words() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(b"aaaa".as_slice()));
        add_entry(&mut a, "e1", &draft("Seen at home"), &recorder()).unwrap();
        let mut b = a.fork().with_actor(ActorId::from(b"bbbb".as_slice()));
        update_entry(&mut a, "e1", &draft("Seen at home today")).unwrap();
        let mut other = draft("Briefly seen at home");
        other.source = "Housing officer".into();
        update_entry(&mut b, "e1", &other).unwrap();
        a.merge(&mut b).unwrap();
        let merged = &entries(&a)[0].draft;
        assert_eq!(merged.what_happened, "Briefly seen at home today");
        assert_eq!(merged.source, "Housing officer");
    }

    #[test]
    fn entries_that_break_the_schema_are_named() {
        let mut doc = AutoCommit::new();
        add_entry(&mut doc, "good", &draft("fine"), &recorder()).unwrap();
        assert_eq!(check_entry(&doc, "good"), Ok(()));
        assert_eq!(
            check_entry(&doc, "absent"),
            Ok(()),
            "a removed entry is fine"
        );
        doc.put(ROOT, "scalar", "not a map").unwrap();
        assert!(check_entry(&doc, "scalar").is_err());
        let entry = doc.put_object(ROOT, "wrong-type", ObjType::Map).unwrap();
        doc.put(&entry, "withheld", "yes").unwrap();
        assert!(check_entry(&doc, "wrong-type").is_err());
        let entry = doc.put_object(ROOT, "too-long", ObjType::Map).unwrap();
        doc.put(&entry, "source", "x".repeat(MAX_TEXT_CHARS + 1))
            .unwrap();
        assert!(check_entry(&doc, "too-long").is_err());
    }

    #[test]
    fn entries_sort_by_event_date() {
        let mut doc = AutoCommit::new();
        let mut later = draft("later");
        later.event_date = "2026-05-01".into();
        add_entry(&mut doc, "b", &later, &recorder()).unwrap();
        add_entry(&mut doc, "a", &draft("earlier"), &recorder()).unwrap();
        let order: Vec<_> = entries(&doc)
            .into_iter()
            .map(|e| e.draft.what_happened)
            .collect();
        assert_eq!(order, ["earlier", "later"]);
    }
}
