//! What the coordinator's desk reads: the dashboard's series, the visits behind a figure,
//! the registry with its visits, and registered schools close to a pending one. Read-only
//! over the projection tables, so the bureau can call it too; the figures themselves come
//! from [`projection::report`] and [`crate::targets::progress`].

use crate::duplicates::similarity;
use crate::error::Error;
use crate::error::{DbContext, Result};
use crate::projection::{self, FROM_VISITS, filter_params, query_records};
use crate::search::pinyin_keys;
use crate::store::{ReportFilter, Store};
use chrono::{Datelike, NaiveDate};
use fieldlog_domain::{
    Area, Dashboard, District, DistrictCount, Figure, FigureVisit, FigureVisits, MonthCount,
    RegistryRow, ReviewState, School, SchoolId, SchoolStatus, SimilarSchool, VisitId,
};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;
use std::path::Path;

/// A visit counts unless it was merged into another as a duplicate ([`FROM_VISITS`] leaves
/// out deleted ones).
const COUNTED: &str = "v.duplicate_of IS NULL";

/// Registered schools whose name is at least this close to a pending school's are offered.
const CLOSE_SCHOOL: f64 = 0.25;

/// The dashboard for `filter`, with the months of `year` against the year before (in the
/// filter's district, whatever its dates) and every district of the region.
pub fn dashboard(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    year: i32,
) -> Result<Dashboard> {
    Ok(Dashboard {
        report: projection::report(conn, path, filter)?,
        year,
        months: months(conn, path, year, filter.district.as_ref())?,
        districts: districts(conn, path, filter)?,
        targets: crate::targets::progress(conn, path, Some(year), filter.district.as_ref())?,
    })
}

fn months(
    conn: &Connection,
    path: &Path,
    year: i32,
    district: Option<&District>,
) -> Result<Vec<MonthCount>> {
    let span = ReportFilter {
        from: NaiveDate::from_ymd_opt(year - 1, 1, 1),
        to: NaiveDate::from_ymd_opt(year, 12, 31),
        district: district.cloned(),
    };
    let sql = format!(
        "SELECT substr(v.date, 1, 7), count(*) {FROM_VISITS} AND {COUNTED}
         GROUP BY substr(v.date, 1, 7)"
    );
    let mut stmt = conn.prepare_cached(&sql).db(path)?;
    let rows = stmt
        .query_map(filter_params(&span), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
        })
        .db(path)?;
    let mut months: Vec<MonthCount> = (1..=12)
        .map(|month| MonthCount {
            month,
            visits: 0,
            previous_year: 0,
        })
        .collect();
    for row in rows {
        let (month, visits) = row.db(path)?;
        let Ok(first) = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d") else {
            continue;
        };
        let slot = &mut months[first.month0() as usize];
        if first.year() == year {
            slot.visits = visits;
        } else {
            slot.previous_year = visits;
        }
    }
    Ok(months)
}

/// Counted visits per district under the filter's dates; every district the registry
/// holds is listed (the filter's district alone when it names one), most visits first.
fn districts(conn: &Connection, path: &Path, filter: &ReportFilter) -> Result<Vec<DistrictCount>> {
    let mut counts: BTreeMap<District, DistrictCount> = BTreeMap::new();
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT district FROM schools WHERE ?1 IS NULL OR district = ?1")
        .db(path)?;
    let named = filter.district.as_ref().map(|d| d.to_string());
    let rows = stmt
        .query_map([&named], |r| r.get::<_, String>(0))
        .db(path)?;
    for row in rows {
        if let Ok(district) = District::parse(&row.db(path)?) {
            counts.insert(
                district.clone(),
                DistrictCount {
                    district,
                    visits: 0,
                    rural_visits: 0,
                    urban_visits: 0,
                },
            );
        }
    }
    let sql = format!(
        "SELECT s.district, count(*), coalesce(sum(s.area = 'rural'), 0),
                coalesce(sum(s.area = 'urban'), 0)
         {FROM_VISITS} AND {COUNTED} AND s.district IS NOT NULL GROUP BY s.district"
    );
    let mut stmt = conn.prepare_cached(&sql).db(path)?;
    let rows = stmt
        .query_map(filter_params(filter), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, u64>(3)?,
            ))
        })
        .db(path)?;
    for row in rows {
        let (district, visits, rural_visits, urban_visits) = row.db(path)?;
        if let Ok(district) = District::parse(&district) {
            counts.insert(
                district.clone(),
                DistrictCount {
                    district,
                    visits,
                    rural_visits,
                    urban_visits,
                },
            );
        }
    }
    let mut out: Vec<DistrictCount> = counts.into_values().collect();
    out.sort_by(|a, b| b.visits.cmp(&a.visits).then(a.district.cmp(&b.district)));
    Ok(out)
}

/// The SQL condition that picks the counted visits standing behind a figure: the same
/// conditions [`projection::report`] sums under.
fn behind(figure: Figure) -> &'static str {
    match figure {
        Figure::Visits | Figure::Schools => "",
        Figure::RuralSchools => "AND s.area = 'rural'",
        Figure::UrbanSchools => "AND s.area = 'urban'",
        Figure::Audience => "AND v.audience > 0",
        Figure::Lectures => "AND v.lecture > 0",
        Figure::RuralLectures => "AND s.area = 'rural' AND v.lecture > 0",
        Figure::Books => "AND v.books > 0",
        Figure::Kits => "AND v.kits > 0",
        Figure::TeachersTrained => "AND v.training AND v.teachers > 0",
        Figure::CourseSessions => "AND v.course IS NOT NULL",
    }
}

/// The counted visits behind `figure` under the filter: how many, and the newest `limit`.
pub fn figure_visits(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    figure: Figure,
    limit: usize,
) -> Result<FigureVisits> {
    let condition = behind(figure);
    let [from, to, district] = filter_params(filter);
    let total_sql = format!("SELECT count(*) {FROM_VISITS} AND {COUNTED} {condition}");
    let total: u64 = conn
        .prepare_cached(&total_sql)
        .db(path)?
        .query_row(params![from, to, district], |r| r.get(0))
        .db(path)?;
    let sql = format!(
        "SELECT v.id, v.date, v.school_id, s.name, s.district, s.area, v.audience, v.lecture, v.books,
                v.kits, CASE WHEN v.training THEN v.teachers ELSE 0 END, v.review
         {FROM_VISITS} AND {COUNTED} {condition}
         ORDER BY v.date DESC, v.created_at DESC, v.id LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).db(path)?;
    let rows = stmt
        .query_map(params![from, to, district, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                [
                    r.get::<_, u64>(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ],
                r.get::<_, String>(11)?,
            ))
        })
        .db(path)?;
    let mut visits = Vec::new();
    for row in rows {
        let (id, date, school, name, district, area, counts, review) = row.db(path)?;
        let [audience, lecture, books, kits, teachers_trained] = counts;
        let (Ok(id), Ok(date), Ok(school)) = (id.parse(), date.parse(), school.parse()) else {
            continue;
        };
        visits.push(FigureVisit {
            id,
            date,
            school,
            school_name: name.unwrap_or_default(),
            district: district.and_then(|d| District::parse(&d).ok()),
            area: area.and_then(|a| Area::parse(&a).ok()),
            audience,
            lecture: lecture > 0,
            books,
            kits,
            teachers_trained,
            review: ReviewState::parse(&review).ok(),
        });
    }
    Ok(FigureVisits { total, visits })
}

/// What the registry screen filters by; `None` and an empty query take everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryFilter {
    /// A part of the name, or its pinyin (initials or full).
    pub query: String,
    pub district: Option<District>,
    pub area: Option<Area>,
    pub status: Option<SchoolStatus>,
}

/// The schools of the registry the filter picks (not those merged into another), each with
/// its counted visits, by district and name.
pub fn registry(
    conn: &Connection,
    path: &Path,
    filter: &RegistryFilter,
) -> Result<Vec<RegistryRow>> {
    let query = filter.query.trim();
    let pinyin = crate::search::normalize_query(query);
    let mut stmt = conn
        .prepare_cached(
            "SELECT sc.record,
                    (SELECT count(*) FROM visits v
                       LEFT JOIN schools s0 ON s0.id = v.school_id
                      WHERE coalesce(s0.merged_into, v.school_id) = sc.id
                        AND v.deleted = 0 AND v.duplicate_of IS NULL)
             FROM schools sc
             WHERE sc.merged_into IS NULL
               AND (?1 = '' OR instr(sc.name, ?1) > 0
                    OR (?2 != '' AND (instr(sc.pinyin_initials, ?2) > 0
                                      OR instr(sc.pinyin_full, ?2) > 0)))
               AND (?3 IS NULL OR sc.district = ?3)
               AND (?4 IS NULL OR sc.area = ?4)
               AND (?5 IS NULL OR sc.status = ?5)
             ORDER BY sc.status = 'registered', sc.district, sc.name",
        )
        .db(path)?;
    let rows = stmt
        .query_map(
            params![
                query,
                pinyin,
                filter.district.as_ref().map(|d| d.to_string()),
                filter.area.map(Area::key),
                filter.status.map(SchoolStatus::key),
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
        )
        .db(path)?;
    let mut out = Vec::new();
    for row in rows {
        let (record, visits) = row.db(path)?;
        match serde_json::from_str::<School>(&record) {
            Ok(school) => out.push(RegistryRow { school, visits }),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable school row"),
        }
    }
    Ok(out)
}

/// Registered schools of the pending school's district whose name, or its pinyin, is close
/// to the pending one's, closest first.
pub fn similar_schools(
    conn: &Connection,
    path: &Path,
    pending: &School,
    limit: usize,
) -> Result<Vec<SimilarSchool>> {
    let registered: Vec<School> = query_records(
        conn,
        path,
        "SELECT record FROM schools
         WHERE district = ?1 AND status = 'registered' AND merged_into IS NULL",
        [pending.fields.district.to_string()],
    )?;
    let (_, pending_pinyin) = pinyin_keys(&pending.fields.name);
    let mut out: Vec<SimilarSchool> = registered
        .into_iter()
        .filter(|s| s.id != pending.id)
        .map(|school| {
            let (_, pinyin) = pinyin_keys(&school.fields.name);
            let score = similarity(&school.fields.name, &pending.fields.name)
                .max(similarity(&pinyin, &pending_pinyin));
            SimilarSchool { school, score }
        })
        .filter(|s| s.score >= CLOSE_SCHOOL)
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.school.fields.name.cmp(&b.school.fields.name))
    });
    out.truncate(limit);
    Ok(out)
}

impl Store {
    /// The dashboard for a period and district ([`dashboard`]).
    pub fn dashboard(&self, filter: &ReportFilter, year: i32) -> Result<Dashboard> {
        dashboard(&self.conn, &self.path, filter, year)
    }

    /// The counted visits behind a figure ([`figure_visits`]).
    pub fn figure_visits(
        &self,
        filter: &ReportFilter,
        figure: Figure,
        limit: usize,
    ) -> Result<FigureVisits> {
        figure_visits(&self.conn, &self.path, filter, figure, limit)
    }

    /// The registry as its screen lists it ([`registry`]).
    pub fn registry(&self, filter: &RegistryFilter) -> Result<Vec<RegistryRow>> {
        registry(&self.conn, &self.path, filter)
    }

    /// Each visit a coordinator reviewed (verified, flagged, or fixed after a flag), by id.
    pub fn review_states(&self) -> Result<BTreeMap<VisitId, ReviewState>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, review FROM visits WHERE review != 'unreviewed'")
            .db(&self.path)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .db(&self.path)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, review) = row.db(&self.path)?;
            if let (Ok(id), Ok(state)) = (id.parse(), ReviewState::parse(&review)) {
                out.insert(id, state);
            }
        }
        Ok(out)
    }

    /// Registered schools close to a pending one ([`similar_schools`]).
    pub fn similar_schools(&self, pending: SchoolId, limit: usize) -> Result<Vec<SimilarSchool>> {
        let school = self.school(pending)?;
        if school.status != SchoolStatus::Pending {
            return Err(Error::SchoolNotPending {
                name: school.fields.name,
            });
        }
        similar_schools(&self.conn, &self.path, &school, limit)
    }
}
