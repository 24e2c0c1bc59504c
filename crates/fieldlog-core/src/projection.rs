//! Query rows derived from the documents. Every write rewrites the rows of the records it
//! touched in the same SQLite transaction; `rebuild` derives all of them from scratch and
//! must give exactly the same rows. The bureau keeps the same tables ([`TABLES`]) and
//! answers the same queries, so figures agree wherever they are computed.

use crate::error::{DbContext, Result};
use crate::ledger::{self, DocId};
use crate::ledger::{Conflict, ConflictValue};
use crate::search::pinyin_keys;
use crate::store::{ReportFilter, VisitFilter};
use automerge::Automerge;
use fieldlog_domain::{Field, Report, School, Visit};
use rusqlite::{Connection, params};
use std::path::Path;

/// The query tables, as a migration another store may append (the bureau does). The device
/// store created the same tables in its first migration. Never edit: a pinned migration
/// elsewhere holds this text.
pub const TABLES: &str = r#"CREATE TABLE schools (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    name TEXT NOT NULL,
    district TEXT NOT NULL,
    area TEXT NOT NULL,
    level TEXT,
    enrollment INTEGER,
    status TEXT NOT NULL,
    pinyin_initials TEXT NOT NULL,
    pinyin_full TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX schools_by_name ON schools (name);
CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    team TEXT NOT NULL,
    school_id TEXT NOT NULL,
    date TEXT NOT NULL,
    audience INTEGER NOT NULL,
    lecture INTEGER NOT NULL,
    books INTEGER NOT NULL,
    kits INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    duplicate_of TEXT,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX visits_by_date ON visits (date);
CREATE INDEX visits_by_school ON visits (school_id);
CREATE TABLE conflicts (
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    actor TEXT NOT NULL,
    author TEXT NOT NULL,
    at INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (record_id, field, actor, value)
) WITHOUT ROWID;
"#;

/// Which visits refer to which photo files (thumbnails and display copies), so "who may
/// upload or fetch this file" is one indexed lookup. A migration both stores append; it
/// fills the table from the visits already projected. Never edit.
pub const PHOTO_TABLE: &str = r#"CREATE TABLE visit_photos (
    sha256 TEXT NOT NULL,
    visit_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (sha256, visit_id)
) WITHOUT ROWID;
CREATE INDEX visit_photos_by_visit ON visit_photos (visit_id);
INSERT OR IGNORE INTO visit_photos (sha256, visit_id, doc_id, bytes)
SELECT json_extract(p.value, '$.thumbnail_sha256'), v.id, v.doc_id,
       json_extract(p.value, '$.thumbnail_bytes')
FROM visits v, json_each(v.record, '$.photos') p
UNION ALL
SELECT json_extract(p.value, '$.display_sha256'), v.id, v.doc_id,
       json_extract(p.value, '$.display_bytes')
FROM visits v, json_each(v.record, '$.photos') p;
"#;

/// Rewrites the rows of one record (a visit or a school, depending on the document).
pub fn project_record(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    match doc_id {
        DocId::Ledger { .. } => {
            project_visit(conn, path, doc, doc_id, id)?;
            crate::review::refresh(conn, path, [id.to_string()])
        }
        DocId::Registry { .. } => project_school(conn, path, doc, doc_id, id),
        DocId::Review { .. } => crate::review::project_decision(conn, path, doc, doc_id, id),
        DocId::Targets { .. } => crate::review::project_target(conn, path, doc, doc_id, id),
        DocId::Courses { .. } => crate::course::project_course(conn, path, doc, doc_id, id),
        DocId::Pairings { .. } => crate::course::project_pairing(conn, path, doc, doc_id, id),
        DocId::Roster { .. } => crate::course::project_student(conn, path, doc, doc_id, id),
    }
}

/// The records (root keys) that the changes since `before` wrote into. Read from the
/// changes' operations, not from a diff of what is visible: a change that only adds or
/// supersedes a losing concurrent value shows no difference, yet alters the record's
/// conflicts.
pub fn touched_records(doc: &Automerge, before: &[automerge::ChangeHash]) -> Vec<String> {
    use automerge::legacy::{Key, ObjectId};
    use automerge::{Prop, ReadDoc};
    let mut records = std::collections::BTreeSet::new();
    let mut objects = std::collections::HashMap::new();
    for change in doc.get_changes(before) {
        for op in change.decode().operations {
            let record = match op.obj {
                ObjectId::Root => match op.key {
                    Key::Map(key) => Some(key.to_string()),
                    Key::Seq(_) => None,
                },
                ObjectId::Id(id) => objects
                    .entry(id.to_string())
                    .or_insert_with(|| {
                        let (obj, _) = doc.import(&id.to_string()).ok()?;
                        match doc.parents(obj).ok()?.last()?.prop {
                            Prop::Map(key) => Some(key),
                            Prop::Seq(_) => None,
                        }
                    })
                    .clone(),
            };
            records.extend(record);
        }
    }
    records.into_iter().collect()
}

/// Rewrites the rows of every record in a document.
pub fn project_doc(conn: &Connection, path: &Path, doc: &Automerge, doc_id: &DocId) -> Result<()> {
    for id in ledger::record_keys(doc) {
        project_record(conn, path, doc, doc_id, &id)?;
    }
    Ok(())
}

fn project_visit(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    for sql in [
        "DELETE FROM visits WHERE id = ?1",
        "DELETE FROM conflicts WHERE record_id = ?1",
        "DELETE FROM visit_photos WHERE visit_id = ?1",
    ] {
        conn.prepare_cached(sql).db(path)?.execute([id]).db(path)?;
    }
    let Some(obj) = ledger::record_obj(doc, id) else {
        return Ok(());
    };
    let Some(visit) = ledger::read_visit(doc, id, &obj) else {
        tracing::warn!(%doc_id, id, "skipping a malformed visit record");
        return Ok(());
    };
    let record = serde_json::to_string(&visit).unwrap_or_default();
    // The row as the record gives it; `review::refresh` applies the decisions after.
    let counted = crate::review::Counted::of(&visit);
    conn.prepare_cached(
        "INSERT INTO visits (id, doc_id, team, school_id, date, audience, lecture, books, kits,
                             deleted, duplicate_of, created_at, record, teachers, training, course)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .db(path)?
    .execute(params![
        id,
        doc_id.to_string(),
        visit.team.as_str(),
        visit.fields.school.to_string(),
        counted.date,
        counted.audience,
        counted.lecture,
        counted.books,
        counted.kits,
        visit.deleted,
        Option::<String>::None,
        visit.created_at,
        record,
        counted.teachers,
        counted.training,
        visit.fields.course.map(|c| c.to_string()),
    ])
    .db(path)?;
    for photo in &visit.photos {
        for (sha256, bytes) in [
            (&photo.thumbnail_sha256, photo.thumbnail_bytes),
            (&photo.display_sha256, photo.display_bytes),
        ] {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO visit_photos (sha256, visit_id, doc_id, bytes)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .db(path)?
            .execute(params![sha256, id, doc_id.to_string(), bytes])
            .db(path)?;
        }
    }
    for conflict in ledger::visit_conflicts(doc, id, &obj) {
        for value in &conflict.values {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO conflicts (record_id, field, actor, author, at, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .db(path)?
            .execute(params![
                id,
                conflict.field.key(),
                value.actor,
                value.author,
                value.at,
                value.value
            ])
            .db(path)?;
        }
    }
    Ok(())
}

fn project_school(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    conn.execute("DELETE FROM schools WHERE id = ?1", [id])
        .db(path)?;
    let Some(obj) = ledger::record_obj(doc, id) else {
        return Ok(());
    };
    let Some(school) = ledger::read_school(doc, id, &obj) else {
        tracing::warn!(%doc_id, id, "skipping a malformed school record");
        return Ok(());
    };
    let (initials, full) = pinyin_keys(&school.fields.name);
    let record = serde_json::to_string(&school).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO schools (id, doc_id, name, district, area, level, enrollment, status,
                              pinyin_initials, pinyin_full, record, merged_into)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .db(path)?
    .execute(params![
        id,
        doc_id.to_string(),
        school.fields.name,
        school.fields.district.as_str(),
        school.fields.area.key(),
        school.fields.level.map(|l| l.key()),
        school.fields.enrollment,
        school.status.key(),
        initials,
        full,
        record,
        school.merged_into.map(|s| s.to_string()),
    ])
    .db(path)?;
    Ok(())
}

/// Empties the query tables, ready for every document to be projected again.
pub fn clear(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM visits; DELETE FROM schools; DELETE FROM conflicts; DELETE FROM visit_photos;
         DELETE FROM decisions; DELETE FROM targets; DELETE FROM courses; DELETE FROM roster;
         DELETE FROM pairings;",
    )
    .db(path)
}

/// The visits that refer to a photo file: each one's document and the file size it records.
pub fn photo_refs(conn: &Connection, path: &Path, sha256: &str) -> Result<Vec<(DocId, u64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT doc_id, bytes FROM visit_photos WHERE sha256 = ?1")
        .db(path)?;
    let rows = stmt
        .query_map([sha256], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .db(path)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db(path)?;
    Ok(rows
        .into_iter()
        .filter_map(|(doc, bytes)| Some((DocId::parse(&doc)?, u64::try_from(bytes).ok()?)))
        .collect())
}

/// Schools (the registry and those entered in the field), by district then name.
pub fn schools(conn: &Connection, path: &Path) -> Result<Vec<School>> {
    query_records(
        conn,
        path,
        "SELECT record FROM schools ORDER BY district, name",
        [],
    )
}

/// Visits, newest date first.
pub fn visits(conn: &Connection, path: &Path, filter: &VisitFilter) -> Result<Vec<Visit>> {
    query_records(
        conn,
        path,
        "SELECT record FROM visits
         WHERE (?1 IS NULL OR substr(date, 1, 7) = ?1)
           AND (?2 IS NULL OR school_id = ?2)
           AND (?3 OR deleted = 0)
         ORDER BY date DESC, created_at DESC, id",
        params![
            filter.month,
            filter.school.map(|s| s.to_string()),
            filter.include_deleted
        ],
    )
}

/// Every field holding concurrent values, with each value and who entered it.
pub fn conflicts(conn: &Connection, path: &Path) -> Result<Vec<Conflict>> {
    let mut stmt = conn
        .prepare(
            "SELECT record_id, field, value, author, actor, at FROM conflicts
             ORDER BY record_id, field, actor, value",
        )
        .db(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                ConflictValue {
                    value: r.get(2)?,
                    author: r.get(3)?,
                    actor: r.get(4)?,
                    at: r.get(5)?,
                },
            ))
        })
        .db(path)?;
    let mut conflicts: Vec<Conflict> = Vec::new();
    for row in rows {
        let (record_id, field, value) = row.db(path)?;
        let Ok(field) = Field::try_from(field) else {
            continue;
        };
        match conflicts.last_mut() {
            Some(c) if c.record_id == record_id && c.field == field => c.values.push(value),
            _ => conflicts.push(Conflict {
                record_id,
                field,
                values: vec![value],
            }),
        }
    }
    Ok(conflicts)
}

/// The figures, by the report rules (one implementation for the device, the bureau,
/// targets and exports): a deleted visit never counts, a merged duplicate counts once (as
/// the visit it was merged into, with the audience the merge chose), a school counts once
/// per period with the area the registry holds now, and a visit to a pending school merged
/// into a registered one counts for the registered one.
pub fn report(conn: &Connection, path: &Path, filter: &ReportFilter) -> Result<Report> {
    // One scan over the visits the filter covers; `{C}` marks those that count (the rest
    // were merged into another as duplicates).
    let sql = format!(
        "SELECT coalesce(sum({C}), 0),
                count(DISTINCT CASE WHEN {C} THEN s.id END),
                count(DISTINCT CASE WHEN {C} AND s.area = 'rural' THEN s.id END),
                count(DISTINCT CASE WHEN {C} AND s.area = 'urban' THEN s.id END),
                coalesce(sum(CASE WHEN {C} THEN v.audience END), 0),
                coalesce(sum(CASE WHEN {C} THEN v.lecture END), 0),
                coalesce(sum(CASE WHEN {C} THEN v.books END), 0),
                coalesce(sum(CASE WHEN {C} THEN v.kits END), 0),
                coalesce(sum(CASE WHEN {C} AND s.area = 'rural' THEN v.lecture END), 0),
                count(DISTINCT CASE WHEN {C} THEN s.district END),
                coalesce(sum(CASE WHEN {C} AND v.training THEN v.teachers END), 0),
                coalesce(sum({C} AND v.review = 'verified'), 0),
                coalesce(sum(NOT {C}), 0),
                coalesce(sum({C} AND v.course IS NOT NULL), 0)
         {FROM_VISITS}",
        C = "(v.duplicate_of IS NULL)"
    );
    let courses_completed = crate::course::completed(conn, path, filter)?;
    let mut stmt = conn.prepare_cached(&sql).db(path)?;
    stmt.query_row(filter_params(filter), |r| {
        let visits: u64 = r.get(0)?;
        let verified: u64 = r.get(11)?;
        Ok(Report {
            visits,
            schools_reached: r.get(1)?,
            rural_schools: r.get(2)?,
            urban_schools: r.get(3)?,
            audience: r.get(4)?,
            lectures: r.get(5)?,
            books: r.get(6)?,
            kits: r.get(7)?,
            rural_lectures: r.get(8)?,
            districts_covered: r.get(9)?,
            teachers_trained: r.get(10)?,
            duplicates_merged: r.get(12)?,
            verified_visits: verified,
            unverified_visits: visits.saturating_sub(verified),
            courses_completed,
            course_sessions: r.get(13)?,
        })
    })
    .db(path)
}

/// The parameters `?1`..`?3` of [`FROM_VISITS`] for a filter.
pub(crate) fn filter_params(filter: &ReportFilter) -> [Option<String>; 3] {
    [
        filter.from.map(|d| d.to_string()),
        filter.to.map(|d| d.to_string()),
        filter.district.as_ref().map(|d| d.to_string()),
    ]
}

/// The visits a report looks at (`?1`..`?3`: from, to, district, see [`filter_params`]), each with `s`, the school
/// it counts for (a pending school merged into a registered one counts as that one).
pub const FROM_VISITS: &str = "FROM visits v
         LEFT JOIN schools s0 ON s0.id = v.school_id
         LEFT JOIN schools s ON s.id = coalesce(s0.merged_into, v.school_id)
         WHERE v.deleted = 0
           AND (?1 IS NULL OR v.date >= ?1)
           AND (?2 IS NULL OR v.date <= ?2)
           AND (?3 IS NULL OR s.district = ?3)";

pub(crate) fn query_records<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).db(path)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0)).db(path)?;
    let mut records = Vec::new();
    for row in rows {
        match serde_json::from_str(&row.db(path)?) {
            Ok(record) => records.push(record),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable projection row"),
        }
    }
    Ok(records)
}
