//! Series courses (系列课程) a team teaches at one school, their rosters, and volunteers'
//! pairings with schools' science teachers (结对帮扶).
//!
//! A visit may belong to a course; its session number is derived (the course's counted
//! sessions ordered by date), never stored, so two devices logging sessions offline cannot
//! both hold "session 3". Two sessions on one date are a clash, shown on both.

use crate::error::{Field, FieldError, Reason, ValidationErrors};
use crate::ids::{CourseId, PairingId, SchoolId, StudentId, TeamId, VisitId};
use crate::kinds::Gender;
use crate::rules;
use crate::{Lang, Role};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// The most sessions a course may plan.
pub const MAX_SESSIONS: i64 = 40;
/// A course counts as completed, a series course of the targets, once this many of its
/// sessions were held in the period.
pub const SERIES_MIN_SESSIONS: u64 = 12;
/// Course dates may be planned this far ahead.
const PLAN_AHEAD_DAYS: u64 = 3 * 366;
const MAX_PERSON_CHARS: usize = 50;
const MAX_GRADE_CHARS: usize = 16;

/// A course as typed: `school` is a school id or exact name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseInput {
    pub school: String,
    pub title: String,
    #[serde(default)]
    pub theme: String,
    pub sessions: i64,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseFields {
    pub school: SchoolId,
    pub title: String,
    #[serde(default)]
    pub theme: String,
    /// Sessions planned, 1 to [`MAX_SESSIONS`].
    pub sessions: u32,
    #[serde(default)]
    pub start: Option<NaiveDate>,
    #[serde(default)]
    pub end: Option<NaiveDate>,
}

impl CourseInput {
    /// Checks every field and reports all failures at once.
    pub fn validate(
        &self,
        today: NaiveDate,
        find_school: &dyn Fn(&str) -> Option<SchoolId>,
    ) -> Result<CourseFields, ValidationErrors> {
        let school = find(Field::School, &self.school, find_school, |given| {
            Reason::UnknownSchool { given }
        });
        let title = rules::text(Field::Title, &self.title, rules::MAX_LINE_CHARS, true);
        let theme = rules::text(Field::Theme, &self.theme, rules::MAX_LINE_CHARS, false);
        let sessions = match self.sessions {
            n if (1..=MAX_SESSIONS).contains(&n) => Ok(n as u32),
            _ => Err(FieldError::new(
                Field::Sessions,
                Reason::OutOfRange {
                    min: 1,
                    max: MAX_SESSIONS,
                },
            )),
        };
        let latest = today
            .checked_add_days(Days::new(PLAN_AHEAD_DAYS))
            .unwrap_or(today);
        let date = |field, given: &Option<String>| match given.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(given) => rules::date_until(field, given, latest).map(Some),
        };
        let start = date(Field::CourseStart, &self.start);
        let end = date(Field::CourseEnd, &self.end).and_then(|end| match (&start, end) {
            (Ok(Some(start)), Some(end)) if end < *start => Err(FieldError::new(
                Field::CourseEnd,
                Reason::TooEarly {
                    earliest: start.to_string(),
                },
            )),
            (_, end) => Ok(end),
        });
        match (school, title, theme, sessions, start, end) {
            (Ok(school), Ok(title), Ok(theme), Ok(sessions), Ok(start), Ok(end)) => {
                Ok(CourseFields {
                    school,
                    title,
                    theme,
                    sessions,
                    start,
                    end,
                })
            }
            (school, title, theme, sessions, start, end) => Err(ValidationErrors::collect([
                school.err(),
                title.err(),
                theme.err(),
                sessions.err(),
                start.err(),
                end.err(),
            ])),
        }
    }
}

/// A course as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    pub id: CourseId,
    pub team: TeamId,
    #[serde(flatten)]
    pub fields: CourseFields,
    pub created_at: i64,
    pub created_by: String,
}

/// What visit validation needs to know of a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseRef {
    pub id: CourseId,
    pub school: SchoolId,
    pub title: String,
    /// Everyone ever on its roster: a name marks a student present only while on it, an
    /// id also after (a session's stored attendance stays valid).
    pub roster: Vec<Student>,
}

/// One held session of a course: a counted visit that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub visit: VisitId,
    /// 1-based, by date (then by when it was recorded).
    pub number: u32,
    pub date: NaiveDate,
    /// The student headcount (those present, when attendance was taken).
    pub students: u32,
    /// How many were marked present; `None` when no attendance was taken.
    #[serde(default)]
    pub present: Option<u32>,
    /// Another session of the course is on the same date.
    #[serde(default)]
    pub clash: bool,
}

/// A course with what was held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseSummary {
    pub course: Course,
    pub school_name: String,
    pub held: u32,
    pub planned: u32,
    /// Planned sessions not held yet.
    pub missing: u32,
    pub sessions: Vec<Session>,
}

/// "第 3/16 课时" / "session 3 of 16".
pub fn session_label(number: u32, planned: u32, lang: Lang) -> String {
    match lang {
        Lang::ZhCn => format!("第 {number}/{planned} 课时"),
        Lang::En => format!("session {number} of {planned}"),
    }
}

// ---- rosters ----

/// A student as typed for a roster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentInput {
    pub name: String,
    #[serde(default)]
    pub grade: String,
    #[serde(default)]
    pub gender: String,
}

/// A student on a roster. Rosters hold minors' names: they stay with the team and the
/// bureau, and leave only as counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    pub id: StudentId,
    pub name: String,
    #[serde(default)]
    pub grade: String,
    #[serde(default)]
    pub gender: Option<Gender>,
    /// Taken off the roster (earlier attendance keeps counting).
    #[serde(default)]
    pub removed: bool,
}

impl StudentInput {
    pub fn validate(&self) -> Result<(String, String, Option<Gender>), ValidationErrors> {
        let name = rules::text(Field::Student, &self.name, MAX_PERSON_CHARS, true);
        let grade = rules::text(Field::Grade, &self.grade, MAX_GRADE_CHARS, false);
        let gender = match self.gender.trim() {
            "" => Ok(None),
            given => Gender::parse(given)
                .map(Some)
                .map_err(|e| FieldError::new(Field::Gender, e.reason)),
        };
        match (name, grade, gender) {
            (Ok(name), Ok(grade), Ok(gender)) => Ok((name, grade, gender)),
            (name, grade, gender) => Err(ValidationErrors::collect([
                name.err(),
                grade.err(),
                gender.err(),
            ])),
        }
    }
}

// ---- pairings ----

/// A pairing as typed: `volunteer` is an enrolled member's name, `school` an id or exact
/// name; a missing `since` means today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingInput {
    pub volunteer: String,
    pub teacher: String,
    pub school: String,
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingFields {
    pub volunteer: String,
    pub teacher: String,
    pub school: SchoolId,
    pub since: NaiveDate,
}

impl PairingInput {
    pub fn validate(
        &self,
        today: NaiveDate,
        find_school: &dyn Fn(&str) -> Option<SchoolId>,
        is_member: &dyn Fn(&str) -> bool,
    ) -> Result<PairingFields, ValidationErrors> {
        let volunteer = rules::text(Field::Volunteer, &self.volunteer, MAX_PERSON_CHARS, true)
            .and_then(|name| {
                if is_member(&name) {
                    Ok(name)
                } else {
                    Err(FieldError::new(
                        Field::Volunteer,
                        Reason::UnknownMember { given: name },
                    ))
                }
            });
        let teacher = rules::text(Field::TeacherName, &self.teacher, MAX_PERSON_CHARS, true);
        let school = find(Field::School, &self.school, find_school, |given| {
            Reason::UnknownSchool { given }
        });
        let since = match &self.since {
            None => Ok(today),
            Some(given) => rules::date_until(Field::Since, given, today),
        };
        match (volunteer, teacher, school, since) {
            (Ok(volunteer), Ok(teacher), Ok(school), Ok(since)) => Ok(PairingFields {
                volunteer,
                teacher,
                school,
                since,
            }),
            (volunteer, teacher, school, since) => Err(ValidationErrors::collect([
                volunteer.err(),
                teacher.err(),
                school.err(),
                since.err(),
            ])),
        }
    }
}

/// A volunteer's pairing with a teacher of a school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub id: PairingId,
    pub team: TeamId,
    #[serde(flatten)]
    pub fields: PairingFields,
    /// The day it ended; it is active before that day.
    #[serde(default)]
    pub until: Option<NaiveDate>,
    pub created_at: i64,
    pub created_by: String,
}

impl Pairing {
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.fields.since <= day && self.until.is_none_or(|until| day < until)
    }
}

/// A member of a team as the bureau enrolled them, with the team's districts (the
/// denominator of the pairing rate is the volunteers of a region).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EnrolledMember {
    pub team: TeamId,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub districts: Vec<crate::District>,
}

/// Finds a referenced record, or names the field and why not.
fn find<T>(
    field: Field,
    given: &str,
    lookup: &dyn Fn(&str) -> Option<T>,
    unknown: impl FnOnce(String) -> Reason,
) -> Result<T, FieldError> {
    match given.trim() {
        "" => Err(FieldError::new(field, Reason::Required)),
        given => lookup(given).ok_or_else(|| FieldError::new(field, unknown(given.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        "2026-09-01".parse().unwrap()
    }

    #[test]
    fn a_course_plans_one_to_forty_sessions_and_ends_after_it_starts() {
        let school = SchoolId(uuid::Uuid::nil());
        let find = |name: &str| (name == "南山小学").then_some(school);
        let input = CourseInput {
            school: "南山小学".into(),
            title: "水的旅行".into(),
            sessions: 16,
            start: Some("2026-09-01".into()),
            ..CourseInput::default()
        };
        assert_eq!(input.validate(today(), &find).unwrap().sessions, 16);
        let bad = CourseInput {
            school: "北山小学".into(),
            title: " ".into(),
            sessions: 41,
            start: Some("2026-09-10".into()),
            end: Some("2026-09-01".into()),
            ..CourseInput::default()
        };
        let errors = bad.validate(today(), &find).unwrap_err();
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            [
                Field::School,
                Field::Title,
                Field::Sessions,
                Field::CourseEnd
            ]
        );
        assert_eq!(session_label(3, 16, Lang::ZhCn), "第 3/16 课时");
    }

    #[test]
    fn a_pairing_names_an_enrolled_member_and_ends_on_its_day() {
        let school = SchoolId(uuid::Uuid::nil());
        let find = |_: &str| Some(school);
        let input = PairingInput {
            volunteer: "王老师".into(),
            teacher: "李梅".into(),
            school: "x".into(),
            since: Some("2026-03-01".into()),
        };
        let errors = input.validate(today(), &find, &|_| false).unwrap_err();
        assert_eq!(errors.fields().collect::<Vec<_>>(), [Field::Volunteer]);
        let fields = input.validate(today(), &find, &|_| true).unwrap();
        let pairing = Pairing {
            id: PairingId(uuid::Uuid::nil()),
            team: TeamId::parse("t").unwrap(),
            fields,
            until: Some("2026-06-30".parse().unwrap()),
            created_at: 0,
            created_by: String::new(),
        };
        assert!(pairing.active_on("2026-06-29".parse().unwrap()));
        assert!(!pairing.active_on("2026-06-30".parse().unwrap()));
        assert!(!pairing.active_on("2026-02-28".parse().unwrap()));
    }
}
