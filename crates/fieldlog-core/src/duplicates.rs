//! Suspected duplicates: the same real event logged twice.
//!
//! Block, then score (as record-linkage tools do): candidates are counted visits to the same
//! school (a pending school merged into a registered one is that school), or to a pending
//! school whose name is close to a registered school of the same district, dated within a
//! day of each other. Each pair is scored on shared activity kinds, topic similarity
//! (Jaccard over character bigrams, which works for Chinese without a segmenter), audience
//! within 20 % and different authors. A pair is listed when its authors differ and it agrees
//! on the activities AND on the topic or the audience (agreement across fields, not any one
//! of them, so reviewers are not flooded), or when one author logged identical content
//! twice. A pair a coordinator called distinct is never listed again; nothing merges by
//! itself.

use crate::error::{DbContext, Result};
use crate::projection::{filter_params, query_records};
use crate::store::ReportFilter;
use fieldlog_domain::{DuplicatePair, DuplicateReason, School, Visit};
use rusqlite::{Connection, params};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// How alike two school names must be for a pending school to block with a registered one.
const CLOSE_NAME: f64 = 0.5;
/// How alike two topics must be to count as the same topic.
const SIMILAR_TOPIC: f64 = 0.4;

/// Character bigrams of a text, ignoring spaces and punctuation; a one-character text is
/// its own bigram.
fn bigrams(text: &str) -> BTreeSet<String> {
    let chars: Vec<char> = text.chars().filter(|c| c.is_alphanumeric()).collect();
    if chars.len() == 1 {
        return BTreeSet::from([chars[0].to_string()]);
    }
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

/// Jaccard similarity of the texts' bigrams: 1 for the same text, 0 when nothing is shared
/// (or both are empty).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (bigrams(a), bigrams(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

fn jaccard<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Scores a candidate pair; `None` when it should not be listed.
pub fn score(a: &Visit, b: &Visit, same_school: bool) -> Option<DuplicatePair> {
    let (fa, fb) = (&a.fields, &b.fields);
    // Sessions of one course on consecutive days (a holiday camp) are two sessions.
    if fa.course.is_some() && fa.course == fb.course && fa.date != fb.date {
        return None;
    }
    let mut reasons = Vec::new();
    let mut score = 0.0;
    if same_school {
        reasons.push(DuplicateReason::SameSchool);
        score += 0.3;
    } else {
        reasons.push(DuplicateReason::CloseSchoolName);
        score += 0.2;
    }
    if fa.date == fb.date {
        reasons.push(DuplicateReason::SameDay);
        score += 0.1;
    } else {
        reasons.push(DuplicateReason::NextDay);
        score += 0.05;
    }
    let activities = jaccard(&fa.activities, &fb.activities);
    if activities > 0.0 {
        reasons.push(DuplicateReason::SameActivities);
    }
    score += 0.2 * activities;
    let topic = similarity(&fa.topic, &fb.topic);
    if topic >= SIMILAR_TOPIC {
        reasons.push(DuplicateReason::SimilarTopic);
    }
    score += 0.2 * topic;
    let (x, y) = (a.audience_total(), b.audience_total());
    let close_audience = x.max(y) == 0 || x.abs_diff(y) * 5 <= x.max(y);
    if close_audience {
        reasons.push(DuplicateReason::CloseAudience);
        score += 0.15;
    }
    let different_authors = a.created_by != b.created_by;
    if different_authors {
        reasons.push(DuplicateReason::DifferentAuthors);
        score += 0.05;
    }
    let listed = if different_authors {
        activities > 0.0 && (topic >= SIMILAR_TOPIC || close_audience)
    } else {
        let identical = fa == fb;
        if identical {
            reasons.push(DuplicateReason::Identical);
        }
        identical
    };
    listed.then(|| DuplicatePair {
        a: a.id,
        b: b.id,
        score: (score * 100.0).round() / 100.0,
        reasons,
    })
}

/// Every suspected duplicate pair among the counted visits the filter covers, best first.
pub fn find(conn: &Connection, path: &Path, filter: &ReportFilter) -> Result<Vec<DuplicatePair>> {
    let distinct = distinct_pairs(conn, path)?;
    let mut pairs = Vec::new();
    let mut consider = |a: Visit, b: Visit, same_school: bool| {
        let key = ordered(a.id.to_string(), b.id.to_string());
        if distinct.contains(&key) {
            return;
        }
        if let Some(pair) = score(&a, &b, same_school) {
            pairs.push(pair);
        }
    };
    {
        let mut stmt = conn
            .prepare_cached(
                "WITH c AS MATERIALIZED (
                     SELECT v.id, v.date, coalesce(s.merged_into, v.school_id) AS school,
                            coalesce(v.effective, v.record) AS record
                     FROM visits v LEFT JOIN schools s ON s.id = v.school_id
                     WHERE v.deleted = 0 AND v.duplicate_of IS NULL
                       AND (?1 IS NULL OR v.date >= ?1) AND (?2 IS NULL OR v.date <= ?2)
                       AND (?3 IS NULL OR s.district = ?3))
                 SELECT a.record, b.record FROM c a JOIN c b
                   ON b.school = a.school AND b.id > a.id
                  AND b.date BETWEEN date(a.date, '-1 day') AND date(a.date, '+1 day')",
            )
            .db(path)?;
        let mut rows = stmt.query(filter_params(filter)).db(path)?;
        while let Some(row) = rows.next().db(path)? {
            let a: String = row.get(0).db(path)?;
            let b: String = row.get(1).db(path)?;
            if let (Ok(a), Ok(b)) = (serde_json::from_str(&a), serde_json::from_str(&b)) {
                consider(a, b, true);
            }
        }
    }
    for (a, b) in close_name_candidates(conn, path, filter)? {
        let (Some(a), Some(b)) = (
            counted_visit(conn, path, &a)?,
            counted_visit(conn, path, &b)?,
        ) else {
            continue;
        };
        consider(a, b, false);
    }
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| (x.a, x.b).cmp(&(y.a, y.b)))
    });
    Ok(pairs)
}

fn ordered(a: String, b: String) -> (String, String) {
    if a < b { (a, b) } else { (b, a) }
}

/// The pairs coordinators called distinct, each as (smaller id, larger id).
fn distinct_pairs(conn: &Connection, path: &Path) -> Result<HashSet<(String, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT visit, other FROM decisions WHERE kind = 'distinct'")
        .db(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })
        .db(path)?;
    let mut out = HashSet::new();
    for row in rows {
        if let (Some(a), Some(b)) = row.db(path)? {
            out.insert(ordered(a, b));
        }
    }
    Ok(out)
}

/// A counted visit as the figures see it (with what merges took into it).
fn counted_visit(conn: &Connection, path: &Path, id: &str) -> Result<Option<Visit>> {
    Ok(query_records(
        conn,
        path,
        "SELECT coalesce(effective, record) FROM visits
         WHERE id = ?1 AND deleted = 0 AND duplicate_of IS NULL",
        [id],
    )?
    .pop())
}

/// Pairs of visits to a pending school (not merged) and to a registered school of the same
/// district with a close name, within a day.
fn close_name_candidates(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
) -> Result<Vec<(String, String)>> {
    let schools: Vec<School> = query_records(
        conn,
        path,
        "SELECT record FROM schools WHERE merged_into IS NULL",
        [],
    )?;
    let (pending, registered): (Vec<&School>, Vec<&School>) = schools
        .iter()
        .partition(|s| s.status == fieldlog_domain::SchoolStatus::Pending);
    let mut out = Vec::new();
    let in_filter = |s: &School| {
        filter
            .district
            .as_ref()
            .is_none_or(|d| *d == s.fields.district)
    };
    for p in pending.into_iter().filter(|p| in_filter(p)) {
        for r in registered.iter().filter(|r| {
            r.fields.district == p.fields.district
                && similarity(&r.fields.name, &p.fields.name) >= CLOSE_NAME
        }) {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.id, b.id FROM visits a JOIN visits b
                       ON b.date BETWEEN date(a.date, '-1 day') AND date(a.date, '+1 day')
                     WHERE a.school_id = ?3 AND b.school_id = ?4
                       AND a.deleted = 0 AND a.duplicate_of IS NULL
                       AND b.deleted = 0 AND b.duplicate_of IS NULL
                       AND (?1 IS NULL OR a.date >= ?1) AND (?2 IS NULL OR a.date <= ?2)",
                )
                .db(path)?;
            let [from, to, _] = filter_params(filter);
            let rows = stmt
                .query_map(
                    params![from, to, p.id.to_string(), r.id.to_string()],
                    |row| Ok(ordered(row.get(0)?, row.get(1)?)),
                )
                .db(path)?;
            for row in rows {
                out.push(row.db(path)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_topics_compare_without_a_segmenter() {
        assert_eq!(similarity("水的三态", "水的三态"), 1.0);
        assert!(similarity("水的三态变化", "水的三态") >= SIMILAR_TOPIC);
        assert!(similarity("磁铁的秘密", "水的三态") < 0.1);
        assert_eq!(similarity("", ""), 0.0);
        assert!(similarity("南山小学", "南山区南山小学") >= CLOSE_NAME);
        assert!(similarity("南山小学", "北山中学") < CLOSE_NAME);
    }
}
