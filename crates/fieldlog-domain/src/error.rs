//! Validation errors: which field, and why, with a stable key and a message in the user's language.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The languages Fieldlog speaks. Chinese first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// Picks a language from a locale tag such as `zh_CN.UTF-8`, `zh-Hans` or `en_US`.
    /// Anything that is not Chinese gets English.
    pub fn from_locale(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("zh") {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }
}

/// A field that input can be wrong in. `key()` is stable: the UI and scripts may rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Field {
    School,
    Date,
    Activities,
    Topic,
    Presenters,
    Notes,
    Students,
    Teachers,
    Others,
    Breakdown,
    Books,
    Kits,
    Status,
    DuplicateOf,
    SchoolName,
    District,
    Area,
    Level,
    Enrollment,
    Team,
    DeviceName,
    Caption,
    FieldName,
    Audience,
    Decision,
    Target,
    Year,
    Visit,
    Note,
    Course,
    Attendance,
    Title,
    Theme,
    Sessions,
    CourseStart,
    CourseEnd,
    Student,
    Grade,
    Gender,
    Volunteer,
    TeacherName,
    Since,
    Until,
    Pairing,
}

impl Field {
    pub const ALL: [Field; 44] = [
        Field::School,
        Field::Date,
        Field::Activities,
        Field::Topic,
        Field::Presenters,
        Field::Notes,
        Field::Students,
        Field::Teachers,
        Field::Others,
        Field::Breakdown,
        Field::Books,
        Field::Kits,
        Field::Status,
        Field::DuplicateOf,
        Field::SchoolName,
        Field::District,
        Field::Area,
        Field::Level,
        Field::Enrollment,
        Field::Team,
        Field::DeviceName,
        Field::Caption,
        Field::FieldName,
        Field::Audience,
        Field::Decision,
        Field::Target,
        Field::Year,
        Field::Visit,
        Field::Note,
        Field::Course,
        Field::Attendance,
        Field::Title,
        Field::Theme,
        Field::Sessions,
        Field::CourseStart,
        Field::CourseEnd,
        Field::Student,
        Field::Grade,
        Field::Gender,
        Field::Volunteer,
        Field::TeacherName,
        Field::Since,
        Field::Until,
        Field::Pairing,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Field::School => "school",
            Field::Date => "date",
            Field::Activities => "activities",
            Field::Topic => "topic",
            Field::Presenters => "presenters",
            Field::Notes => "notes",
            Field::Students => "audience.students",
            Field::Teachers => "audience.teachers",
            Field::Others => "audience.others",
            Field::Breakdown => "audience.breakdown",
            Field::Books => "donations.books",
            Field::Kits => "donations.kits",
            Field::Status => "status",
            Field::DuplicateOf => "duplicate_of",
            Field::SchoolName => "school.name",
            Field::District => "school.district",
            Field::Area => "school.area",
            Field::Level => "school.level",
            Field::Enrollment => "school.enrollment",
            Field::Team => "team",
            Field::DeviceName => "device_name",
            Field::Caption => "photo.caption",
            Field::FieldName => "field",
            Field::Audience => "audience",
            Field::Decision => "decision",
            Field::Target => "target",
            Field::Year => "year",
            Field::Visit => "visit",
            Field::Note => "note",
            Field::Course => "course",
            Field::Attendance => "attendance",
            Field::Title => "course.title",
            Field::Theme => "course.theme",
            Field::Sessions => "course.sessions",
            Field::CourseStart => "course.start",
            Field::CourseEnd => "course.end",
            Field::Student => "student",
            Field::Grade => "student.grade",
            Field::Gender => "student.gender",
            Field::Volunteer => "pairing.volunteer",
            Field::TeacherName => "pairing.teacher",
            Field::Since => "pairing.since",
            Field::Until => "pairing.until",
            Field::Pairing => "pairing",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            Field::School => ("学校", "school"),
            Field::Date => ("日期", "date"),
            Field::Activities => ("活动类型", "activities"),
            Field::Topic => ("主题", "topic"),
            Field::Presenters => ("主讲人", "presenters"),
            Field::Notes => ("备注", "notes"),
            Field::Students => ("学生人数", "students"),
            Field::Teachers => ("教师人数", "teachers"),
            Field::Others => ("其他人数", "others"),
            Field::Breakdown => ("年级性别分布", "grade and gender breakdown"),
            Field::Books => ("捐赠图书", "books donated"),
            Field::Kits => ("捐赠器材", "kits donated"),
            Field::Status => ("状态", "status"),
            Field::DuplicateOf => ("重复记录", "duplicate of"),
            Field::SchoolName => ("学校名称", "school name"),
            Field::District => ("区县", "district"),
            Field::Area => ("城乡类别", "area"),
            Field::Level => ("学段", "school level"),
            Field::Enrollment => ("在校人数", "enrollment"),
            Field::Team => ("团队", "team"),
            Field::DeviceName => ("设备名称", "device name"),
            Field::Caption => ("照片说明", "caption"),
            Field::FieldName => ("字段名", "field name"),
            Field::Audience => ("受众人数", "audience"),
            Field::Decision => ("审核决定", "decision"),
            Field::Target => ("目标", "target"),
            Field::Year => ("年度", "year"),
            Field::Visit => ("走访记录", "visit"),
            Field::Note => ("说明", "note"),
            Field::Course => ("课程", "course"),
            Field::Attendance => ("出勤", "attendance"),
            Field::Title => ("课程名称", "course title"),
            Field::Theme => ("课程主题", "course theme"),
            Field::Sessions => ("计划课时", "planned sessions"),
            Field::CourseStart => ("开课日期", "start date"),
            Field::CourseEnd => ("结课日期", "end date"),
            Field::Student => ("学生", "student"),
            Field::Grade => ("年级", "grade"),
            Field::Gender => ("性别", "gender"),
            Field::Volunteer => ("志愿者", "volunteer"),
            Field::TeacherName => ("结对教师", "paired teacher"),
            Field::Since => ("结对开始", "paired since"),
            Field::Until => ("结对结束", "paired until"),
            Field::Pairing => ("结对", "pairing"),
        };
        match lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }
}

impl From<Field> for &'static str {
    fn from(field: Field) -> Self {
        field.key()
    }
}

impl TryFrom<String> for Field {
    type Error = String;
    fn try_from(key: String) -> Result<Self, String> {
        Field::ALL
            .into_iter()
            .find(|f| f.key() == key)
            .ok_or_else(|| format!("unknown field `{key}`"))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    Required,
    UnknownSchool {
        given: String,
    },
    InvalidDate {
        given: String,
    },
    TooFarInFuture {
        latest: String,
    },
    TooEarly {
        earliest: String,
    },
    OutOfRange {
        min: i64,
        max: i64,
    },
    NotANumber {
        given: String,
    },
    TooLong {
        max: usize,
    },
    UnknownValue {
        given: String,
        expected: Vec<String>,
    },
    BreakdownExceedsStudents {
        breakdown: i64,
        students: i64,
    },
    UnknownField {
        given: String,
    },
    ForbiddenCharacter {
        character: String,
    },
    UnknownCourse {
        given: String,
    },
    CourseAtOtherSchool,
    NotOnRoster {
        given: String,
    },
    AlreadyOnRoster {
        given: String,
    },
    AttendanceMismatch {
        present: i64,
        typed: i64,
    },
    UnknownMember {
        given: String,
    },
}

impl Reason {
    /// The stable message key, e.g. `validation.out_of_range`.
    pub fn key(&self) -> &'static str {
        match self {
            Reason::Required => "validation.required",
            Reason::UnknownSchool { .. } => "validation.unknown_school",
            Reason::InvalidDate { .. } => "validation.invalid_date",
            Reason::TooFarInFuture { .. } => "validation.too_far_in_future",
            Reason::TooEarly { .. } => "validation.too_early",
            Reason::OutOfRange { .. } => "validation.out_of_range",
            Reason::NotANumber { .. } => "validation.not_a_number",
            Reason::TooLong { .. } => "validation.too_long",
            Reason::UnknownValue { .. } => "validation.unknown_value",
            Reason::BreakdownExceedsStudents { .. } => "validation.breakdown_exceeds_students",
            Reason::UnknownField { .. } => "validation.unknown_field",
            Reason::ForbiddenCharacter { .. } => "validation.forbidden_character",
            Reason::UnknownCourse { .. } => "validation.unknown_course",
            Reason::CourseAtOtherSchool => "validation.course_at_other_school",
            Reason::NotOnRoster { .. } => "validation.not_on_roster",
            Reason::AlreadyOnRoster { .. } => "validation.already_on_roster",
            Reason::AttendanceMismatch { .. } => "validation.attendance_mismatch",
            Reason::UnknownMember { .. } => "validation.unknown_member",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Reason::Required, Lang::ZhCn) => "必填".into(),
            (Reason::Required, Lang::En) => "is required".into(),
            (Reason::UnknownSchool { given }, Lang::ZhCn) => {
                format!("找不到学校“{given}”，请先在学校名录中添加")
            }
            (Reason::UnknownSchool { given }, Lang::En) => {
                format!("no school matches \"{given}\"; add it to the registry first")
            }
            (Reason::InvalidDate { given }, Lang::ZhCn) => {
                format!("“{given}”不是有效日期，格式为 YYYY-MM-DD")
            }
            (Reason::InvalidDate { given }, Lang::En) => {
                format!("\"{given}\" is not a valid date (YYYY-MM-DD)")
            }
            (Reason::TooFarInFuture { latest }, Lang::ZhCn) => {
                format!("不能晚于 {latest}")
            }
            (Reason::TooFarInFuture { latest }, Lang::En) => {
                format!("cannot be later than {latest}")
            }
            (Reason::TooEarly { earliest }, Lang::ZhCn) => format!("不能早于 {earliest}"),
            (Reason::TooEarly { earliest }, Lang::En) => {
                format!("cannot be earlier than {earliest}")
            }
            (Reason::OutOfRange { min, max }, Lang::ZhCn) => {
                format!("应在 {min} 到 {max} 之间")
            }
            (Reason::OutOfRange { min, max }, Lang::En) => {
                format!("must be between {min} and {max}")
            }
            (Reason::NotANumber { given }, Lang::ZhCn) => format!("“{given}”不是整数"),
            (Reason::NotANumber { given }, Lang::En) => {
                format!("\"{given}\" is not a whole number")
            }
            (Reason::TooLong { max }, Lang::ZhCn) => format!("不能超过 {max} 个字"),
            (Reason::TooLong { max }, Lang::En) => format!("must be at most {max} characters"),
            (Reason::UnknownValue { given, expected }, Lang::ZhCn) => {
                format!("不认识“{given}”，可选：{}", expected.join("、"))
            }
            (Reason::UnknownValue { given, expected }, Lang::En) => {
                format!(
                    "unknown value \"{given}\"; expected one of {}",
                    expected.join(", ")
                )
            }
            (
                Reason::BreakdownExceedsStudents {
                    breakdown,
                    students,
                },
                Lang::ZhCn,
            ) => format!("分布合计 {breakdown} 人，超过学生人数 {students}"),
            (
                Reason::BreakdownExceedsStudents {
                    breakdown,
                    students,
                },
                Lang::En,
            ) => format!("adds up to {breakdown}, more than the {students} students"),
            (Reason::UnknownField { given }, Lang::ZhCn) => format!("没有名为“{given}”的字段"),
            (Reason::UnknownField { given }, Lang::En) => format!("there is no field \"{given}\""),
            (Reason::ForbiddenCharacter { character }, Lang::ZhCn) => {
                format!("不能包含字符“{character}”")
            }
            (Reason::ForbiddenCharacter { character }, Lang::En) => {
                format!("must not contain {character:?}")
            }
            (Reason::UnknownCourse { given }, Lang::ZhCn) => {
                format!("找不到课程“{given}”，请用 fieldlog course list 查看")
            }
            (Reason::UnknownCourse { given }, Lang::En) => {
                format!("no course matches \"{given}\"; see fieldlog course list")
            }
            (Reason::CourseAtOtherSchool, Lang::ZhCn) => "与课程所在学校不一致".into(),
            (Reason::CourseAtOtherSchool, Lang::En) => {
                "is not the school the course is taught at".into()
            }
            (Reason::NotOnRoster { given }, Lang::ZhCn) => format!("“{given}”不在本课程名单上"),
            (Reason::NotOnRoster { given }, Lang::En) => {
                format!("\"{given}\" is not on the course's roster")
            }
            (Reason::AlreadyOnRoster { given }, Lang::ZhCn) => format!("“{given}”已在名单上"),
            (Reason::AlreadyOnRoster { given }, Lang::En) => {
                format!("\"{given}\" is already on the roster")
            }
            (Reason::AttendanceMismatch { present, typed }, Lang::ZhCn) => {
                format!("填写 {typed} 人，但点名到课 {present} 人；有点名时以到课人数为准")
            }
            (Reason::AttendanceMismatch { present, typed }, Lang::En) => format!(
                "{typed} typed, but {present} marked present; with attendance the count is those present"
            ),
            (Reason::UnknownMember { given }, Lang::ZhCn) => {
                format!("“{given}”不是本队在总站登记的成员（fieldlog members 可从总站更新名单）")
            }
            (Reason::UnknownMember { given }, Lang::En) => format!(
                "\"{given}\" is not an enrolled member of the team (fieldlog members updates the list from the bureau)"
            ),
        }
    }
}

/// One refused value: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {}", reason.message(Lang::En))]
pub struct FieldError {
    pub field: Field,
    #[serde(flatten)]
    pub reason: Reason,
}

impl FieldError {
    pub fn new(field: Field, reason: Reason) -> Self {
        FieldError { field, reason }
    }

    /// "学生人数：应在 0 到 100000 之间" / "students: must be between 0 and 100000"
    pub fn message(&self, lang: Lang) -> String {
        let sep = match lang {
            Lang::ZhCn => "：",
            Lang::En => ": ",
        };
        format!(
            "{}{sep}{}",
            self.field.label(lang),
            self.reason.message(lang)
        )
    }
}

/// Every field that was refused in one piece of input, so a form can mark them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.message(Lang::En))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn message(&self, lang: Lang) -> String {
        let sep = match lang {
            Lang::ZhCn => "；",
            Lang::En => "; ",
        };
        self.0
            .iter()
            .map(|e| e.message(lang))
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Gathers the failures among a form's checked fields.
    pub fn collect(errors: impl IntoIterator<Item = Option<FieldError>>) -> Self {
        ValidationErrors(errors.into_iter().flatten().collect())
    }

    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.0.iter().map(|e| e.field)
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        ValidationErrors(vec![error])
    }
}
