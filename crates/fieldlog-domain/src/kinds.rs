//! Closed vocabularies: each has stable snake_case keys, Chinese and English labels, and a parser
//! that also accepts the Chinese label (so a CSV column may say `乡村` or `rural`).

use crate::error::{Field, FieldError, Lang, Reason};
use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $field:expr, { $($variant:ident => ($key:literal, $zh:literal, $en:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn key(self) -> &'static str {
                match self { $($name::$variant => $key),+ }
            }

            pub fn label(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(($name::$variant, Lang::ZhCn) => $zh, ($name::$variant, Lang::En) => $en,)+
                }
            }

            /// Accepts the key, the Chinese label or the English label, ignoring case and spaces.
            pub fn parse(given: &str) -> Result<Self, FieldError> {
                let wanted = given.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| {
                        v.key().eq_ignore_ascii_case(wanted)
                            || v.label(Lang::ZhCn) == wanted
                            || v.label(Lang::En).eq_ignore_ascii_case(wanted)
                    })
                    .ok_or_else(|| FieldError::new($field, Reason::UnknownValue {
                        given: wanted.to_string(),
                        expected: Self::ALL.iter().map(|v| v.key().to_string()).collect(),
                    }))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.key())
            }
        }
    };
}

vocabulary!(
    /// What happened at a visit. A visit may combine several.
    ActivityKind, Field::Activities, {
    Lecture => ("lecture", "讲座", "lecture"),
    ExperimentShow => ("experiment_show", "实验秀", "experiment show"),
    ClassSession => ("class_session", "科学课", "class session"),
    TeacherTraining => ("teacher_training", "教师培训", "teacher training"),
    MobileMuseum => ("mobile_museum", "流动科技馆", "mobile science museum"),
    Exhibition => ("exhibition", "科普展览", "exhibition"),
    HandsOn => ("hands_on", "动手实践", "hands-on workshop"),
});

vocabulary!(
    /// Rural (乡村) or urban (城区), as the registry holds it.
    Area, Field::Area, {
    Rural => ("rural", "乡村", "rural"),
    Urban => ("urban", "城区", "urban"),
});

vocabulary!(
    /// The stage of schooling a school serves.
    SchoolLevel, Field::Level, {
    Kindergarten => ("kindergarten", "幼儿园", "kindergarten"),
    Primary => ("primary", "小学", "primary"),
    Junior => ("junior", "初中", "junior secondary"),
    Senior => ("senior", "高中", "senior secondary"),
    NineYear => ("nine_year", "九年一贯制", "nine-year school"),
    Complete => ("complete", "完全中学", "complete secondary"),
    Vocational => ("vocational", "职业学校", "vocational"),
    Teaching => ("teaching_point", "教学点", "teaching point"),
});

vocabulary!(
    /// Whether the registry vouches for a school or it was entered in the field.
    SchoolStatus, Field::Status, {
    Registered => ("registered", "已登记", "registered"),
    Pending => ("pending", "待审核", "pending"),
});

vocabulary!(
    /// Where a visit record stands in review.
    VisitStatus, Field::Status, {
    Recorded => ("recorded", "已记录", "recorded"),
    Verified => ("verified", "已核实", "verified"),
});

vocabulary!(
    /// Grade bands for the optional audience breakdown.
    GradeBand, Field::Breakdown, {
    Preschool => ("preschool", "学前", "preschool"),
    Grades1To3 => ("grades_1_3", "一至三年级", "grades 1–3"),
    Grades4To6 => ("grades_4_6", "四至六年级", "grades 4–6"),
    Junior => ("junior", "初中", "junior secondary"),
    Senior => ("senior", "高中", "senior secondary"),
});

vocabulary!(
    Gender, Field::Breakdown, {
    Female => ("female", "女", "female"),
    Male => ("male", "男", "male"),
});

vocabulary!(
    /// A school-based volunteer team or a caravan crew on the road.
    TeamKind, Field::Team, {
    Volunteer => ("volunteer", "志愿者团队", "volunteer team"),
    Caravan => ("caravan", "科普大篷车", "science caravan"),
});

vocabulary!(
    Role, Field::Team, {
    Volunteer => ("volunteer", "科技辅导员", "volunteer tutor"),
    Coordinator => ("coordinator", "协调员", "coordinator"),
});
