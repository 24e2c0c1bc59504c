//! `fieldlog school …`: the registry.

use super::Ctx;
use crate::args::{SchoolCommand, SchoolCorrections};
use crate::error::CliError;
use crate::output::{emit, table};
use anyhow::Result;
use fieldlog_core::decide::SchoolChanges;
use fieldlog_core::{ImportSummary, Store};
use fieldlog_domain::{
    Decision, Field, FieldError, Reason, School, SchoolId, SchoolInput, SchoolStatus,
};
use serde_json::json;

pub fn run(command: SchoolCommand, ctx: &Ctx) -> Result<String> {
    match command {
        SchoolCommand::Import { file } => {
            let reader = std::fs::File::open(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let summary = ctx
                .open()?
                .import_schools_csv(std::io::BufReader::new(reader))?;
            emit(ctx.json, &summary, |s: &ImportSummary| {
                [
                    ctx.line(ctx.tr("新增", "added"), s.added),
                    ctx.line(ctx.tr("更新", "updated"), s.updated),
                    ctx.line(ctx.tr("未变", "unchanged"), s.unchanged),
                ]
                .join("\n")
            })
        }
        SchoolCommand::Add {
            name,
            district,
            area,
            level,
            enrollment,
            registered,
        } => {
            let input = SchoolInput {
                name,
                district,
                area,
                level: level.unwrap_or_default(),
                enrollment,
            };
            let status = if registered {
                SchoolStatus::Registered
            } else {
                SchoolStatus::Pending
            };
            let school = ctx.open()?.add_school(&input, status)?;
            emit(ctx.json, &json!({ "id": school.id }), |_| {
                school.id.to_string()
            })
        }
        SchoolCommand::Approve {
            school,
            corrections,
        } => {
            let mut store = ctx.open()?;
            let id = school_ref(&store, &school)?;
            let d = store.approve_school(id, &changes(&corrections), &corrections.note)?;
            decided(ctx, &store, d)
        }
        SchoolCommand::Set {
            school,
            corrections,
        } => {
            let mut store = ctx.open()?;
            let id = school_ref(&store, &school)?;
            let d = store.set_school(id, &changes(&corrections), &corrections.note)?;
            decided(ctx, &store, d)
        }
        SchoolCommand::Merge {
            pending,
            into,
            note,
        } => {
            let mut store = ctx.open()?;
            let (pending, into) = (school_ref(&store, &pending)?, school_ref(&store, &into)?);
            let d = store.merge_school(pending, into, &note)?;
            decided(ctx, &store, d)
        }
        SchoolCommand::History { school } => {
            let store = ctx.open()?;
            let history = store.school_history(school_ref(&store, &school)?)?;
            emit(ctx.json, &history, |h| super::review::history_text(ctx, h))
        }
        SchoolCommand::List => {
            let schools = ctx.open()?.schools()?;
            emit(ctx.json, &schools, |s| school_table(ctx, s))
        }
        SchoolCommand::Search { query, limit } => {
            let schools = ctx.open()?.search_schools(&query, limit)?;
            emit(ctx.json, &schools, |s| school_table(ctx, s))
        }
    }
}

/// A school by id or exact name, or the field error a visit's school would get.
fn school_ref(store: &Store, given: &str) -> Result<SchoolId> {
    store.find_school(given)?.ok_or_else(|| {
        let unknown = Reason::UnknownSchool {
            given: given.trim().to_string(),
        };
        fieldlog_core::Error::from(FieldError::new(Field::School, unknown)).into()
    })
}

fn changes(c: &SchoolCorrections) -> SchoolChanges {
    SchoolChanges {
        name: c.name.clone(),
        district: c.district.clone(),
        area: c.area.clone(),
        level: c.level.clone(),
    }
}

/// The decision, then the school as it now stands.
fn decided(ctx: &Ctx, store: &Store, decision: Decision) -> Result<String> {
    let school = decision.school.map(|id| store.school(id)).transpose()?;
    emit(
        ctx.json,
        &json!({ "decision": decision, "school": school }),
        |_| {
            let mut out = super::review::history_text(ctx, std::slice::from_ref(&decision));
            if let Some(s) = &school {
                out.push('\n');
                out.push_str(&school_table(ctx, std::slice::from_ref(s)));
            }
            out
        },
    )
}

fn school_table(ctx: &Ctx, schools: &[School]) -> String {
    if schools.is_empty() {
        return ctx.tr("没有找到学校。", "No schools found.").into();
    }
    let lang = ctx.lang;
    let rows = schools
        .iter()
        .map(|s| {
            vec![
                s.fields.name.clone(),
                s.fields.district.to_string(),
                s.fields.area.label(lang).to_string(),
                s.fields
                    .level
                    .map_or_else(String::new, |l| l.label(lang).to_string()),
                s.status.label(lang).to_string(),
                s.id.to_string(),
            ]
        })
        .collect();
    table(
        &[
            Field::SchoolName.label(lang),
            Field::District.label(lang),
            Field::Area.label(lang),
            Field::Level.label(lang),
            Field::Status.label(lang),
            ctx.tr("编号", "id"),
        ],
        rows,
        &[],
    )
}
