//! The coordinator's dashboard: the published figures of a period, their series by month
//! and by district, and which visits stand behind each figure.

use crate::ids::{District, SchoolId, VisitId};
use crate::kinds::Area;
use crate::report::Report;
use crate::review::{ReviewState, TargetProgress};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A published figure whose visits can be listed ([`Report`] holds its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    Visits,
    Schools,
    RuralSchools,
    UrbanSchools,
    Audience,
    Lectures,
    RuralLectures,
    Books,
    Kits,
    TeachersTrained,
    CourseSessions,
}

impl Figure {
    pub const ALL: [Figure; 11] = [
        Figure::Visits,
        Figure::Schools,
        Figure::RuralSchools,
        Figure::UrbanSchools,
        Figure::Audience,
        Figure::Lectures,
        Figure::RuralLectures,
        Figure::Books,
        Figure::Kits,
        Figure::TeachersTrained,
        Figure::CourseSessions,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Figure::Visits => "visits",
            Figure::Schools => "schools",
            Figure::RuralSchools => "rural_schools",
            Figure::UrbanSchools => "urban_schools",
            Figure::Audience => "audience",
            Figure::Lectures => "lectures",
            Figure::RuralLectures => "rural_lectures",
            Figure::Books => "books",
            Figure::Kits => "kits",
            Figure::TeachersTrained => "teachers_trained",
            Figure::CourseSessions => "course_sessions",
        }
    }

    /// The figure's value in a report.
    pub fn of(self, report: &Report) -> u64 {
        match self {
            Figure::Visits => report.visits,
            Figure::Schools => report.schools_reached,
            Figure::RuralSchools => report.rural_schools,
            Figure::UrbanSchools => report.urban_schools,
            Figure::Audience => report.audience,
            Figure::Lectures => report.lectures,
            Figure::RuralLectures => report.rural_lectures,
            Figure::Books => report.books,
            Figure::Kits => report.kits,
            Figure::TeachersTrained => report.teachers_trained,
            Figure::CourseSessions => report.course_sessions,
        }
    }
}

/// Counted visits in one month of the chosen year and of the year before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthCount {
    /// 1 to 12.
    pub month: u32,
    pub visits: u64,
    pub previous_year: u64,
}

/// Counted visits in one district of the region, by the area of their school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistrictCount {
    pub district: District,
    pub visits: u64,
    pub rural_visits: u64,
    pub urban_visits: u64,
}

/// What the dashboard shows for a period and district.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub report: Report,
    /// The year the months chart shows, against the year before.
    pub year: i32,
    /// Twelve entries, January first.
    pub months: Vec<MonthCount>,
    /// Every district of the region, most visits first; a district at zero is not covered.
    pub districts: Vec<DistrictCount>,
    /// The targets of `year` in force for the district (or the region) with their progress.
    pub targets: Vec<TargetProgress>,
}

/// A counted visit behind a figure, with what a list needs to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureVisit {
    pub id: VisitId,
    pub date: NaiveDate,
    pub school: SchoolId,
    /// Empty, with no district or area, while this device does not hold the school.
    pub school_name: String,
    pub district: Option<District>,
    pub area: Option<Area>,
    pub audience: u64,
    pub lecture: bool,
    pub books: u64,
    pub kits: u64,
    pub teachers_trained: u64,
    pub review: Option<ReviewState>,
}

/// The visits behind a figure: how many in all, and the first of them, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureVisits {
    pub total: u64,
    pub visits: Vec<FigureVisit>,
}

/// A school as the registry screen lists it, with its counted visits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryRow {
    pub school: crate::school::School,
    pub visits: u64,
}

/// A registered school whose name is close to a pending one's, in the same district.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarSchool {
    pub school: crate::school::School,
    /// 0 to 1: the better of the names' and their pinyin's similarity.
    pub score: f64,
}
