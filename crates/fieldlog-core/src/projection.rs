//! Query rows derived from the documents. Every write rewrites the rows of the records it
//! touched in the same SQLite transaction; `rebuild` derives all of them from scratch and
//! must give exactly the same rows.

use crate::error::{DbContext, Result};
use crate::ledger::{self, DocId};
use crate::search::pinyin_keys;
use automerge::Automerge;
use fieldlog_domain::ActivityKind;
use rusqlite::{Connection, params};
use std::path::Path;

/// Rewrites the rows of one record (a visit or a school, depending on the document).
pub(crate) fn project_record(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    match doc_id {
        DocId::Ledger { .. } => project_visit(conn, path, doc, doc_id, id),
        DocId::Registry { .. } => project_school(conn, path, doc, doc_id, id),
    }
}

/// Rewrites the rows of every record in a document.
pub(crate) fn project_doc(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
) -> Result<()> {
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
    conn.execute("DELETE FROM visits WHERE id = ?1", [id])
        .db(path)?;
    conn.execute("DELETE FROM conflicts WHERE record_id = ?1", [id])
        .db(path)?;
    let Some(obj) = ledger::record_obj(doc, id) else {
        return Ok(());
    };
    let Some(visit) = ledger::read_visit(doc, id, &obj) else {
        tracing::warn!(%doc_id, id, "skipping a malformed visit record");
        return Ok(());
    };
    let record = serde_json::to_string(&visit).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO visits (id, doc_id, team, school_id, date, audience, lecture, books, kits,
                             deleted, duplicate_of, created_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .db(path)?
    .execute(params![
        id,
        doc_id.to_string(),
        visit.team.as_str(),
        visit.fields.school.to_string(),
        visit.fields.date.to_string(),
        visit.audience_total(),
        visit.fields.activities.contains(&ActivityKind::Lecture),
        visit.fields.donations.books,
        visit.fields.donations.kits,
        visit.deleted,
        visit.duplicate_of.map(|d| d.to_string()),
        visit.created_at,
        record,
    ])
    .db(path)?;
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
                              pinyin_initials, pinyin_full, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
    ])
    .db(path)?;
    Ok(())
}

/// Empties the query tables, ready for every document to be projected again.
pub(crate) fn clear(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("DELETE FROM visits; DELETE FROM schools; DELETE FROM conflicts;")
        .db(path)
}
