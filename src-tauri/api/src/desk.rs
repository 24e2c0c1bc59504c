//! The coordinator's desk: what its commands take and answer. Every figure and decision
//! comes from core; these types only carry them.

use crate::{ConflictValue, VisitRef};
use chrono::NaiveDate;
use fieldlog_domain::{
    Area, AudienceRule, DuplicatePair, Field, Figure, QueuedVisit, SchoolId, SchoolStatus,
    SimilarSchool, TargetKey, Visit, VisitId,
};
use fieldlog_domain::{District, School};
use serde::{Deserialize, Serialize};

/// The period and district the desk looks at: a year, or a date range within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskFilter {
    pub year: i32,
    /// Narrow the year to a range (either end may be open: the year's first or last day).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub district: Option<District>,
}

impl DeskFilter {
    /// The first and last day the filter covers.
    pub fn span(&self) -> (NaiveDate, NaiveDate) {
        let first = NaiveDate::from_ymd_opt(self.year, 1, 1).unwrap_or_default();
        let last = NaiveDate::from_ymd_opt(self.year, 12, 31).unwrap_or_default();
        (self.from.unwrap_or(first), self.to.unwrap_or(last))
    }
}

/// `figure_visits`: the visits behind a figure under a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureArgs {
    pub filter: DeskFilter,
    pub figure: Figure,
}

/// A visit as the review queue shows it: as entered, with its school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCard {
    pub visit: Visit,
    pub school_name: String,
    pub district: String,
}

/// A suspected duplicate pair, both visits side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicateView {
    pub pair: DuplicatePair,
    pub a: VisitCard,
    pub b: VisitCard,
    /// The fields entered differently, to highlight.
    pub differing: Vec<Field>,
}

/// A field holding concurrent values: every value with who entered it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictView {
    pub visit: VisitCard,
    pub field: Field,
    pub values: Vec<ConflictValue>,
}

/// A school entered in the field, with its visits and the registered schools close to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSchool {
    pub school: School,
    pub visits: u64,
    pub similar: Vec<SimilarSchool>,
}

/// How many items of each section `review_queue` sends, best first (a region's first
/// review can hold thousands; [`QueueTotals`] says how many wait).
pub const QUEUE_SHOWN: usize = 100;

/// How many wait in each section of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTotals {
    pub duplicates: usize,
    pub conflicts: usize,
    pub pending_schools: usize,
    pub fixed: usize,
    pub unverified: usize,
}

/// `review_queue`: what waits for a coordinator, by section (at most [`QUEUE_SHOWN`] each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    #[serde(default)]
    pub totals: QueueTotals,
    pub duplicates: Vec<DuplicateView>,
    pub conflicts: Vec<ConflictView>,
    pub pending_schools: Vec<PendingSchool>,
    pub fixed: Vec<QueuedVisit>,
    pub unverified: Vec<QueuedVisit>,
    pub unverified_after_days: u32,
}

/// `decide`: one coordinator decision. Each is checked whole and written in one
/// transaction, then syncs like a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decide {
    Verify {
        visits: Vec<VisitId>,
        #[serde(default)]
        note: String,
    },
    /// Asks the volunteer to fix the visit; the note is shown on it ("需要修改：…").
    Flag { visit: VisitId, note: String },
    /// `other` stops counting; `keep` takes `take` from it and the audience by `audience`.
    Merge {
        keep: VisitId,
        other: VisitId,
        audience: AudienceRule,
        #[serde(default)]
        take: Vec<Field>,
        #[serde(default)]
        note: String,
    },
    Unmerge {
        other: VisitId,
        #[serde(default)]
        note: String,
    },
    /// Not the same event: the pair is never suggested again.
    Distinct {
        a: VisitId,
        b: VisitId,
        #[serde(default)]
        note: String,
    },
    /// Settles a field on one of its values or a corrected one.
    Resolve {
        visit: VisitId,
        field: Field,
        value: String,
        #[serde(default)]
        note: String,
    },
    ApproveSchool {
        school: SchoolId,
        area: Area,
        #[serde(default)]
        level: Option<String>,
        #[serde(default)]
        note: String,
    },
    /// Corrects a school's area or level (its visits then count with them).
    SetSchool {
        school: SchoolId,
        #[serde(default)]
        area: Option<Area>,
        #[serde(default)]
        level: Option<String>,
        #[serde(default)]
        note: String,
    },
    /// A pending school is the registered `into`.
    MergeSchool {
        pending: SchoolId,
        into: SchoolId,
        #[serde(default)]
        note: String,
    },
}

/// `targets`: the targets of a year (and district, or the region) with their progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsArgs {
    pub year: i32,
    #[serde(default)]
    pub district: Option<District>,
}

/// `set_targets`: goals for a year and a district (or the region). A goal is a whole
/// number, a share (`20%` or `0.2`), or `all` for districts covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTargets {
    pub year: i32,
    #[serde(default)]
    pub district: Option<District>,
    pub goals: Vec<(TargetKey, String)>,
}

/// `registry`: schools by name or pinyin, district, area and status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryArgs {
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub district: Option<District>,
    #[serde(default)]
    pub area: Option<Area>,
    #[serde(default)]
    pub status: Option<SchoolStatus>,
}

/// The work ledger's file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerFormat {
    Xlsx,
    Csv,
}

impl LedgerFormat {
    pub fn extension(self) -> &'static str {
        match self {
            LedgerFormat::Xlsx => "xlsx",
            LedgerFormat::Csv => "csv",
        }
    }
}

/// `export_ledger`: asks where to save (the system's save dialog), then writes the work
/// ledger of the filter there, emitting [`EXPORT_EVENT`] as rows are written. Answers
/// `None` when the person cancelled the dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLedger {
    pub filter: DeskFilter,
    pub format: LedgerFormat,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    pub path: String,
    pub rows: u64,
}

/// The event carrying [`ExportProgress`] while an export runs.
pub const EXPORT_EVENT: &str = "export-progress";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProgress {
    pub rows: u64,
    pub total: u64,
}

/// `visit_history` takes a [`VisitRef`]; `similar_schools` a school.
pub type HistoryArgs = VisitRef;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRef {
    pub id: SchoolId,
}
