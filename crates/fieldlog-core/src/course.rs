//! Series courses, their rosters, and volunteers' pairings with teachers.
//!
//! A course is a record in its team's `courses/<team>` document; a pairing one in
//! `pairings/<team>`; a course's roster is its own document `roster/<team>/<course>`, which
//! only the team and the region's coordinators receive (the bureau's scope is the team's),
//! which never goes into a bundle, and whose names never reach an export. A session is a
//! visit naming the course; its attendance is a map of roster ids in the visit (no names),
//! and its student count is the number present. Session numbers are derived from the counted
//! sessions in date order ([`sessions`]), never stored.

use crate::error::{DbContext, Error, Result};
use crate::ledger::{self, DocId};
use crate::projection::{self, FROM_VISITS, query_records};
use crate::store::{ReportFilter, Store, VisitSave};
use automerge::Automerge;
use chrono::NaiveDate;
use fieldlog_domain::course::SERIES_MIN_SESSIONS;
use fieldlog_domain::{
    Area, Course, CourseId, CourseInput, CourseRef, CourseSummary, District, EnrolledMember, Field,
    FieldError, Pairing, PairingId, PairingInput, Reason, Role, Session, Student, StudentId,
    StudentInput, TeamId, Visit, VisitId,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use uuid::Uuid;

/// The query tables of courses, rosters and pairings, and the visits' course column. A
/// migration both stores append. Never edit.
pub const TABLES: &str = r#"CREATE TABLE courses (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    team TEXT NOT NULL,
    school_id TEXT NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE roster (
    id TEXT PRIMARY KEY,
    course_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    removed INTEGER NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX roster_by_course ON roster (course_id);
CREATE TABLE pairings (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    team TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    school_id TEXT NOT NULL,
    since TEXT NOT NULL,
    until TEXT,
    record TEXT NOT NULL
) WITHOUT ROWID;
ALTER TABLE visits ADD COLUMN course TEXT;
CREATE INDEX visits_by_course ON visits (course, date);
"#;

/// The device's copy of the members the bureau enrolled (its team's, or a coordinator's
/// region's); at the bureau, its enrolled devices' members, rewritten before each read.
/// Never edit.
pub const MEMBERS_TABLE: &str = r#"CREATE TABLE team_members (
    team TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    districts TEXT NOT NULL, -- JSON array of the team's districts
    PRIMARY KEY (team, name)
) WITHOUT ROWID;
"#;

// ---- projection ----

/// Deletes a record's row from `table` and reads the record again from the document
/// (`None` when it is gone or malformed).
fn reread<T>(
    conn: &Connection,
    path: &Path,
    table: &str,
    doc: &Automerge,
    id: &str,
    read: fn(&Automerge, &str, &automerge::ObjId) -> Option<T>,
) -> Result<Option<T>> {
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))
        .db(path)?
        .execute([id])
        .db(path)?;
    Ok(ledger::record_obj(doc, id).and_then(|obj| read(doc, id, &obj)))
}

pub(crate) fn project_course(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    let Some(course) = reread(conn, path, "courses", doc, id, ledger::read_course)? else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO courses (id, doc_id, team, school_id, record) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db(path)?
    .execute(params![
        id,
        doc_id.to_string(),
        course.team.as_str(),
        course.fields.school.to_string(),
        serde_json::to_string(&course).unwrap_or_default(),
    ])
    .db(path)?;
    Ok(())
}

pub(crate) fn project_pairing(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    let Some(p) = reread(conn, path, "pairings", doc, id, ledger::read_pairing)? else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO pairings (id, doc_id, team, volunteer, school_id, since, until, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db(path)?
    .execute(params![
        id,
        doc_id.to_string(),
        p.team.as_str(),
        p.fields.volunteer,
        p.fields.school.to_string(),
        p.fields.since.to_string(),
        p.until.map(|d| d.to_string()),
        serde_json::to_string(&p).unwrap_or_default(),
    ])
    .db(path)?;
    Ok(())
}

pub(crate) fn project_student(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    id: &str,
) -> Result<()> {
    let student = reread(conn, path, "roster", doc, id, ledger::read_student)?;
    let (DocId::Roster { course, .. }, Some(student)) = (doc_id, student) else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO roster (id, course_id, doc_id, removed, record) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db(path)?
    .execute(params![
        id,
        course.to_string(),
        doc_id.to_string(),
        student.removed,
        serde_json::to_string(&student).unwrap_or_default(),
    ])
    .db(path)?;
    Ok(())
}

// ---- reading ----

/// A course's counted sessions (live visits naming it, not merged into another), numbered
/// in date order (then by when each was recorded, then id, so every device agrees).
pub fn sessions(conn: &Connection, path: &Path, course: CourseId) -> Result<Vec<Session>> {
    let visits: Vec<Visit> = query_records(
        conn,
        path,
        "SELECT record FROM visits
         WHERE course = ?1 AND deleted = 0 AND duplicate_of IS NULL
         ORDER BY date, created_at, id",
        [course.to_string()],
    )?;
    let mut per_day: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for v in &visits {
        *per_day.entry(v.fields.date).or_default() += 1;
    }
    Ok(visits
        .iter()
        .enumerate()
        .map(|(i, v)| Session {
            visit: v.id,
            number: i as u32 + 1,
            date: v.fields.date,
            students: v.fields.audience.students,
            present: (!v.fields.attendance.is_empty())
                .then(|| u32::try_from(v.fields.attendance.len()).unwrap_or(u32::MAX)),
            clash: per_day.get(&v.fields.date).is_some_and(|n| *n > 1),
        })
        .collect())
}

/// How many counted sessions of a course each student was marked present at.
pub fn attendance_counts(
    conn: &Connection,
    path: &Path,
    course: CourseId,
) -> Result<BTreeMap<StudentId, u32>> {
    let visits: Vec<Visit> = query_records(
        conn,
        path,
        "SELECT record FROM visits WHERE course = ?1 AND deleted = 0 AND duplicate_of IS NULL",
        [course.to_string()],
    )?;
    let mut counts = BTreeMap::new();
    for student in visits.iter().flat_map(|v| &v.fields.attendance) {
        *counts.entry(*student).or_default() += 1;
    }
    Ok(counts)
}

/// Every course held here with its sessions, by school then title.
pub fn summaries(conn: &Connection, path: &Path) -> Result<Vec<CourseSummary>> {
    let courses: Vec<Course> = query_records(conn, path, "SELECT record FROM courses", [])?;
    let mut out = courses
        .into_iter()
        .map(|c| summary(conn, path, c))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| {
        (&a.school_name, &a.course.fields.title, a.course.id).cmp(&(
            &b.school_name,
            &b.course.fields.title,
            b.course.id,
        ))
    });
    Ok(out)
}

fn summary(conn: &Connection, path: &Path, course: Course) -> Result<CourseSummary> {
    let sessions = sessions(conn, path, course.id)?;
    let school_name: Option<String> = conn
        .prepare_cached("SELECT name FROM schools WHERE id = ?1")
        .db(path)?
        .query_row([course.fields.school.to_string()], |r| r.get(0))
        .optional()
        .db(path)?;
    let held = sessions.len() as u32;
    let planned = course.fields.sessions;
    Ok(CourseSummary {
        school_name: school_name.unwrap_or_else(|| course.fields.school.to_string()),
        held,
        planned,
        missing: planned.saturating_sub(held),
        sessions,
        course,
    })
}

/// Courses with at least [`SERIES_MIN_SESSIONS`] counted sessions under the filter.
pub fn completed(conn: &Connection, path: &Path, filter: &ReportFilter) -> Result<u64> {
    // `+` keeps SQLite off the duplicate index, so it walks only the course sessions
    // (`visits_by_course`, already grouped) instead of nearly every visit.
    let sql = format!(
        "SELECT count(*) FROM (SELECT v.course {FROM_VISITS}
           AND +v.duplicate_of IS NULL AND v.course IS NOT NULL
         GROUP BY v.course HAVING count(*) >= {SERIES_MIN_SESSIONS})"
    );
    conn.prepare_cached(&sql)
        .db(path)?
        .query_row(projection::filter_params(filter), |r| r.get(0))
        .db(path)
}

/// Pairings, newest first.
pub fn pairings(conn: &Connection, path: &Path) -> Result<Vec<Pairing>> {
    query_records(
        conn,
        path,
        "SELECT record FROM pairings ORDER BY since DESC, id",
        [],
    )
}

/// The members enrolled at the bureau (the device's copy, or the bureau's own view).
pub fn members(conn: &Connection, path: &Path) -> Result<Vec<EnrolledMember>> {
    let mut stmt = conn
        .prepare_cached("SELECT team, name, role, districts FROM team_members ORDER BY team, name")
        .db(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .db(path)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db(path)?;
    Ok(rows
        .into_iter()
        .filter_map(|(team, name, role, districts)| {
            Some(EnrolledMember {
                team: TeamId::parse(&team).ok()?,
                name,
                role: Role::parse(&role).ok()?,
                districts: serde_json::from_str::<Vec<String>>(&districts)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|d| District::parse(d).ok())
                    .collect(),
            })
        })
        .collect())
}

/// Where pairings stand at the end of `year` (or in one district): volunteers of the region
/// (the members enrolled as volunteers, of teams working in the district), those of them
/// with an active pairing to a teacher of a rural school, and active pairings (at schools
/// of the district).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairingFigures {
    pub volunteers: u64,
    pub paired_rural: u64,
    pub active: u64,
}

pub fn pairing_figures(
    conn: &Connection,
    path: &Path,
    year: i32,
    district: Option<&District>,
) -> Result<PairingFigures> {
    let Some(day) = NaiveDate::from_ymd_opt(year, 12, 31) else {
        return Ok(PairingFigures::default());
    };
    let volunteers: BTreeSet<(TeamId, String)> = members(conn, path)?
        .into_iter()
        .filter(|m| m.role == Role::Volunteer)
        .filter(|m| district.is_none_or(|d| m.districts.contains(d)))
        .map(|m| (m.team, m.name))
        .collect();
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.record, s.area, s.district FROM pairings p
             LEFT JOIN schools s0 ON s0.id = p.school_id
             LEFT JOIN schools s ON s.id = coalesce(s0.merged_into, p.school_id)",
        )
        .db(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .db(path)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db(path)?;
    let mut paired = BTreeSet::new();
    let mut active = 0;
    for (record, area, school_district) in rows {
        let Ok(p) = serde_json::from_str::<Pairing>(&record) else {
            continue;
        };
        if !p.active_on(day) {
            continue;
        }
        if district.is_none_or(|d| school_district.as_deref() == Some(d.as_str())) {
            active += 1;
        }
        let key = (p.team.clone(), p.fields.volunteer.clone());
        if area.as_deref() == Some(Area::Rural.key()) && volunteers.contains(&key) {
            paired.insert(key);
        }
    }
    Ok(PairingFigures {
        volunteers: volunteers.len() as u64,
        paired_rural: paired.len() as u64,
        active,
    })
}

// ---- the store's side ----

impl Store {
    /// Adds a course of this device's team.
    pub fn add_course(&mut self, input: &CourseInput, today: NaiveDate) -> Result<Course> {
        let find = |reference: &str| self.find_school(reference).ok().flatten();
        let fields = input.validate(today, &find)?;
        let course = Course {
            id: CourseId(Uuid::now_v7()),
            team: self.device.team.clone(),
            fields,
            created_at: self.clock.now_ms(),
            created_by: self.device.name.clone(),
        };
        let doc_id = DocId::Courses {
            team: course.team.clone(),
        };
        let mut w = self.begin()?;
        w.change(&doc_id, "add course", &[course.id.to_string()], |tx| {
            ledger::put_course(tx, &course)
        })?;
        w.commit()?;
        Ok(course)
    }

    /// Changes a course's fields (its school stays: its sessions were held there). Only what
    /// changed is written, so concurrent edits of other fields merge.
    pub fn edit_course(
        &mut self,
        reference: &str,
        edit: impl FnOnce(&mut CourseInput),
        today: NaiveDate,
    ) -> Result<Course> {
        let course = self.find_course(reference)?;
        let date = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        let mut input = CourseInput {
            school: course.fields.school.to_string(),
            title: course.fields.title.clone(),
            theme: course.fields.theme.clone(),
            sessions: course.fields.sessions.into(),
            start: date(course.fields.start),
            end: date(course.fields.end),
        };
        edit(&mut input);
        input.school = course.fields.school.to_string();
        let find = |reference: &str| self.find_school(reference).ok().flatten();
        let edited = Course {
            fields: input.validate(today, &find)?,
            ..course
        };
        let doc_id = DocId::Courses {
            team: edited.team.clone(),
        };
        let mut w = self.begin()?;
        w.change(&doc_id, "edit course", &[edited.id.to_string()], |tx| {
            ledger::put_course(tx, &edited)
        })?;
        w.commit()?;
        Ok(edited)
    }

    /// Every course this device holds, with its sessions.
    pub fn courses(&self) -> Result<Vec<CourseSummary>> {
        summaries(&self.conn, &self.path)
    }

    /// A course by id (or its exact title, when one course has it), with its sessions.
    pub fn course(&self, reference: &str) -> Result<CourseSummary> {
        let course = self.find_course(reference)?;
        summary(&self.conn, &self.path, course)
    }

    fn find_course(&self, reference: &str) -> Result<Course> {
        let reference = reference.trim();
        let courses: Vec<Course> = query_records(
            &self.conn,
            &self.path,
            "SELECT record FROM courses WHERE id = ?1
             UNION ALL
             SELECT record FROM courses WHERE json_extract(record, '$.title') = ?1",
            [reference],
        )?;
        match courses.as_slice() {
            [one, ..] if one.id.to_string() == reference => Ok(one.clone()),
            [one] => Ok(one.clone()),
            _ => Err(FieldError::new(
                Field::Course,
                Reason::UnknownCourse {
                    given: reference.to_string(),
                },
            )
            .into()),
        }
    }

    /// What visit validation needs of a course: its school, title and current roster.
    pub(crate) fn course_ref(&self, reference: &str) -> Option<CourseRef> {
        let course = self.find_course(reference).ok()?;
        let roster = self.students(course.id).ok()?;
        Some(CourseRef {
            id: course.id,
            school: course.fields.school,
            title: course.fields.title,
            roster,
        })
    }

    /// The session a visit is, with its course's planned sessions.
    pub fn session_of(&self, visit: &Visit) -> Result<Option<(Session, u32)>> {
        let Some(course) = visit.fields.course else {
            return Ok(None);
        };
        let planned = self
            .find_course(&course.to_string())
            .map_or(0, |c| c.fields.sessions);
        Ok(sessions(&self.conn, &self.path, course)?
            .into_iter()
            .find(|s| s.visit == visit.id)
            .map(|s| (s, planned)))
    }

    /// The next session number a new visit of this course would get today.
    pub fn next_session(&self, course: &str) -> Result<(u32, u32)> {
        let course = self.find_course(course)?;
        let held = sessions(&self.conn, &self.path, course.id)?.len() as u32;
        Ok((held + 1, course.fields.sessions))
    }

    // ---- rosters ----

    /// A course's roster, everyone ever on it (removed ones marked). Only the course's team
    /// and coordinators hold it; for anyone else it is refused.
    pub fn roster(&self, course: &str) -> Result<Vec<Student>> {
        let course = self.find_course(course)?;
        self.may_see_roster(&course)?;
        self.students(course.id)
    }

    /// The roster with how many sessions each student attended (for the team's own export).
    pub fn roster_attendance(&self, course: &str) -> Result<Vec<(Student, u32)>> {
        let id = self.find_course(course)?.id;
        let counts = attendance_counts(&self.conn, &self.path, id)?;
        Ok(self
            .roster(course)?
            .into_iter()
            .map(|s| {
                let n = counts.get(&s.id).copied().unwrap_or(0);
                (s, n)
            })
            .collect())
    }

    /// Writes the roster as CSV with a BOM (name, grade, gender, sessions attended), through
    /// a temporary file. Refused outside the course's team and coordinators. Returns the rows.
    pub fn export_roster(&self, course: &str, file: &Path) -> Result<usize> {
        let roster = self.roster_attendance(course)?;
        let io = |source: std::io::Error| Error::Io {
            path: file.to_path_buf(),
            source,
        };
        let mut writer = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
        writer
            .write_record(["姓名", "年级", "性别", "到课次数", "状态"])
            .map_err(|e| io(std::io::Error::other(e)))?;
        for (s, attended) in &roster {
            writer
                .write_record([
                    s.name.as_str(),
                    s.grade.as_str(),
                    s.gender
                        .map_or("", |g| g.label(fieldlog_domain::Lang::ZhCn)),
                    &attended.to_string(),
                    if s.removed { "已移出" } else { "" },
                ])
                .map_err(|e| io(std::io::Error::other(e)))?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let partial = file.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(io)?;
        std::fs::rename(&partial, file).map_err(io)?;
        Ok(roster.len())
    }

    fn students(&self, course: CourseId) -> Result<Vec<Student>> {
        query_records(
            &self.conn,
            &self.path,
            "SELECT record FROM roster WHERE course_id = ?1
             ORDER BY json_extract(record, '$.name'), id",
            [course.to_string()],
        )
    }

    fn may_see_roster(&self, course: &Course) -> Result<()> {
        let coordinator = self
            .enrollment()?
            .is_some_and(|e| e.role == Role::Coordinator);
        if course.team == self.device.team || coordinator {
            Ok(())
        } else {
            Err(Error::NotYourRoster {
                team: course.team.to_string(),
            })
        }
    }

    /// Puts a student on a course's roster. A name already on it is refused.
    pub fn add_student(&mut self, course: &str, input: &StudentInput) -> Result<Student> {
        let course = self.find_course(course)?;
        self.may_see_roster(&course)?;
        let (name, grade, gender) = input.validate()?;
        if self
            .students(course.id)?
            .iter()
            .any(|s| !s.removed && s.name == name)
        {
            return Err(
                FieldError::new(Field::Student, Reason::AlreadyOnRoster { given: name }).into(),
            );
        }
        let student = Student {
            id: StudentId(Uuid::now_v7()),
            name,
            grade,
            gender,
            removed: false,
        };
        let doc_id = DocId::Roster {
            team: course.team.clone(),
            course: course.id,
        };
        let mut w = self.begin()?;
        let now = w.now;
        w.change(&doc_id, "add student", &[student.id.to_string()], |tx| {
            ledger::insert_student(tx, &student, now)
        })?;
        w.commit()?;
        Ok(student)
    }

    /// Takes a student (by name or id) off a roster; their past attendance still counts.
    pub fn remove_student(&mut self, course: &str, who: &str) -> Result<Student> {
        let course = self.find_course(course)?;
        self.may_see_roster(&course)?;
        let who = who.trim();
        let student = self
            .students(course.id)?
            .into_iter()
            .find(|s| !s.removed && (s.name == who || s.id.to_string() == who))
            .ok_or_else(|| {
                FieldError::new(
                    Field::Student,
                    Reason::NotOnRoster {
                        given: who.to_string(),
                    },
                )
            })?;
        let doc_id = DocId::Roster {
            team: course.team.clone(),
            course: course.id,
        };
        let key = student.id.to_string();
        let mut w = self.begin()?;
        w.change(
            &doc_id,
            "remove student",
            std::slice::from_ref(&key),
            |tx| match ledger::record_obj(tx, &key) {
                Some(obj) => ledger::remove_student(tx, &obj),
                None => Err(automerge::AutomergeError::InvalidObjId(key.clone())),
            },
        )?;
        w.commit()?;
        Ok(Student {
            removed: true,
            ..student
        })
    }

    /// Takes attendance for a session: exactly `present` (roster names or ids) were there,
    /// and the student count becomes their number.
    pub fn attend(
        &mut self,
        visit: VisitId,
        present: &[String],
        today: NaiveDate,
    ) -> Result<Visit> {
        let current = self.visit(visit)?;
        let mut input = fieldlog_domain::VisitInput::from(&current.fields);
        if input.course.is_empty() {
            return Err(FieldError::new(Field::Course, Reason::Required).into());
        }
        input.attendance = present.to_vec();
        input.audience.students = 0;
        self.save_visit(
            &VisitSave {
                id: Some(visit),
                input,
                attach: Vec::new(),
                remove: Vec::new(),
            },
            today,
        )
    }

    // ---- pairings ----

    /// Pairs a volunteer (an enrolled member of this device's team) with a school's teacher.
    pub fn add_pairing(&mut self, input: &PairingInput, today: NaiveDate) -> Result<Pairing> {
        let members = members(&self.conn, &self.path)?;
        let team = self.device.team.clone();
        let is_member = |name: &str| members.iter().any(|m| m.team == team && m.name == name);
        let find = |reference: &str| self.find_school(reference).ok().flatten();
        let fields = input.validate(today, &find, &is_member)?;
        let pairing = Pairing {
            id: PairingId(Uuid::now_v7()),
            team: team.clone(),
            fields,
            until: None,
            created_at: self.clock.now_ms(),
            created_by: self.device.name.clone(),
        };
        let doc_id = DocId::Pairings { team };
        let mut w = self.begin()?;
        w.change(&doc_id, "add pairing", &[pairing.id.to_string()], |tx| {
            ledger::insert_pairing(tx, &pairing)
        })?;
        w.commit()?;
        Ok(pairing)
    }

    /// Ends a pairing on a day (not before it began).
    pub fn end_pairing(&mut self, id: PairingId, on: NaiveDate) -> Result<Pairing> {
        let pairing = self
            .pairings()?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(Error::PairingNotFound(id))?;
        if on < pairing.fields.since {
            return Err(FieldError::new(
                Field::Until,
                Reason::TooEarly {
                    earliest: pairing.fields.since.to_string(),
                },
            )
            .into());
        }
        let doc_id = DocId::Pairings {
            team: pairing.team.clone(),
        };
        let key = id.to_string();
        let mut w = self.begin()?;
        w.change(
            &doc_id,
            "end pairing",
            std::slice::from_ref(&key),
            |tx| match ledger::record_obj(tx, &key) {
                Some(obj) => ledger::end_pairing(tx, &obj, on),
                None => Err(automerge::AutomergeError::InvalidObjId(key.clone())),
            },
        )?;
        w.commit()?;
        Ok(Pairing {
            until: Some(on),
            ..pairing
        })
    }

    pub fn pairings(&self) -> Result<Vec<Pairing>> {
        pairings(&self.conn, &self.path)
    }

    /// The members the bureau enrolled, as last fetched (`sync::refresh_members`).
    pub fn members(&self) -> Result<Vec<EnrolledMember>> {
        members(&self.conn, &self.path)
    }

    /// Replaces the copy of the bureau's members.
    pub(crate) fn set_members(&mut self, list: &[EnrolledMember]) -> Result<()> {
        let tx = self.conn.transaction().db(&self.path)?;
        replace_members(&tx, &self.path, list)?;
        tx.commit().db(&self.path)
    }
}

/// Replaces the `team_members` rows with `list` (a device's copy of the bureau's members,
/// or the bureau's own projection of its enrolled devices).
pub fn replace_members(conn: &Connection, path: &Path, list: &[EnrolledMember]) -> Result<()> {
    conn.execute("DELETE FROM team_members", []).db(path)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO team_members (team, name, role, districts)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .db(path)?;
    for m in list {
        let districts: Vec<&str> = m.districts.iter().map(|d| d.as_str()).collect();
        insert
            .execute(params![
                m.team.as_str(),
                m.name,
                m.role.key(),
                serde_json::to_string(&districts).unwrap_or_default()
            ])
            .db(path)?;
    }
    Ok(())
}
