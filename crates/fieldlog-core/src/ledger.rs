//! How records live in Automerge documents.
//!
//! A **ledger** (`ledger/<team>/<YYYY-MM>`) holds one team's visits created in one month; a
//! **registry** (`registry/<district>`) holds one district's schools. Records sit directly
//! under the document root, keyed by id, so two devices that start the same document
//! concurrently never create rival containers. Each visit map holds scalar fields (which can
//! conflict and are then all kept), an `activities` map of kind → true (adds and removals
//! merge), and audience counters (increments from several devices add up). Root keys
//! `actor:<hex>` name the device behind each actor, so conflicts can say who entered what.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::{
    ActivityKind, Area, Audience, AudienceRule, Cohort, Course, CourseFields, CourseId, Decision,
    DecisionKind, District, Donations, Field, Gender, Goal, Pairing, PairingFields, School,
    SchoolFields, SchoolId, SchoolLevel, SchoolStatus, Student, StudentId, Target, TargetKey,
    TeamId, Visit, VisitFields, VisitId, VisitStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub type AmResult<T> = Result<T, automerge::AutomergeError>;

/// Which document a record lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    Ledger {
        team: TeamId,
        month: String,
    },
    Registry {
        district: District,
    },
    /// Coordinators' decisions about a district's visits and schools, by year decided.
    Review {
        district: District,
        year: i32,
    },
    /// The targets a team's coordinators set.
    Targets {
        team: TeamId,
    },
    /// A team's series courses.
    Courses {
        team: TeamId,
    },
    /// A team's volunteer–teacher pairings.
    Pairings {
        team: TeamId,
    },
    /// One course's roster: minors' names, kept with the team and the bureau only.
    Roster {
        team: TeamId,
        course: CourseId,
    },
}

impl DocId {
    pub fn ledger(team: &TeamId, created_at_ms: i64) -> DocId {
        let month = chrono::DateTime::from_timestamp_millis(created_at_ms)
            .unwrap_or_default()
            .format("%Y-%m")
            .to_string();
        DocId::Ledger {
            team: team.clone(),
            month,
        }
    }

    pub fn registry(district: &District) -> DocId {
        DocId::Registry {
            district: district.clone(),
        }
    }

    pub fn review(district: &District, decided_at_ms: i64) -> DocId {
        let year = chrono::DateTime::from_timestamp_millis(decided_at_ms)
            .unwrap_or_default()
            .format("%Y")
            .to_string();
        DocId::Review {
            district: district.clone(),
            year: year.parse().unwrap_or(1970),
        }
    }

    /// Parses `ledger/<team>/<YYYY-MM>`, `registry/<district>`, `review/<district>/<YYYY>`,
    /// `targets/<team>`, `courses/<team>`, `pairings/<team>` or `roster/<team>/<course>`;
    /// anything else is `None`.
    pub fn parse(id: &str) -> Option<DocId> {
        let mut parts = id.split('/');
        let doc = match (parts.next()?, parts.next()?, parts.next()) {
            ("ledger", team, Some(month)) => {
                chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
                (month.len() == 7).then_some(())?;
                DocId::Ledger {
                    team: TeamId::parse(team).ok()?,
                    month: month.to_string(),
                }
            }
            ("registry", district, None) => DocId::Registry {
                district: District::parse(district).ok()?,
            },
            ("review", district, Some(year)) => DocId::Review {
                district: District::parse(district).ok()?,
                year: (year.len() == 4)
                    .then(|| year.parse().ok())
                    .flatten()
                    .filter(|y| (1970..=9999).contains(y))?,
            },
            ("targets", team, None) => DocId::Targets {
                team: TeamId::parse(team).ok()?,
            },
            ("courses", team, None) => DocId::Courses {
                team: TeamId::parse(team).ok()?,
            },
            ("pairings", team, None) => DocId::Pairings {
                team: TeamId::parse(team).ok()?,
            },
            ("roster", team, Some(course)) => DocId::Roster {
                team: TeamId::parse(team).ok()?,
                course: course.parse().ok()?,
            },
            _ => return None,
        };
        (parts.next().is_none() && doc.to_string() == id).then_some(doc)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Ledger { team, month } => write!(f, "ledger/{team}/{month}"),
            DocId::Registry { district } => write!(f, "registry/{district}"),
            DocId::Review { district, year } => write!(f, "review/{district}/{year}"),
            DocId::Targets { team } => write!(f, "targets/{team}"),
            DocId::Courses { team } => write!(f, "courses/{team}"),
            DocId::Pairings { team } => write!(f, "pairings/{team}"),
            DocId::Roster { team, course } => write!(f, "roster/{team}/{course}"),
        }
    }
}

const ACTOR_PREFIX: &str = "actor:";

/// Records under the root (everything but the `actor:` names).
pub fn record_keys(doc: &impl ReadDoc) -> Vec<String> {
    doc.keys(ROOT)
        .filter(|k| !k.starts_with(ACTOR_PREFIX))
        .collect()
}

pub fn record_obj(doc: &impl ReadDoc, id: &str) -> Option<ObjId> {
    record_obj_in(doc, &ROOT, id)
}

/// Names this device in the document the first time it writes there.
pub fn sign<T: Transactable + ReadDoc>(
    tx: &mut T,
    actor_hex: &str,
    device_name: &str,
) -> AmResult<()> {
    let key = format!("{ACTOR_PREFIX}{actor_hex}");
    if tx.get(ROOT, key.as_str())?.is_none() {
        tx.put(ROOT, key, device_name)?;
    }
    Ok(())
}

fn author_name(doc: &impl ReadDoc, actor_hex: &str) -> String {
    get_str(doc, &ROOT, &format!("{ACTOR_PREFIX}{actor_hex}")).unwrap_or_default()
}

// ---- visits ----

const K_TEAM: &str = "team";
const K_SCHOOL: &str = "school";
const K_DATE: &str = "date";
const K_ACTIVITIES: &str = "activities";
const K_TOPIC: &str = "topic";
const K_PRESENTERS: &str = "presenters";
const K_NOTES: &str = "notes";
const K_STUDENTS: &str = "students";
const K_TEACHERS: &str = "teachers";
const K_OTHERS: &str = "others";
const K_BREAKDOWN: &str = "breakdown";
const K_BOOKS: &str = "books";
const K_KITS: &str = "kits";
const K_STATUS: &str = "status";
const K_DELETED: &str = "deleted";
const K_DUPLICATE_OF: &str = "duplicate_of";
const K_CREATED_AT: &str = "created_at";
const K_CREATED_BY: &str = "created_by";
const K_EDITED_AT: &str = "edited_at";
const K_PHOTOS: &str = "photos";
const K_COURSE: &str = "course";
const K_ATTENDANCE: &str = "attendance";

/// Scalar visit fields that can hold concurrent values, and the field each one is.
const VISIT_SCALARS: [(&str, Field); 10] = [
    (K_COURSE, Field::Course),
    (K_SCHOOL, Field::School),
    (K_DATE, Field::Date),
    (K_TOPIC, Field::Topic),
    (K_PRESENTERS, Field::Presenters),
    (K_NOTES, Field::Notes),
    (K_BOOKS, Field::Books),
    (K_KITS, Field::Kits),
    (K_STATUS, Field::Status),
    (K_DUPLICATE_OF, Field::DuplicateOf),
];

/// A document key and how to read its value from a record.
type Keyed<T, V> = (&'static str, fn(&T) -> V);

pub(crate) fn insert_visit<T: Transactable + ReadDoc>(tx: &mut T, visit: &Visit) -> AmResult<()> {
    let obj = tx.put_object(ROOT, visit.id.to_string(), ObjType::Map)?;
    tx.put(&obj, K_TEAM, visit.team.as_str())?;
    tx.put(&obj, K_CREATED_AT, ScalarValue::Timestamp(visit.created_at))?;
    tx.put(&obj, K_CREATED_BY, visit.created_by.as_str())?;
    // A field left at its default is not written (the reader's default is the same); each
    // operation costs time on every save and load of the month.
    if visit.status != VisitStatus::Recorded {
        tx.put(&obj, K_STATUS, visit.status.key())?;
    }
    if visit.deleted {
        tx.put(&obj, K_DELETED, true)?;
    }
    // Created once here, so concurrent edits never race to create them.
    tx.put_object(&obj, K_ACTIVITIES, ObjType::Map)?;
    tx.put_object(&obj, K_BREAKDOWN, ObjType::Map)?;
    tx.put_object(&obj, K_PHOTOS, ObjType::Map)?;
    tx.put_object(&obj, K_ATTENDANCE, ObjType::Map)?;
    // The counters start at the entered counts; later edits move them by the difference.
    let audience = &visit.fields.audience;
    for (key, count) in [
        (K_STUDENTS, audience.students),
        (K_TEACHERS, audience.teachers),
        (K_OTHERS, audience.others),
    ] {
        tx.put(&obj, key, ScalarValue::counter(i64::from(count)))?;
    }
    write_visit_fields(tx, &obj, None, &visit.fields)
}

/// Writes what differs between `old` and `new`. Counters move by the difference, so
/// concurrent tallies add up instead of overwriting each other.
pub(crate) fn write_visit_fields<T: Transactable + ReadDoc>(
    tx: &mut T,
    obj: &ObjId,
    old: Option<&VisitFields>,
    new: &VisitFields,
) -> AmResult<()> {
    // A new record (no `old`) gets only the fields that differ from the reader's defaults.
    let changed = |f: fn(&VisitFields) -> String| match old {
        Some(o) => f(o) != f(new),
        None => !f(new).is_empty(),
    };
    let texts: [Keyed<VisitFields, String>; 5] = [
        (K_SCHOOL, |v| v.school.to_string()),
        (K_DATE, |v| v.date.to_string()),
        (K_TOPIC, |v| v.topic.clone()),
        (K_PRESENTERS, |v| v.presenters.clone()),
        (K_NOTES, |v| v.notes.clone()),
    ];
    for (key, get) in texts {
        if changed(get) {
            tx.put(obj, key, get(new))?;
        }
    }
    let ints: [Keyed<VisitFields, u32>; 2] = [
        (K_BOOKS, |v| v.donations.books),
        (K_KITS, |v| v.donations.kits),
    ];
    for (key, get) in ints {
        if old.map_or(get(new) != 0, |o| get(o) != get(new)) {
            tx.put(obj, key, i64::from(get(new)))?;
        }
    }

    let activities = child_map(tx, obj, K_ACTIVITIES)?;
    let before = old.map(|o| o.activities.clone()).unwrap_or_default();
    for kind in new.activities.difference(&before) {
        tx.put(&activities, kind.key(), true)?;
    }
    for kind in before.difference(&new.activities) {
        tx.delete(&activities, kind.key())?;
    }
    if old.is_none_or(|o| o.course != new.course) {
        match new.course {
            Some(course) => tx.put(obj, K_COURSE, course.to_string())?,
            None if old.is_some() => tx.delete(obj, K_COURSE)?,
            None => {}
        }
    }
    let present_before = old.map(|o| o.attendance.clone()).unwrap_or_default();
    if present_before != new.attendance {
        let attendance = child_map(tx, obj, K_ATTENDANCE)?;
        for student in new.attendance.difference(&present_before) {
            tx.put(&attendance, student.to_string(), true)?;
        }
        for student in present_before.difference(&new.attendance) {
            tx.delete(&attendance, student.to_string())?;
        }
    }

    let counters: [Keyed<Audience, u32>; 3] = [
        (K_STUDENTS, |a| a.students),
        (K_TEACHERS, |a| a.teachers),
        (K_OTHERS, |a| a.others),
    ];
    // A new record's counters were created holding its counts (see `insert_visit`).
    let mut old_audience = old.map_or_else(
        || Audience {
            breakdown: BTreeMap::new(),
            ..new.audience.clone()
        },
        |o| o.audience.clone(),
    );
    if old.is_some_and(|o| !o.attendance.is_empty()) || !new.attendance.is_empty() {
        // The count shown is the number present; the counter moves from what it holds.
        old_audience.students = get_count(tx, obj, K_STUDENTS);
    }
    for (key, get) in counters {
        increment_by(tx, obj, key, get(&old_audience), get(&new.audience))?;
    }
    let breakdown = child_map(tx, obj, K_BREAKDOWN)?;
    let cohorts: BTreeSet<Cohort> = old_audience
        .breakdown
        .keys()
        .chain(new.audience.breakdown.keys())
        .copied()
        .collect();
    for cohort in cohorts {
        let count = |a: &Audience| a.breakdown.get(&cohort).copied().unwrap_or(0);
        let key = cohort.to_string();
        if tx.get(&breakdown, key.as_str())?.is_none() {
            tx.put(&breakdown, key.as_str(), ScalarValue::counter(0))?;
        }
        increment_by(
            tx,
            &breakdown,
            &key,
            count(&old_audience),
            count(&new.audience),
        )?;
    }
    Ok(())
}

fn increment_by<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    old: u32,
    new: u32,
) -> AmResult<()> {
    let delta = i64::from(new) - i64::from(old);
    if delta != 0 {
        tx.increment(obj, key, delta)?;
    }
    Ok(())
}

fn child_map<T: Transactable + ReadDoc>(tx: &mut T, obj: &ObjId, key: &str) -> AmResult<ObjId> {
    match tx.get(obj, key)? {
        Some((Value::Object(ObjType::Map), child)) => Ok(child),
        _ => tx.put_object(obj, key, ObjType::Map),
    }
}

/// Marks when a visit was last edited (a coordinator sees a flagged visit fixed after it).
pub(crate) fn touch<T: Transactable>(tx: &mut T, obj: &ObjId, now: i64) -> AmResult<()> {
    tx.put(obj, K_EDITED_AT, ScalarValue::Timestamp(now))
}

/// Writes one field's value over every concurrent value this document holds (a
/// coordinator's resolve): scalars are put even when equal to the value shown, counters move
/// to the value.
pub(crate) fn settle_field<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    field: Field,
    current: &VisitFields,
    settled: &VisitFields,
) -> AmResult<()> {
    let Some(key) = field_key(field) else {
        return Ok(());
    };
    let counter = |a: &Audience| match field {
        Field::Students => Some(a.students),
        Field::Teachers => Some(a.teachers),
        Field::Others => Some(a.others),
        _ => None,
    };
    if let (Some(old), Some(new)) = (counter(&current.audience), counter(&settled.audience)) {
        return increment_by(tx, obj, key, old, new);
    }
    let value: ScalarValue = match field {
        Field::School => settled.school.to_string().into(),
        Field::Date => settled.date.to_string().into(),
        Field::Topic => settled.topic.as_str().into(),
        Field::Presenters => settled.presenters.as_str().into(),
        Field::Notes => settled.notes.as_str().into(),
        Field::Books => i64::from(settled.donations.books).into(),
        Field::Kits => i64::from(settled.donations.kits).into(),
        _ => return Ok(()),
    };
    tx.put(obj, key, value)
}

/// The document key of a visit field a coordinator may settle.
pub fn field_key(field: Field) -> Option<&'static str> {
    Some(match field {
        Field::School => K_SCHOOL,
        Field::Date => K_DATE,
        Field::Topic => K_TOPIC,
        Field::Presenters => K_PRESENTERS,
        Field::Notes => K_NOTES,
        Field::Books => K_BOOKS,
        Field::Kits => K_KITS,
        Field::Students => K_STUDENTS,
        Field::Teachers => K_TEACHERS,
        Field::Others => K_OTHERS,
        _ => return None,
    })
}

/// Marks a visit deleted: the record stays, so a concurrent edit still merges.
pub(crate) fn mark_deleted<T: Transactable>(tx: &mut T, obj: &ObjId) -> AmResult<()> {
    tx.put(obj, K_DELETED, true)
}

/// Reads a visit; `None` when the record is malformed (e.g. written by a foreign tool).
pub fn read_visit(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<Visit> {
    let fields = Entries::of(doc, obj);
    let keys_of = |key: &str| fields.map(key).map(|map| doc.keys(&map));
    let activities = match fields.value(K_ACTIVITIES)? {
        Value::Object(ObjType::Map) => keys_of(K_ACTIVITIES)?
            .filter_map(|k| ActivityKind::parse(&k).ok())
            .collect(),
        _ => BTreeSet::new(),
    };
    let attendance: BTreeSet<StudentId> = keys_of(K_ATTENDANCE)
        .map(|keys| keys.filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default();
    let students = match attendance.len() {
        0 => fields.count(K_STUDENTS),
        present => u32::try_from(present).unwrap_or(u32::MAX),
    };
    let breakdown = match fields.value(K_BREAKDOWN)? {
        Value::Object(ObjType::Map) => {
            let cohorts = Entries::of(doc, &fields.map(K_BREAKDOWN)?);
            cohorts
                .0
                .keys()
                .filter_map(|k| Some((Cohort::parse(k).ok()?, cohorts.count(k))))
                .filter(|(_, n)| *n > 0)
                .collect()
        }
        _ => BTreeMap::new(),
    };
    Some(Visit {
        id: id.parse().ok()?,
        team: TeamId::parse(&fields.str(K_TEAM)?).ok()?,
        fields: VisitFields {
            school: fields.str(K_SCHOOL)?.parse().ok()?,
            date: fields.str(K_DATE)?.parse().ok()?,
            activities,
            topic: fields.str(K_TOPIC).unwrap_or_default(),
            presenters: fields.str(K_PRESENTERS).unwrap_or_default(),
            notes: fields.str(K_NOTES).unwrap_or_default(),
            audience: Audience {
                students,
                teachers: fields.count(K_TEACHERS),
                others: fields.count(K_OTHERS),
                breakdown,
            },
            donations: Donations {
                books: fields.count(K_BOOKS),
                kits: fields.count(K_KITS),
            },
            course: fields.str(K_COURSE).and_then(|c| c.parse().ok()),
            attendance,
        },
        status: fields
            .str(K_STATUS)
            .and_then(|s| VisitStatus::parse(&s).ok())
            .unwrap_or(VisitStatus::Recorded),
        deleted: matches!(fields.scalar(K_DELETED), Some(ScalarValue::Boolean(true))),
        duplicate_of: fields.str(K_DUPLICATE_OF).and_then(|s| s.parse().ok()),
        created_at: match fields.scalar(K_CREATED_AT) {
            Some(ScalarValue::Timestamp(ms) | ScalarValue::Int(ms)) => *ms,
            _ => 0,
        },
        created_by: fields.str(K_CREATED_BY).unwrap_or_default(),
        // The latest of concurrent edits.
        edited_at: fields
            .all(doc, obj, K_EDITED_AT)
            .iter()
            .filter_map(|(value, _)| match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => Some(*ms),
                    _ => None,
                },
                _ => None,
            })
            .max()
            .unwrap_or(0),
        photos: fields
            .map(K_PHOTOS)
            .map(|photos| read_photos(doc, &photos))
            .unwrap_or_default(),
    })
}

/// A map's entries read in one pass: each key's value (the winner of concurrent ones), its
/// id, and whether concurrent values exist. Reading a record field by field with `get`
/// seeks through the document once per field, which dominated the bureau's projection.
struct Entries(BTreeMap<String, (Value<'static>, ObjId, bool)>);

impl Entries {
    fn of(doc: &impl ReadDoc, obj: &ObjId) -> Entries {
        Entries(
            doc.map_range(obj, ..)
                .map(|item| {
                    let id = item.id();
                    (
                        item.key.into_owned(),
                        (item.value.into_value(), id, item.conflict),
                    )
                })
                .collect(),
        )
    }

    fn value(&self, key: &str) -> Option<&Value<'static>> {
        self.0.get(key).map(|(value, _, _)| value)
    }

    fn map(&self, key: &str) -> Option<ObjId> {
        match self.0.get(key)? {
            (Value::Object(ObjType::Map), id, _) => Some(id.clone()),
            _ => None,
        }
    }

    fn scalar(&self, key: &str) -> Option<&ScalarValue> {
        match self.value(key)? {
            Value::Scalar(s) => Some(s.as_ref()),
            Value::Object(_) => None,
        }
    }

    fn str(&self, key: &str) -> Option<String> {
        match self.scalar(key)? {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn count(&self, key: &str) -> u32 {
        count_of(self.scalar(key))
    }

    /// Every value of `key`, concurrent ones included (only those read the document again).
    fn all<'a>(&self, doc: &'a impl ReadDoc, obj: &ObjId, key: &str) -> Vec<(Value<'a>, ObjId)> {
        match self.0.get(key) {
            None => Vec::new(),
            Some((value, id, false)) => vec![(value.clone(), id.clone())],
            Some((_, _, true)) => doc.get_all(obj, key).unwrap_or_default(),
        }
    }
}

/// Attaches a photo to a visit (replacing the same photo's entry if present).
pub(crate) fn put_photo<T: Transactable + ReadDoc>(
    tx: &mut T,
    visit: &ObjId,
    photo: &PhotoRef,
) -> AmResult<()> {
    let photos = child_map(tx, visit, K_PHOTOS)?;
    let entry = tx.put_object(&photos, photo.display_sha256.as_str(), ObjType::Map)?;
    tx.put(&entry, "thumbnail", photo.thumbnail_sha256.as_str())?;
    tx.put(&entry, "caption", photo.caption.as_str())?;
    tx.put(&entry, "consent", photo.consent)?;
    if let Some(taken_at) = &photo.taken_at {
        tx.put(&entry, "taken_at", taken_at.as_str())?;
    }
    tx.put(&entry, "width", i64::from(photo.width))?;
    tx.put(&entry, "height", i64::from(photo.height))?;
    let size = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    tx.put(&entry, "display_bytes", size(photo.display_bytes))?;
    tx.put(&entry, "thumbnail_bytes", size(photo.thumbnail_bytes))?;
    Ok(())
}

/// Detaches a photo; `false` when the visit has no such photo.
pub(crate) fn remove_photo<T: Transactable + ReadDoc>(
    tx: &mut T,
    visit: &ObjId,
    display_sha256: &str,
) -> AmResult<bool> {
    match tx.get(visit, K_PHOTOS)? {
        Some((Value::Object(ObjType::Map), photos))
            if tx.get(&photos, display_sha256)?.is_some() =>
        {
            tx.delete(&photos, display_sha256)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn read_photos(doc: &impl ReadDoc, photos: &ObjId) -> Vec<PhotoRef> {
    let mut list: Vec<PhotoRef> = Entries::of(doc, photos)
        .0
        .into_iter()
        .filter_map(|(sha, (value, entry, _))| {
            let Value::Object(ObjType::Map) = value else {
                return None;
            };
            let entry = Entries::of(doc, &entry);
            Some(PhotoRef {
                thumbnail_sha256: entry.str("thumbnail")?,
                caption: entry.str("caption").unwrap_or_default(),
                consent: matches!(entry.scalar("consent"), Some(ScalarValue::Boolean(true))),
                taken_at: entry.str("taken_at"),
                width: entry.count("width"),
                height: entry.count("height"),
                display_bytes: entry.count("display_bytes").into(),
                thumbnail_bytes: entry.count("thumbnail_bytes").into(),
                display_sha256: sha,
            })
        })
        .collect();
    list.sort_by(|a, b| (&a.taken_at, &a.display_sha256).cmp(&(&b.taken_at, &b.display_sha256)));
    list
}

fn record_obj_in(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), obj) => Some(obj),
        _ => None,
    }
}

/// One field that holds more than one value after a merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub record_id: String,
    pub field: Field,
    /// Every value, ordered by actor so all devices list them alike.
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: String,
    /// The device that entered it, by name, and its Automerge actor.
    pub author: String,
    pub actor: String,
    /// When, in milliseconds since the Unix epoch (the change's timestamp).
    pub at: i64,
}

/// Fields of a visit whose concurrent values differ. All values are kept and listed.
pub fn visit_conflicts(doc: &automerge::Automerge, id: &str, obj: &ObjId) -> Vec<Conflict> {
    let fields = Entries::of(doc, obj);
    VISIT_SCALARS
        .iter()
        .filter(|(key, _)| fields.0.get(*key).is_some_and(|(_, _, conflict)| *conflict))
        .filter_map(|&(key, field)| {
            let all = doc.get_all(obj, key).ok()?;
            let mut values: Vec<ConflictValue> = all
                .iter()
                .filter_map(|(value, exid)| {
                    let ObjId::Id(_, actor, _) = exid else {
                        return None;
                    };
                    let at = doc
                        .hash_for_opid(exid)
                        .and_then(|h| doc.get_change_meta_by_hash(&h))
                        .map(|meta| meta.timestamp)
                        .unwrap_or(0);
                    let actor = actor.to_hex_string();
                    Some(ConflictValue {
                        value: display_value(value),
                        author: author_name(doc, &actor),
                        actor,
                        at,
                    })
                })
                .collect();
            values.sort_by(|a, b| (&a.actor, &a.value).cmp(&(&b.actor, &b.value)));
            let distinct: BTreeSet<&str> = values.iter().map(|v| v.value.as_str()).collect();
            (distinct.len() > 1).then(|| Conflict {
                record_id: id.to_string(),
                field,
                values,
            })
        })
        .collect()
}

fn display_value(value: &Value<'_>) -> String {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Int(n) | ScalarValue::Timestamp(n) => n.to_string(),
            ScalarValue::Uint(n) => n.to_string(),
            ScalarValue::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        Value::Object(kind) => kind.to_string(),
    }
}

// ---- schools ----

const K_NAME: &str = "name";
const K_DISTRICT: &str = "district";
const K_AREA: &str = "area";
const K_LEVEL: &str = "level";
const K_ENROLLMENT: &str = "enrollment";
const K_MERGED_INTO: &str = "merged_into";

pub fn put_school<T: Transactable + ReadDoc>(tx: &mut T, school: &School) -> AmResult<()> {
    let obj = match record_obj(tx, &school.id.to_string()) {
        Some(obj) => obj,
        None => tx.put_object(ROOT, school.id.to_string(), ObjType::Map)?,
    };
    let old = read_school(tx, &school.id.to_string(), &obj);
    let f = &school.fields;
    let o = old.as_ref().map(|s| (&s.fields, s.status));
    if o.is_none_or(|(o, _)| o.name != f.name) {
        tx.put(&obj, K_NAME, f.name.as_str())?;
    }
    if o.is_none_or(|(o, _)| o.district != f.district) {
        tx.put(&obj, K_DISTRICT, f.district.as_str())?;
    }
    if o.is_none_or(|(o, _)| o.area != f.area) {
        tx.put(&obj, K_AREA, f.area.key())?;
    }
    if o.is_none_or(|(o, _)| o.level != f.level) {
        tx.put(&obj, K_LEVEL, f.level.map(|l| l.key()).unwrap_or_default())?;
    }
    if o.is_none_or(|(o, _)| o.enrollment != f.enrollment) {
        match f.enrollment {
            Some(n) => tx.put(&obj, K_ENROLLMENT, i64::from(n))?,
            None => tx.put(&obj, K_ENROLLMENT, ScalarValue::Null)?,
        }
    }
    if o.is_none_or(|(_, status)| status != school.status) {
        tx.put(&obj, K_STATUS, school.status.key())?;
    }
    let old_into = old.as_ref().and_then(|s| s.merged_into);
    if old_into != school.merged_into {
        match school.merged_into {
            Some(into) => tx.put(&obj, K_MERGED_INTO, into.to_string())?,
            None => tx.delete(&obj, K_MERGED_INTO)?,
        }
    }
    Ok(())
}

pub fn read_school(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<School> {
    Some(School {
        id: id.parse().ok()?,
        fields: SchoolFields {
            name: get_str(doc, obj, K_NAME)?,
            district: District::parse(&get_str(doc, obj, K_DISTRICT)?).ok()?,
            area: Area::parse(&get_str(doc, obj, K_AREA)?).ok()?,
            level: get_str(doc, obj, K_LEVEL).and_then(|l| SchoolLevel::parse(&l).ok()),
            enrollment: match get_scalar(doc, obj, K_ENROLLMENT) {
                Some(ScalarValue::Int(n)) => u32::try_from(n).ok(),
                _ => None,
            },
        },
        status: get_str(doc, obj, K_STATUS)
            .and_then(|s| SchoolStatus::parse(&s).ok())
            .unwrap_or(SchoolStatus::Pending),
        merged_into: get_str(doc, obj, K_MERGED_INTO).and_then(|s| s.parse().ok()),
    })
}

pub(crate) fn school_id(id: &str) -> Option<SchoolId> {
    id.parse().ok()
}

// ---- decisions and targets ----

const DECISION_FIELDS: [&str; 12] = [
    "kind", "visit", "other", "school", "into", "audience", "fields", "value", "note", "member",
    "device", "at",
];
const TARGET_FIELDS: [&str; 3] = ["goal", "set_by", "set_at"];

/// Writes a decision as a record of its own (its id is new, so nothing rivals it).
pub fn insert_decision<T: Transactable + ReadDoc>(tx: &mut T, decision: &Decision) -> AmResult<()> {
    let obj = tx.put_object(ROOT, decision.id.as_str(), ObjType::Map)?;
    tx.put(&obj, "kind", decision.kind.key())?;
    let ids = [
        ("visit", decision.visit.map(|v| v.to_string())),
        ("other", decision.other.map(|v| v.to_string())),
        ("school", decision.school.map(|s| s.to_string())),
        ("into", decision.into.map(|s| s.to_string())),
        ("audience", decision.audience.map(|a| a.key().to_string())),
    ];
    for (key, value) in ids {
        if let Some(value) = value {
            tx.put(&obj, key, value)?;
        }
    }
    if !decision.fields.is_empty() {
        let keys: Vec<&str> = decision.fields.iter().map(|f| f.key()).collect();
        tx.put(&obj, "fields", keys.join(","))?;
    }
    for (key, value) in [("value", &decision.value), ("note", &decision.note)] {
        if !value.is_empty() {
            tx.put(&obj, key, value.as_str())?;
        }
    }
    tx.put(&obj, "member", decision.member.as_str())?;
    tx.put(&obj, "device", decision.device.as_str())?;
    tx.put(&obj, "at", ScalarValue::Timestamp(decision.at))?;
    Ok(())
}

/// Reads a decision; `None` when the record is malformed.
pub fn read_decision(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<Decision> {
    fn parse<T: std::str::FromStr>(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<T> {
        get_str(doc, obj, key).and_then(|s| s.parse().ok())
    }
    Some(Decision {
        id: id.to_string(),
        kind: DecisionKind::parse(&get_str(doc, obj, "kind")?).ok()?,
        visit: parse(doc, obj, "visit"),
        other: parse(doc, obj, "other"),
        school: parse(doc, obj, "school"),
        into: parse(doc, obj, "into"),
        audience: get_str(doc, obj, "audience").and_then(|a| AudienceRule::parse(&a).ok()),
        fields: get_str(doc, obj, "fields")
            .map(|keys| {
                keys.split(',')
                    .filter_map(|k| Field::try_from(k.to_string()).ok())
                    .collect()
            })
            .unwrap_or_default(),
        value: get_str(doc, obj, "value").unwrap_or_default(),
        note: get_str(doc, obj, "note").unwrap_or_default(),
        member: get_str(doc, obj, "member").unwrap_or_default(),
        device: get_str(doc, obj, "device").unwrap_or_default(),
        at: match get_scalar(doc, obj, "at") {
            Some(ScalarValue::Timestamp(ms) | ScalarValue::Int(ms)) => ms,
            _ => 0,
        },
    })
}

/// Where a target sits in a targets document: `<year>/<district or *>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TargetSlot {
    pub year: i32,
    pub district: Option<District>,
    pub key: TargetKey,
}

impl TargetSlot {
    pub fn parse(text: &str) -> Option<TargetSlot> {
        let mut parts = text.split('/');
        let (year, district, key) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 4 {
            return None;
        }
        let slot = TargetSlot {
            year: year.parse().ok().filter(|y| (1970..=9999).contains(y))?,
            district: match district {
                "*" => None,
                d => Some(District::parse(d).ok()?),
            },
            key: TargetKey::parse(key).ok().filter(|k| k.key() == key)?,
        };
        (slot.to_string() == text).then_some(slot)
    }
}

impl fmt::Display for TargetSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let district = self.district.as_ref().map_or("*", |d| d.as_str());
        write!(f, "{}/{district}/{}", self.year, self.key.key())
    }
}

/// Sets a target: the slot's record is replaced as a whole.
pub fn put_target<T: Transactable + ReadDoc>(tx: &mut T, target: &Target) -> AmResult<()> {
    let slot = TargetSlot {
        year: target.year,
        district: target.district.clone(),
        key: target.key,
    };
    let obj = tx.put_object(ROOT, slot.to_string(), ObjType::Map)?;
    tx.put(&obj, "goal", target.goal.to_text())?;
    tx.put(&obj, "set_by", target.set_by.as_str())?;
    tx.put(&obj, "set_at", ScalarValue::Timestamp(target.set_at))?;
    Ok(())
}

pub fn read_target(doc: &impl ReadDoc, slot: &str, obj: &ObjId) -> Option<Target> {
    let slot = TargetSlot::parse(slot)?;
    Some(Target {
        year: slot.year,
        goal: Goal::parse(slot.key, &get_str(doc, obj, "goal")?).ok()?,
        district: slot.district,
        key: slot.key,
        set_by: get_str(doc, obj, "set_by").unwrap_or_default(),
        set_at: match get_scalar(doc, obj, "set_at") {
            Some(ScalarValue::Timestamp(ms) | ScalarValue::Int(ms)) => ms,
            _ => 0,
        },
    })
}

// ---- courses, pairings and rosters ----

const COURSE_FIELDS: [&str; 9] = [
    K_TEAM,
    K_SCHOOL,
    "title",
    "theme",
    "sessions",
    "start",
    "end",
    K_CREATED_AT,
    K_CREATED_BY,
];
const PAIRING_FIELDS: [&str; 8] = [
    K_TEAM,
    "volunteer",
    "teacher",
    K_SCHOOL,
    "since",
    "until",
    K_CREATED_AT,
    K_CREATED_BY,
];
const STUDENT_FIELDS: [&str; 5] = [K_NAME, "grade", "gender", "removed", K_CREATED_AT];

/// Writes a course's fields (all of them for a new course, what changed otherwise).
pub(crate) fn put_course<T: Transactable + ReadDoc>(tx: &mut T, course: &Course) -> AmResult<()> {
    let key = course.id.to_string();
    let (obj, old) = match record_obj(tx, &key) {
        Some(obj) => {
            let old = read_course(tx, &key, &obj).map(|c| c.fields);
            (obj, old)
        }
        None => {
            let obj = tx.put_object(ROOT, key.as_str(), ObjType::Map)?;
            tx.put(&obj, K_TEAM, course.team.as_str())?;
            tx.put(
                &obj,
                K_CREATED_AT,
                ScalarValue::Timestamp(course.created_at),
            )?;
            tx.put(&obj, K_CREATED_BY, course.created_by.as_str())?;
            (obj, None)
        }
    };
    let texts: [Keyed<CourseFields, String>; 5] = [
        (K_SCHOOL, |c| c.school.to_string()),
        ("title", |c| c.title.clone()),
        ("theme", |c| c.theme.clone()),
        ("start", |c| {
            c.start.map(|d| d.to_string()).unwrap_or_default()
        }),
        ("end", |c| c.end.map(|d| d.to_string()).unwrap_or_default()),
    ];
    for (key, get) in texts {
        if old.as_ref().is_none_or(|o| get(o) != get(&course.fields)) {
            tx.put(&obj, key, get(&course.fields))?;
        }
    }
    if old
        .as_ref()
        .is_none_or(|o| o.sessions != course.fields.sessions)
    {
        tx.put(&obj, "sessions", i64::from(course.fields.sessions))?;
    }
    Ok(())
}

pub fn read_course(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<Course> {
    let date = |key| get_str(doc, obj, key).and_then(|d| d.parse().ok());
    Some(Course {
        id: id.parse().ok()?,
        team: TeamId::parse(&get_str(doc, obj, K_TEAM)?).ok()?,
        fields: CourseFields {
            school: get_str(doc, obj, K_SCHOOL)?.parse().ok()?,
            title: get_str(doc, obj, "title").unwrap_or_default(),
            theme: get_str(doc, obj, "theme").unwrap_or_default(),
            sessions: get_count(doc, obj, "sessions").clamp(1, 40),
            start: date("start"),
            end: date("end"),
        },
        created_at: timestamp(doc, obj, K_CREATED_AT),
        created_by: get_str(doc, obj, K_CREATED_BY).unwrap_or_default(),
    })
}

pub(crate) fn insert_pairing<T: Transactable + ReadDoc>(
    tx: &mut T,
    pairing: &Pairing,
) -> AmResult<()> {
    let obj = tx.put_object(ROOT, pairing.id.to_string(), ObjType::Map)?;
    let f = &pairing.fields;
    tx.put(&obj, K_TEAM, pairing.team.as_str())?;
    tx.put(&obj, "volunteer", f.volunteer.as_str())?;
    tx.put(&obj, "teacher", f.teacher.as_str())?;
    tx.put(&obj, K_SCHOOL, f.school.to_string())?;
    tx.put(&obj, "since", f.since.to_string())?;
    tx.put(
        &obj,
        K_CREATED_AT,
        ScalarValue::Timestamp(pairing.created_at),
    )?;
    tx.put(&obj, K_CREATED_BY, pairing.created_by.as_str())?;
    Ok(())
}

/// Ends a pairing on a day.
pub(crate) fn end_pairing<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    on: chrono::NaiveDate,
) -> AmResult<()> {
    tx.put(obj, "until", on.to_string())
}

pub fn read_pairing(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<Pairing> {
    Some(Pairing {
        id: id.parse().ok()?,
        team: TeamId::parse(&get_str(doc, obj, K_TEAM)?).ok()?,
        fields: PairingFields {
            volunteer: get_str(doc, obj, "volunteer")?,
            teacher: get_str(doc, obj, "teacher")?,
            school: get_str(doc, obj, K_SCHOOL)?.parse().ok()?,
            since: get_str(doc, obj, "since")?.parse().ok()?,
        },
        until: get_str(doc, obj, "until").and_then(|d| d.parse().ok()),
        created_at: timestamp(doc, obj, K_CREATED_AT),
        created_by: get_str(doc, obj, K_CREATED_BY).unwrap_or_default(),
    })
}

pub(crate) fn insert_student<T: Transactable + ReadDoc>(
    tx: &mut T,
    student: &Student,
    now: i64,
) -> AmResult<()> {
    let obj = tx.put_object(ROOT, student.id.to_string(), ObjType::Map)?;
    tx.put(&obj, K_NAME, student.name.as_str())?;
    if !student.grade.is_empty() {
        tx.put(&obj, "grade", student.grade.as_str())?;
    }
    if let Some(gender) = student.gender {
        tx.put(&obj, "gender", gender.key())?;
    }
    tx.put(&obj, "removed", false)?;
    tx.put(&obj, K_CREATED_AT, ScalarValue::Timestamp(now))?;
    Ok(())
}

/// Takes a student off a roster (the record stays: earlier attendance refers to it).
pub(crate) fn remove_student<T: Transactable>(tx: &mut T, obj: &ObjId) -> AmResult<()> {
    tx.put(obj, "removed", true)
}

pub fn read_student(doc: &impl ReadDoc, id: &str, obj: &ObjId) -> Option<Student> {
    Some(Student {
        id: id.parse().ok()?,
        name: get_str(doc, obj, K_NAME)?,
        grade: get_str(doc, obj, "grade").unwrap_or_default(),
        gender: get_str(doc, obj, "gender").and_then(|g| Gender::parse(&g).ok()),
        removed: matches!(
            get_scalar(doc, obj, "removed"),
            Some(ScalarValue::Boolean(true))
        ),
    })
}

fn timestamp(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> i64 {
    match get_scalar(doc, obj, key) {
        Some(ScalarValue::Timestamp(ms) | ScalarValue::Int(ms)) => ms,
        _ => 0,
    }
}

// ---- reading scalars ----

fn get_scalar(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => Some(s.into_owned()),
        _ => None,
    }
}

fn get_str(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    match get_scalar(doc, obj, key)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// A counter or integer, clamped into `0..=u32::MAX` (concurrent decrements can overshoot).
fn get_count(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> u32 {
    count_of(get_scalar(doc, obj, key).as_ref())
}

fn count_of(value: Option<&ScalarValue>) -> u32 {
    let n = match value {
        Some(ScalarValue::Counter(c)) => i64::from(c),
        Some(ScalarValue::Int(n)) => *n,
        Some(ScalarValue::Uint(n)) => i64::try_from(*n).unwrap_or(i64::MAX),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

// ---- the layout a device may write ----

const VISIT_FIELDS: [&str; 22] = [
    K_COURSE,
    K_ATTENDANCE,
    K_EDITED_AT,
    K_TEAM,
    K_SCHOOL,
    K_DATE,
    K_ACTIVITIES,
    K_TOPIC,
    K_PRESENTERS,
    K_NOTES,
    K_STUDENTS,
    K_TEACHERS,
    K_OTHERS,
    K_BREAKDOWN,
    K_BOOKS,
    K_KITS,
    K_STATUS,
    K_DELETED,
    K_DUPLICATE_OF,
    K_CREATED_AT,
    K_CREATED_BY,
    K_PHOTOS,
];
const PHOTO_FIELDS: [&str; 8] = [
    "thumbnail",
    "caption",
    "consent",
    "taken_at",
    "width",
    "height",
    "display_bytes",
    "thumbnail_bytes",
];
const SCHOOL_FIELDS: [&str; 7] = [
    K_NAME,
    K_DISTRICT,
    K_AREA,
    K_LEVEL,
    K_ENROLLMENT,
    K_STATUS,
    K_MERGED_INTO,
];

/// Checks that everything that changed since `before` lies inside the record layout this
/// module writes: root keys are record ids (of the document's kind) holding maps, or
/// `actor:<hex>` names; inside a record only its known fields, activity kinds, cohorts and
/// photos (by sha256) with their known fields; no lists or text. The bureau refuses changes
/// that write anywhere else, so no device can hang data on a document every teammate loads.
pub fn check_layout(
    doc: &automerge::Automerge,
    doc_id: &DocId,
    before: &[automerge::ChangeHash],
) -> Result<(), String> {
    use automerge::{PatchAction, Prop};
    for patch in doc.diff(before, &doc.get_heads()) {
        let (leaf, value) = match &patch.action {
            PatchAction::PutMap { key, value, .. } => (Prop::Map(key.clone()), Some(&value.0)),
            PatchAction::DeleteMap { key } => (Prop::Map(key.clone()), None),
            PatchAction::Increment { prop, .. } | PatchAction::Conflict { prop } => {
                (prop.clone(), None)
            }
            _ => return Err("lists and text are not part of any record".into()),
        };
        let mut path = Vec::with_capacity(patch.path.len() + 1);
        for prop in patch.path.iter().map(|(_, p)| p).chain([&leaf]) {
            match prop {
                Prop::Map(key) => path.push(key.as_str()),
                Prop::Seq(_) => return Err("lists are not part of any record".into()),
            }
        }
        let is_map = match value {
            Some(Value::Object(ObjType::Map)) => Some(true),
            Some(Value::Scalar(_)) => Some(false),
            Some(Value::Object(_)) => {
                return Err("lists and text are not part of any record".into());
            }
            None => None,
        };
        if !allowed(doc_id, &path, is_map) {
            return Err(format!(
                "a change writes `{}`, outside any record",
                path.join("/")
            ));
        }
    }
    Ok(())
}

/// Whether a device may write at `path`; `is_map` says whether the value written is a map
/// (`None` for a deletion or a counter increment).
fn allowed(doc_id: &DocId, path: &[&str], is_map: Option<bool>) -> bool {
    let scalar = is_map != Some(true);
    let map = is_map != Some(false);
    match (doc_id, path) {
        (_, [key]) if key.starts_with(ACTOR_PREFIX) => {
            scalar && automerge::ActorId::try_from(&key[ACTOR_PREFIX.len()..]).is_ok()
        }
        (DocId::Ledger { .. }, [visit]) => map && visit.parse::<VisitId>().is_ok(),
        (DocId::Ledger { .. }, [_, field]) => {
            VISIT_FIELDS.contains(field)
                && ([K_ACTIVITIES, K_BREAKDOWN, K_PHOTOS, K_ATTENDANCE].contains(field)
                    == (is_map == Some(true))
                    || is_map.is_none())
        }
        (DocId::Ledger { .. }, [_, K_ATTENDANCE, student]) => {
            scalar && student.parse::<StudentId>().is_ok()
        }
        (DocId::Ledger { .. }, [_, K_ACTIVITIES, kind]) => {
            scalar && ActivityKind::parse(kind).is_ok()
        }
        (DocId::Ledger { .. }, [_, K_BREAKDOWN, cohort]) => scalar && Cohort::parse(cohort).is_ok(),
        (DocId::Ledger { .. }, [_, K_PHOTOS, sha]) => {
            map && fieldlog_domain::sync::is_sha256_hex(sha)
        }
        (DocId::Ledger { .. }, [_, K_PHOTOS, _, field]) => scalar && PHOTO_FIELDS.contains(field),
        (DocId::Registry { .. }, [school]) => map && school.parse::<SchoolId>().is_ok(),
        (DocId::Registry { .. }, [_, field]) => scalar && SCHOOL_FIELDS.contains(field),
        (DocId::Review { .. }, [decision]) => map && uuid::Uuid::parse_str(decision).is_ok(),
        (DocId::Review { .. }, [_, field]) => scalar && DECISION_FIELDS.contains(field),
        (DocId::Targets { .. }, [target]) => map && TargetSlot::parse(target).is_some(),
        (DocId::Targets { .. }, [_, field]) => scalar && TARGET_FIELDS.contains(field),
        (DocId::Courses { .. }, [course]) => map && course.parse::<CourseId>().is_ok(),
        (DocId::Courses { .. }, [_, field]) => scalar && COURSE_FIELDS.contains(field),
        (DocId::Pairings { .. }, [pairing]) => {
            map && pairing.parse::<fieldlog_domain::PairingId>().is_ok()
        }
        (DocId::Pairings { .. }, [_, field]) => scalar && PAIRING_FIELDS.contains(field),
        (DocId::Roster { .. }, [student]) => map && student.parse::<StudentId>().is_ok(),
        (DocId::Roster { .. }, [_, field]) => scalar && STUDENT_FIELDS.contains(field),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_check(f: impl FnOnce(&mut automerge::AutoCommit)) -> Result<(), String> {
        let mut doc = automerge::AutoCommit::new();
        let visit = VisitId(uuid::Uuid::nil()).to_string();
        let obj = doc.put_object(ROOT, visit.as_str(), ObjType::Map).unwrap();
        doc.put_object(&obj, K_PHOTOS, ObjType::Map).unwrap();
        doc.put(&obj, K_STUDENTS, ScalarValue::counter(0)).unwrap();
        doc.commit();
        let before = doc.get_heads();
        f(&mut doc);
        doc.commit();
        let id = DocId::parse("ledger/caravan-1/2026-05").unwrap();
        check_layout(doc.document(), &id, &before)
    }

    #[test]
    fn only_the_record_layout_may_be_written() {
        let visit = |doc: &automerge::AutoCommit| {
            record_obj(doc, &VisitId(uuid::Uuid::nil()).to_string()).unwrap()
        };
        assert_eq!(
            layout_check(|d| {
                let v = visit(d);
                d.put(&v, K_TOPIC, "水").unwrap();
            }),
            Ok(())
        );
        assert_eq!(
            layout_check(|d| {
                let v = visit(d);
                d.increment(&v, K_STUDENTS, 3).unwrap();
            }),
            Ok(())
        );
        assert_eq!(
            layout_check(|d| {
                d.put(
                    ROOT,
                    format!("actor:{}", automerge::ActorId::random()),
                    "一号机",
                )
                .unwrap();
            }),
            Ok(())
        );
        for junk in [
            |d: &mut automerge::AutoCommit| {
                d.put(ROOT, "junk", "x".repeat(1000)).unwrap();
            },
            |d: &mut automerge::AutoCommit| {
                let v = record_obj(d, &VisitId(uuid::Uuid::nil()).to_string()).unwrap();
                d.put(&v, "extra", 1).unwrap();
            },
            |d: &mut automerge::AutoCommit| {
                let v = record_obj(d, &VisitId(uuid::Uuid::nil()).to_string()).unwrap();
                d.put_object(&v, K_TOPIC, ObjType::Text).unwrap();
            },
            |d: &mut automerge::AutoCommit| {
                d.put_object(ROOT, "not-a-visit", ObjType::Map).unwrap();
            },
        ] {
            assert!(layout_check(junk).is_err());
        }
    }

    #[test]
    fn doc_ids_round_trip_and_reject_junk() {
        for id in ["ledger/caravan-1/2026-05", "registry/南山区"] {
            assert_eq!(DocId::parse(id).unwrap().to_string(), id);
        }
        for junk in [
            "",
            "ledger/caravan-1",
            "ledger/caravan-1/2026-13",
            "ledger/caravan-1/2026-5",
            "ledger//2026-05",
            "registry/a/b",
            "photos/x",
        ] {
            assert_eq!(DocId::parse(junk), None, "{junk}");
        }
    }
}
