//! The kinds of record a case holds, each an Automerge document of its own (many small
//! documents rather than one per case: each loads and syncs quickly).

use serde::{Deserialize, Serialize};

/// A record kind, as stored in `documents.kind` and sent in `ClientMessage::Create`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// The case chronology (one per case, made with the case).
    Chronology,
    /// One contact with the person (joint visits have two workers editing it).
    VisitNote,
    /// An HRO identification form (one per sweep return for a case).
    Identification,
    /// One version of a Risk Management Plan.
    RiskPlan,
    /// One 3-monthly review.
    Review,
    /// A safety plan (children or adults at risk).
    SafetyPlan,
    /// The exit questionnaire at the end of supervision.
    ExitQuestionnaire,
    /// A near-miss learning review.
    LearningReview,
    /// The partners to call about the case (one per case).
    Partners,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::Chronology,
        Kind::VisitNote,
        Kind::Identification,
        Kind::RiskPlan,
        Kind::Review,
        Kind::SafetyPlan,
        Kind::ExitQuestionnaire,
        Kind::LearningReview,
        Kind::Partners,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chronology => "chronology",
            Kind::VisitNote => "visit-note",
            Kind::Identification => "identification",
            Kind::RiskPlan => "risk-plan",
            Kind::Review => "review",
            Kind::SafetyPlan => "safety-plan",
            Kind::ExitQuestionnaire => "exit-questionnaire",
            Kind::LearningReview => "learning-review",
            Kind::Partners => "partners",
        }
    }

    /// The kind a stored name names.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether a device may make records of this kind itself (the chronology is made with
    /// the case, by the server).
    pub fn created_on_devices(self) -> bool {
        self != Kind::Chronology
    }
}

// ---------------------------------------------------------------------------------------
// Schemas: one table of fields per kind, used for the server's schema check, the app's forms,
// the finalising check and the person's copy alike.
// ---------------------------------------------------------------------------------------

/// The type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Free text (an Automerge text object: concurrent edits merge by character).
    Text,
    /// A short line (a string value).
    Line,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// Yes or no.
    Bool,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// A list of items (a map of item id to item), each with these fields and its own
    /// withheld flag. Items live in a map, not a list, so two devices adding items offline
    /// never collide.
    Items(&'static [Field]),
}

/// One field of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Key in the document.
    pub key: &'static str,
    /// Label on the form.
    pub label: &'static str,
    /// Type.
    pub ty: FieldType,
    /// Needed before the record can be finalised.
    pub required: bool,
}

const fn field(key: &'static str, label: &'static str, ty: FieldType, required: bool) -> Field {
    Field {
        key,
        label,
        ty,
        required,
    }
}

use FieldType::{Bool, Choice, Date as DateField, Items, Line, Text};

const YES_NO: &[&str] = &["Yes", "No"];

const FOLLOW_UP: &[Field] = &[
    field("task", "Task", Line, true),
    field("owner", "Who", Line, true),
    field("due", "By", DateField, false),
];

const VISIT_NOTE: &[Field] = &[
    field("date", "Date", DateField, true),
    field(
        "contact_type",
        "Contact",
        Choice(&[
            "Home visit",
            "Office appointment",
            "Telephone",
            "Video call",
            "Other",
        ]),
        true,
    ),
    field(
        "planned",
        "Planned or unplanned",
        Choice(&["Planned", "Unplanned"]),
        true,
    ),
    field("start", "Start time", Line, false),
    field("end", "End time", Line, false),
    field("location", "Location", Line, true),
    field("workers_present", "Workers present", Line, true),
    field("others_present", "Others present", Line, false),
    field(
        "children_seen",
        "Children seen",
        Choice(&["Yes", "No", "No children in the household"]),
        true,
    ),
    field("discussed", "What was discussed", Text, true),
    field(
        "observations",
        "Observations of the home and acute risk factors",
        Text,
        false,
    ),
    field(
        "outcome",
        "Outcome",
        Choice(&[
            "Attended and complied",
            "Acceptable absence",
            "Failed to attend",
            "Failed to comply",
        ]),
        true,
    ),
    field(
        "lone_working_check_in",
        "Lone-working check-in done",
        Bool,
        false,
    ),
    field("follow_up", "Follow-up tasks", Items(FOLLOW_UP), false),
];

const IDENTIFICATION: &[Field] = &[
    field("index_offence", "Index offence", Line, true),
    field(
        "convicted_on_indictment",
        "Convicted on indictment",
        Choice(YES_NO),
        true,
    ),
    field(
        "criterion_a",
        "(a) Convicted on indictment of a serious violent or sexual offence",
        Bool,
        false,
    ),
    field(
        "criterion_b",
        "(b) Convicted of another crime presenting high risks to public safety",
        Bool,
        false,
    ),
    field(
        "criterion_c",
        "(c) Otherwise considered dangerous (escalating behaviour, change in circumstances)",
        Bool,
        false,
    ),
    field("part1_reasons", "Why these criteria apply", Text, true),
    field(
        "criterion_i",
        "(i) Risk assessment outcomes indicate a continuing high risk of serious harm",
        Bool,
        false,
    ),
    field(
        "criterion_ii",
        "(ii) Other reports or information indicate a continuing high risk of serious harm",
        Bool,
        false,
    ),
    field("part2_evidence", "The evidence", Text, true),
    field(
        "lscmi_level",
        "LS/CMI level",
        Choice(&["Very low", "Low", "Medium", "High", "Very high"]),
        false,
    ),
    field("lscmi_date", "LS/CMI date", DateField, false),
    field("rm2000", "RM2000 categories (S, V, C)", Line, false),
    field("rm2000_date", "RM2000 date", DateField, false),
    field("sa07", "Stable & Acute (SA07) scores", Line, false),
    field("sa07_date", "SA07 date", DateField, false),
    field(
        "at_risk",
        "Who is at risk (public, known adult, children, staff)",
        Line,
        true,
    ),
    field(
        "proposed_route",
        "Proposed route",
        Choice(&["MAPPA", "MARS", "In-house"]),
        true,
    ),
    field(
        "mappa_category",
        "MAPPA category",
        Choice(&["1", "2", "3"]),
        false,
    ),
    field(
        "mappa_level",
        "MAPPA level",
        Choice(&["1", "2", "3"]),
        false,
    ),
    field("child_protection", "Child protection concerns", Bool, false),
    field("adult_protection", "Adult protection concerns", Bool, false),
    field("domestic_abuse", "Domestic abuse", Bool, false),
    field("caledonian", "Caledonian programme", Bool, false),
    field("csogp", "CSOGP", Bool, false),
];

/// Areas of a Risk Management Plan's actions.
pub const PLAN_AREAS: &[&str] = &[
    "Supervision",
    "Monitoring and control",
    "Interventions and treatment",
    "Victim safety planning",
];

const PLAN_ACTIONS: &[Field] = &[
    field("area", "Area", Choice(PLAN_AREAS), true),
    field("action", "Action", Text, true),
    field("owner", "Owner", Line, true),
    field("agency", "Agency", Line, true),
    field("frequency", "Frequency", Line, false),
    field(
        "status",
        "Status",
        Choice(&["Not started", "In progress", "Done"]),
        false,
    ),
];

const CONTINGENCY: &[Field] = &[
    field("trigger", "Trigger", Line, true),
    field("action", "Action", Line, true),
    field("who", "Who", Line, true),
];

const RISK_PLAN: &[Field] = &[
    field(
        "risks",
        "Risks to manage (e.g. sexual, domestic abuse, general violence, stalking)",
        Line,
        true,
    ),
    field(
        "scenarios",
        "Risk scenarios (context, what, who, when, how, why)",
        Text,
        true,
    ),
    field("who_at_risk", "Who is at risk", Text, true),
    field("nature", "Nature of the risk", Text, true),
    field("when_greatest", "When the risk is greatest", Text, false),
    field("increases", "What increases the risk", Text, true),
    field("reduces", "What reduces the risk", Text, true),
    field("strengths", "Strengths and protective factors", Text, true),
    field("actions", "Actions", Items(PLAN_ACTIONS), true),
    field("contingency", "Contingency", Items(CONTINGENCY), true),
    field("review_date", "Plan review date", DateField, true),
    field(
        "agreement",
        "The person's agreement and comments",
        Text,
        false,
    ),
];

const REVIEW: &[Field] = &[
    field("held_on", "Date held", DateField, true),
    field(
        "attendees",
        "Attendees (worker, co-worker, partners)",
        Line,
        true,
    ),
    field("ssw_present", "Senior Social Worker present", Bool, true),
    field(
        "person_present",
        "The person was present",
        Choice(YES_NO),
        true,
    ),
    field("person_absent_reason", "If not, why", Line, false),
    field(
        "risk_score_changes",
        "Changes in risk scores since the last review",
        Text,
        false,
    ),
    field(
        "action_progress",
        "Progress on each plan action",
        Text,
        true,
    ),
    field(
        "partner_information",
        "Partner information (police, NHS, SOLO)",
        Text,
        false,
    ),
    field(
        "persons_view",
        "The person's view of how supervision is working",
        Text,
        true,
    ),
    field("barriers", "Barriers the person describes", Text, false),
    field(
        "service_improvement",
        "What could the service do better?",
        Text,
        true,
    ),
    field(
        "decision",
        "Decision",
        Choice(&[
            "Continue",
            "Change MAPPA level",
            "Refer to MAPPA",
            "Refer to MARS",
            "De-register",
        ]),
        true,
    ),
    field("decision_reason", "Reason for the decision", Text, false),
];

const SAFETY_PLAN: &[Field] = &[
    field(
        "protected",
        "Who is protected",
        Choice(&["Child", "Adult at risk"]),
        true,
    ),
    field("measures", "Measures", Text, true),
    field("responsible", "Who is responsible", Line, true),
    field("review_date", "Review date", DateField, true),
];

const EXIT_QUESTIONNAIRE: &[Field] = &[
    field(
        "completed_with",
        "Completed with (a member of staff who does not supervise the person)",
        Line,
        true,
    ),
    field("what_helped", "What helped", Text, true),
    field(
        "rating",
        "Rating of supervision (1 poor to 5 very good)",
        Choice(&["1", "2", "3", "4", "5"]),
        true,
    ),
    field("barriers", "Barriers", Text, false),
    field("practical_help", "Practical help received", Text, false),
    field("comments", "Comments", Text, false),
];

const LEARNING_ACTIONS: &[Field] = &[
    field("action", "Action", Line, true),
    field("owner", "Owner", Line, true),
    field("due", "By", DateField, false),
];

const LEARNING_REVIEW: &[Field] = &[
    field("what_happened", "What happened", Text, true),
    field("went_well", "What went well", Text, false),
    field(
        "could_have_gone_wrong",
        "What could have gone wrong",
        Text,
        true,
    ),
    field("actions", "Actions", Items(LEARNING_ACTIONS), false),
];

const PARTNERS: &[Field] = &[
    field("police_named_person", "Police named person", Line, false),
    field("police_phone", "Police named person: phone", Line, false),
    field("nhs_spoc", "NHS single point of contact", Line, false),
    field(
        "nhs_phone",
        "NHS single point of contact: phone",
        Line,
        false,
    ),
    field("solo", "SOLO (Sex Offender Liaison Officer)", Line, false),
    field("solo_phone", "SOLO: phone", Line, false),
    field("mappa_coordinator", "MAPPA coordinator", Line, false),
    field("mappa_phone", "MAPPA coordinator: phone", Line, false),
];

impl Kind {
    /// The fields of this kind of record (empty for the chronology, which has its own module).
    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Chronology => &[],
            Kind::VisitNote => VISIT_NOTE,
            Kind::Identification => IDENTIFICATION,
            Kind::RiskPlan => RISK_PLAN,
            Kind::Review => REVIEW,
            Kind::SafetyPlan => SAFETY_PLAN,
            Kind::ExitQuestionnaire => EXIT_QUESTIONNAIRE,
            Kind::LearningReview => LEARNING_REVIEW,
            Kind::Partners => PARTNERS,
        }
    }

    /// What the record is called on screen.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Chronology => "Chronology",
            Kind::VisitNote => "Visit note",
            Kind::Identification => "HRO identification form",
            Kind::RiskPlan => "Risk Management Plan",
            Kind::Review => "3-monthly review",
            Kind::SafetyPlan => "Safety plan",
            Kind::ExitQuestionnaire => "Exit questionnaire",
            Kind::LearningReview => "Learning review (near miss)",
            Kind::Partners => "Partners",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The document layout, and the server's check of it.
// ---------------------------------------------------------------------------------------

/// Root key holding the record's kind (written once, when the record is made).
pub const KIND_KEY: &str = "_kind";
/// Root key holding the record's case id (written once, when the record is made).
pub const CASE_KEY: &str = "_case";
/// Root key of the map of field keys withheld from the person.
pub const WITHHELD_KEY: &str = "_withheld";
/// Key of an item's withheld flag.
pub const ITEM_WITHHELD_KEY: &str = "withheld";

/// Longest free text, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Longest line, in characters.
pub const MAX_LINE_CHARS: usize = 500;
/// Most items in one list.
pub const MAX_ITEMS: usize = 200;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use std::collections::{BTreeMap, BTreeSet};

fn check_value(doc: &AutoCommit, field: &Field, value: &Value<'_>, id: &ObjId) -> bool {
    match (field.ty, value) {
        (Text, Value::Object(ObjType::Text)) => doc.length(id) <= MAX_TEXT_CHARS,
        (Line | DateField | Choice(_), Value::Scalar(s)) => match s.as_ref() {
            ScalarValue::Str(text) => {
                text.chars().count() <= MAX_LINE_CHARS
                    && match field.ty {
                        DateField => text.is_empty() || text.parse::<crate::dates::Date>().is_ok(),
                        Choice(options) => text.is_empty() || options.contains(&text.as_str()),
                        _ => true,
                    }
            }
            _ => false,
        },
        (Bool, Value::Scalar(s)) => matches!(s.as_ref(), ScalarValue::Boolean(_)),
        (Items(item_fields), Value::Object(ObjType::Map)) => {
            doc.length(id) <= MAX_ITEMS
                && doc.map_range(id, ..).all(|item| {
                    let item_id = item.id();
                    matches!(item.value, automerge::ValueRef::Object(ObjType::Map))
                        && doc.map_range(&item_id, ..).all(|f| {
                            let value = f.value.clone().into_value();
                            if f.key.as_ref() == ITEM_WITHHELD_KEY {
                                return matches!(&value, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Boolean(_)));
                            }
                            item_fields
                                .iter()
                                .find(|spec| spec.key == f.key.as_ref())
                                .is_some_and(|spec| {
                                    !matches!(spec.ty, Items(_))
                                        && check_value(doc, spec, &value, &f.id())
                                })
                        })
                })
        }
        _ => false,
    }
}

/// Checks root key `key` of a merged record of `kind` for `case` against the schema: the
/// server runs this on every key a sync message touched, before anything is stored. The
/// kind and case keys must name the record's registered kind and case; fields have their
/// types and sizes; unknown keys are refused.
pub fn check_key(doc: &AutoCommit, kind: Kind, case: &str, key: &str) -> Result<(), String> {
    let Some((value, id)) = doc.get(ROOT, key).map_err(|e| e.to_string())? else {
        return if key == KIND_KEY || key == CASE_KEY {
            Err(format!("a record's {key} cannot be removed"))
        } else {
            Ok(())
        };
    };
    let scalar_is = |expected: &str| matches!(&value, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(t) if t.as_str() == expected));
    let ok = match key {
        KIND_KEY => scalar_is(kind.as_str()),
        CASE_KEY => scalar_is(case),
        WITHHELD_KEY => {
            matches!(value, Value::Object(ObjType::Map))
                && doc.map_range(&id, ..).all(|w| {
                    kind.fields().iter().any(|f| f.key == w.key.as_ref())
                        && matches!(
                            w.value,
                            automerge::ValueRef::Scalar(automerge::ScalarValueRef::Boolean(_))
                        )
                })
        }
        _ => kind
            .fields()
            .iter()
            .find(|f| f.key == key)
            .is_some_and(|f| check_value(doc, f, &value, &id)),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the {} field \"{}\" has the wrong type or size",
            kind.as_str(),
            key.escape_debug()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Reading and writing records.
// ---------------------------------------------------------------------------------------

/// A record as read from its document: every field as text (`"true"`/`""` for yes/no).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Field values by key (absent: empty).
    pub values: BTreeMap<String, String>,
    /// Item lists by field key: (item id, its values).
    pub items: BTreeMap<String, Vec<Item>>,
    /// Field keys withheld from the person.
    pub withheld: BTreeSet<String>,
}

/// One item of a list field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The item's id.
    pub id: String,
    /// Its values by key.
    pub values: BTreeMap<String, String>,
    /// Withheld from the person.
    pub withheld: bool,
}

impl Record {
    /// A field's value ("" when not set).
    pub fn value(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    /// Whether a yes/no field is yes.
    pub fn yes(&self, key: &str) -> bool {
        self.value(key) == "true"
    }
}

fn read_value(doc: &AutoCommit, obj: &ObjId, key: &str) -> String {
    match doc.get(obj, key).ok().flatten() {
        Some((Value::Object(ObjType::Text), id)) => doc.text(&id).unwrap_or_default(),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(t) => t.to_string(),
            ScalarValue::Boolean(true) => "true".into(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

fn read_values(doc: &AutoCommit, obj: &ObjId, fields: &[Field]) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter(|f| !matches!(f.ty, Items(_)))
        .map(|f| (f.key.to_owned(), read_value(doc, obj, f.key)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The record's kind and case, as written when it was made.
pub fn identity(doc: &AutoCommit) -> Option<(Kind, String)> {
    let kind = Kind::parse(&read_value(doc, &ROOT, KIND_KEY))?;
    Some((kind, read_value(doc, &ROOT, CASE_KEY)))
}

/// Reads a record of `kind`.
pub fn read(doc: &AutoCommit, kind: Kind) -> Record {
    let mut record = Record {
        values: read_values(doc, &ROOT, kind.fields()),
        ..Record::default()
    };
    for f in kind.fields() {
        if let Items(item_fields) = f.ty
            && let Some((Value::Object(ObjType::Map), list)) = doc.get(ROOT, f.key).ok().flatten()
        {
            let mut items: Vec<Item> = doc
                .map_range(&list, ..)
                .map(|entry| {
                    let id = entry.id();
                    Item {
                        id: entry.key.to_string(),
                        values: read_values(doc, &id, item_fields),
                        withheld: read_value(doc, &id, ITEM_WITHHELD_KEY) == "true",
                    }
                })
                .collect();
            items.sort_by(|a, b| a.id.cmp(&b.id));
            record.items.insert(f.key.to_owned(), items);
        }
    }
    if let Some((Value::Object(ObjType::Map), withheld)) =
        doc.get(ROOT, WITHHELD_KEY).ok().flatten()
    {
        record.withheld = doc
            .map_range(&withheld, ..)
            .filter(|w| {
                matches!(
                    w.value,
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Boolean(true))
                )
            })
            .map(|w| w.key.to_string())
            .collect();
    }
    record
}

/// Why a value could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such field.
    #[error("this record has no field \"{}\"", .0.escape_debug())]
    NoSuchField(String),
    /// The value does not fit the field.
    #[error("{0}")]
    Invalid(String),
    /// Automerge refused.
    #[error("document error: {0}")]
    Document(#[from] automerge::AutomergeError),
}

/// Starts a new record: its kind and case (call once, in the change that makes it).
pub fn start(doc: &mut AutoCommit, kind: Kind, case: &str) -> Result<(), RecordError> {
    doc.put(ROOT, KIND_KEY, kind.as_str())?;
    doc.put(ROOT, CASE_KEY, case)?;
    Ok(())
}

fn write_value(
    doc: &mut AutoCommit,
    obj: &ObjId,
    field: &Field,
    value: &str,
) -> Result<(), RecordError> {
    let invalid = |m: &str| Err(RecordError::Invalid(format!("{}: {m}", field.label)));
    match field.ty {
        Text => {
            if value.chars().count() > MAX_TEXT_CHARS {
                return invalid("this is too long");
            }
            match doc.get(obj, field.key)? {
                Some((Value::Object(ObjType::Text), text)) => {
                    if doc.text(&text)? != value {
                        doc.update_text(&text, value)?;
                    }
                }
                _ => {
                    // A new, empty text: one splice, no diff against the empty text.
                    let text = doc.put_object(obj, field.key, ObjType::Text)?;
                    doc.splice_text(&text, 0, 0, value)?;
                }
            }
            return Ok(());
        }
        Bool => {
            let on = value == "true";
            if read_value(doc, obj, field.key) != value {
                doc.put(obj, field.key, on)?;
            }
            return Ok(());
        }
        DateField if !value.is_empty() && value.parse::<crate::dates::Date>().is_err() => {
            return invalid("enter a date as YYYY-MM-DD");
        }
        Choice(options) if !value.is_empty() && !options.contains(&value) => {
            return invalid("choose one of the options");
        }
        Items(_) => return invalid("a list is changed item by item"),
        _ => {}
    }
    if value.chars().count() > MAX_LINE_CHARS {
        return invalid("this is too long");
    }
    if read_value(doc, obj, field.key) != value {
        doc.put(obj, field.key, value)?;
    }
    Ok(())
}

fn field_of(kind: Kind, key: &str) -> Result<&'static Field, RecordError> {
    kind.fields()
        .iter()
        .find(|f| f.key == key)
        .ok_or_else(|| RecordError::NoSuchField(key.to_owned()))
}

/// Sets field `key` (only writes when the value changed; text merges by character).
pub fn set(doc: &mut AutoCommit, kind: Kind, key: &str, value: &str) -> Result<(), RecordError> {
    let field = field_of(kind, key)?;
    write_value(doc, &ROOT, field, value)
}

/// Marks field `key` withheld from the person, or not.
pub fn set_withheld(
    doc: &mut AutoCommit,
    kind: Kind,
    key: &str,
    withheld: bool,
) -> Result<(), RecordError> {
    field_of(kind, key)?;
    let map = match doc.get(ROOT, WITHHELD_KEY)? {
        Some((Value::Object(ObjType::Map), map)) => map,
        _ => doc.put_object(ROOT, WITHHELD_KEY, ObjType::Map)?,
    };
    doc.put(&map, key, withheld)?;
    Ok(())
}

/// Sets the given values of item `item_id` of list field `key` (making the item if new; its
/// other values are left as they are) and, when `withheld` is given, its withheld flag.
/// Callers pass only what the person changed: a value read from an earlier copy of the
/// record and written back would undo a change made since.
pub fn set_item(
    doc: &mut AutoCommit,
    kind: Kind,
    key: &str,
    item_id: &str,
    values: &BTreeMap<String, String>,
    withheld: Option<bool>,
) -> Result<(), RecordError> {
    let field = field_of(kind, key)?;
    let Items(item_fields) = field.ty else {
        return Err(RecordError::NoSuchField(key.to_owned()));
    };
    let list = match doc.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), list)) => list,
        _ => doc.put_object(ROOT, key, ObjType::Map)?,
    };
    let item = match doc.get(&list, item_id)? {
        Some((Value::Object(ObjType::Map), item)) => item,
        _ => doc.put_object(&list, item_id, ObjType::Map)?,
    };
    for (k, v) in values {
        let spec = item_fields
            .iter()
            .find(|f| f.key == k.as_str())
            .ok_or_else(|| RecordError::NoSuchField(k.clone()))?;
        write_value(doc, &item, spec, v)?;
    }
    if let Some(withheld) = withheld
        && (read_value(doc, &item, ITEM_WITHHELD_KEY) == "true") != withheld
    {
        doc.put(&item, ITEM_WITHHELD_KEY, withheld)?;
    }
    Ok(())
}

/// Removes item `item_id` of list field `key`.
pub fn remove_item(
    doc: &mut AutoCommit,
    kind: Kind,
    key: &str,
    item_id: &str,
) -> Result<(), RecordError> {
    field_of(kind, key)?;
    if let Some((Value::Object(ObjType::Map), list)) = doc.get(ROOT, key)? {
        doc.delete(&list, item_id)?;
    }
    Ok(())
}

/// One problem that stops a record being finalised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// The field's key.
    pub field: String,
    /// What to do, in plain words.
    pub message: String,
}

/// Everything that stops a record of `kind` being finalised (empty: it can be).
pub fn missing(kind: Kind, record: &Record) -> Vec<Missing> {
    let mut problems = Vec::new();
    for f in kind.fields() {
        let empty = match f.ty {
            Items(item_fields) => {
                let items = record
                    .items
                    .get(f.key)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for item in items {
                    for spec in item_fields.iter().filter(|s| s.required) {
                        if item
                            .values
                            .get(spec.key)
                            .is_none_or(|v| v.trim().is_empty())
                        {
                            problems.push(Missing {
                                field: f.key.to_owned(),
                                message: format!("{}: every item needs “{}”.", f.label, spec.label),
                            });
                        }
                    }
                }
                items.is_empty()
            }
            Bool => !record.yes(f.key),
            _ => record.value(f.key).trim().is_empty(),
        };
        if f.required && empty {
            problems.push(Missing {
                field: f.key.to_owned(),
                message: match f.ty {
                    Bool => format!("“{}” must be confirmed.", f.label),
                    Items(_) => format!("Add at least one item under “{}”.", f.label),
                    _ => format!("Fill in “{}”.", f.label),
                },
            });
        }
    }
    if kind == Kind::Identification {
        if !["criterion_a", "criterion_b", "criterion_c"]
            .iter()
            .any(|k| record.yes(k))
        {
            problems.push(Missing {
                field: "criterion_a".into(),
                message: "Part 1: tick at least one of (a), (b) or (c).".into(),
            });
        }
        if !["criterion_i", "criterion_ii"]
            .iter()
            .any(|k| record.yes(k))
        {
            problems.push(Missing {
                field: "criterion_i".into(),
                message: "Part 2: tick (i) or (ii).".into(),
            });
        }
    }
    problems
}

/// A short summary of a record for lists: its dates and choices, never free text.
pub fn summary(kind: Kind, record: &Record) -> String {
    let keys: &[&str] = match kind {
        Kind::VisitNote => &["date", "contact_type", "outcome"],
        Kind::Review => &["held_on", "decision"],
        Kind::RiskPlan => &["risks", "review_date"],
        Kind::Identification => &["proposed_route", "lscmi_level"],
        Kind::SafetyPlan => &["protected", "review_date"],
        Kind::ExitQuestionnaire => &["rating"],
        Kind::Partners => &["police_named_person", "nhs_spoc"],
        Kind::LearningReview | Kind::Chronology => &[],
    };
    keys.iter()
        .map(|k| record.value(k))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One line of the person's copy of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyLine {
    /// The field's label (for an item, the list's label).
    pub label: String,
    /// The value (for an item, its values joined).
    pub value: String,
}

/// The person's copy of a record: every field and item with a value, except those withheld
/// from the person.
pub fn persons_copy(kind: Kind, record: &Record) -> Vec<CopyLine> {
    let mut lines = Vec::new();
    for f in kind.fields() {
        if record.withheld.contains(f.key) {
            continue;
        }
        match f.ty {
            Items(item_fields) => {
                for item in record
                    .items
                    .get(f.key)
                    .into_iter()
                    .flatten()
                    .filter(|i| !i.withheld)
                {
                    let value = item_fields
                        .iter()
                        .filter_map(|spec| {
                            item.values
                                .get(spec.key)
                                .filter(|v| !v.is_empty())
                                .map(|v| format!("{}: {v}", spec.label))
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    lines.push(CopyLine {
                        label: f.label.to_owned(),
                        value,
                    });
                }
            }
            Bool => {
                if record.yes(f.key) {
                    lines.push(CopyLine {
                        label: f.label.to_owned(),
                        value: "Yes".into(),
                    });
                }
            }
            _ => {
                let value = record.value(f.key);
                if !value.is_empty() {
                    lines.push(CopyLine {
                        label: f.label.to_owned(),
                        value: value.to_owned(),
                    });
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("spreadsheet"), None);
    }

    fn new_plan() -> AutoCommit {
        let mut doc = AutoCommit::new();
        start(&mut doc, Kind::RiskPlan, "case-1").unwrap();
        doc
    }

    #[test]
    fn fields_items_and_withheld_flags_read_back() {
        let mut doc = new_plan();
        set(&mut doc, Kind::RiskPlan, "risks", "Domestic abuse").unwrap();
        set(
            &mut doc,
            Kind::RiskPlan,
            "scenarios",
            "Contact with ex-partner",
        )
        .unwrap();
        set(&mut doc, Kind::RiskPlan, "review_date", "2026-12-01").unwrap();
        let action: BTreeMap<String, String> = [
            ("area", "Supervision"),
            ("action", "Weekly visits"),
            ("owner", "Jo"),
            ("agency", "CJSW"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        set_item(
            &mut doc,
            Kind::RiskPlan,
            "actions",
            "a1",
            &action,
            Some(true),
        )
        .unwrap();
        set_withheld(&mut doc, Kind::RiskPlan, "scenarios", true).unwrap();
        // One value changed: the others, and the withheld flag, are left as they are.
        let owner = BTreeMap::from([("owner".to_owned(), "Jo Ritchie".to_owned())]);
        set_item(&mut doc, Kind::RiskPlan, "actions", "a1", &owner, None).unwrap();
        let record = read(&doc, Kind::RiskPlan);
        assert_eq!(record.value("risks"), "Domestic abuse");
        assert_eq!(record.items["actions"][0].values["owner"], "Jo Ritchie");
        assert_eq!(record.items["actions"][0].values["action"], "Weekly visits");
        assert!(record.items["actions"][0].withheld);
        assert!(record.withheld.contains("scenarios"));
        assert_eq!(identity(&doc), Some((Kind::RiskPlan, "case-1".to_owned())));
        for key in [
            "_kind",
            "_case",
            "risks",
            "scenarios",
            "actions",
            "_withheld",
            "review_date",
        ] {
            assert_eq!(
                check_key(&doc, Kind::RiskPlan, "case-1", key),
                Ok(()),
                "{key}"
            );
        }
        // Bad values are refused when written and when checked.
        assert!(set(&mut doc, Kind::RiskPlan, "review_date", "31/12/2026").is_err());
        assert!(set(&mut doc, Kind::RiskPlan, "nonsense", "x").is_err());
        doc.put(ROOT, "review_date", "soon").unwrap();
        assert!(check_key(&doc, Kind::RiskPlan, "case-1", "review_date").is_err());
        doc.put(ROOT, "unknown", 1).unwrap();
        assert!(check_key(&doc, Kind::RiskPlan, "case-1", "unknown").is_err());
        assert!(
            check_key(&doc, Kind::RiskPlan, "case-2", "_case").is_err(),
            "the case is fixed"
        );
        assert!(
            check_key(&doc, Kind::Review, "case-1", "_kind").is_err(),
            "the kind is fixed"
        );
    }

    #[test]
    fn a_record_missing_required_fields_cannot_be_finalised() {
        let mut doc = AutoCommit::new();
        start(&mut doc, Kind::Identification, "c").unwrap();
        set(
            &mut doc,
            Kind::Identification,
            "index_offence",
            "Assault to injury",
        )
        .unwrap();
        let problems = missing(Kind::Identification, &read(&doc, Kind::Identification));
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(!fields.contains(&"index_offence"));
        for needed in [
            "convicted_on_indictment",
            "part1_reasons",
            "part2_evidence",
            "at_risk",
            "proposed_route",
            "criterion_a",
            "criterion_i",
        ] {
            assert!(fields.contains(&needed), "{needed} in {fields:?}");
        }
        assert!(problems.iter().all(|p| !p.message.is_empty()));
    }

    proptest::proptest! {
        #[test]
        fn the_persons_copy_never_holds_a_withheld_item(
            fields in proptest::collection::vec((0usize..12, proptest::bool::ANY), 0..12),
            items in proptest::collection::vec((0usize..4, proptest::bool::ANY), 0..8),
        ) {
            let mut doc = new_plan();
            let plain: Vec<&Field> = RISK_PLAN.iter().filter(|f| matches!(f.ty, Text | Line)).collect();
            let mut withheld_texts = Vec::new();
            let mut shared_texts = Vec::new();
            for (n, (index, withheld)) in fields.iter().enumerate() {
                let f = plain[index % plain.len()];
                let text = format!("field-{n}-{}", f.key);
                set(&mut doc, Kind::RiskPlan, f.key, &text).unwrap();
                set_withheld(&mut doc, Kind::RiskPlan, f.key, *withheld).unwrap();
            }
            for (n, (area, withheld)) in items.iter().enumerate() {
                let text = format!("item-{n}");
                let values: BTreeMap<String, String> = [("area", PLAN_AREAS[*area]), ("action", text.as_str())]
                    .into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                set_item(&mut doc, Kind::RiskPlan, "actions", &format!("i{n}"), &values, Some(*withheld)).unwrap();
                if *withheld { withheld_texts.push(text) } else { shared_texts.push(text) }
            }
            let record = read(&doc, Kind::RiskPlan);
            for f in &plain {
                let value = record.value(f.key).to_owned();
                if value.is_empty() { continue; }
                if record.withheld.contains(f.key) { withheld_texts.push(value) } else { shared_texts.push(value) }
            }
            let copy = persons_copy(Kind::RiskPlan, &record);
            let all: String = copy.iter().map(|l| format!("{}\n", l.value)).collect();
            for text in &withheld_texts {
                proptest::prop_assert!(!all.contains(text.as_str()), "{} is withheld", text);
            }
            for text in &shared_texts {
                proptest::prop_assert!(all.contains(text.as_str()), "{} is shared", text);
            }
        }
    }
}
