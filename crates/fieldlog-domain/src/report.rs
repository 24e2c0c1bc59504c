//! The figures a bureau publishes. The same rules hold wherever they are computed:
//! deleted visits and merged duplicates never count, a school counts once per period,
//! audience is everyone counted, lectures are the visits that include a lecture.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub visits: u64,
    pub schools_reached: u64,
    pub rural_schools: u64,
    pub urban_schools: u64,
    pub audience: u64,
    pub lectures: u64,
    pub books: u64,
    pub kits: u64,
    /// Lectures at schools the registry holds as rural now.
    #[serde(default)]
    pub rural_lectures: u64,
    /// Districts with at least one counted visit.
    #[serde(default)]
    pub districts_covered: u64,
    /// Teachers counted at visits that include teacher training.
    #[serde(default)]
    pub teachers_trained: u64,
    /// Visits merged into another as duplicates (not counted).
    #[serde(default)]
    pub duplicates_merged: u64,
    /// Counted visits a coordinator verified, and the rest.
    #[serde(default)]
    pub verified_visits: u64,
    #[serde(default)]
    pub unverified_visits: u64,
    /// Courses with at least [`crate::course::SERIES_MIN_SESSIONS`] sessions held in the
    /// period (series courses).
    #[serde(default)]
    pub courses_completed: u64,
    /// Counted visits that are sessions of a course.
    #[serde(default)]
    pub course_sessions: u64,
}
