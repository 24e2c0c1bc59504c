//! Schools, as district registries hold them and as crews enter them in the field.

use crate::error::{Field, FieldError, Reason, ValidationErrors};
use crate::ids::{District, SchoolId};
use crate::kinds::{Area, SchoolLevel, SchoolStatus};
use crate::rules;
use serde::{Deserialize, Serialize};

/// A school as typed in a form or a CSV row (`name,district,area,level,enrollment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolInput {
    pub name: String,
    pub district: String,
    pub area: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub enrollment: Option<i64>,
}

/// The validated content of a school record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolFields {
    pub name: String,
    pub district: District,
    pub area: Area,
    pub level: Option<SchoolLevel>,
    pub enrollment: Option<u32>,
}

impl SchoolInput {
    /// Name and district are required; area must be rural/urban (乡村/城区); level, if given,
    /// one of the known levels; enrollment, if given, a count.
    pub fn validate(&self) -> Result<SchoolFields, ValidationErrors> {
        let name = rules::text(Field::SchoolName, &self.name, rules::MAX_NAME_CHARS, true);
        let district = District::parse(&self.district);
        let area = if self.area.trim().is_empty() {
            Err(FieldError::new(Field::Area, Reason::Required))
        } else {
            Area::parse(&self.area)
        };
        let level = match self.level.trim() {
            "" => Ok(None),
            given => SchoolLevel::parse(given).map(Some),
        };
        let enrollment = self
            .enrollment
            .map(|n| rules::count(Field::Enrollment, n))
            .transpose();
        match (name, district, area, level, enrollment) {
            (Ok(name), Ok(district), Ok(area), Ok(level), Ok(enrollment)) => Ok(SchoolFields {
                name,
                district,
                area,
                level,
                enrollment,
            }),
            (name, district, area, level, enrollment) => Err(ValidationErrors::collect([
                name.err(),
                district.err(),
                area.err(),
                level.err(),
                enrollment.err(),
            ])),
        }
    }
}

impl From<&SchoolFields> for SchoolInput {
    fn from(fields: &SchoolFields) -> Self {
        SchoolInput {
            name: fields.name.clone(),
            district: fields.district.to_string(),
            area: fields.area.key().to_string(),
            level: fields
                .level
                .map(|l| l.key().to_string())
                .unwrap_or_default(),
            enrollment: fields.enrollment.map(i64::from),
        }
    }
}

/// A school as a device or the bureau knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct School {
    pub id: SchoolId,
    #[serde(flatten)]
    pub fields: SchoolFields,
    pub status: SchoolStatus,
    /// A pending school a coordinator found to be this registered one: its visits count
    /// for that school, and it leaves the pending list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<SchoolId>,
}
