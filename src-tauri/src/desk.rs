//! The coordinator's desk on [`Device`]: the review queue and its decisions, the dashboard,
//! targets, the registry and the ledger export. Every figure and check is core's.

use crate::device::{Device, school_names};
use crate::error::AppResult;
use fieldlog_app_api::ConflictValue;
use fieldlog_app_api::desk::{
    ConflictView, Decide, DeskFilter, DuplicateView, Exported, FigureArgs, LedgerFormat,
    PendingSchool, QUEUE_SHOWN, QueueTotals, QueueView, RegistryArgs, SetTargets, TargetsArgs,
    VisitCard,
};
use fieldlog_core::decide::{Export, MergeRequest, SchoolChanges};
use fieldlog_core::desk::RegistryFilter;
use fieldlog_core::{ReportFilter, Store};
use fieldlog_domain::{
    Dashboard, Decision, FigureVisits, RegistryRow, SchoolId, SimilarSchool, TargetProgress,
    VisitId,
};
use std::collections::BTreeMap;
use std::path::Path;

/// How many visits a figure's list shows at once (the total is always given).
const FIGURE_VISITS: usize = 500;
/// Registered schools offered beside a pending one.
const SIMILAR_SCHOOLS: usize = 5;

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

pub fn report_filter(filter: &DeskFilter) -> ReportFilter {
    let (from, to) = filter.span();
    ReportFilter {
        from: Some(from),
        to: Some(to),
        district: filter.district.clone(),
    }
}

impl Device {
    /// What waits for review, each section ready to show.
    pub fn review_queue(&self) -> AppResult<QueueView> {
        self.with_store(|store| {
            let mut queue = store.review_queue(today())?;
            let totals = QueueTotals {
                duplicates: queue.duplicates.len(),
                conflicts: queue.conflicts.len(),
                pending_schools: queue.pending_schools.len(),
                fixed: queue.fixed.len(),
                unverified: queue.unverified.len(),
            };
            queue.duplicates.truncate(QUEUE_SHOWN);
            queue.conflicts.truncate(QUEUE_SHOWN);
            queue.pending_schools.truncate(QUEUE_SHOWN);
            queue.fixed.truncate(QUEUE_SHOWN);
            queue.unverified.truncate(QUEUE_SHOWN);
            let names = school_names(store)?;
            let card = |id: VisitId| -> AppResult<VisitCard> { visit_card(store, &names, id) };
            let mut duplicates = Vec::new();
            for pair in queue.duplicates {
                let (a, b) = (card(pair.a)?, card(pair.b)?);
                duplicates.push(DuplicateView {
                    differing: a.visit.fields.differing(&b.visit.fields),
                    pair,
                    a,
                    b,
                });
            }
            let mut conflicts = Vec::new();
            for conflict in queue.conflicts {
                // Conflicts in schools or courses are not a visit's: the registry screen
                // shows schools.
                let Ok(id) = conflict.record_id.parse::<VisitId>() else {
                    continue;
                };
                let Ok(visit) = card(id) else { continue };
                conflicts.push(ConflictView {
                    visit,
                    field: conflict.field,
                    values: conflict
                        .values
                        .into_iter()
                        .map(|v| ConflictValue {
                            value: v.value,
                            author: v.author,
                            at: v.at,
                        })
                        .collect(),
                });
            }
            let mut pending_schools = Vec::new();
            for school in queue.pending_schools {
                let visits = store
                    .registry(&RegistryFilter {
                        query: school.fields.name.clone(),
                        district: Some(school.fields.district.clone()),
                        ..RegistryFilter::default()
                    })?
                    .into_iter()
                    .find(|row| row.school.id == school.id)
                    .map_or(0, |row| row.visits);
                pending_schools.push(PendingSchool {
                    similar: store.similar_schools(school.id, SIMILAR_SCHOOLS)?,
                    visits,
                    school,
                });
            }
            Ok(QueueView {
                totals,
                duplicates,
                conflicts,
                pending_schools,
                fixed: queue.fixed,
                unverified: queue.unverified,
                unverified_after_days: queue.unverified_after_days,
            })
        })
    }

    /// Makes one decision, then syncs in the background like a saved visit.
    pub fn decide(&self, decide: &Decide) -> AppResult<Vec<Decision>> {
        let decided = self.with_store(|store| {
            Ok(match decide {
                Decide::Verify { visits, note } => store.verify_visits(visits, note)?,
                Decide::Flag { visit, note } => vec![store.flag_visit(*visit, note)?],
                Decide::Merge {
                    keep,
                    other,
                    audience,
                    take,
                    note,
                } => vec![store.merge_visits(&MergeRequest {
                    keep: *keep,
                    other: *other,
                    audience: *audience,
                    take: take.clone(),
                    note: note.clone(),
                })?],
                Decide::Unmerge { other, note } => vec![store.unmerge_visit(*other, note)?],
                Decide::Distinct { a, b, note } => vec![store.mark_distinct(*a, *b, note)?],
                Decide::Resolve {
                    visit,
                    field,
                    value,
                    note,
                } => vec![store.resolve_field(*visit, field.key(), value, note, today())?],
                Decide::ApproveSchool {
                    school,
                    area,
                    level,
                    note,
                } => {
                    let changes = SchoolChanges {
                        area: Some(area.key().to_string()),
                        level: level.clone(),
                        ..SchoolChanges::default()
                    };
                    vec![store.approve_school(*school, &changes, note)?]
                }
                Decide::SetSchool {
                    school,
                    area,
                    level,
                    note,
                } => {
                    let changes = SchoolChanges {
                        area: area.map(|a| a.key().to_string()),
                        level: level.clone(),
                        ..SchoolChanges::default()
                    };
                    vec![store.set_school(*school, &changes, note)?]
                }
                Decide::MergeSchool {
                    pending,
                    into,
                    note,
                } => vec![store.merge_school(*pending, *into, note)?],
            })
        })?;
        self.sync.now();
        Ok(decided)
    }

    pub fn visit_history(&self, id: VisitId) -> AppResult<Vec<Decision>> {
        self.with_store(|store| Ok(store.history(id)?))
    }

    pub fn dashboard(&self, filter: &DeskFilter) -> AppResult<Dashboard> {
        self.with_store(|store| Ok(store.dashboard(&report_filter(filter), filter.year)?))
    }

    pub fn figure_visits(&self, args: &FigureArgs) -> AppResult<FigureVisits> {
        self.with_store(|store| {
            Ok(store.figure_visits(&report_filter(&args.filter), args.figure, FIGURE_VISITS)?)
        })
    }

    pub fn targets(&self, args: &TargetsArgs) -> AppResult<Vec<TargetProgress>> {
        self.with_store(|store| Ok(store.targets(Some(args.year), args.district.as_ref())?))
    }

    /// Sets goals, then answers the targets of that year and district with their progress.
    pub fn set_targets(&self, args: &SetTargets) -> AppResult<Vec<TargetProgress>> {
        let goals: Vec<(String, String)> = args
            .goals
            .iter()
            .map(|(key, goal)| (key.key().to_string(), goal.clone()))
            .collect();
        let district = args.district.as_ref().map(|d| d.as_str());
        self.with_store(|store| Ok(store.set_targets(args.year, district, &goals).map(|_| ())?))?;
        self.sync.now();
        self.targets(&TargetsArgs {
            year: args.year,
            district: args.district.clone(),
        })
    }

    pub fn registry(&self, args: &RegistryArgs) -> AppResult<Vec<RegistryRow>> {
        self.with_store(|store| {
            Ok(store.registry(&RegistryFilter {
                query: args.query.clone(),
                district: args.district.clone(),
                area: args.area,
                status: args.status,
            })?)
        })
    }

    pub fn similar_schools(&self, id: SchoolId) -> AppResult<Vec<SimilarSchool>> {
        self.with_store(|store| Ok(store.similar_schools(id, SIMILAR_SCHOOLS)?))
    }

    /// How many ledger rows the filter's export will hold (the counted visits).
    pub fn ledger_rows(&self, filter: &DeskFilter) -> AppResult<u64> {
        self.with_store(|store| Ok(store.report(&report_filter(filter))?.visits))
    }

    /// Writes the work ledger of the filter to `file`, calling `progress` with the rows
    /// written so far.
    pub fn export_ledger(
        &self,
        filter: &DeskFilter,
        format: LedgerFormat,
        file: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> AppResult<Exported> {
        let what = match format {
            LedgerFormat::Xlsx => Export::LedgerXlsx,
            LedgerFormat::Csv => Export::LedgerCsv,
        };
        let offset = *chrono::Local::now().offset();
        let rows = self.with_store(|store| {
            Ok(store.export_with_progress(what, file, &report_filter(filter), offset, progress)?)
        })?;
        Ok(Exported {
            path: file.display().to_string(),
            rows,
        })
    }
}

fn visit_card(
    store: &Store,
    names: &BTreeMap<SchoolId, String>,
    id: VisitId,
) -> AppResult<VisitCard> {
    let visit = store.visit(id)?;
    let district = store
        .school(visit.fields.school)
        .map(|s| s.fields.district.to_string())
        .unwrap_or_default();
    Ok(VisitCard {
        school_name: names
            .get(&visit.fields.school)
            .cloned()
            .unwrap_or_else(|| visit.fields.school.to_string()),
        district,
        visit,
    })
}
