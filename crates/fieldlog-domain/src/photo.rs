//! Photo references: what a visit record holds about a photo. The files live beside the store,
//! addressed by sha256.

use crate::error::{Field, FieldError};
use crate::rules;
use serde::{Deserialize, Serialize};

pub const MAX_CAPTION_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// sha256 (hex) of the display copy; also the photo's id.
    pub display_sha256: String,
    pub thumbnail_sha256: String,
    pub caption: String,
    /// 同意公开: the people shown agreed to publication. Off unless someone turns it on.
    pub consent: bool,
    /// When the picture was taken, from EXIF, as `YYYY-MM-DDTHH:MM:SS` local time.
    pub taken_at: Option<String>,
    /// The display copy's pixel size.
    pub width: u32,
    pub height: u32,
    /// File sizes of the display copy and the thumbnail.
    pub display_bytes: u64,
    pub thumbnail_bytes: u64,
}

/// A caption is trimmed and at most 500 characters.
pub fn caption(given: &str) -> Result<String, FieldError> {
    rules::text(Field::Caption, given, MAX_CAPTION_CHARS, false)
}
