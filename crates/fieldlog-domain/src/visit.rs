//! Visits: one stop at one school on one day, with what happened, who came and what was given.

use crate::course::CourseRef;
use crate::error::{Field, FieldError, Reason, ValidationErrors};
use crate::ids::{CourseId, SchoolId, StudentId, TeamId, VisitId};
use crate::kinds::{ActivityKind, Gender, GradeBand, VisitStatus};
use crate::rules;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A cell of the optional audience breakdown: a grade band and a gender, keyed `grades_1_3.female`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cohort {
    pub band: GradeBand,
    pub gender: Gender,
}

impl Cohort {
    pub fn all() -> impl Iterator<Item = Cohort> {
        GradeBand::ALL.iter().flat_map(|&band| {
            Gender::ALL
                .iter()
                .map(move |&gender| Cohort { band, gender })
        })
    }

    pub fn parse(given: &str) -> Result<Cohort, FieldError> {
        let unknown = || {
            FieldError::new(
                Field::Breakdown,
                Reason::UnknownValue {
                    given: given.to_string(),
                    expected: Cohort::all().map(|c| c.to_string()).collect(),
                },
            )
        };
        let (band, gender) = given.trim().split_once('.').ok_or_else(unknown)?;
        Ok(Cohort {
            band: GradeBand::parse(band).map_err(|_| unknown())?,
            gender: Gender::parse(gender).map_err(|_| unknown())?,
        })
    }
}

impl fmt::Display for Cohort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.band.key(), self.gender.key())
    }
}

impl TryFrom<String> for Cohort {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Cohort::parse(&value)
    }
}

impl From<Cohort> for String {
    fn from(cohort: Cohort) -> String {
        cohort.to_string()
    }
}

/// Who came. Each count is an Automerge counter in the ledger, so tallies from two devices add up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub students: u32,
    pub teachers: u32,
    pub others: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: BTreeMap<Cohort, u32>,
}

impl Audience {
    /// 受众人数: everyone counted at the visit.
    pub fn total(&self) -> u64 {
        u64::from(self.students) + u64::from(self.teachers) + u64::from(self.others)
    }
}

/// What was given to the school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Donations {
    pub books: u32,
    pub kits: u32,
}

/// The audience as typed. Counts are wide so that a negative or huge number is a clear
/// field error rather than a parse failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceInput {
    #[serde(default)]
    pub students: i64,
    #[serde(default)]
    pub teachers: i64,
    #[serde(default)]
    pub others: i64,
    #[serde(default)]
    pub breakdown: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DonationsInput {
    #[serde(default)]
    pub books: i64,
    #[serde(default)]
    pub kits: i64,
}

/// A visit as typed in the editor, the CLI's flags or its `--json-in` object.
/// `school` is a school id or a school's exact name (a course's when empty); a missing `date`
/// means today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// Empty when a course gives it.
    #[serde(default)]
    pub school: String,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub activities: Vec<String>,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub presenters: String,
    #[serde(default)]
    pub audience: AudienceInput,
    #[serde(default)]
    pub donations: DonationsInput,
    #[serde(default)]
    pub notes: String,
    /// A course id: the visit is one of its sessions. An empty school takes the course's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub course: String,
    /// Who was present, by roster name or student id. With attendance, the student count
    /// is the number present (0 typed means "take it from the attendance").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendance: Vec<String>,
}

/// What validation needs from outside: today's date and ways to find schools and courses.
pub struct Context<'a> {
    pub today: NaiveDate,
    /// Finds a school by id or exact name.
    pub find_school: &'a dyn Fn(&str) -> Option<SchoolId>,
    /// Finds a course of the team by id.
    pub find_course: &'a dyn Fn(&str) -> Option<CourseRef>,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("today", &self.today)
            .finish_non_exhaustive()
    }
}

/// The validated content of a visit: everything a person edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitFields {
    pub school: SchoolId,
    pub date: NaiveDate,
    pub activities: BTreeSet<ActivityKind>,
    pub topic: String,
    pub presenters: String,
    pub notes: String,
    pub audience: Audience,
    pub donations: Donations,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course: Option<CourseId>,
    /// Students marked present (ids on the course's roster).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub attendance: BTreeSet<StudentId>,
}

impl VisitFields {
    /// The fields a person entered differently in two visits (what a duplicate pair shows
    /// highlighted).
    pub fn differing(&self, other: &VisitFields) -> Vec<Field> {
        let (a, b) = (self, other);
        [
            (Field::School, a.school == b.school),
            (Field::Date, a.date == b.date),
            (Field::Activities, a.activities == b.activities),
            (Field::Topic, a.topic == b.topic),
            (Field::Presenters, a.presenters == b.presenters),
            (Field::Students, a.audience.students == b.audience.students),
            (Field::Teachers, a.audience.teachers == b.audience.teachers),
            (Field::Others, a.audience.others == b.audience.others),
            (Field::Books, a.donations.books == b.donations.books),
            (Field::Kits, a.donations.kits == b.donations.kits),
            (Field::Notes, a.notes == b.notes),
        ]
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(field, _)| field)
        .collect()
    }
}

impl VisitInput {
    /// Checks every field and reports all failures at once.
    pub fn validate(&self, ctx: &Context<'_>) -> Result<VisitFields, ValidationErrors> {
        let course = match self.course.trim() {
            "" => Ok(None),
            given => (ctx.find_course)(given).map(Some).ok_or_else(|| {
                FieldError::new(
                    Field::Course,
                    Reason::UnknownCourse {
                        given: given.to_string(),
                    },
                )
            }),
        };
        let course_ref = course.as_ref().ok().cloned().flatten();
        let school = match (self.school.trim(), &course_ref) {
            ("", Some(course)) => Ok(course.school),
            ("", None) => Err(FieldError::new(Field::School, Reason::Required)),
            (given, _) => (ctx.find_school)(given).ok_or_else(|| {
                FieldError::new(
                    Field::School,
                    Reason::UnknownSchool {
                        given: given.to_string(),
                    },
                )
            }),
        }
        .and_then(|school| match &course_ref {
            Some(course) if course.school != school => {
                Err(FieldError::new(Field::School, Reason::CourseAtOtherSchool))
            }
            _ => Ok(school),
        });
        let attendance = self.attendance(course_ref.as_ref());
        let mut audience_input = self.audience.clone();
        if let Ok(present) = &attendance
            && !present.is_empty()
        {
            let present = present.len() as i64;
            if audience_input.students == 0 {
                audience_input.students = present;
            }
        }
        let mismatch = match &attendance {
            Ok(present)
                if !present.is_empty() && audience_input.students != present.len() as i64 =>
            {
                Some(FieldError::new(
                    Field::Students,
                    Reason::AttendanceMismatch {
                        present: present.len() as i64,
                        typed: audience_input.students,
                    },
                ))
            }
            _ => None,
        };
        let topic_given = match (&course_ref, self.topic.trim()) {
            (Some(course), "") => course.title.as_str(),
            _ => self.topic.as_str(),
        };
        let date = match &self.date {
            None => Ok(ctx.today),
            Some(given) => rules::date(given, ctx.today),
        };
        let activities = self.activities();
        let topic = rules::text(Field::Topic, topic_given, rules::MAX_LINE_CHARS, false);
        let presenters = rules::text(
            Field::Presenters,
            &self.presenters,
            rules::MAX_LINE_CHARS,
            false,
        );
        let notes = rules::text(Field::Notes, &self.notes, rules::MAX_NOTES_CHARS, false);
        let audience = audience_input.validate();
        let books = rules::count(Field::Books, self.donations.books);
        let kits = rules::count(Field::Kits, self.donations.kits);
        match (
            school, date, activities, topic, presenters, notes, audience, books, kits, course,
            attendance, mismatch,
        ) {
            (
                Ok(school),
                Ok(date),
                Ok(activities),
                Ok(topic),
                Ok(presenters),
                Ok(notes),
                Ok(audience),
                Ok(books),
                Ok(kits),
                Ok(course),
                Ok(attendance),
                None,
            ) => Ok(VisitFields {
                school,
                date,
                activities,
                topic,
                presenters,
                notes,
                audience,
                donations: Donations { books, kits },
                course: course.map(|c| c.id),
                attendance,
            }),
            (
                school,
                date,
                activities,
                topic,
                presenters,
                notes,
                audience,
                books,
                kits,
                course,
                attendance,
                mismatch,
            ) => {
                let mut errors = ValidationErrors::collect([
                    course.err(),
                    school.err(),
                    date.err(),
                    activities.err(),
                    topic.err(),
                    presenters.err(),
                    notes.err(),
                ]);
                errors
                    .0
                    .extend(audience.err().into_iter().flat_map(|e| e.0));
                errors.0.extend(
                    [mismatch, attendance.err(), books.err(), kits.err()]
                        .into_iter()
                        .flatten(),
                );
                Err(errors)
            }
        }
    }

    /// The students marked present, each found on the course's roster by id or name.
    fn attendance(&self, course: Option<&CourseRef>) -> Result<BTreeSet<StudentId>, FieldError> {
        let names: Vec<&str> = self
            .attendance
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(BTreeSet::new());
        }
        let Some(course) = course else {
            return Err(FieldError::new(Field::Course, Reason::Required));
        };
        names
            .into_iter()
            .map(|given| {
                course
                    .roster
                    .iter()
                    .find(|s| s.id.to_string() == given || (!s.removed && s.name == given))
                    .map(|s| s.id)
                    .ok_or_else(|| {
                        FieldError::new(
                            Field::Attendance,
                            Reason::NotOnRoster {
                                given: given.to_string(),
                            },
                        )
                    })
            })
            .collect()
    }

    fn activities(&self) -> Result<BTreeSet<ActivityKind>, FieldError> {
        if self.activities.iter().all(|a| a.trim().is_empty()) {
            return Err(FieldError::new(Field::Activities, Reason::Required));
        }
        self.activities
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| ActivityKind::parse(a))
            .collect()
    }

    /// Sets one field from text, as `visit edit --set key=value` does. Counts must be whole
    /// numbers; activities are comma-separated. Range checks happen in `validate`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        if let Some(cohort) = key.strip_prefix("audience.breakdown.") {
            let cohort = Cohort::parse(cohort)?;
            let count = rules::parse_count(Field::Breakdown, value)?;
            self.audience.breakdown.insert(cohort.to_string(), count);
            return Ok(());
        }
        let field = Field::try_from(key.trim().to_string()).map_err(|_| unknown_field(key))?;
        let text = value.to_string();
        match field {
            Field::School => self.school = text,
            Field::Date => self.date = Some(text),
            Field::Activities => self.activities = split_list(value),
            Field::Topic => self.topic = text,
            Field::Presenters => self.presenters = text,
            Field::Notes => self.notes = text,
            Field::Course => self.course = text,
            Field::Attendance => self.attendance = split_list(value),
            Field::Students => self.audience.students = rules::parse_count(field, value)?,
            Field::Teachers => self.audience.teachers = rules::parse_count(field, value)?,
            Field::Others => self.audience.others = rules::parse_count(field, value)?,
            Field::Books => self.donations.books = rules::parse_count(field, value)?,
            Field::Kits => self.donations.kits = rules::parse_count(field, value)?,
            _ => return Err(unknown_field(key)),
        }
        Ok(())
    }
}

/// Splits `lecture,实验秀` (also on `，` and `、`) into its items.
pub fn split_list(value: &str) -> Vec<String> {
    value.split([',', '，', '、']).map(str::to_string).collect()
}

fn unknown_field(key: &str) -> FieldError {
    FieldError::new(
        Field::FieldName,
        Reason::UnknownField {
            given: key.trim().to_string(),
        },
    )
}

impl AudienceInput {
    fn validate(&self) -> Result<Audience, ValidationErrors> {
        let students = rules::count(Field::Students, self.students);
        let teachers = rules::count(Field::Teachers, self.teachers);
        let others = rules::count(Field::Others, self.others);
        let breakdown = self
            .breakdown
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(cohort, &n)| Ok((Cohort::parse(cohort)?, rules::count(Field::Breakdown, n)?)))
            .collect::<Result<BTreeMap<_, _>, FieldError>>()
            .and_then(|breakdown| {
                let sum: i64 = breakdown.values().map(|&n| i64::from(n)).sum();
                match students {
                    Ok(students) if sum > i64::from(students) => Err(FieldError::new(
                        Field::Breakdown,
                        Reason::BreakdownExceedsStudents {
                            breakdown: sum,
                            students: i64::from(students),
                        },
                    )),
                    _ => Ok(breakdown),
                }
            });
        match (students, teachers, others, breakdown) {
            (Ok(students), Ok(teachers), Ok(others), Ok(breakdown)) => Ok(Audience {
                students,
                teachers,
                others,
                breakdown,
            }),
            (students, teachers, others, breakdown) => Err(ValidationErrors::collect([
                students.err(),
                teachers.err(),
                others.err(),
                breakdown.err(),
            ])),
        }
    }
}

impl From<&VisitFields> for VisitInput {
    fn from(fields: &VisitFields) -> Self {
        VisitInput {
            school: fields.school.to_string(),
            date: Some(fields.date.to_string()),
            activities: fields
                .activities
                .iter()
                .map(|a| a.key().to_string())
                .collect(),
            topic: fields.topic.clone(),
            presenters: fields.presenters.clone(),
            notes: fields.notes.clone(),
            audience: AudienceInput {
                students: fields.audience.students.into(),
                teachers: fields.audience.teachers.into(),
                others: fields.audience.others.into(),
                breakdown: fields
                    .audience
                    .breakdown
                    .iter()
                    .map(|(c, &n)| (c.to_string(), n.into()))
                    .collect(),
            },
            donations: DonationsInput {
                books: fields.donations.books.into(),
                kits: fields.donations.kits.into(),
            },
            course: fields.course.map(|c| c.to_string()).unwrap_or_default(),
            attendance: fields.attendance.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A visit as stored: its content plus where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub id: VisitId,
    pub team: TeamId,
    #[serde(flatten)]
    pub fields: VisitFields,
    pub status: VisitStatus,
    pub deleted: bool,
    pub duplicate_of: Option<VisitId>,
    /// Milliseconds since the Unix epoch, from the recording device's clock.
    pub created_at: i64,
    /// The device that first recorded the visit.
    pub created_by: String,
    /// When the visit was last edited (milliseconds; 0 if never).
    #[serde(default)]
    pub edited_at: i64,
    /// Photos, by time taken (then by hash).
    #[serde(default)]
    pub photos: Vec<crate::photo::PhotoRef>,
}

impl Visit {
    /// 受众人数: students + teachers + others.
    pub fn audience_total(&self) -> u64 {
        self.fields.audience.total()
    }
}
