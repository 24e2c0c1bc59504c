//! School registry imports, the same rules on a device and at the bureau.
//!
//! A registry CSV has the columns `name,district,area,level,enrollment`. [`parse_csv`] checks
//! every row; a bad row refuses the whole file, naming its line, and so does a school listed
//! twice (same name and district), naming both lines. [`import_into`] writes one district's
//! rows into its `registry/<district>` document as one change, matching existing schools by
//! name, so importing the same file again changes nothing, not even the document's history.
//!
//! ```
//! use fieldlog_core::registry;
//! let csv = "name,district,area\n南山小学,南山区,城区\n南山小学,南山区,城区\n";
//! let error = registry::parse_csv(csv.as_bytes()).unwrap_err();
//! assert!(error.to_string().contains("listed twice"), "{error}");
//! ```

use crate::ledger;
use automerge::transaction::CommitOptions;
use automerge::{Automerge, ReadDoc};
use fieldlog_domain::{
    District, Lang, School, SchoolFields, SchoolId, SchoolInput, SchoolStatus, ValidationErrors,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Counts from a registry import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Why a registry file is refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("school registry CSV: {0}")]
    Csv(#[source] csv::Error),
    #[error("school registry line {line}: {source}")]
    Line {
        line: u64,
        #[source]
        source: ValidationErrors,
    },
    #[error(
        "school registry line {line}: {name} in {district} is listed twice (first on line {first_line})"
    )]
    Duplicate {
        line: u64,
        first_line: u64,
        name: String,
        district: District,
    },
}

impl RegistryError {
    /// The message in the user's language.
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (RegistryError::Csv(source), Lang::ZhCn) => {
                format!("学校名录 CSV 无法读取：{source}")
            }
            (RegistryError::Line { line, source }, Lang::ZhCn) => {
                format!("学校名录第 {line} 行：{}", source.message(lang))
            }
            (RegistryError::Line { line, source }, Lang::En) => {
                format!("school registry line {line}: {}", source.message(lang))
            }
            (
                RegistryError::Duplicate {
                    line,
                    first_line,
                    name,
                    district,
                },
                Lang::ZhCn,
            ) => format!(
                "学校名录第 {line} 行：{district}的{name}重复列出（第一次在第 {first_line} 行）"
            ),
            (_, Lang::En) => self.to_string(),
        }
    }
}

/// Every row of a registry CSV, checked, grouped by district (each district is one
/// registry document).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryRows(pub BTreeMap<District, Vec<SchoolFields>>);

/// Reads and checks a registry CSV: a bad row or a school listed twice refuses it all.
pub fn parse_csv(reader: impl std::io::Read) -> Result<RegistryRows, RegistryError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut rows = RegistryRows::default();
    let mut lines: HashMap<(String, String), u64> = HashMap::new();
    for (index, row) in csv.deserialize::<SchoolInput>().enumerate() {
        let line = index as u64 + 2;
        let input = row.map_err(RegistryError::Csv)?;
        let fields = input
            .validate()
            .map_err(|source| RegistryError::Line { line, source })?;
        let key = (fields.name.clone(), fields.district.to_string());
        if let Some(first_line) = lines.insert(key, line) {
            return Err(RegistryError::Duplicate {
                line,
                first_line,
                name: fields.name,
                district: fields.district,
            });
        }
        rows.0
            .entry(fields.district.clone())
            .or_default()
            .push(fields);
    }
    Ok(rows)
}

/// Writes one district's `rows` into its registry document as one change by the document's
/// actor, signed `author`, and adds to `summary`. A row matches the school of the same name
/// (a registered one before pending ones, then the oldest); one already registered with the
/// same fields is left alone, and when all are, no change is made. Returns the ids written.
pub fn import_into(
    doc: &mut Automerge,
    rows: Vec<SchoolFields>,
    author: &str,
    now_ms: i64,
    summary: &mut ImportSummary,
) -> Result<Vec<String>, automerge::AutomergeError> {
    let writes = plan(doc, rows, summary);
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let actor = doc.get_actor().to_hex_string();
    doc.transact_with(
        |_| {
            CommitOptions::default()
                .with_message("import schools".to_string())
                .with_time(now_ms)
        },
        |tx| {
            ledger::sign(tx, &actor, author)?;
            writes
                .iter()
                .try_for_each(|school| ledger::put_school(tx, school))
        },
    )
    .map_err(|failure| failure.error)?;
    Ok(writes.iter().map(|s| s.id.to_string()).collect())
}

/// The schools to write so the document holds `rows`, registered.
fn plan(doc: &impl ReadDoc, rows: Vec<SchoolFields>, summary: &mut ImportSummary) -> Vec<School> {
    let mut existing: BTreeMap<String, School> = BTreeMap::new();
    for key in ledger::record_keys(doc) {
        let Some(school) =
            ledger::record_obj(doc, &key).and_then(|obj| ledger::read_school(doc, &key, &obj))
        else {
            continue;
        };
        let better = |old: &School| {
            (school.status != SchoolStatus::Registered, school.id)
                < (old.status != SchoolStatus::Registered, old.id)
        };
        if existing.get(&school.fields.name).is_none_or(better) {
            existing.insert(school.fields.name.clone(), school);
        }
    }
    let mut writes = Vec::new();
    for fields in rows {
        match existing.remove(&fields.name) {
            Some(old) if old.fields == fields && old.status == SchoolStatus::Registered => {
                summary.unchanged += 1;
            }
            Some(old) => {
                summary.updated += 1;
                writes.push(School {
                    id: old.id,
                    fields,
                    status: SchoolStatus::Registered,
                    merged_into: old.merged_into,
                });
            }
            None => {
                summary.added += 1;
                writes.push(School {
                    id: SchoolId(uuid::Uuid::now_v7()),
                    fields,
                    status: SchoolStatus::Registered,
                    merged_into: None,
                });
            }
        }
    }
    writes
}
