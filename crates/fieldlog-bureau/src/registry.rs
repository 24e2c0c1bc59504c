//! School registry imports at the bureau: the device's rules and code
//! ([`fieldlog_core::registry`]), written into `registry/<district>` documents by the
//! bureau's own actor.

/// How the bureau names itself in the documents it writes (`actor:<hex>` → this).
pub const BUREAU_AUTHOR: &str = "bureau";
