//! School registry imports: the same CSV a device imports (`name,district,area,level,
//! enrollment`), written into `registry/<district>` documents by the bureau's own actor.

use crate::error::{Error, Result};
use crate::storage::ImportSummary;
use automerge::Automerge;
use automerge::transaction::CommitOptions;
use fieldlog_core::{DocId, ledger};
use fieldlog_domain::{School, SchoolFields, SchoolId, SchoolInput, SchoolStatus};
use std::collections::{BTreeMap, HashMap};

/// How the bureau names itself in the documents it writes (`actor:<hex>` → this).
pub const BUREAU_AUTHOR: &str = "bureau";

/// Reads and validates every row; any bad row refuses the whole file, naming its line. A
/// school listed twice (same name and district) is refused too, so an import is repeatable.
pub(crate) fn parse_csv(reader: impl std::io::Read) -> Result<Vec<SchoolFields>> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut rows = Vec::new();
    let mut lines: HashMap<(String, String), u64> = HashMap::new();
    for (index, row) in csv.deserialize::<SchoolInput>().enumerate() {
        let line = index as u64 + 2;
        let input = row.map_err(Error::RegistryCsv)?;
        let fields = input
            .validate()
            .map_err(|source| Error::RegistryLine { line, source })?;
        let key = (fields.name.clone(), fields.district.to_string());
        if let Some(first_line) = lines.insert(key, line) {
            return Err(Error::DuplicateSchool {
                line,
                first_line,
                name: fields.name,
                district: fields.district,
            });
        }
        rows.push(fields);
    }
    Ok(rows)
}

/// Writes `rows` (all of one district) into its registry document as one change signed by
/// the document's actor, matching existing schools by name. Makes no change when every row
/// is already there, registered, with the same fields.
pub(crate) fn import_into(
    doc: &mut Automerge,
    doc_id: &DocId,
    rows: Vec<SchoolFields>,
    now_ms: i64,
    summary: &mut ImportSummary,
) -> Result<()> {
    let mut existing: BTreeMap<String, School> = BTreeMap::new();
    for key in ledger::record_keys(doc) {
        let Some(school) =
            ledger::record_obj(doc, &key).and_then(|obj| ledger::read_school(doc, &key, &obj))
        else {
            continue;
        };
        // One school per name: a registered one wins over pending ones, then the oldest id.
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
                });
            }
            None => {
                summary.added += 1;
                writes.push(School {
                    id: SchoolId(uuid::Uuid::now_v7()),
                    fields,
                    status: SchoolStatus::Registered,
                });
            }
        }
    }
    if writes.is_empty() {
        return Ok(());
    }
    let actor = doc.get_actor().to_hex_string();
    doc.transact_with(
        |_| {
            CommitOptions::default()
                .with_message("import schools".to_string())
                .with_time(now_ms)
        },
        |tx| {
            ledger::sign(tx, &actor, BUREAU_AUTHOR)?;
            writes
                .iter()
                .try_for_each(|school| ledger::put_school(tx, school))
        },
    )
    .map_err(|failure| Error::Document {
        doc_id: doc_id.to_string(),
        source: Box::new(failure.error),
    })?;
    Ok(())
}
