//! The contract between the app shell (`src-tauri`) and the UI (`src-ui`): the names of the
//! commands and events, what each takes and answers, and the one error shape.
//!
//! Both sides serialize these types as JSON through Tauri's IPC, so a field renamed here is
//! renamed on both sides at once. Command arguments are one `args` object per command.
//!
//! ```
//! use fieldlog_app_api::{CommandError, ErrorKind};
//! let error = CommandError::new(ErrorKind::Offline, "cannot reach the bureau");
//! assert_eq!(error.message_key, "error.offline");
//! let json = serde_json::to_string(&error).unwrap();
//! assert!(json.contains(r#""kind":"offline""#));
//! ```

pub mod desk;

use fieldlog_domain::sync::Refusal;
use fieldlog_domain::{
    Area, CourseId, CourseInput, CourseSummary, Decision, EnrolledMember, FieldError, Pairing,
    PairingId, PairingInput, Role, SchoolId, SchoolInput, SchoolStatus, Student, StudentId,
    StudentInput, Visit, VisitId, VisitInput, VisitReview,
};
use serde::{Deserialize, Serialize};

/// Command names, shared so a typo fails to compile instead of failing at run time.
pub mod cmd {
    pub const OVERVIEW: &str = "overview";
    pub const SET_UP_DEVICE: &str = "set_up_device";
    pub const ENROLL: &str = "enroll";
    pub const SEARCH_SCHOOLS: &str = "search_schools";
    pub const ADD_SCHOOL: &str = "add_school";
    pub const STAGE_PHOTO: &str = "stage_photo";
    /// Forgets staged photos: the editor was cancelled or a picked photo removed.
    pub const DISCARD_PHOTOS: &str = "discard_photos";
    pub const SAVE_VISIT: &str = "save_visit";
    pub const LIST_VISITS: &str = "list_visits";
    pub const VISIT_DETAIL: &str = "visit_detail";
    pub const PHOTO_THUMBNAIL: &str = "photo_thumbnail";
    pub const SYNC_NOW: &str = "sync_now";
    /// Series courses (系列课程) this device holds, with their sessions.
    pub const LIST_COURSES: &str = "list_courses";
    /// One course: sessions, its school and, for its team, the roster.
    pub const COURSE_DETAIL: &str = "course_detail";
    pub const ADD_COURSE: &str = "add_course";
    pub const ADD_STUDENT: &str = "add_student";
    pub const REMOVE_STUDENT: &str = "remove_student";
    /// The session number a new visit of a course would get.
    pub const NEXT_SESSION: &str = "next_session";
    pub const LIST_PAIRINGS: &str = "list_pairings";
    pub const ADD_PAIRING: &str = "add_pairing";
    pub const END_PAIRING: &str = "end_pairing";
    /// The members the bureau enrolled: the list held, or fetched again first.
    pub const MEMBERS: &str = "members";
    // The coordinator's desk.
    pub const REVIEW_QUEUE: &str = "review_queue";
    pub const DECIDE: &str = "decide";
    pub const VISIT_HISTORY: &str = "visit_history";
    pub const DASHBOARD: &str = "dashboard";
    pub const FIGURE_VISITS: &str = "figure_visits";
    pub const TARGETS: &str = "targets";
    pub const SET_TARGETS: &str = "set_targets";
    pub const REGISTRY: &str = "registry";
    pub const SIMILAR_SCHOOLS: &str = "similar_schools";
    pub const EXPORT_LEDGER: &str = "export_ledger";
    /// The UI rendered its first screen (for the cold-start benchmark).
    pub const UI_READY: &str = "ui_ready";
}

/// The event carrying [`SyncState`] whenever it changes.
pub const SYNC_EVENT: &str = "sync-state";

/// Where sync stands, as the always-visible status line shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// No bureau configured: records stay on this device.
    NotEnrolled,
    /// The bureau cannot be reached; the next try is automatic.
    Offline { last_sync_at: Option<i64> },
    /// A sync is running: rounds done so far, changes each way, then photo files uploaded
    /// (`photos_total` is 0 until uploads begin).
    Syncing {
        rounds: usize,
        sent: usize,
        received: usize,
        photos_done: usize,
        photos_total: usize,
        photo_bytes_done: u64,
        photo_bytes_total: u64,
    },
    /// The last sync finished at `at` (ms since the Unix epoch); what still waits to go.
    Synced {
        at: i64,
        waiting_changes: usize,
        waiting_photos: usize,
    },
    /// Sync cannot go on by itself: the reason is an error a person must act on.
    NeedsAttention { error: CommandError },
}

/// What the home and settings screens show about this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// `None` until the device is set up (name and team, or enrollment).
    pub device: Option<DeviceInfo>,
    pub enrollment: Option<EnrollmentInfo>,
    pub sync: SyncState,
    pub storage: Storage,
    /// The data directory, for support.
    pub data_dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub team: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentInfo {
    pub url: String,
    pub member: String,
    /// A coordinator's device opens the desk.
    pub role: Role,
    /// A coordinator's region.
    pub districts: Vec<String>,
    pub last_sync_at: Option<i64>,
}

/// Bytes on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    pub database_bytes: u64,
    pub photo_bytes: u64,
}

/// `set_up_device`: a device that works offline before (or without) a bureau.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetUpDevice {
    pub device_name: String,
    pub team: String,
}

/// `enroll`: joins a bureau with a one-time code. Sets the device up first when needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enroll {
    pub url: String,
    pub code: String,
    /// Used only when the device is not set up yet.
    pub device_name: String,
}

/// A school as the picker lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolHit {
    pub id: SchoolId,
    pub name: String,
    pub district: String,
    pub area: Area,
    pub status: SchoolStatus,
    /// Visited recently from this device: listed first.
    pub recent: bool,
}

/// `search_schools`: by name, pinyin initials or full pinyin. An empty query lists the
/// recently visited schools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSchools {
    pub query: String,
}

/// `add_school`: a school entered in the field, pending until a coordinator approves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSchool {
    pub school: SchoolInput,
}

/// What `stage_photo` answers: a token to attach the photo when the visit is saved.
/// The photo's bytes travel as the raw IPC body, with its file name in the `x-file-name`
/// header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedPhoto {
    pub token: String,
}

/// The header carrying a staged photo's file name. The shell reads the format from the
/// photo's content, so it is informational.
pub const FILE_NAME_HEADER: &str = "x-file-name";

/// A staged photo to attach on save, with what the person chose for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPhoto {
    pub token: String,
    pub caption: String,
    pub consent: bool,
}

/// `save_visit`: a new visit (`id` is `None`) or changes to an existing one, with its
/// photos, saved all or nothing: a refused field or caption saves nothing. Only fields that
/// differ from the stored visit are written, so concurrent edits of other fields merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveVisit {
    pub id: Option<VisitId>,
    pub input: VisitInput,
    /// Staged photos to attach.
    pub photos: Vec<NewPhoto>,
    /// Photos the visit shows (their `display_sha256`) to detach.
    #[serde(default)]
    pub remove_photos: Vec<String>,
}

/// `discard_photos`: staged photos that will not be saved. Unknown tokens are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardPhotos {
    pub tokens: Vec<String>,
}

/// `list_visits`: by month (`YYYY-MM`) and school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVisits {
    pub month: Option<String>,
    pub school: Option<SchoolId>,
}

/// Where a visit stands, as its badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    /// Saved here; not yet (fully) at the bureau.
    Draft,
    Synced,
    /// A coordinator verified it.
    Verified,
    /// A field holds concurrent values.
    Conflict,
    /// A coordinator asked for a fix.
    Flagged,
}

impl Badge {
    pub const ALL: [Badge; 5] = [
        Badge::Draft,
        Badge::Synced,
        Badge::Verified,
        Badge::Conflict,
        Badge::Flagged,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Badge::Draft => "draft",
            Badge::Synced => "synced",
            Badge::Verified => "verified",
            Badge::Conflict => "conflict",
            Badge::Flagged => "flagged",
        }
    }
}

/// One row of the visit list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitSummary {
    pub visit: Visit,
    pub school_name: String,
    pub badge: Badge,
}

/// `visit_detail`: a visit with its school and every field holding concurrent values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitDetail {
    pub summary: VisitSummary,
    pub school: Option<SchoolHit>,
    pub conflicts: Vec<FieldConflict>,
    /// Verified, or flagged with the coordinator's note ("需要修改：…") until fixed.
    #[serde(default)]
    pub review: VisitReview,
    /// Every coordinator decision about the visit, oldest first.
    #[serde(default)]
    pub history: Vec<Decision>,
    /// The course the visit is a session of, if any.
    #[serde(default)]
    pub course: Option<VisitCourse>,
}

/// A visit's course as its detail and editor show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitCourse {
    pub id: CourseId,
    /// The course's title (its id when this device does not hold the course).
    pub title: String,
    /// Which session the visit is; `None` when it does not count (merged into another).
    pub session: Option<SessionNumber>,
    /// Another session of the course is on the same date.
    pub clash: bool,
    /// Names of the students marked present, when this device may see the roster.
    pub present: Vec<String>,
}

/// A field with concurrent values: each value and who entered it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub field: fieldlog_domain::Field,
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: String,
    pub author: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// `visit_detail` and `photo_thumbnail` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRef {
    pub id: VisitId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRefArgs {
    pub sha256: String,
}

/// "Session `number` of `planned`" ([`fieldlog_domain::course::session_label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionNumber {
    pub number: u32,
    pub planned: u32,
}

/// `course_detail` and `next_session` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseArgs {
    pub id: CourseId,
}

/// `course_detail`: the course with its sessions, where it is taught and, for its own team
/// and coordinators, the roster (minors' names never reach anyone else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDetail {
    pub summary: CourseSummary,
    pub school: Option<SchoolHit>,
    /// Everyone ever on the roster (removed ones marked); `None` when this device may not
    /// see it.
    pub roster: Option<Vec<RosterEntry>>,
    /// The number a new session would get.
    pub next: SessionNumber,
}

/// A student on a roster with the sessions they were marked present at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub student: Student,
    pub attended: u32,
}

/// `add_course`: a series course of this device's team. Answers its [`CourseSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddCourse {
    pub course: CourseInput,
}

/// `add_student`: puts a student on a course's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddStudent {
    pub course: CourseId,
    pub student: StudentInput,
}

/// `remove_student`: takes a student off a roster (their past attendance still counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveStudent {
    pub course: CourseId,
    pub student: StudentId,
}

/// A pairing (结对帮扶) as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingRow {
    pub pairing: Pairing,
    pub school_name: String,
}

/// `add_pairing`: a volunteer of this team (an enrolled member) paired with a teacher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPairing {
    pub pairing: PairingInput,
}

/// `end_pairing`: the pairing ends on `on` (`YYYY-MM-DD`; today when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndPairing {
    pub id: PairingId,
    #[serde(default)]
    pub on: Option<String>,
}

/// `members` arguments: `refresh` asks the bureau first (this may wait on the network;
/// the list held answers at once without it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersArgs {
    pub refresh: bool,
}

/// The members the bureau enrolled, as `members` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub members: Vec<EnrolledMember>,
    /// Fetched from the bureau just now; `false`: the list held (offline, not enrolled).
    pub refreshed: bool,
}

/// A thumbnail as a `data:` URL, small enough to send whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub data_url: String,
}

/// What kind of failure a command met. The UI shows `error.<kind>` from its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Input refused: `details.fields` names each field and why.
    Invalid,
    NotSetUp,
    NotFound,
    /// The photo is not a readable JPEG, PNG or WebP, or too large.
    BadPhoto,
    /// The picked file could not be read (moved, deleted, or no permission).
    FileUnreadable,
    NotEnrolled,
    TeamMismatch,
    Offline,
    /// The bureau said no (bad or used code, revoked device…).
    Refused,
    BadResponse,
    /// The device's own storage failed.
    Storage,
    /// Kept for another team (a course's roster: its team and coordinators only).
    NotAllowed,
    /// A coordinator's decision that cannot be made (outside the region, a merge into
    /// itself or a cycle, a school no longer pending…): `details.explained` says why.
    Decision,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Invalid,
        ErrorKind::NotSetUp,
        ErrorKind::NotFound,
        ErrorKind::BadPhoto,
        ErrorKind::FileUnreadable,
        ErrorKind::NotEnrolled,
        ErrorKind::TeamMismatch,
        ErrorKind::Offline,
        ErrorKind::Refused,
        ErrorKind::BadResponse,
        ErrorKind::Storage,
        ErrorKind::NotAllowed,
        ErrorKind::Decision,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotSetUp => "not_set_up",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadPhoto => "bad_photo",
            ErrorKind::FileUnreadable => "file_unreadable",
            ErrorKind::NotEnrolled => "not_enrolled",
            ErrorKind::TeamMismatch => "team_mismatch",
            ErrorKind::Offline => "offline",
            ErrorKind::Refused => "refused",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Storage => "storage",
            ErrorKind::NotAllowed => "not_allowed",
            ErrorKind::Decision => "decision",
        }
    }
}

/// Every command fails with this: a kind, the catalog key of its message, and details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub kind: ErrorKind,
    /// `error.<kind>`: the UI's catalog has a message for each.
    pub message_key: String,
    pub details: ErrorDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    /// For [`ErrorKind::Invalid`]: each refused field, shown beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// For [`ErrorKind::Refused`]: the bureau's reason, which the UI explains in the user's
    /// language ([`Refusal::explain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// For [`ErrorKind::Decision`]: why, in both languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained: Option<Box<Explained>>,
    /// The technical cause, for support (English).
    #[serde(default)]
    pub cause: String,
}

/// A message in the UI's two languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained {
    pub zh_cn: String,
    pub en: String,
}

impl CommandError {
    pub fn new(kind: ErrorKind, cause: impl Into<String>) -> Self {
        CommandError {
            kind,
            message_key: format!("error.{}", kind.key()),
            details: ErrorDetails {
                cause: cause.into(),
                ..ErrorDetails::default()
            },
        }
    }

    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let mut error = CommandError::new(ErrorKind::Invalid, "");
        error.details.fields = fields;
        error
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message_key, self.details.cause)
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_distinct_message_key() {
        let keys: std::collections::BTreeSet<_> = ErrorKind::ALL
            .iter()
            .map(|k| CommandError::new(*k, "").message_key)
            .collect();
        assert_eq!(keys.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn a_course_summary_crosses_the_boundary_with_its_planned_sessions_and_its_sessions() {
        use fieldlog_domain::{Course, Session};
        let id = |n: u8| format!("0190a0d8-0000-7000-8000-{n:012}");
        let summary = CourseSummary {
            course: Course {
                id: id(1).parse().unwrap(),
                team: fieldlog_domain::TeamId::parse("caravan-1").unwrap(),
                fields: fieldlog_domain::CourseFields {
                    school: id(2).parse().unwrap(),
                    title: "水的旅行".into(),
                    theme: String::new(),
                    sessions: 16,
                    start: None,
                    end: None,
                },
                created_at: 1,
                created_by: "一号机".into(),
            },
            school_name: "南山小学".into(),
            held: 1,
            planned: 16,
            missing: 15,
            sessions: vec![Session {
                visit: id(3).parse().unwrap(),
                number: 1,
                date: "2026-09-01".parse().unwrap(),
                students: 2,
                present: Some(2),
                clash: false,
            }],
        };
        let json = serde_json::to_string(&summary).unwrap();
        let back: CourseSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, summary);
        assert_eq!(back.course.fields.sessions, 16);
    }

    #[test]
    fn sync_state_is_tagged_for_the_ui() {
        let json = serde_json::to_value(SyncState::Syncing {
            rounds: 2,
            sent: 5,
            received: 1,
            photos_done: 0,
            photos_total: 0,
            photo_bytes_done: 0,
            photo_bytes_total: 0,
        })
        .unwrap();
        assert_eq!(json["state"], "syncing");
        assert_eq!(json["rounds"], 2);
    }
}
