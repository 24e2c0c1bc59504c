//! Failures as the user sees them: one line, in their language, or one JSON object.

use crate::lang::tr;
use fieldlog_core::Error as CoreError;
use fieldlog_domain::{FieldError, Lang};
use serde::Serialize;
use std::path::PathBuf;

/// What can go wrong in the CLI itself, around the store.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("found no data directory for this user; pass --data-dir or set FIELDLOG_DATA_DIR")]
    NoDataDir,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("standard input is not a visit as JSON: {0}")]
    JsonIn(#[source] serde_json::Error),
    #[error("{path} is not a list of visits as JSON: {source}")]
    JsonFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is larger than {max} bytes; split it")]
    FileTooLarge { path: PathBuf, max: u64 },
    #[error("\"{0}\" is not a visit id")]
    BadVisitId(String),
    #[error("\"{0}\" is not a pairing id")]
    BadPairingId(String),
}

impl CliError {
    fn kind(&self) -> &'static str {
        match self {
            CliError::NoDataDir => "no_data_dir",
            CliError::Read { .. } | CliError::Write { .. } | CliError::Stdin(_) => "io",
            CliError::JsonIn(_) | CliError::JsonFile { .. } => "invalid_json",
            CliError::FileTooLarge { .. } => "too_large",
            CliError::BadVisitId(_) | CliError::BadPairingId(_) => "invalid_id",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (_, Lang::En) => self.to_string(),
            (CliError::NoDataDir, Lang::ZhCn) => {
                "找不到本用户的数据目录，请用 --data-dir 或 FIELDLOG_DATA_DIR 指定".into()
            }
            (CliError::Read { path, source }, Lang::ZhCn) => {
                format!("无法读取 {}：{}", path.display(), io_reason_zh(source))
            }
            (CliError::Write { path, source }, Lang::ZhCn) => {
                format!("无法写入 {}：{}", path.display(), io_reason_zh(source))
            }
            (CliError::Stdin(source), Lang::ZhCn) => format!("无法读取标准输入：{source}"),
            (CliError::JsonIn(source), Lang::ZhCn) => {
                format!("标准输入不是有效的走访 JSON：{source}")
            }
            (CliError::JsonFile { path, source }, Lang::ZhCn) => {
                format!("{} 不是有效的走访 JSON 列表：{source}", path.display())
            }
            (CliError::FileTooLarge { path, max }, Lang::ZhCn) => {
                format!("{} 超过 {max} 字节，请分成几个文件", path.display())
            }
            (CliError::BadVisitId(given), Lang::ZhCn) => format!("“{given}”不是有效的记录编号"),
            (CliError::BadPairingId(given), Lang::ZhCn) => format!("“{given}”不是有效的结对编号"),
        }
    }
}

/// The common file errors in words, the rest as the system says them.
fn io_reason_zh(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "文件或目录不存在".into(),
        std::io::ErrorKind::PermissionDenied => "没有权限".into(),
        std::io::ErrorKind::IsADirectory => "这是一个目录".into(),
        _ => error.to_string(),
    }
}

/// A failure, ready to print.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl Failure {
    pub fn from_anyhow(error: &anyhow::Error, lang: Lang) -> Failure {
        let found = error.chain().find_map(|cause| {
            if let Some(core) = cause.downcast_ref::<CoreError>() {
                Some(Failure {
                    kind: core.kind(),
                    message: core.message(lang),
                    fields: match core {
                        CoreError::Invalid(errors) | CoreError::ImportedVisit { errors, .. } => {
                            errors.0.clone()
                        }
                        CoreError::Registry(fieldlog_core::registry::RegistryError::Line {
                            source,
                            ..
                        }) => source.0.clone(),
                        _ => Vec::new(),
                    },
                })
            } else {
                cause.downcast_ref::<CliError>().map(|cli| Failure {
                    kind: cli.kind(),
                    message: cli.message(lang),
                    fields: Vec::new(),
                })
            }
        });
        found.unwrap_or_else(|| Failure {
            kind: "internal",
            message: format!("{error:#}"),
            fields: Vec::new(),
        })
    }

    /// `错误：…` / `error: …`, or `{"error":{…}}`: always exactly one line.
    pub fn render(&self, lang: Lang, json: bool) -> String {
        if json {
            #[derive(Serialize)]
            struct Wrapped<'a> {
                error: &'a Failure,
            }
            // A struct keeps the keys in order: kind, message, fields.
            return serde_json::to_string(&Wrapped { error: self })
                .unwrap_or_else(|_| format!(r#"{{"error":{{"kind":"{}"}}}}"#, self.kind));
        }
        let message = self.message.replace(['\r', '\n'], " ");
        format!("{}{message}", tr(lang, "错误：", "error: "))
    }
}
