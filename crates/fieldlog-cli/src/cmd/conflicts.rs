//! `fieldlog conflicts`: every field that holds concurrent values, with who entered each.

use super::Ctx;
use crate::output::{emit, local_time};
use anyhow::Result;
use fieldlog_core::{Conflict, Store};
use fieldlog_domain::{Field, Lang, SchoolId, VisitId, VisitStatus};

pub fn run(ctx: &Ctx) -> Result<String> {
    let store = ctx.open()?;
    let conflicts = store.conflicts()?;
    emit(ctx.json, &conflicts, |c| text(ctx, &store, c))
}

fn text(ctx: &Ctx, store: &Store, conflicts: &[Conflict]) -> String {
    if conflicts.is_empty() {
        return ctx.tr("没有冲突。", "No conflicts.").into();
    }
    let lang = ctx.lang;
    let mut lines = Vec::new();
    let mut record = None;
    for conflict in conflicts {
        if record != Some(&conflict.record_id) {
            if record.is_some() {
                lines.push(String::new());
            }
            record = Some(&conflict.record_id);
            lines.push(describe_record(ctx, store, &conflict.record_id));
        }
        lines.push(format!(
            "  {}{}",
            conflict.field.label(lang),
            match lang {
                Lang::ZhCn => format!("有 {} 个值：", conflict.values.len()),
                Lang::En => format!(" has {} values:", conflict.values.len()),
            }
        ));
        for v in &conflict.values {
            let value = show_value(store, conflict.field, &v.value, lang);
            let at = local_time(v.at);
            lines.push(match lang {
                Lang::ZhCn => format!("    “{value}”　{}（actor {}）于 {at}", v.author, v.actor),
                Lang::En => format!(
                    "    \"{value}\"  by {} (actor {}) at {at}",
                    v.author, v.actor
                ),
            });
        }
    }
    lines.join("\n")
}

/// `走访记录 2025-05-20 南山小学（<id>）`, or the bare id for a record this device cannot read.
fn describe_record(ctx: &Ctx, store: &Store, record_id: &str) -> String {
    let visit = record_id
        .parse::<VisitId>()
        .ok()
        .and_then(|id| store.visit(id).ok());
    let Some(visit) = visit else {
        return ctx.line(ctx.tr("记录", "record"), record_id);
    };
    let school = school_name(store, &visit.fields.school.to_string());
    match ctx.lang {
        Lang::ZhCn => format!("走访记录 {} {school}（{record_id}）", visit.fields.date),
        Lang::En => format!("visit {} {school} ({record_id})", visit.fields.date),
    }
}

fn show_value(store: &Store, field: Field, value: &str, lang: Lang) -> String {
    match field {
        Field::School => school_name(store, value),
        Field::Status => VisitStatus::parse(value)
            .map_or_else(|_| value.to_string(), |s| s.label(lang).to_string()),
        _ => value.to_string(),
    }
}

fn school_name(store: &Store, id: &str) -> String {
    id.parse::<SchoolId>()
        .ok()
        .and_then(|id| store.school(id).ok())
        .map_or_else(|| id.to_string(), |s| s.fields.name)
}
