//! The one place where failures become the UI's `{kind, message_key, details}`.

use fieldlog_app_api::{CommandError, ErrorKind, Explained};
use fieldlog_domain::Lang;
use serde::{Serialize, Serializer};

/// A command's failure. Serializes as [`CommandError`]; `?` converts core errors.
#[derive(Debug)]
pub struct AppError(pub CommandError);

pub type AppResult<T> = Result<T, AppError>;

impl Serialize for AppError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<CommandError> for AppError {
    fn from(error: CommandError) -> Self {
        AppError(error)
    }
}

impl From<fieldlog_domain::ValidationErrors> for AppError {
    fn from(errors: fieldlog_domain::ValidationErrors) -> Self {
        AppError(CommandError::invalid(errors.0))
    }
}

impl From<fieldlog_core::Error> for AppError {
    fn from(error: fieldlog_core::Error) -> Self {
        AppError(command_error(&error))
    }
}

/// Maps a core error to what the UI shows.
pub fn command_error(error: &fieldlog_core::Error) -> CommandError {
    use fieldlog_core::Error as E;
    let kind = match error {
        E::Invalid(errors) => return CommandError::invalid(errors.0.clone()),
        E::NotInitialized { .. } => ErrorKind::NotSetUp,
        E::VisitNotFound(_)
        | E::SchoolNotFound(_)
        | E::PhotoNotFound { .. }
        | E::StagedPhotoNotFound { .. }
        | E::CourseNotFound(_)
        | E::PairingNotFound(_) => ErrorKind::NotFound,
        E::NotYourRoster { .. } => ErrorKind::NotAllowed,
        E::Photo(_) => ErrorKind::BadPhoto,
        E::NotEnrolled => ErrorKind::NotEnrolled,
        E::TeamMismatch { .. } => ErrorKind::TeamMismatch,
        E::Network { .. } => ErrorKind::Offline,
        E::Refused { reason, .. } => {
            let mut refused = CommandError::new(ErrorKind::Refused, error.to_string());
            refused.details.refusal = Some(*reason);
            return refused;
        }
        E::BadResponse { .. } | E::SyncUnfinished { .. } => ErrorKind::BadResponse,
        E::NotCoordinator
        | E::OutsideRegion { .. }
        | E::MergeIntoItself(_)
        | E::MergeCycle { .. }
        | E::NotMerged(_)
        | E::VisitDeleted(_)
        | E::SchoolNotPending { .. }
        | E::SchoolNotRegistered { .. }
        | E::NotResolvable { .. } => {
            let mut refused = CommandError::new(ErrorKind::Decision, error.to_string());
            refused.details.explained = Some(Box::new(Explained {
                zh_cn: error.message(Lang::ZhCn),
                en: error.message(Lang::En),
            }));
            return refused;
        }
        // The device's own files: the database, documents, disk. New core variants land here
        // until they get a kind of their own.
        _ => ErrorKind::Storage,
    };
    CommandError::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldlog_domain::sync::Refusal;

    #[test]
    fn a_refusal_keeps_its_reason_for_the_ui_to_explain() {
        let error = command_error(&fieldlog_core::Error::Refused {
            status: 403,
            reason: Refusal::Revoked,
            message: "device revoked".into(),
        });
        assert_eq!(error.kind, ErrorKind::Refused);
        assert_eq!(error.details.refusal, Some(Refusal::Revoked));
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["details"]["refusal"], "revoked");
    }
}
