//! Fieldlog's domain: the records volunteers and caravan crews keep, and the rules their input
//! must meet. No I/O happens here, so the same code runs on devices, the bureau and in the
//! browser (it builds for `wasm32-unknown-unknown`).
//!
//! - [`kinds`]: closed vocabularies (activity kinds, rural/urban, school levels…).
//! - [`ids`]: record ids (UUIDv7, minted by core) and named ids (teams, districts).
//! - [`school`], [`visit`], [`team`], [`photo`]: the records, each with an `…Input` that
//!   validates into its checked form.
//! - [`error`]: [`FieldError`] names the field and the reason, with stable keys and messages
//!   in Chinese and English.
//! - [`report`]: the published figures; [`review`]: coordinators' decisions and targets.
//! - [`sync`]: the device ↔ bureau protocol.
//!
//! ```
//! use fieldlog_domain::{Field, Lang, SchoolId, VisitInput, visit::Context};
//! let school = SchoolId(uuid::Uuid::nil());
//! let find = |name: &str| (name == "南山小学").then_some(school);
//! let ctx = Context {
//!     today: "2026-05-20".parse().unwrap(),
//!     find_school: &find,
//!     find_course: &|_| None,
//! };
//! let input: VisitInput = serde_json::from_str(
//!     r#"{"school": "南山小学", "date": "2026-05-20", "activities": ["lecture"],
//!         "audience": {"students": 40, "teachers": -1}}"#,
//! ).unwrap();
//! let errors = input.validate(&ctx).unwrap_err();
//! assert_eq!(errors.fields().collect::<Vec<_>>(), [Field::Teachers]);
//! assert_eq!(errors.message(Lang::ZhCn), "教师人数：应在 0 到 100000 之间");
//! ```

pub mod course;
pub mod dashboard;
pub mod error;
pub mod ids;
#[macro_use]
pub mod kinds;
pub mod photo;
pub mod report;
pub mod review;
pub mod rules;
pub mod school;
pub mod sync;
pub mod team;
pub mod visit;

pub use course::{
    Course, CourseFields, CourseInput, CourseRef, CourseSummary, EnrolledMember, Pairing,
    PairingFields, PairingInput, Session, Student, StudentInput,
};
pub use dashboard::{
    Dashboard, DistrictCount, Figure, FigureVisit, FigureVisits, MonthCount, RegistryRow,
    SimilarSchool,
};
pub use error::{Field, FieldError, Lang, Reason, ValidationErrors};
pub use ids::{CourseId, DeviceId, District, PairingId, SchoolId, StudentId, TeamId, VisitId};
pub use kinds::{
    ActivityKind, Area, Gender, GradeBand, Role, SchoolLevel, SchoolStatus, TeamKind, VisitStatus,
};
pub use report::Report;
pub use review::{
    AudienceRule, Decision, DecisionKind, DuplicatePair, DuplicateReason, Goal, QueuedVisit,
    ReviewState, Target, TargetKey, TargetProgress, VisitReview,
};
pub use school::{School, SchoolFields, SchoolInput};
pub use visit::{Audience, Cohort, Donations, Visit, VisitFields, VisitInput};
