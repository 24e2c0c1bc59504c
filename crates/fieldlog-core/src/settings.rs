//! Device settings, kept in the store's `settings` table.

use crate::error::{DbContext, Result};
use crate::store::Store;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

const ORIGINALS: &str = "originals";
const REVIEW_AFTER_DAYS: &str = "review_after_days";
/// How old an unverified visit is before the review queue lists it, by default.
pub const DEFAULT_REVIEW_AFTER_DAYS: u32 = 14;

/// Whether a photo's original file (with its full resolution and metadata) stays on the
/// device. It never leaves the device either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginalsPolicy {
    /// Keep every original.
    Keep,
    /// Keep an original until the bureau holds the photo's thumbnail and display copy.
    #[default]
    UntilUploaded,
    /// Never keep an original.
    Drop,
}

impl OriginalsPolicy {
    pub const ALL: [OriginalsPolicy; 3] = [
        OriginalsPolicy::Keep,
        OriginalsPolicy::UntilUploaded,
        OriginalsPolicy::Drop,
    ];

    pub fn key(self) -> &'static str {
        match self {
            OriginalsPolicy::Keep => "keep",
            OriginalsPolicy::UntilUploaded => "until-uploaded",
            OriginalsPolicy::Drop => "drop",
        }
    }

    pub fn parse(key: &str) -> Option<OriginalsPolicy> {
        Self::ALL.into_iter().find(|p| p.key() == key.trim())
    }
}

/// Every setting, with its current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub originals: OriginalsPolicy,
    /// The review queue lists unverified visits dated at least this many days ago.
    pub review_after_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            originals: OriginalsPolicy::default(),
            review_after_days: DEFAULT_REVIEW_AFTER_DAYS,
        }
    }
}

impl Store {
    pub fn settings(&self) -> Result<Settings> {
        let get = |key: &str| -> Result<Option<String>> {
            self.conn
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .db(&self.path)
        };
        Ok(Settings {
            originals: get(ORIGINALS)?
                .as_deref()
                .and_then(OriginalsPolicy::parse)
                .unwrap_or_default(),
            review_after_days: get(REVIEW_AFTER_DAYS)?
                .and_then(|d| d.parse().ok())
                .unwrap_or(DEFAULT_REVIEW_AFTER_DAYS),
        })
    }

    /// Sets how old an unverified visit is before the review queue lists it.
    pub fn set_review_after_days(&mut self, days: u32) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [REVIEW_AFTER_DAYS, &days.to_string()],
            )
            .db(&self.path)?;
        Ok(())
    }

    /// Sets what happens to originals from now on, and applies it to the ones already kept:
    /// `drop` deletes them all, `until-uploaded` deletes those whose photo is uploaded.
    pub fn set_originals_policy(&mut self, policy: OriginalsPolicy) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [ORIGINALS, policy.key()],
            )
            .db(&self.path)?;
        self.drop_originals(policy)
    }
}
