//! Targets and where the figures stand against them.
//!
//! A target is set per year, for a district or the whole region (`targets/<team>`
//! documents, by coordinators). Progress is the report of that year (and district), by the
//! same rules as every figure: counts compare with the goal; the rural share of lectures is
//! rural lectures over lectures; coverage counts the districts with a counted visit and
//! names those still at zero (for `all`, every district of the registry this store holds);
//! series courses are the report's completed courses; pairings are counted as they stand at
//! the end of the year (see [`crate::course::pairing_figures`]), the pairing rate over the
//! volunteers the bureau enrolled.

use crate::error::{DbContext, Result};
use crate::projection::{self, FROM_VISITS, query_records};
use crate::store::ReportFilter;
use chrono::NaiveDate;
use fieldlog_domain::{District, Goal, Target, TargetKey, TargetProgress};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The targets in force (the latest set per year, district and key), filtered.
pub fn list(
    conn: &Connection,
    path: &Path,
    year: Option<i32>,
    district: Option<&District>,
) -> Result<Vec<Target>> {
    let all: Vec<Target> = query_records(conn, path, "SELECT record FROM targets", [])?;
    let mut latest: BTreeMap<(i32, Option<District>, TargetKey), Target> = BTreeMap::new();
    for target in all {
        let slot = (target.year, target.district.clone(), target.key);
        match latest.get(&slot) {
            Some(kept) if (kept.set_at, &kept.set_by) >= (target.set_at, &target.set_by) => {}
            _ => {
                latest.insert(slot, target);
            }
        }
    }
    Ok(latest
        .into_values()
        .filter(|t| year.is_none_or(|y| t.year == y))
        .filter(|t| district.is_none_or(|d| t.district.as_ref() == Some(d)))
        .collect())
}

/// Each target with its current value, numerator and denominator, and whether it is met.
/// Targets of the same year and district share one report.
pub fn progress(
    conn: &Connection,
    path: &Path,
    year: Option<i32>,
    district: Option<&District>,
) -> Result<Vec<TargetProgress>> {
    let mut reports: BTreeMap<(i32, Option<District>), Figures> = BTreeMap::new();
    let mut out = Vec::new();
    for target in list(conn, path, year, district)? {
        let slot = (target.year, target.district.clone());
        let figures = match reports.get(&slot) {
            Some(f) => f.clone(),
            None => {
                let f = figures(conn, path, target.year, target.district.as_ref())?;
                reports.insert(slot, f.clone());
                f
            }
        };
        out.push(measure(&figures, target));
    }
    Ok(out)
}

/// What a year's (and district's) targets are measured against.
#[derive(Debug, Clone)]
struct Figures {
    report: fieldlog_domain::Report,
    pairings: crate::course::PairingFigures,
    districts: BTreeSet<District>,
    covered: BTreeSet<District>,
}

fn figures(
    conn: &Connection,
    path: &Path,
    year: i32,
    district: Option<&District>,
) -> Result<Figures> {
    let filter = ReportFilter {
        from: NaiveDate::from_ymd_opt(year, 1, 1),
        to: NaiveDate::from_ymd_opt(year, 12, 31),
        district: district.cloned(),
    };
    Ok(Figures {
        report: projection::report(conn, path, &filter)?,
        pairings: crate::course::pairing_figures(conn, path, year, district)?,
        districts: districts(conn, path, district)?,
        covered: covered_districts(conn, path, &filter)?,
    })
}

fn measure(figures: &Figures, target: Target) -> TargetProgress {
    let report = &figures.report;
    let count = |n: u64| (n as f64, None, None);
    let mut missing = Vec::new();
    let (current, numerator, denominator) = match target.key {
        TargetKey::Lectures => count(report.lectures),
        TargetKey::Audience => count(report.audience),
        TargetKey::Schools => count(report.schools_reached),
        TargetKey::TeachersTrained => count(report.teachers_trained),
        TargetKey::Books => count(report.books),
        TargetKey::Courses => count(report.courses_completed),
        TargetKey::Pairings => count(figures.pairings.active),
        TargetKey::RuralLectureShare => share(report.rural_lectures, report.lectures),
        TargetKey::PairingRate => share(figures.pairings.paired_rural, figures.pairings.volunteers),
        TargetKey::DistrictsCovered => {
            missing = figures
                .districts
                .difference(&figures.covered)
                .cloned()
                .collect();
            let covered = figures.covered.intersection(&figures.districts).count() as u64;
            (
                covered as f64,
                Some(covered),
                Some(figures.districts.len() as u64),
            )
        }
    };
    let met = match (target.goal, target.key) {
        (Goal::All, _) => missing.is_empty(),
        (Goal::Number(goal), TargetKey::RuralLectureShare | TargetKey::PairingRate) => {
            denominator.is_some_and(|d| d > 0) && current + 1e-9 >= goal
        }
        (Goal::Number(goal), _) => current + 1e-9 >= goal,
    };
    TargetProgress {
        year: target.year,
        district: target.district,
        key: target.key,
        goal: target.goal,
        current,
        numerator,
        denominator,
        met,
        missing_districts: missing,
    }
}

/// A share with what is counted over what (0 when nothing is).
fn share(numerator: u64, denominator: u64) -> (f64, Option<u64>, Option<u64>) {
    let value = if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    };
    (value, Some(numerator), Some(denominator))
}

/// Every district the registry holds (or just `only`).
fn districts(
    conn: &Connection,
    path: &Path,
    only: Option<&District>,
) -> Result<BTreeSet<District>> {
    if let Some(d) = only {
        return Ok(BTreeSet::from([d.clone()]));
    }
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT district FROM schools")
        .db(path)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).db(path)?;
    let mut out = BTreeSet::new();
    for row in rows {
        if let Ok(d) = District::parse(&row.db(path)?) {
            out.insert(d);
        }
    }
    Ok(out)
}

/// The districts with at least one counted visit under the filter.
pub fn covered_districts(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
) -> Result<BTreeSet<District>> {
    let sql = format!(
        "SELECT DISTINCT s.district {FROM_VISITS} AND v.duplicate_of IS NULL AND s.district IS NOT NULL"
    );
    let mut stmt = conn.prepare_cached(&sql).db(path)?;
    let rows = stmt
        .query_map(projection::filter_params(filter), |r| r.get::<_, String>(0))
        .db(path)?;
    let mut out = BTreeSet::new();
    for row in rows {
        if let Ok(d) = District::parse(&row.db(path)?) {
            out.insert(d);
        }
    }
    Ok(out)
}
