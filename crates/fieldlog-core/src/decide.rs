//! What a coordinator's device decides ([`crate::review`] says what decisions do).
//!
//! Each action checks everything first (the device is enrolled as a coordinator, the
//! district is in its region, the visits exist, a merge makes no cycle, fields and values
//! are valid) and then writes one decision record per visit or school, with any registry or
//! ledger edit it needs, in one transaction; a refused action writes nothing.

use crate::error::{Error, Result};
use crate::ledger::{self, DocId};
use crate::queue::ReviewQueue;
use crate::review;
use crate::store::ReportFilter;
use crate::store::{Store, Writer};
use crate::sync::Enrollment;
use chrono::NaiveDate;
use fieldlog_domain::{
    AudienceRule, Decision, DecisionKind, District, DuplicatePair, Field, FieldError, Goal, Reason,
    Role, School, SchoolId, SchoolInput, SchoolStatus, Target, TargetKey, TargetProgress,
    ValidationErrors, Visit, VisitId, VisitInput, VisitReview,
};
use std::path::Path;

/// Corrections to a school's registry entry; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolChanges {
    pub name: Option<String>,
    pub district: Option<String>,
    pub area: Option<String>,
    pub level: Option<String>,
}

impl SchoolChanges {
    fn apply(&self, school: &School) -> Result<fieldlog_domain::SchoolFields> {
        let mut input = SchoolInput::from(&school.fields);
        let set = |slot: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                *slot = v.clone();
            }
        };
        set(&mut input.name, &self.name);
        set(&mut input.district, &self.district);
        set(&mut input.area, &self.area);
        set(&mut input.level, &self.level);
        Ok(input.validate()?)
    }

    /// `name=…; area=rural`, for the decision's record.
    fn describe(&self) -> String {
        [
            ("name", &self.name),
            ("district", &self.district),
            ("area", &self.area),
            ("level", &self.level),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join("; ")
    }
}

/// A merge as a coordinator asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    pub keep: VisitId,
    pub other: VisitId,
    pub audience: AudienceRule,
    /// Fields the kept visit takes from the other ([`review::TAKEABLE`]).
    pub take: Vec<Field>,
    pub note: String,
}

/// Parses a visit field as a person names it: its key (`topic`, `audience.students`), the
/// last part of the key (`students`), or its label in either language (`主题`).
pub fn parse_field(given: &str) -> std::result::Result<Field, FieldError> {
    let given = given.trim();
    Field::ALL
        .into_iter()
        .find(|f| {
            let key = f.key();
            key == given
                || key.rsplit('.').next() == Some(given)
                || f.label(fieldlog_domain::Lang::ZhCn) == given
                || f.label(fieldlog_domain::Lang::En)
                    .eq_ignore_ascii_case(given)
        })
        .ok_or_else(|| {
            FieldError::new(
                Field::FieldName,
                Reason::UnknownField {
                    given: given.to_string(),
                },
            )
        })
}

impl Store {
    /// This device's enrollment, if it is a coordinator's.
    pub(crate) fn coordinator(&self) -> Result<Enrollment> {
        self.enrollment()?
            .filter(|e| e.role == Role::Coordinator)
            .ok_or(Error::NotCoordinator)
    }

    /// The district whose review document holds decisions about a visit: its school's
    /// (followed into the school it was merged into), which must be in the region.
    fn visit_district(&self, coordinator: &Enrollment, visit: &Visit) -> Result<District> {
        let school = self.school(visit.fields.school)?;
        let school = match school.merged_into {
            Some(into) => self.school(into).unwrap_or(school),
            None => school,
        };
        in_region(coordinator, &school.fields.district)?;
        Ok(school.fields.district)
    }

    fn new_decision(&self, coordinator: &Enrollment, kind: DecisionKind) -> Decision {
        Decision {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            visit: None,
            other: None,
            school: None,
            into: None,
            audience: None,
            fields: Vec::new(),
            value: String::new(),
            note: String::new(),
            member: coordinator.member.clone(),
            device: self.device.name.clone(),
            at: self.clock.now_ms(),
        }
    }

    /// Marks visits verified (已核实). Every visit is checked before anything is written.
    pub fn verify_visits(&mut self, visits: &[VisitId], note: &str) -> Result<Vec<Decision>> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, false)?;
        let mut planned = Vec::new();
        for id in visits {
            let visit = self.live_visit(*id)?;
            let district = self.visit_district(&coordinator, &visit)?;
            let mut d = self.new_decision(&coordinator, DecisionKind::Verify);
            d.visit = Some(*id);
            d.note = note.clone();
            planned.push((district, d));
        }
        self.write_decisions(planned, |_| Ok(()))
    }

    /// Asks the volunteer to fix a visit; the note reaches their device.
    pub fn flag_visit(&mut self, visit: VisitId, note: &str) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, true)?;
        let current = self.live_visit(visit)?;
        let district = self.visit_district(&coordinator, &current)?;
        let mut d = self.new_decision(&coordinator, DecisionKind::Flag);
        d.visit = Some(visit);
        d.note = note;
        self.write_one(district, d)
    }

    /// Merges `other` into `keep` (followed to the visit `keep` was itself merged into):
    /// `other` stops counting and both stay readable.
    pub fn merge_visits(&mut self, request: &MergeRequest) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(&request.note, false)?;
        if let Some(bad) = request.take.iter().find(|f| !review::TAKEABLE.contains(f)) {
            return Err(FieldError::new(
                Field::FieldName,
                Reason::UnknownValue {
                    given: bad.key().to_string(),
                    expected: review::TAKEABLE
                        .iter()
                        .map(|f| f.key().to_string())
                        .collect(),
                },
            )
            .into());
        }
        if request.keep == request.other {
            return Err(Error::MergeIntoItself(request.keep));
        }
        let other = self.live_visit(request.other)?;
        self.live_visit(request.keep)?;
        let keep = self.kept_visit(request.keep)?;
        if keep == request.other {
            return Err(Error::MergeCycle {
                keep: request.keep,
                other: request.other,
            });
        }
        let district = self.visit_district(&coordinator, &other)?;
        let mut d = self.new_decision(&coordinator, DecisionKind::Merge);
        d.visit = Some(request.other);
        d.other = Some(keep);
        d.audience = Some(request.audience);
        d.fields = request.take.clone();
        d.note = note;
        self.write_one(district, d)
    }

    /// Undoes the merge of `other`: both count again.
    pub fn unmerge_visit(&mut self, other: VisitId, note: &str) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, false)?;
        let visit = self.visit(other)?;
        if review::merged_into(&self.conn, &self.path, other)?.is_none() {
            return Err(Error::NotMerged(other));
        }
        let district = self.visit_district(&coordinator, &visit)?;
        let mut d = self.new_decision(&coordinator, DecisionKind::Unmerge);
        d.visit = Some(other);
        d.note = note;
        self.write_one(district, d)
    }

    /// Says `a` and `b` are not the same event: the pair is never suggested again.
    pub fn mark_distinct(&mut self, a: VisitId, b: VisitId, note: &str) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, false)?;
        if a == b {
            return Err(Error::MergeIntoItself(a));
        }
        let first = self.visit(a)?;
        self.visit(b)?;
        let district = self.visit_district(&coordinator, &first)?;
        let mut d = self.new_decision(&coordinator, DecisionKind::Distinct);
        d.visit = Some(a);
        d.other = Some(b);
        d.note = note;
        self.write_one(district, d)
    }

    /// Settles a field: `value` (one of the concurrent values or a corrected one) is written
    /// over every value this device holds, so once synced every device shows it and the
    /// conflict is gone. A count is set to `value`.
    pub fn resolve_field(
        &mut self,
        visit: VisitId,
        field: &str,
        value: &str,
        note: &str,
        today: NaiveDate,
    ) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, false)?;
        let field = parse_field(field)?;
        let current = self.live_visit(visit)?;
        if ledger::field_key(field).is_none() {
            return Err(Error::NotResolvable { visit, field });
        }
        let mut input = VisitInput::from(&current.fields);
        input.set(field.key(), value)?;
        let settled = self.validate_visit(&input, today)?;
        let district = self.visit_district(&coordinator, &current)?;
        let mut d = self.new_decision(&coordinator, DecisionKind::Resolve);
        d.visit = Some(visit);
        d.fields = vec![field];
        d.value = value.trim().to_string();
        d.note = note;
        let doc_id = self.visit_doc(visit)?;
        let mut decided = self.write_decisions(vec![(district, d)], |w| {
            w.change_visit(&doc_id, visit, "resolve", |tx, obj, now_visit| {
                ledger::settle_field(tx, obj, field, &now_visit.fields, &settled)
            })
        })?;
        Ok(decided.remove(0))
    }

    /// Registers a pending school, with corrections.
    pub fn approve_school(
        &mut self,
        id: SchoolId,
        changes: &SchoolChanges,
        note: &str,
    ) -> Result<Decision> {
        let school = self.school(id)?;
        if school.status != SchoolStatus::Pending || school.merged_into.is_some() {
            return Err(Error::SchoolNotPending {
                name: school.fields.name,
            });
        }
        let mut updated = school.clone();
        updated.fields = changes.apply(&school)?;
        updated.status = SchoolStatus::Registered;
        self.school_decision(DecisionKind::SchoolApprove, school, updated, changes, note)
    }

    /// Corrects a school's registry entry (its area then applies to all its visits).
    pub fn set_school(
        &mut self,
        id: SchoolId,
        changes: &SchoolChanges,
        note: &str,
    ) -> Result<Decision> {
        let school = self.school(id)?;
        let mut updated = school.clone();
        updated.fields = changes.apply(&school)?;
        self.school_decision(DecisionKind::SchoolSet, school, updated, changes, note)
    }

    /// Says a pending school is the registered `into`: its visits count for `into`, and it
    /// leaves the pending list.
    pub fn merge_school(
        &mut self,
        pending: SchoolId,
        into: SchoolId,
        note: &str,
    ) -> Result<Decision> {
        let school = self.school(pending)?;
        let target = self.school(into)?;
        if school.status != SchoolStatus::Pending || pending == into {
            return Err(Error::SchoolNotPending {
                name: school.fields.name,
            });
        }
        if target.status != SchoolStatus::Registered || target.merged_into.is_some() {
            return Err(Error::SchoolNotRegistered {
                name: target.fields.name,
            });
        }
        let mut updated = school.clone();
        updated.merged_into = Some(into);
        let changes = SchoolChanges::default();
        let coordinator = self.coordinator()?;
        in_region(&coordinator, &target.fields.district)?;
        self.school_decision(DecisionKind::SchoolMerge, school, updated, &changes, note)
    }

    fn school_decision(
        &mut self,
        kind: DecisionKind,
        before: School,
        after: School,
        changes: &SchoolChanges,
        note: &str,
    ) -> Result<Decision> {
        let coordinator = self.coordinator()?;
        let note = checked_note(note, false)?;
        in_region(&coordinator, &before.fields.district)?;
        in_region(&coordinator, &after.fields.district)?;
        let mut d = self.new_decision(&coordinator, kind);
        d.school = Some(before.id);
        d.into = after.merged_into;
        d.value = changes.describe();
        d.note = note;
        let registry = DocId::registry(&before.fields.district);
        let district = before.fields.district.clone();
        let mut decided = self.write_decisions(vec![(district, d)], |w| {
            w.change(&registry, "review school", &[after.id.to_string()], |tx| {
                ledger::put_school(tx, &after)
            })
        })?;
        Ok(decided.remove(0))
    }

    /// Sets targets for a year, and a district or the whole region.
    pub fn set_targets(
        &mut self,
        year: i32,
        district: Option<&str>,
        goals: &[(String, String)],
    ) -> Result<Vec<Target>> {
        let coordinator = self.coordinator()?;
        let district = district.map(District::parse).transpose()?;
        if let Some(d) = &district {
            in_region(&coordinator, d)?;
        }
        if !(2000..=2100).contains(&year) {
            return Err(FieldError::new(
                Field::Year,
                Reason::OutOfRange {
                    min: 2000,
                    max: 2100,
                },
            )
            .into());
        }
        let mut errors = Vec::new();
        let mut targets = Vec::new();
        for (key, value) in goals {
            match TargetKey::parse(key).and_then(|k| Ok((k, Goal::parse(k, value)?))) {
                Ok((key, goal)) => targets.push(Target {
                    year,
                    district: district.clone(),
                    key,
                    goal,
                    set_by: coordinator.member.clone(),
                    set_at: self.clock.now_ms(),
                }),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        if targets.is_empty() {
            return Err(FieldError::new(Field::Target, Reason::Required).into());
        }
        let doc_id = DocId::Targets {
            team: self.device.team.clone(),
        };
        let mut w = self.begin()?;
        for target in &targets {
            let slot = ledger::TargetSlot {
                year,
                district: target.district.clone(),
                key: target.key,
            };
            w.change(&doc_id, "set target", &[slot.to_string()], |tx| {
                ledger::put_target(tx, target)
            })?;
        }
        w.commit()?;
        Ok(targets)
    }

    /// Every decision about a visit, oldest first.
    pub fn history(&self, visit: VisitId) -> Result<Vec<Decision>> {
        self.visit(visit)?;
        review::history(&self.conn, &self.path, visit)
    }

    /// Every decision about a school, oldest first.
    pub fn school_history(&self, school: SchoolId) -> Result<Vec<Decision>> {
        self.school(school)?;
        review::school_history(&self.conn, &self.path, school)
    }

    /// Where a visit stands in review (verified, flagged with the note, merged).
    pub fn visit_review(&self, visit: VisitId) -> Result<VisitReview> {
        let current = self.visit(visit)?;
        review::review_of(&self.conn, &self.path, &current)
    }

    /// The visit as the figures count it (with what merges into it took).
    pub fn effective_visit(&self, visit: VisitId) -> Result<Visit> {
        let current = self.visit(visit)?;
        review::effective(&self.conn, &self.path, current)
    }

    /// Suspected duplicate pairs among the visits the filter covers, best first.
    pub fn duplicates(&self, filter: &ReportFilter) -> Result<Vec<DuplicatePair>> {
        crate::duplicates::find(&self.conn, &self.path, filter)
    }

    /// What waits for a coordinator: duplicates, conflicts, pending schools, fixed visits
    /// and unverified ones older than the `review_after_days` setting.
    pub fn review_queue(&self, today: NaiveDate) -> Result<ReviewQueue> {
        let days = self.settings()?.review_after_days;
        crate::queue::queue(&self.conn, &self.path, today, days)
    }

    /// The targets in force with their progress.
    pub fn targets(
        &self,
        year: Option<i32>,
        district: Option<&District>,
    ) -> Result<Vec<TargetProgress>> {
        crate::targets::progress(&self.conn, &self.path, year, district)
    }

    /// Writes the work ledger or the courses to `file`, through a temporary file beside it,
    /// so a failed export leaves no half file. Returns the rows.
    pub fn export(
        &self,
        what: Export,
        file: &Path,
        filter: &ReportFilter,
        offset: chrono::FixedOffset,
    ) -> Result<u64> {
        export(&self.conn, &self.path, what, file, filter, offset)
    }

    /// [`Store::export`], calling `progress` with the rows written so far.
    pub fn export_with_progress(
        &self,
        what: Export,
        file: &Path,
        filter: &ReportFilter,
        offset: chrono::FixedOffset,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        export_with_progress(&self.conn, &self.path, what, file, filter, offset, progress)
    }

    fn live_visit(&self, id: VisitId) -> Result<Visit> {
        let visit = self.visit(id)?;
        if visit.deleted {
            return Err(Error::VisitDeleted(id));
        }
        Ok(visit)
    }

    /// The visit `id` counts as: itself, or the visit its merges lead to.
    fn kept_visit(&self, id: VisitId) -> Result<VisitId> {
        let mut current = id;
        for _ in 0..64 {
            match review::merged_into(&self.conn, &self.path, current)? {
                Some(next) if next != id => current = next,
                _ => break,
            }
        }
        Ok(current)
    }

    fn write_one(&mut self, district: District, decision: Decision) -> Result<Decision> {
        let mut decided = self.write_decisions(vec![(district, decision)], |_| Ok(()))?;
        Ok(decided.remove(0))
    }

    /// Writes decisions (each into its district's review document of the year) and `also`
    /// in one transaction.
    fn write_decisions(
        &mut self,
        planned: Vec<(District, Decision)>,
        also: impl FnOnce(&mut Writer<'_>) -> Result<()>,
    ) -> Result<Vec<Decision>> {
        let mut w = self.begin()?;
        also(&mut w)?;
        for (district, decision) in &planned {
            let doc_id = DocId::review(district, decision.at);
            w.change(
                &doc_id,
                "decide",
                std::slice::from_ref(&decision.id),
                |tx| ledger::insert_decision(tx, decision),
            )?;
        }
        w.commit()?;
        Ok(planned.into_iter().map(|(_, d)| d).collect())
    }
}

/// What a coordinator exports: the work ledger (CSV or XLSX) or the courses (XLSX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    LedgerCsv,
    LedgerXlsx,
    CoursesXlsx,
}

/// Writes the work ledger or the courses over `conn` (a device store or the bureau's) to
/// `file`, through a temporary file renamed into place.
pub fn export(
    conn: &rusqlite::Connection,
    path: &Path,
    what: Export,
    file: &Path,
    filter: &ReportFilter,
    offset: chrono::FixedOffset,
) -> Result<u64> {
    export_with_progress(conn, path, what, file, filter, offset, &mut |_| {})
}

/// [`export`], calling `progress` with the ledger rows written so far.
pub fn export_with_progress(
    conn: &rusqlite::Connection,
    path: &Path,
    what: Export,
    file: &Path,
    filter: &ReportFilter,
    offset: chrono::FixedOffset,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let io = |source: std::io::Error| Error::Io {
        path: file.to_path_buf(),
        source,
    };
    let name = file.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let partial = file.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let written = match what {
        Export::LedgerCsv => std::fs::File::create(&partial)
            .map_err(io)
            .and_then(|out| crate::export::write_csv(conn, path, filter, out, progress)),
        Export::LedgerXlsx => {
            crate::export::write_xlsx(conn, path, filter, &partial, offset, progress)
        }
        Export::CoursesXlsx => crate::export::write_courses_xlsx(conn, path, filter, &partial),
    };
    match written.and_then(|rows| std::fs::rename(&partial, file).map(|_| rows).map_err(io)) {
        Ok(rows) => Ok(rows),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn in_region(coordinator: &Enrollment, district: &District) -> Result<()> {
    if coordinator.districts.iter().any(|d| d == district.as_str()) {
        Ok(())
    } else {
        Err(Error::OutsideRegion {
            district: district.to_string(),
        })
    }
}

/// A decision's note: optional unless `required`, at most 500 characters.
fn checked_note(note: &str, required: bool) -> Result<String> {
    Ok(fieldlog_domain::rules::text(
        Field::Note,
        note,
        500,
        required,
    )?)
}
