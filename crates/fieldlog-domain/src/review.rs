//! Coordinators' decisions, review states and targets.
//!
//! A decision is a record of its own, written by a coordinator's device and synced like a
//! visit. Decisions never edit what a person entered: a merge is a link, a verification a
//! mark. The latest decision about a thing (by time, then id) is the one in force; the
//! earlier ones stay in the history.

use crate::error::{Field, FieldError, Lang, Reason};
use crate::ids::{SchoolId, VisitId};
use serde::{Deserialize, Serialize};

vocabulary!(
    /// What a coordinator decided.
    DecisionKind, Field::Decision, {
    Verify => ("verify", "核实", "verified"),
    Flag => ("flag", "退回修改", "needs fix"),
    Merge => ("merge", "合并重复", "merged as duplicate"),
    Unmerge => ("unmerge", "撤销合并", "merge undone"),
    Distinct => ("distinct", "确认不重复", "not the same event"),
    Resolve => ("resolve", "解决冲突", "conflict resolved"),
    SchoolApprove => ("school_approve", "批准学校", "school approved"),
    SchoolMerge => ("school_merge", "合并学校", "school merged"),
    SchoolSet => ("school_set", "修改学校", "school corrected"),
});

vocabulary!(
    /// Whose audience a merged visit keeps.
    AudienceRule, Field::Audience, {
    Keep => ("keep", "保留", "keep"),
    Other => ("other", "采用另一条", "other"),
    Sum => ("sum", "相加", "sum"),
});

vocabulary!(
    /// Where a visit stands in review.
    ReviewState, Field::Status, {
    Unreviewed => ("unreviewed", "待审核", "not reviewed"),
    Verified => ("verified", "已核实", "verified"),
    Flagged => ("flagged", "待修改", "needs fix"),
    Fixed => ("fixed", "已修改待审核", "fixed, awaiting review"),
});

vocabulary!(
    /// What a target measures.
    TargetKey, Field::Target, {
    Lectures => ("lectures", "讲座场次", "lectures"),
    Audience => ("audience", "受众人次", "audience"),
    Schools => ("schools", "覆盖学校", "schools reached"),
    RuralLectureShare => ("rural_lecture_share", "乡村学校讲座占比", "rural share of lectures"),
    DistrictsCovered => ("districts_covered", "覆盖区县", "districts covered"),
    TeachersTrained => ("teachers_trained", "培训教师", "teachers trained"),
    Books => ("books", "赠书", "books donated"),
    Courses => ("courses", "系列课程", "series courses"),
    PairingRate => ("pairing_rate", "志愿者结对率", "volunteers paired"),
    Pairings => ("pairings", "结对数", "pairings"),
});

vocabulary!(
    /// Why two visits look like the same event.
    DuplicateReason, Field::Visit, {
    SameSchool => ("same_school", "同一学校", "same school"),
    CloseSchoolName => ("close_school_name", "学校名称相近", "school names alike"),
    SameDay => ("same_day", "同一天", "same day"),
    NextDay => ("within_a_day", "相差一天", "a day apart"),
    SameActivities => ("activities", "活动形式相同", "same activities"),
    SimilarTopic => ("topic", "主题相近", "similar topic"),
    CloseAudience => ("audience", "人数相差不到两成", "audience within 20 %"),
    DifferentAuthors => ("different_authors", "不同录入人", "different authors"),
    Identical => ("identical", "内容完全相同", "identical content"),
});

/// Two visits that may be one event, best candidates first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub a: VisitId,
    pub b: VisitId,
    /// 0 to 1.
    pub score: f64,
    pub reasons: Vec<DuplicateReason>,
}

/// One coordinator decision, as stored and synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// UUIDv7: decisions sort by it after their time.
    pub id: String,
    pub kind: DecisionKind,
    /// The visit decided about (for a merge: the one that stops counting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<VisitId>,
    /// A merge's kept visit; the other visit of a "distinct" pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<VisitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<SchoolId>,
    /// A school merge's registered school.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<SchoolId>,
    /// A merge's audience rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceRule>,
    /// Fields a merge's kept visit takes from the other (field keys), or the one field a
    /// resolve settled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// What a resolve or a school decision set, as text (`area=rural; name=…`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The member behind the coordinator device, and the device.
    pub member: String,
    pub device: String,
    /// Milliseconds since the Unix epoch, from the deciding device's clock.
    pub at: i64,
}

impl Decision {
    /// Decisions in force order: by time, then by id.
    pub fn order_key(&self) -> (i64, &str) {
        (self.at, self.id.as_str())
    }

    /// One line for a history: what was decided, in the user's language.
    pub fn describe(&self, lang: Lang) -> String {
        let mut out = self.kind.label(lang).to_string();
        let sep = match lang {
            Lang::ZhCn => "：",
            Lang::En => ": ",
        };
        let mut parts = Vec::new();
        if let Some(other) = self.other {
            parts.push(match (self.kind, lang) {
                (DecisionKind::Merge, Lang::ZhCn) => format!("并入 {other}"),
                (DecisionKind::Merge, Lang::En) => format!("into {other}"),
                (_, Lang::ZhCn) => format!("与 {other}"),
                (_, Lang::En) => format!("with {other}"),
            });
        }
        if let Some(rule) = self.audience {
            parts.push(format!(
                "{} {}",
                Field::Audience.label(lang),
                rule.label(lang)
            ));
        }
        if !self.fields.is_empty() {
            let names: Vec<&str> = self.fields.iter().map(|f| f.label(lang)).collect();
            parts.push(names.join(", "));
        }
        if let Some(into) = self.into {
            parts.push(match lang {
                Lang::ZhCn => format!("并入 {into}"),
                Lang::En => format!("into {into}"),
            });
        }
        if !self.value.is_empty() {
            parts.push(self.value.clone());
        }
        if !parts.is_empty() {
            out.push_str(sep);
            out.push_str(&parts.join(match lang {
                Lang::ZhCn => "；",
                Lang::En => "; ",
            }));
        }
        out
    }
}

/// A target's goal: a number (a share is a fraction, 0.2 for 20 %), or "every district".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    Number(f64),
    All,
}

impl Goal {
    /// Parses a goal for `key`: `all` only for districts covered; a share between 0 and 1
    /// (or a percentage such as `20%`); otherwise a whole number.
    pub fn parse(key: TargetKey, given: &str) -> Result<Goal, FieldError> {
        let given = given.trim();
        let bad = || {
            FieldError::new(
                Field::Target,
                Reason::NotANumber {
                    given: format!("{}={given}", key.key()),
                },
            )
        };
        if given.eq_ignore_ascii_case("all") || given == "全部" {
            return match key {
                TargetKey::DistrictsCovered => Ok(Goal::All),
                _ => Err(bad()),
            };
        }
        let (number, percent) = match given.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (given, false),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        if !value.is_finite() || value < 0.0 {
            return Err(bad());
        }
        match key {
            TargetKey::RuralLectureShare | TargetKey::PairingRate => {
                let share = if percent { value / 100.0 } else { value };
                if share > 1.0 {
                    return Err(FieldError::new(
                        Field::Target,
                        Reason::OutOfRange { min: 0, max: 1 },
                    ));
                }
                Ok(Goal::Number(share))
            }
            _ if percent || value.fract() != 0.0 || value > 1e12 => Err(bad()),
            _ => Ok(Goal::Number(value)),
        }
    }

    pub fn to_text(self) -> String {
        match self {
            Goal::All => "all".into(),
            Goal::Number(n) => n.to_string(),
        }
    }
}

/// One target in force, as set for a year and optionally a district.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub year: i32,
    pub district: Option<crate::ids::District>,
    pub key: TargetKey,
    pub goal: Goal,
    pub set_by: String,
    pub set_at: i64,
}

/// A target with where things stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetProgress {
    pub year: i32,
    pub district: Option<crate::ids::District>,
    pub key: TargetKey,
    pub goal: Goal,
    /// The current value: a count, or for a share the fraction.
    pub current: f64,
    /// For a share (and for coverage): what is counted, over what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<u64>,
    pub met: bool,
    /// For coverage: the districts with no counted visit yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_districts: Vec<crate::ids::District>,
}

/// A visit's review as a coordinator and its volunteer see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VisitReview {
    pub state: Option<ReviewState>,
    /// The coordinator's note of the flag in force.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flag_note: String,
    /// The visit this one was merged into, if it is a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<VisitId>,
}

/// A visit waiting for a coordinator, with what a list needs to show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedVisit {
    pub id: VisitId,
    pub date: chrono::NaiveDate,
    pub school: String,
    pub team: String,
    pub created_by: String,
    /// The note of the flag the volunteer answered (for fixed visits).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The fields a merge may take from the duplicate into the kept visit.
pub const TAKEABLE: [Field; 7] = [
    Field::Date,
    Field::Activities,
    Field::Topic,
    Field::Presenters,
    Field::Notes,
    Field::Books,
    Field::Kits,
];
