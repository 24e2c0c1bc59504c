//! `fieldlog school …`: the registry.

use super::Ctx;
use crate::args::SchoolCommand;
use crate::error::CliError;
use crate::output::{emit, table};
use anyhow::Result;
use fieldlog_core::ImportSummary;
use fieldlog_domain::{Field, School, SchoolInput, SchoolStatus};
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
