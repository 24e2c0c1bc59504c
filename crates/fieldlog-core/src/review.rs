//! Coordinators' decisions and what they do to the figures.
//!
//! A decision (verify, flag, merge, unmerge, distinct, resolve, and the school decisions) is
//! a record in a `review/<district>/<year>` document, written by a coordinator device. It
//! never edits what a person entered: the `decisions` table projects them, and [`refresh`]
//! derives each visit's *effective* row from its own record and the decisions in force:
//! a merged duplicate points at its kept visit (`duplicate_of`) and stops counting; the kept
//! visit takes the fields and audience the merge names; a visit's review state follows the
//! latest verify or flag and its edits after a flag. The device and the bureau both call
//! this from `projection::project_record`, so figures agree wherever they are computed.
//!
//! The decision in force about a thing is the latest by (time, id), so every device that
//! holds the same decisions reaches the same state. Merges that form a cycle (two
//! coordinators merging A into B and B into A) are broken at their latest merge.

use crate::error::{DbContext, Result};
use crate::ledger::{self, DocId};
use automerge::Automerge;
use fieldlog_domain::{
    ActivityKind, AudienceRule, Decision, DecisionKind, Field, ReviewState, Visit, VisitId,
    VisitReview,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

/// The query tables for decisions and targets, and the effective columns of visits and
/// schools. A migration both stores append. Never edit.
pub const TABLES: &str = r#"CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    visit TEXT,
    other TEXT,
    school TEXT,
    at INTEGER NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX decisions_by_visit ON decisions (visit, at);
CREATE INDEX decisions_by_other ON decisions (other, at);
CREATE INDEX decisions_by_school ON decisions (school, at);
CREATE TABLE targets (
    doc_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (doc_id, slot)
) WITHOUT ROWID;
ALTER TABLE visits ADD COLUMN teachers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visits ADD COLUMN training INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visits ADD COLUMN review TEXT NOT NULL DEFAULT 'unreviewed';
ALTER TABLE visits ADD COLUMN effective TEXT;
ALTER TABLE schools ADD COLUMN merged_into TEXT;
UPDATE visits SET
    teachers = coalesce(json_extract(record, '$.audience.teachers'), 0),
    training = EXISTS (SELECT 1 FROM json_each(record, '$.activities')
                       WHERE value = 'teacher_training');
CREATE INDEX visits_by_duplicate ON visits (duplicate_of);
"#;

/// How far a chain of merges is followed looking for a cycle (longer chains count as
/// chains: only a coordinator writes merges, and follows them to the kept visit).
const MAX_CHAIN: usize = 64;
/// How deep merges into merges are summed (a bound for the recursion, far beyond real use).
const MAX_MERGE_DEPTH: usize = 512;
/// How many visit rows one refresh may rewrite (a bound for hostile decision sets).
const MAX_REFRESH: usize = 100_000;

/// Rewrites the row of one decision and refreshes the visits it names.
pub(crate) fn project_decision(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    let old: Vec<String> = names_of(conn, path, id)?;
    conn.execute("DELETE FROM decisions WHERE id = ?1", [id])
        .db(path)?;
    let decision = ledger::record_obj(doc, id).and_then(|obj| ledger::read_decision(doc, id, &obj));
    let mut named = old;
    if let Some(d) = decision {
        conn.prepare_cached(
            "INSERT INTO decisions (id, doc_id, kind, visit, other, school, at, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .db(path)?
        .execute(params![
            id,
            doc_id.to_string(),
            d.kind.key(),
            d.visit.map(|v| v.to_string()),
            d.other.map(|v| v.to_string()),
            d.school.map(|s| s.to_string()),
            d.at,
            serde_json::to_string(&d).unwrap_or_default(),
        ])
        .db(path)?;
        named.extend(d.visit.iter().chain(&d.other).map(|v| v.to_string()));
    }
    refresh(conn, path, named)
}

fn names_of(conn: &Connection, path: &Path, id: &str) -> Result<Vec<String>> {
    let row: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT visit, other FROM decisions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db(path)?;
    Ok(row.map_or_else(Vec::new, |(a, b)| a.into_iter().chain(b).collect()))
}

/// Rewrites the row of one target slot.
pub(crate) fn project_target(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    slot: &str,
) -> Result<()> {
    conn.execute(
        "DELETE FROM targets WHERE doc_id = ?1 AND slot = ?2",
        params![doc_id.to_string(), slot],
    )
    .db(path)?;
    if let Some(target) =
        ledger::record_obj(doc, slot).and_then(|obj| ledger::read_target(doc, slot, &obj))
    {
        conn.execute(
            "INSERT INTO targets (doc_id, slot, record) VALUES (?1, ?2, ?3)",
            params![
                doc_id.to_string(),
                slot,
                serde_json::to_string(&target).unwrap_or_default()
            ],
        )
        .db(path)?;
    }
    Ok(())
}

fn decisions(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Decision>> {
    crate::projection::query_records(conn, path, sql, params)
}

/// The latest merge or unmerge of `visit`, if it is a merge.
fn active_merge(conn: &Connection, path: &Path, visit: &str) -> Result<Option<Decision>> {
    Ok(decisions(
        conn,
        path,
        "SELECT record FROM decisions WHERE visit = ?1 AND kind IN ('merge', 'unmerge')
         ORDER BY at DESC, id DESC LIMIT 1",
        [visit],
    )?
    .pop()
    .filter(|d| d.kind == DecisionKind::Merge && d.other.is_some()))
}

/// The visit `visit` is merged into (directly), following the merges in force; a cycle of
/// merges is broken at its latest merge. Also returns the visits on the chain, which a
/// refresh must look at again when the chain closes into a cycle.
fn duplicate_of(
    conn: &Connection,
    path: &Path,
    visit: &str,
) -> Result<(Option<VisitId>, Vec<String>)> {
    let Some(first) = active_merge(conn, path, visit)? else {
        return Ok((None, Vec::new()));
    };
    let keep = first.other.expect("an active merge names its kept visit");
    let mut edges = vec![first.clone()];
    let mut seen = BTreeSet::from([visit.to_string()]);
    let mut current = keep.to_string();
    for _ in 0..MAX_CHAIN {
        if current == visit {
            let latest = edges
                .iter()
                .max_by(|a, b| a.order_key().cmp(&b.order_key()))
                .map(|d| d.id.clone());
            let chain = seen.into_iter().collect();
            return Ok((
                (latest.as_deref() != Some(first.id.as_str())).then_some(keep),
                chain,
            ));
        }
        if !seen.insert(current.clone()) {
            break;
        }
        match active_merge(conn, path, &current)? {
            Some(next) => {
                current = next.other.expect("checked").to_string();
                edges.push(next);
            }
            None => break,
        }
    }
    Ok((Some(keep), Vec::new()))
}

/// The raw record of a visit (as entered, before decisions).
fn raw_visit(conn: &Connection, path: &Path, id: &str) -> Result<Option<Visit>> {
    Ok(crate::projection::query_records(
        conn,
        path,
        "SELECT record FROM visits WHERE id = ?1",
        [id],
    )?
    .pop())
}

/// A visit as the figures see it: its own record, plus what the merges into it take from
/// the duplicates (named fields, and the audience by the merge's rule).
pub fn effective(conn: &Connection, path: &Path, raw: Visit) -> Result<Visit> {
    effective_at(conn, path, raw, 0)
}

fn effective_at(conn: &Connection, path: &Path, raw: Visit, depth: usize) -> Result<Visit> {
    let mut visit = raw;
    if depth > MAX_MERGE_DEPTH {
        return Ok(visit);
    }
    let id = visit.id.to_string();
    let merges = decisions(
        conn,
        path,
        "SELECT record FROM decisions WHERE other = ?1 AND kind = 'merge' ORDER BY at, id",
        [&id],
    )?;
    for merge in merges {
        let Some(other) = merge.visit else { continue };
        let other_id = other.to_string();
        if active_merge(conn, path, &other_id)?.map(|d| d.id) != Some(merge.id.clone())
            || duplicate_of(conn, path, &other_id)?.0 != Some(visit.id)
        {
            continue;
        }
        let Some(dup) = raw_visit(conn, path, &other_id)? else {
            continue;
        };
        if dup.deleted {
            continue;
        }
        let dup = effective_at(conn, path, dup, depth + 1)?;
        take_fields(&mut visit, &dup, &merge.fields);
        match merge.audience.unwrap_or(AudienceRule::Keep) {
            AudienceRule::Keep => {}
            AudienceRule::Other => visit.fields.audience = dup.fields.audience.clone(),
            AudienceRule::Sum => {
                let (a, b) = (&mut visit.fields.audience, &dup.fields.audience);
                a.students = a.students.saturating_add(b.students);
                a.teachers = a.teachers.saturating_add(b.teachers);
                a.others = a.others.saturating_add(b.others);
                for (cohort, n) in &b.breakdown {
                    let slot = a.breakdown.entry(*cohort).or_default();
                    *slot = slot.saturating_add(*n);
                }
            }
        }
    }
    Ok(visit)
}

pub use fieldlog_domain::review::TAKEABLE;

fn take_fields(keep: &mut Visit, from: &Visit, fields: &[Field]) {
    let (k, f) = (&mut keep.fields, &from.fields);
    for field in fields {
        match field {
            Field::Date => k.date = f.date,
            Field::Activities => k.activities = f.activities.clone(),
            Field::Topic => k.topic = f.topic.clone(),
            Field::Presenters => k.presenters = f.presenters.clone(),
            Field::Notes => k.notes = f.notes.clone(),
            Field::Books => k.donations.books = f.donations.books,
            Field::Kits => k.donations.kits = f.donations.kits,
            _ => {}
        }
    }
}

/// A visit's review: the latest verify or flag, whether it was edited after a flag, and the
/// visit it was merged into.
pub fn review_of(conn: &Connection, path: &Path, visit: &Visit) -> Result<VisitReview> {
    let (state, flag_note) = review_state(conn, path, visit)?;
    Ok(VisitReview {
        state: Some(state),
        flag_note,
        duplicate_of: merged_into(conn, path, visit.id)?,
    })
}

/// The visit `visit` is merged into (directly), as the figures count it.
pub fn merged_into(conn: &Connection, path: &Path, visit: VisitId) -> Result<Option<VisitId>> {
    Ok(duplicate_of(conn, path, &visit.to_string())?.0)
}

/// The review state by the latest verify or flag, with the flag's note.
pub(crate) fn review_state(
    conn: &Connection,
    path: &Path,
    visit: &Visit,
) -> Result<(ReviewState, String)> {
    let latest = decisions(
        conn,
        path,
        "SELECT record FROM decisions WHERE visit = ?1 AND kind IN ('verify', 'flag')
         ORDER BY at DESC, id DESC LIMIT 1",
        [visit.id.to_string()],
    )?
    .pop();
    Ok(match latest {
        None => (ReviewState::Unreviewed, String::new()),
        Some(d) if d.kind == DecisionKind::Verify => (ReviewState::Verified, String::new()),
        Some(d) if visit.edited_at > d.at => (ReviewState::Fixed, d.note),
        Some(d) => (ReviewState::Flagged, d.note),
    })
}

/// The columns of a visit row the report counts, as one visit gives them.
#[derive(Debug, PartialEq)]
pub(crate) struct Counted {
    pub date: String,
    pub audience: u64,
    pub lecture: bool,
    pub books: u32,
    pub kits: u32,
    pub teachers: u32,
    pub training: bool,
}

impl Counted {
    pub fn of(visit: &Visit) -> Counted {
        let f = &visit.fields;
        Counted {
            date: f.date.to_string(),
            audience: visit.audience_total(),
            lecture: f.activities.contains(&ActivityKind::Lecture),
            books: f.donations.books,
            kits: f.donations.kits,
            teachers: f.audience.teachers,
            training: f.activities.contains(&ActivityKind::TeacherTraining),
        }
    }
}

/// The effective columns of a visit row: what the report counts, after decisions.
#[derive(Debug, PartialEq)]
struct Effective {
    counted: Counted,
    duplicate_of: Option<String>,
    review: String,
    effective: Option<String>,
}

fn stored_effective(conn: &Connection, path: &Path, id: &str) -> Result<Option<Effective>> {
    conn.prepare_cached(
        "SELECT date, audience, lecture, books, kits, teachers, training, duplicate_of, review,
                effective
         FROM visits WHERE id = ?1",
    )
    .db(path)?
    .query_row([id], |r| {
        Ok(Effective {
            counted: Counted {
                date: r.get(0)?,
                audience: r.get(1)?,
                lecture: r.get(2)?,
                books: r.get(3)?,
                kits: r.get(4)?,
                teachers: r.get(5)?,
                training: r.get(6)?,
            },
            duplicate_of: r.get(7)?,
            review: r.get(8)?,
            effective: r.get(9)?,
        })
    })
    .optional()
    .db(path)
}

/// Derives the effective columns of these visits again, and of every visit whose figures
/// depend on a row that changed (the visit a duplicate is merged into, the rest of a cycle).
pub(crate) fn refresh(
    conn: &Connection,
    path: &Path,
    visits: impl IntoIterator<Item = String>,
) -> Result<()> {
    let mut queue: VecDeque<String> = visits.into_iter().collect();
    let mut rewritten = 0;
    while let Some(id) = queue.pop_front() {
        // A visit no decision names has the row its record gives (the common case).
        if !named(conn, path, &id)? {
            continue;
        }
        let (Some(before), Some(raw)) = (
            stored_effective(conn, path, &id)?,
            raw_visit(conn, path, &id)?,
        ) else {
            continue;
        };
        let (dup, cycle) = duplicate_of(conn, path, &id)?;
        let (review, _) = review_state(conn, path, &raw)?;
        let visit = effective(conn, path, raw.clone())?;
        let after = Effective {
            counted: Counted::of(&visit),
            duplicate_of: dup.map(|d| d.to_string()),
            review: review.key().into(),
            effective: (visit != raw).then(|| serde_json::to_string(&visit).unwrap_or_default()),
        };
        if after == before {
            continue;
        }
        rewritten += 1;
        if rewritten > MAX_REFRESH {
            tracing::warn!("a refresh of visit rows stopped at its bound");
            break;
        }
        conn.prepare_cached(
            "UPDATE visits SET date = ?2, audience = ?3, lecture = ?4, books = ?5, kits = ?6,
                 teachers = ?7, training = ?8, duplicate_of = ?9, review = ?10, effective = ?11
             WHERE id = ?1",
        )
        .db(path)?
        .execute(params![
            id,
            after.counted.date,
            after.counted.audience,
            after.counted.lecture,
            after.counted.books,
            after.counted.kits,
            after.counted.teachers,
            after.counted.training,
            after.duplicate_of,
            after.review,
            after.effective,
        ])
        .db(path)?;
        queue.extend(
            after
                .duplicate_of
                .iter()
                .chain(&before.duplicate_of)
                .cloned(),
        );
        queue.extend(cycle);
    }
    Ok(())
}

/// Whether any decision names the visit (on either side).
fn named(conn: &Connection, path: &Path, visit: &str) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM decisions WHERE visit = ?1)
             OR EXISTS (SELECT 1 FROM decisions WHERE other = ?1)",
    )
    .db(path)?
    .query_row([visit], |r| r.get(0))
    .db(path)
}

/// Every decision about a visit (as either side), oldest first.
pub fn history(conn: &Connection, path: &Path, visit: VisitId) -> Result<Vec<Decision>> {
    decisions(
        conn,
        path,
        "SELECT record FROM decisions WHERE visit = ?1 OR other = ?1 ORDER BY at, id",
        [visit.to_string()],
    )
}

/// Every decision about a school, oldest first.
pub fn school_history(
    conn: &Connection,
    path: &Path,
    school: fieldlog_domain::SchoolId,
) -> Result<Vec<Decision>> {
    decisions(
        conn,
        path,
        "SELECT record FROM decisions WHERE school = ?1 ORDER BY at, id",
        [school.to_string()],
    )
}

/// Every decision, oldest first (the review sheet of the work ledger).
pub fn all_decisions(conn: &Connection, path: &Path) -> Result<Vec<Decision>> {
    decisions(
        conn,
        path,
        "SELECT record FROM decisions ORDER BY at, id",
        [],
    )
}
