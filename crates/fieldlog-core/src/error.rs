use fieldlog_domain::{Field, Lang, SchoolId, ValidationErrors, VisitId};
use std::path::PathBuf;

/// Everything that can go wrong in the device store. Input problems are [`Error::Invalid`],
/// which names every refused field; the rest say what failed and carry the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("visit {number} of the import: {errors}")]
    ImportedVisit {
        /// Counted from 1, in the order given.
        number: usize,
        errors: ValidationErrors,
    },
    #[error("no Fieldlog data in {path}; run `fieldlog init` first")]
    NotInitialized { path: PathBuf },
    #[error("{path} already holds a Fieldlog device ({device_name})")]
    AlreadyInitialized { path: PathBuf, device_name: String },
    #[error("no visit with id {0}")]
    VisitNotFound(VisitId),
    #[error("visit {visit} has no photo {photo}")]
    PhotoNotFound { visit: VisitId, photo: String },
    #[error(transparent)]
    Photo(#[from] crate::photo::PhotoError),
    #[error("no staged photo {token}; it was saved, discarded or expired, pick it again")]
    StagedPhotoNotFound { token: String },
    #[error("no school with id {0}")]
    SchoolNotFound(SchoolId),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "migration {version} was changed after it was applied (stored hash {stored}, code hash {code})"
    )]
    MigrationChanged {
        version: usize,
        stored: String,
        code: String,
    },
    #[error("document {doc_id}: {source}")]
    Document {
        doc_id: String,
        #[source]
        source: Box<automerge::AutomergeError>,
    },
    #[error(
        "this edit of {doc_id} makes a change of {len} bytes; one change may take at most {max}"
    )]
    ChangeTooLarge {
        doc_id: String,
        len: usize,
        max: usize,
    },
    #[error("this device is not enrolled with a bureau; run `fieldlog enroll URL CODE` first")]
    NotEnrolled,
    #[error("this device holds records of team {local} but the code enrolls it in team {enrolled}")]
    TeamMismatch { local: String, enrolled: String },
    #[error("cannot reach the bureau at {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the bureau refused: {} (HTTP {status}: {message})", .reason.explain(Lang::En))]
    Refused {
        status: u16,
        reason: fieldlog_domain::sync::Refusal,
        message: String,
    },
    #[error("the bureau's answer is not understood: {detail}")]
    BadResponse { detail: String },
    #[error("sync stopped after {rounds} rounds with work left; run it again")]
    SyncUnfinished { rounds: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("only a device enrolled as a coordinator may make review decisions")]
    NotCoordinator,
    #[error("no course with id {0} on this device")]
    CourseNotFound(fieldlog_domain::CourseId),
    #[error("no pairing with id {0} on this device")]
    PairingNotFound(fieldlog_domain::PairingId),
    #[error("the roster of a course of team {team} is kept for that team and its coordinators")]
    NotYourRoster { team: String },
    #[error("{district} is not in this coordinator's region")]
    OutsideRegion { district: String },
    #[error("a visit cannot be merged into itself ({0})")]
    MergeIntoItself(VisitId),
    #[error(
        "merging {other} into {keep} would make a cycle: {keep} is already merged into {other}"
    )]
    MergeCycle { keep: VisitId, other: VisitId },
    #[error("visit {0} is not merged into another")]
    NotMerged(VisitId),
    #[error("visit {0} is deleted; a decision about it changes nothing")]
    VisitDeleted(VisitId),
    #[error("{name} is not a pending school")]
    SchoolNotPending { name: String },
    #[error("{name} is not a registered school")]
    SchoolNotRegistered { name: String },
    #[error("field {field} of visit {visit} cannot be set by a decision")]
    NotResolvable { visit: VisitId, field: Field },
}

impl Error {
    /// A stable key for the kind of error, for the UI and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) | Error::ImportedVisit { .. } => "invalid",
            Error::NotInitialized { .. } => "not_initialized",
            Error::AlreadyInitialized { .. } => "already_initialized",
            Error::VisitNotFound(_) => "visit_not_found",
            Error::SchoolNotFound(_) => "school_not_found",
            Error::PhotoNotFound { .. } => "photo_not_found",
            Error::StagedPhotoNotFound { .. } => "staged_photo_not_found",
            Error::Photo(e) => e.kind(),
            Error::Registry(_) => "invalid_registry",
            Error::Bundle(_) => "invalid_bundle",
            Error::Database { .. } | Error::MigrationChanged { .. } => "database",
            Error::Document { .. } => "document",
            Error::ChangeTooLarge { .. } => "change_too_large",
            Error::Io { .. } => "io",
            Error::NotEnrolled => "not_enrolled",
            Error::TeamMismatch { .. } => "team_mismatch",
            Error::Network { .. } => "offline",
            Error::Refused { .. } => "refused",
            Error::BadResponse { .. } => "bad_response",
            Error::SyncUnfinished { .. } => "sync_unfinished",
            Error::NotCoordinator => "not_coordinator",
            Error::CourseNotFound(_) => "course_not_found",
            Error::PairingNotFound(_) => "pairing_not_found",
            Error::NotYourRoster { .. } => "not_your_roster",
            Error::OutsideRegion { .. } => "outside_region",
            Error::MergeIntoItself(_) => "merge_into_itself",
            Error::MergeCycle { .. } => "merge_cycle",
            Error::NotMerged(_) => "not_merged",
            Error::VisitDeleted(_) => "visit_deleted",
            Error::SchoolNotPending { .. } => "school_not_pending",
            Error::SchoolNotRegistered { .. } => "school_not_registered",
            Error::NotResolvable { .. } => "not_resolvable",
        }
    }

    /// The message in the user's language where the error is about their input.
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Error::Invalid(errors), _) => errors.message(lang),
            (Error::ImportedVisit { number, errors }, Lang::ZhCn) => {
                format!("导入的第 {number} 条记录：{}", errors.message(lang))
            }
            (Error::ImportedVisit { number, errors }, Lang::En) => {
                format!("visit {number} of the import: {}", errors.message(lang))
            }
            (Error::Photo(e), _) => e.message(lang),
            (Error::PhotoNotFound { visit, photo }, Lang::ZhCn) => {
                format!("记录 {visit} 没有照片 {photo}")
            }
            (Error::Registry(e), _) => e.message(lang),
            (Error::VisitNotFound(id), Lang::ZhCn) => format!("找不到记录 {id}"),
            (Error::StagedPhotoNotFound { token }, Lang::ZhCn) => {
                format!("找不到待保存的照片 {token}（已保存、已放弃或已过期），请重新选择")
            }
            (Error::SchoolNotFound(id), Lang::ZhCn) => format!("找不到学校 {id}"),
            (Error::NotInitialized { path }, Lang::ZhCn) => {
                format!(
                    "{} 中没有 Fieldlog 数据，请先运行 `fieldlog init`",
                    path.display()
                )
            }
            (Error::Bundle(e), Lang::ZhCn) => format!("同步包无法导入：{}", e.message_zh()),
            (
                Error::AlreadyInitialized {
                    path, device_name, ..
                },
                Lang::ZhCn,
            ) => format!("{} 中已有 Fieldlog 设备（{device_name}）", path.display()),
            (Error::Io { path, source }, Lang::ZhCn) => format!("{}：{source}", path.display()),
            (Error::NotEnrolled, Lang::ZhCn) => {
                "本设备尚未加入科协平台，请先运行 `fieldlog enroll 地址 邀请码`".into()
            }
            (Error::TeamMismatch { local, enrolled }, Lang::ZhCn) => {
                format!("本设备已有团队 {local} 的记录，但邀请码属于团队 {enrolled}")
            }
            (Error::Network { url, .. }, Lang::ZhCn) => {
                format!("无法连接科协平台 {url}，记录已保存在本机，联网后再同步")
            }
            (Error::Refused { reason, .. }, Lang::ZhCn) => {
                format!("科协平台拒绝了请求：{}", reason.explain(lang))
            }
            (Error::BadResponse { detail }, Lang::ZhCn) => {
                format!("科协平台的回复无法识别：{detail}")
            }
            (Error::SyncUnfinished { rounds }, Lang::ZhCn) => {
                format!("同步进行了 {rounds} 轮仍未完成，请再运行一次")
            }
            (Error::ChangeTooLarge { len, max, .. }, Lang::ZhCn) => {
                format!("这次修改的数据过大（{len} 字节，上限 {max} 字节），请分几次保存")
            }
            (Error::Database { path, source }, Lang::ZhCn) => {
                format!("数据库 {} 出错：{source}", path.display())
            }
            (Error::NotCoordinator, Lang::ZhCn) => {
                "只有以协调员身份加入的设备可以做审核决定".into()
            }
            (Error::CourseNotFound(id), Lang::ZhCn) => format!("本机没有课程 {id}"),
            (Error::PairingNotFound(id), Lang::ZhCn) => format!("本机没有结对 {id}"),
            (Error::NotYourRoster { team }, Lang::ZhCn) => {
                format!("团队 {team} 的课程名单只供该队和协调员查看")
            }
            (Error::OutsideRegion { district }, Lang::ZhCn) => {
                format!("{district} 不在本协调员负责的区域内")
            }
            (Error::MergeIntoItself(id), Lang::ZhCn) => format!("记录 {id} 不能合并到它自己"),
            (Error::MergeCycle { keep, other }, Lang::ZhCn) => {
                format!("不能把 {other} 合并到 {keep}：{keep} 已经合并到 {other}，会形成循环")
            }
            (Error::NotMerged(id), Lang::ZhCn) => format!("记录 {id} 没有被合并，无需撤销"),
            (Error::VisitDeleted(id), Lang::ZhCn) => {
                format!("记录 {id} 已删除，不能再对它做审核决定")
            }
            (Error::SchoolNotPending { name }, Lang::ZhCn) => format!("{name} 不是待审核的学校"),
            (Error::SchoolNotRegistered { name }, Lang::ZhCn) => {
                format!("{name} 不是已登记的学校")
            }
            (Error::NotResolvable { visit, field }, Lang::ZhCn) => {
                format!("记录 {visit} 的“{}”不能通过审核决定修改", field.label(lang))
            }
            _ => self.to_string(),
        }
    }
}

/// Adds the database path to a SQLite error.
pub(crate) trait DbContext<T> {
    fn db(self, path: &std::path::Path) -> Result<T, Error>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn db(self, path: &std::path::Path) -> Result<T, Error> {
        self.map_err(|source| Error::Database {
            path: path.to_path_buf(),
            source,
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
