//! `fieldlog report`: the figures a bureau publishes.

use super::Ctx;
use crate::output::emit;
use anyhow::Result;
use chrono::NaiveDate;
use fieldlog_core::ReportFilter;
use fieldlog_domain::{Area, Field, Report};

pub fn run(ctx: &Ctx, period: &crate::args::Period) -> Result<String> {
    let filter = super::review::filter(period)?;
    let report = ctx.open()?.report(&filter)?;
    emit(ctx.json, &report, |r| text(ctx, &filter, r))
}

fn text(ctx: &Ctx, filter: &ReportFilter, r: &Report) -> String {
    let lang = ctx.lang;
    let mut lines = Vec::new();
    if filter.from.is_some() || filter.to.is_some() {
        let day = |d: Option<NaiveDate>| d.map_or_else(|| "…".to_string(), |d| d.to_string());
        lines.push(ctx.line(
            ctx.tr("期间", "period"),
            format!("{} – {}", day(filter.from), day(filter.to)),
        ));
    }
    if let Some(district) = &filter.district {
        lines.push(ctx.line(Field::District.label(lang), district));
    }
    let schools = format!(
        "{}{}{} {} / {} {}{}",
        r.schools_reached,
        ctx.tr("（", " ("),
        Area::Rural.label(lang),
        r.rural_schools,
        Area::Urban.label(lang),
        r.urban_schools,
        ctx.tr("）", ")"),
    );
    lines.extend([
        ctx.line(ctx.tr("走访次数", "visits"), r.visits),
        ctx.line(ctx.tr("覆盖学校", "schools reached"), schools),
        ctx.line(ctx.tr("受众人数", "audience"), r.audience),
        ctx.line(ctx.tr("讲座场次", "lectures"), r.lectures),
        ctx.line(Field::Books.label(lang), r.books),
        ctx.line(Field::Kits.label(lang), r.kits),
        ctx.line(
            ctx.tr("乡村学校讲座", "lectures at rural schools"),
            r.rural_lectures,
        ),
        ctx.line(ctx.tr("覆盖区县", "districts covered"), r.districts_covered),
        ctx.line(ctx.tr("培训教师", "teachers trained"), r.teachers_trained),
        ctx.line(
            ctx.tr("已合并的重复记录", "duplicates merged"),
            r.duplicates_merged,
        ),
        ctx.line(
            ctx.tr("已核实 / 未核实", "verified / unverified"),
            format!("{} / {}", r.verified_visits, r.unverified_visits),
        ),
    ]);
    lines.join("\n")
}
