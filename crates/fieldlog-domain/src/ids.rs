//! Identifiers. Record ids are UUIDv7 (time-ordered); core mints them, the domain only carries them.

use crate::error::{Field, FieldError, Reason};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map($name)
            }
        }
    };
}

uuid_id!(
    /// A visit, minted on the device that first recorded it.
    VisitId
);
uuid_id!(
    /// A school in a district registry, or entered in the field.
    SchoolId
);
uuid_id!(
    /// One installation of the app or CLI.
    DeviceId
);
uuid_id!(
    /// A series course (系列课程) a team teaches at one school.
    CourseId
);
uuid_id!(
    /// A student on a course's roster.
    StudentId
);
uuid_id!(
    /// A volunteer's pairing with a school's science teacher (结对).
    PairingId
);

macro_rules! name_id {
    ($(#[$meta:meta])* $name:ident, $field:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Trimmed, 1 to 64 characters, no `/` and no control characters
            /// (it becomes part of a document id).
            pub fn parse(given: &str) -> Result<Self, FieldError> {
                let value = crate::rules::text($field, given, 64, true)?;
                if let Some(c) = value.chars().find(|c| *c == '/' || c.is_control()) {
                    return Err(FieldError::new(
                        $field,
                        Reason::ForbiddenCharacter { character: c.to_string() },
                    ));
                }
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(value: String) -> Result<Self, FieldError> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_id!(
    /// A team, by its short name (e.g. `caravan-1` or `南山志愿队`).
    TeamId,
    Field::Team
);
name_id!(
    /// A district (区县), by name. Each district has its own registry document.
    District,
    Field::District
);
