//! `fieldlog review …`, `fieldlog target set`, `fieldlog targets`, `fieldlog export ledger`:
//! a coordinator's work. The logic is core's (`fieldlog_core::decide`); this maps
//! arguments and prints.

use super::Ctx;
use super::visit::parse_id;
use crate::args::{ExportCommand, Period, ReviewCommand, TargetCommand};
use crate::output::{emit, local_time, table};
use anyhow::Result;
use fieldlog_core::decide::{Export, MergeRequest, parse_field};
use fieldlog_core::queue::{QueuedVisit, ReviewQueue};
use fieldlog_core::{ReportFilter, Store};
use fieldlog_domain::{
    AudienceRule, Decision, District, DuplicatePair, Goal, Lang, TargetKey, TargetProgress, VisitId,
};
use serde_json::json;

pub fn run(command: Option<ReviewCommand>, ctx: &Ctx) -> Result<String> {
    let Some(command) = command else {
        let store = ctx.open()?;
        let queue = store.review_queue(ctx.today)?;
        return emit(ctx.json, &queue, |q| queue_text(ctx, &store, q));
    };
    let mut store = ctx.open()?;
    let decided = match command {
        ReviewCommand::Duplicates { period } => {
            let pairs = store.duplicates(&filter(&period)?)?;
            return emit(ctx.json, &pairs, |p| duplicates_text(ctx, &store, p));
        }
        ReviewCommand::History { visit } => {
            let history = store.history(parse_id(&visit)?)?;
            return emit(ctx.json, &history, |h| history_text(ctx, h));
        }
        ReviewCommand::Merge {
            keep,
            other,
            audience,
            take,
            note,
        } => {
            let audience = AudienceRule::parse(&audience).map_err(fieldlog_core::Error::from)?;
            let take = take
                .iter()
                .flat_map(|t| fieldlog_domain::visit::split_list(t))
                .filter(|t| !t.trim().is_empty())
                .map(|t| parse_field(&t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fieldlog_core::Error::from)?;
            vec![store.merge_visits(&MergeRequest {
                keep: parse_id(&keep)?,
                other: parse_id(&other)?,
                audience,
                take,
                note,
            })?]
        }
        ReviewCommand::Unmerge { other, note } => {
            vec![store.unmerge_visit(parse_id(&other)?, &note)?]
        }
        ReviewCommand::Distinct { a, b, note } => {
            vec![store.mark_distinct(parse_id(&a)?, parse_id(&b)?, &note)?]
        }
        ReviewCommand::Resolve {
            visit,
            field,
            value,
            note,
        } => vec![store.resolve_field(parse_id(&visit)?, &field, &value, &note, ctx.today)?],
        ReviewCommand::Verify { visits, note } => {
            let ids = visits
                .iter()
                .map(|v| parse_id(v))
                .collect::<Result<Vec<VisitId>>>()?;
            store.verify_visits(&ids, &note)?
        }
        ReviewCommand::Flag { visit, note } => vec![store.flag_visit(parse_id(&visit)?, &note)?],
    };
    emit(ctx.json, &decided, |d| history_text(ctx, d))
}

pub fn target(command: TargetCommand, ctx: &Ctx) -> Result<String> {
    let TargetCommand::Set {
        year,
        district,
        goals,
    } = command;
    let mut store = ctx.open()?;
    let set = store.set_targets(year, district.as_deref(), &goals)?;
    let district = set.first().and_then(|t| t.district.clone());
    let progress = store.targets(Some(year), district.as_ref())?;
    let progress: Vec<TargetProgress> = progress
        .into_iter()
        .filter(|p| p.district == district && set.iter().any(|t| t.key == p.key))
        .collect();
    emit(ctx.json, &progress, |p| targets_text(ctx, p))
}

pub fn targets(ctx: &Ctx, year: Option<i32>, district: Option<String>) -> Result<String> {
    let district = district
        .map(|d| District::parse(&d))
        .transpose()
        .map_err(fieldlog_core::Error::from)?;
    let progress = ctx.open()?.targets(year, district.as_ref())?;
    emit(ctx.json, &progress, |p| targets_text(ctx, p))
}

pub fn export(command: ExportCommand, ctx: &Ctx) -> Result<String> {
    let (what, file, period) = match command {
        ExportCommand::Ledger {
            xlsx: Some(file),
            period,
            ..
        } => (Export::LedgerXlsx, file, period),
        ExportCommand::Ledger {
            csv: Some(file),
            period,
            ..
        } => (Export::LedgerCsv, file, period),
        ExportCommand::Ledger { .. } => unreachable!("clap requires --xlsx or --csv"),
        ExportCommand::Courses { xlsx, period } => (Export::CoursesXlsx, xlsx, period),
    };
    let store = ctx.open()?;
    let rows = store.export(what, &file, &filter(&period)?, local_offset())?;
    let courses = what == Export::CoursesXlsx;
    emit(
        ctx.json,
        &json!({ "file": file, "rows": rows }),
        |_| match (ctx.lang, courses) {
            (Lang::ZhCn, false) => format!("已导出工作台账 {}（{rows} 条记录）", file.display()),
            (Lang::En, false) => {
                format!("Wrote the work ledger to {} ({rows} rows)", file.display())
            }
            (Lang::ZhCn, true) => format!("已导出系列课程 {}（{rows} 门课程）", file.display()),
            (Lang::En, true) => format!("Wrote the courses to {} ({rows} courses)", file.display()),
        },
    )
}

/// This machine's offset from UTC now, for the times in an export.
pub fn local_offset() -> chrono::FixedOffset {
    *chrono::Local::now().offset()
}

pub fn filter(period: &Period) -> Result<ReportFilter> {
    Ok(ReportFilter {
        from: period.from,
        to: period.to,
        district: period
            .district
            .as_deref()
            .map(District::parse)
            .transpose()
            .map_err(fieldlog_core::Error::from)?,
    })
}

fn visit_line(ctx: &Ctx, store: &Store, id: VisitId) -> String {
    let Ok(visit) = store.effective_visit(id) else {
        return id.to_string();
    };
    let school = store
        .school(visit.fields.school)
        .map_or_else(|_| visit.fields.school.to_string(), |s| s.fields.name);
    let activities: Vec<&str> = visit
        .fields
        .activities
        .iter()
        .map(|a| a.label(ctx.lang))
        .collect();
    format!(
        "{id}  {} {school} {} “{}” {} {}  {}",
        visit.fields.date,
        activities.join(crate::lang::list_sep(ctx.lang)),
        visit.fields.topic,
        visit.audience_total(),
        ctx.tr("人", "people"),
        visit.created_by
    )
}

fn duplicates_text(ctx: &Ctx, store: &Store, pairs: &[DuplicatePair]) -> String {
    if pairs.is_empty() {
        return ctx
            .tr("没有疑似重复的记录。", "No suspected duplicates.")
            .into();
    }
    let mut out = Vec::new();
    for pair in pairs {
        let reasons: Vec<&str> = pair.reasons.iter().map(|r| r.label(ctx.lang)).collect();
        out.push(format!(
            "{} {:.2}  {}",
            ctx.tr("相似度", "score"),
            pair.score,
            reasons.join(crate::lang::list_sep(ctx.lang))
        ));
        out.push(format!("  A {}", visit_line(ctx, store, pair.a)));
        out.push(format!("  B {}", visit_line(ctx, store, pair.b)));
    }
    out.join("\n")
}

pub(super) fn history_text(ctx: &Ctx, decisions: &[Decision]) -> String {
    if decisions.is_empty() {
        return ctx.tr("还没有审核决定。", "No decisions yet.").into();
    }
    decisions
        .iter()
        .map(|d| {
            let subject = d
                .visit
                .map(|v| v.to_string())
                .or(d.school.map(|s| s.to_string()))
                .unwrap_or_default();
            let mut line = format!(
                "{}  {}（{}）  {subject}  {}",
                local_time(d.at),
                d.member,
                d.device,
                d.describe(ctx.lang)
            );
            if !d.note.is_empty() {
                line.push_str(&format!("  {}{}", ctx.tr("说明：", "note: "), d.note));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn visits_table(ctx: &Ctx, visits: &[QueuedVisit], with_note: bool) -> String {
    let rows = visits
        .iter()
        .map(|v| {
            let mut row = vec![
                v.date.to_string(),
                v.school.clone(),
                v.team.clone(),
                v.created_by.clone(),
                v.id.to_string(),
            ];
            if with_note {
                row.push(v.note.clone());
            }
            row
        })
        .collect();
    let mut header = vec![
        ctx.tr("日期", "date"),
        ctx.tr("学校", "school"),
        ctx.tr("团队", "team"),
        ctx.tr("录入人", "entered by"),
        ctx.tr("编号", "id"),
    ];
    if with_note {
        header.push(ctx.tr("退回说明", "flag note"));
    }
    table(&header, rows, &[])
}

fn queue_text(ctx: &Ctx, store: &Store, q: &ReviewQueue) -> String {
    if q.is_empty() {
        return ctx
            .tr("没有待审核的事项。", "Nothing waits for review.")
            .into();
    }
    let mut out = Vec::new();
    let mut section = |title: String, body: String| {
        out.push(format!("== {title}"));
        out.push(body);
        out.push(String::new());
    };
    if !q.duplicates.is_empty() {
        section(
            format!(
                "{}（{}）",
                ctx.tr("疑似重复", "Suspected duplicates"),
                q.duplicates.len()
            ),
            duplicates_text(ctx, store, &q.duplicates),
        );
    }
    if !q.conflicts.is_empty() {
        let lines: Vec<String> = q
            .conflicts
            .iter()
            .map(|c| {
                let values: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
                format!(
                    "{}  {}: {}",
                    c.record_id,
                    c.field.label(ctx.lang),
                    values.join(" | ")
                )
            })
            .collect();
        section(
            format!(
                "{}（{}）",
                ctx.tr("字段冲突", "Conflicts"),
                q.conflicts.len()
            ),
            lines.join("\n"),
        );
    }
    if !q.pending_schools.is_empty() {
        let lines: Vec<String> = q
            .pending_schools
            .iter()
            .map(|s| format!("{}  {}  {}", s.fields.name, s.fields.district, s.id))
            .collect();
        section(
            format!(
                "{}（{}）",
                ctx.tr("待审核学校", "Pending schools"),
                q.pending_schools.len()
            ),
            lines.join("\n"),
        );
    }
    if !q.fixed.is_empty() {
        section(
            format!(
                "{}（{}）",
                ctx.tr("已修改待审核", "Fixed, awaiting review"),
                q.fixed.len()
            ),
            visits_table(ctx, &q.fixed, true),
        );
    }
    if !q.unverified.is_empty() {
        section(
            match ctx.lang {
                Lang::ZhCn => format!(
                    "超过 {} 天未核实（{}）",
                    q.unverified_after_days,
                    q.unverified.len()
                ),
                Lang::En => format!(
                    "Unverified for {} days or more ({})",
                    q.unverified_after_days,
                    q.unverified.len()
                ),
            },
            visits_table(ctx, &q.unverified, false),
        );
    }
    out.join("\n").trim_end().to_string()
}

fn targets_text(ctx: &Ctx, targets: &[TargetProgress]) -> String {
    if targets.is_empty() {
        return ctx.tr("还没有设定目标。", "No targets set.").into();
    }
    let show = |key: TargetKey, x: f64| {
        if matches!(key, TargetKey::RuralLectureShare | TargetKey::PairingRate) {
            format!("{:.1}%", x * 100.0)
        } else {
            format!("{x}")
        }
    };
    let rows = targets
        .iter()
        .map(|t| {
            let goal = match t.goal {
                Goal::All => ctx.tr("全部", "all").to_string(),
                Goal::Number(n) => show(t.key, n),
            };
            let mut current = show(t.key, t.current);
            if let (Some(n), Some(d)) = (t.numerator, t.denominator) {
                current.push_str(&format!(" ({n}/{d})"));
            }
            let missing: Vec<String> = t.missing_districts.iter().map(|d| d.to_string()).collect();
            vec![
                t.year.to_string(),
                t.district
                    .as_ref()
                    .map_or_else(|| ctx.tr("全区域", "region").to_string(), |d| d.to_string()),
                t.key.label(ctx.lang).to_string(),
                goal,
                current,
                ctx.tr(
                    if t.met { "已达成" } else { "未达成" },
                    if t.met { "met" } else { "not met" },
                )
                .to_string(),
                missing.join(crate::lang::list_sep(ctx.lang)),
            ]
        })
        .collect();
    table(
        &[
            ctx.tr("年度", "year"),
            ctx.tr("区县", "district"),
            ctx.tr("目标", "target"),
            ctx.tr("目标值", "goal"),
            ctx.tr("当前", "current"),
            ctx.tr("状态", "status"),
            ctx.tr("未覆盖区县", "districts not reached"),
        ],
        rows,
        &[],
    )
}
