//! The review queue: what waits for a coordinator in the region this store holds.

use crate::duplicates;
use crate::error::Result;
use crate::ledger::Conflict;
use crate::projection::{self, query_records};
use crate::store::ReportFilter;
use chrono::NaiveDate;
pub use fieldlog_domain::QueuedVisit;
use fieldlog_domain::{DuplicatePair, School, Visit};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewQueue {
    pub duplicates: Vec<DuplicatePair>,
    pub conflicts: Vec<Conflict>,
    /// Schools entered in the field, not yet approved or merged.
    pub pending_schools: Vec<School>,
    /// Visits a volunteer edited after a coordinator flagged them.
    pub fixed: Vec<QueuedVisit>,
    /// Counted visits not verified, dated at least `unverified_after_days` ago.
    pub unverified: Vec<QueuedVisit>,
    pub unverified_after_days: u32,
}

impl ReviewQueue {
    pub fn len(&self) -> usize {
        self.duplicates.len()
            + self.conflicts.len()
            + self.pending_schools.len()
            + self.fixed.len()
            + self.unverified.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn queue(
    conn: &rusqlite::Connection,
    path: &Path,
    today: NaiveDate,
    unverified_after_days: u32,
) -> Result<ReviewQueue> {
    let before = today - chrono::Days::new(u64::from(unverified_after_days));
    Ok(ReviewQueue {
        duplicates: duplicates::find(conn, path, &ReportFilter::default())?,
        conflicts: projection::conflicts(conn, path)?,
        pending_schools: query_records(
            conn,
            path,
            "SELECT record FROM schools WHERE status = 'pending' AND merged_into IS NULL
             ORDER BY district, name",
            [],
        )?,
        fixed: queued(conn, path, "v.review = 'fixed'", None)?,
        unverified: queued(
            conn,
            path,
            "v.review = 'unreviewed' AND v.date <= ?1",
            Some(before),
        )?,
        unverified_after_days,
    })
}

fn queued(
    conn: &rusqlite::Connection,
    path: &Path,
    condition: &str,
    before: Option<NaiveDate>,
) -> Result<Vec<QueuedVisit>> {
    let sql = format!(
        "SELECT json_object('visit', json(v.record), 'school', coalesce(s.name, v.school_id))
         FROM visits v LEFT JOIN schools s ON s.id = v.school_id
         WHERE v.deleted = 0 AND v.duplicate_of IS NULL AND {condition}
         ORDER BY v.date, v.id"
    );
    #[derive(Deserialize)]
    struct Row {
        visit: Visit,
        school: String,
    }
    let rows: Vec<Row> = match before {
        Some(day) => query_records(conn, path, &sql, [day.to_string()])?,
        None => query_records(conn, path, &sql, [])?,
    };
    rows.into_iter()
        .map(|Row { visit, school }| {
            let (_, note) = crate::review::review_state(conn, path, &visit)?;
            Ok(QueuedVisit {
                id: visit.id,
                date: visit.fields.date,
                school,
                team: visit.team.to_string(),
                created_by: visit.created_by,
                note,
            })
        })
        .collect()
}
