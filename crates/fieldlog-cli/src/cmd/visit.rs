//! `fieldlog visit …`: recording, editing and reading visits.

use super::Ctx;
use crate::args::{VisitAdd, VisitCommand};
use crate::error::CliError;
use crate::lang::list_sep;
use crate::output::{emit, local_time, table};
use anyhow::Result;
use fieldlog_core::{Conflict, Store, VisitFilter};
use fieldlog_domain::visit::{AudienceInput, DonationsInput};
use fieldlog_domain::{
    Field, FieldError, Lang, Reason, ReviewState, School, SchoolId, Visit, VisitId, VisitInput,
    VisitReview,
};
use serde_json::json;
use std::collections::HashMap;
use std::io::Read;

pub fn run(command: VisitCommand, ctx: &Ctx) -> Result<String> {
    match command {
        VisitCommand::Add(add) => {
            let input = if add.json_in {
                read_json_in()?
            } else {
                from_flags(*add)
            };
            let visit = ctx.open()?.add_visit(&input, ctx.today)?;
            emit(ctx.json, &json!({ "id": visit.id }), |_| {
                visit.id.to_string()
            })
        }
        VisitCommand::Import { file } => {
            let inputs = read_visits(&file)?;
            let visits = ctx.open()?.add_visits(&inputs, ctx.today)?;
            let ids: Vec<VisitId> = visits.iter().map(|v| v.id).collect();
            emit(
                ctx.json,
                &json!({ "imported": ids.len(), "ids": ids }),
                |_| ctx.line(ctx.tr("已导入记录", "visits imported"), ids.len()),
            )
        }
        VisitCommand::Edit { id, set } => {
            let id = parse_id(&id)?;
            let mut store = ctx.open()?;
            let visit = store.edit_visit(id, &set, ctx.today)?;
            shown(ctx, &store, visit)
        }
        VisitCommand::Show { id } => {
            let store = ctx.open()?;
            let visit = store.visit(parse_id(&id)?)?;
            shown(ctx, &store, visit)
        }
        VisitCommand::List {
            month,
            school,
            deleted,
        } => {
            let store = ctx.open()?;
            let school = school
                .map(|given| find_school(&store, &given))
                .transpose()?;
            let visits = store.visits(&VisitFilter {
                month,
                school,
                include_deleted: deleted,
            })?;
            let schools = school_names(&store)?;
            let reviewed = visits
                .into_iter()
                .map(|v| {
                    Ok(Reviewed {
                        review: store.visit_review(v.id)?,
                        visit: v,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            emit(ctx.json, &reviewed, |v| list(ctx, &schools, v, deleted))
        }
        VisitCommand::Attend { id, present } => {
            let id = parse_id(&id)?;
            let mut store = ctx.open()?;
            let visit = store.attend(id, &present, ctx.today)?;
            shown(ctx, &store, visit)
        }
        VisitCommand::Delete { id } => {
            let id = parse_id(&id)?;
            ctx.open()?.delete_visit(id)?;
            emit(ctx.json, &json!({ "id": id, "deleted": true }), |_| {
                ctx.line(ctx.tr("已删除记录", "deleted visit"), id)
            })
        }
    }
}

/// A visit with where it stands in review: its JSON is the visit's plus a `review` key.
#[derive(Debug, serde::Serialize)]
struct Reviewed {
    #[serde(flatten)]
    visit: Visit,
    review: VisitReview,
}

fn shown(ctx: &Ctx, store: &Store, visit: Visit) -> Result<String> {
    let conflicts = store.conflicts()?;
    let reviewed = Reviewed {
        review: store.visit_review(visit.id)?,
        visit,
    };
    emit(ctx.json, &reviewed, |r| show(ctx, store, r, &conflicts))
}

/// The review state as a short label; a flag says so loudly, with its note.
fn review_label(ctx: &Ctx, review: &VisitReview) -> String {
    let state = review.state.unwrap_or(ReviewState::Unreviewed);
    let mut label = state.label(ctx.lang).to_string();
    if review.duplicate_of.is_some() {
        label = format!(
            "{label}{}{}",
            list_sep(ctx.lang),
            ctx.tr("已合并为重复", "merged as duplicate")
        );
    }
    label
}

fn read_json_in() -> Result<VisitInput> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(CliError::Stdin)?;
    Ok(serde_json::from_str(&text).map_err(CliError::JsonIn)?)
}

/// The largest file `visit import` reads (about 100,000 visits).
const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Visits from a file: a JSON array, or one JSON object per line.
fn read_visits(path: &std::path::Path) -> Result<Vec<VisitInput>> {
    let read = |source| CliError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_IMPORT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_IMPORT_BYTES {
        return Err(CliError::FileTooLarge {
            path: path.to_path_buf(),
            max: MAX_IMPORT_BYTES,
        }
        .into());
    }
    let bad = |source| CliError::JsonFile {
        path: path.to_path_buf(),
        source,
    };
    if text.trim_start().starts_with('[') {
        return Ok(serde_json::from_str(&text).map_err(bad)?);
    }
    Ok(serde_json::Deserializer::from_str(&text)
        .into_iter::<VisitInput>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?)
}

fn from_flags(add: VisitAdd) -> VisitInput {
    VisitInput {
        school: add.school.unwrap_or_default(),
        date: add.date,
        activities: add
            .activities
            .iter()
            .flat_map(|a| fieldlog_domain::visit::split_list(a))
            .collect(),
        topic: add.topic.unwrap_or_default(),
        presenters: add.presenters.unwrap_or_default(),
        audience: AudienceInput {
            students: add.students.unwrap_or_default(),
            teachers: add.teachers.unwrap_or_default(),
            others: add.others.unwrap_or_default(),
            breakdown: Default::default(),
        },
        donations: DonationsInput {
            books: add.books.unwrap_or_default(),
            kits: add.kits.unwrap_or_default(),
        },
        notes: add.notes.unwrap_or_default(),
        course: add.course.unwrap_or_default(),
        attendance: add.attend,
    }
}

pub(super) fn parse_id(given: &str) -> Result<VisitId> {
    Ok(given
        .parse()
        .map_err(|_| CliError::BadVisitId(given.to_string()))?)
}

/// A school from its id or exact name, or the same field error a visit's school would get.
fn find_school(store: &Store, given: &str) -> Result<SchoolId> {
    store.find_school(given)?.ok_or_else(|| {
        let unknown = Reason::UnknownSchool {
            given: given.trim().to_string(),
        };
        fieldlog_core::Error::from(FieldError::new(Field::School, unknown)).into()
    })
}

fn school_names(store: &Store) -> Result<HashMap<SchoolId, School>> {
    Ok(store.schools()?.into_iter().map(|s| (s.id, s)).collect())
}

fn activities(ctx: &Ctx, visit: &Visit) -> String {
    visit
        .fields
        .activities
        .iter()
        .map(|a| a.label(ctx.lang))
        .collect::<Vec<_>>()
        .join(list_sep(ctx.lang))
}

/// What `visit show` prints: one labelled line per field, and which fields are in conflict.
fn show(ctx: &Ctx, store: &Store, reviewed: &Reviewed, conflicts: &[Conflict]) -> String {
    let (visit, review) = (&reviewed.visit, &reviewed.review);
    let lang = ctx.lang;
    let f = &visit.fields;
    let school = match store.school(f.school) {
        Ok(s) => match lang {
            Lang::ZhCn => format!("{}（{}）", s.fields.name, s.fields.district),
            Lang::En => format!("{} ({})", s.fields.name, s.fields.district),
        },
        Err(_) => f.school.to_string(),
    };
    let a = &f.audience;
    let sep = ctx.tr("，", ", ");
    let audience = format!(
        "{} {}{sep}{} {}{sep}{} {}{sep}{} {}",
        ctx.tr("学生", "students"),
        a.students,
        ctx.tr("教师", "teachers"),
        a.teachers,
        ctx.tr("其他", "others"),
        a.others,
        ctx.tr("合计", "total"),
        visit.audience_total(),
    );
    let mut lines = vec![
        ctx.line(ctx.tr("编号", "id"), visit.id),
        ctx.line(Field::School.label(lang), school),
    ];
    if let Some(course) = f.course {
        lines.push(ctx.line(
            Field::Course.label(lang),
            course_line(ctx, store, visit, course),
        ));
    }
    lines.extend([
        ctx.line(Field::Date.label(lang), f.date),
        ctx.line(Field::Activities.label(lang), activities(ctx, visit)),
        ctx.line(Field::Topic.label(lang), or_dash(&f.topic)),
        ctx.line(Field::Presenters.label(lang), or_dash(&f.presenters)),
        ctx.line(ctx.tr("受众人数", "audience"), audience),
    ]);
    if !f.attendance.is_empty() {
        lines.push(ctx.line(
            Field::Attendance.label(lang),
            present_names(ctx, store, visit),
        ));
    }
    if !a.breakdown.is_empty() {
        let cells = a
            .breakdown
            .iter()
            .map(|(c, n)| format!("{}·{} {n}", c.band.label(lang), c.gender.label(lang)))
            .collect::<Vec<_>>()
            .join(sep);
        lines.push(ctx.line(Field::Breakdown.label(lang), cells));
    }
    lines.extend([
        ctx.line(
            ctx.tr("捐赠", "donations"),
            format!(
                "{} {}{sep}{} {}",
                ctx.tr("图书", "books"),
                f.donations.books,
                ctx.tr("器材", "kits"),
                f.donations.kits
            ),
        ),
        ctx.line(Field::Notes.label(lang), or_dash(&f.notes)),
    ]);
    let mut status = review_label(ctx, review);
    if visit.deleted {
        status = format!("{status}{sep}{}", ctx.tr("已删除", "deleted"));
    }
    lines.push(ctx.line(ctx.tr("审核状态", "review"), status));
    if !review.flag_note.is_empty() {
        lines.push(ctx.line(
            ctx.tr("协调员退回说明", "coordinator's note"),
            &review.flag_note,
        ));
    }
    if let Some(original) = review.duplicate_of {
        lines.push(ctx.line(Field::DuplicateOf.label(lang), original));
    }
    // What the figures count when duplicates were merged into this visit.
    if let Ok(counted) = store.effective_visit(visit.id)
        && counted != *visit
    {
        lines.push(ctx.line(
            ctx.tr(
                "计入统计（含合并的重复记录）",
                "counted (with merged duplicates)",
            ),
            format!(
                "{} {}{sep}{} {}{sep}{} {}",
                ctx.tr("受众人数", "audience"),
                counted.audience_total(),
                ctx.tr("主题", "topic"),
                or_dash(&counted.fields.topic),
                ctx.tr("日期", "date"),
                counted.fields.date
            ),
        ));
    }
    lines.push(ctx.line(
        ctx.tr("记录人", "recorded by"),
        format!("{}{sep}{}", visit.created_by, local_time(visit.created_at)),
    ));
    let record = visit.id.to_string();
    let conflicting: Vec<&str> = conflicts
        .iter()
        .filter(|c| c.record_id == record)
        .map(|c| c.field.label(lang))
        .collect();
    if !conflicting.is_empty() {
        lines.push(ctx.line(
            ctx.tr("有冲突", "in conflict"),
            format!(
                "{}{}",
                conflicting.join(list_sep(lang)),
                ctx.tr(
                    "（运行 fieldlog conflicts 查看每个取值）",
                    " (run `fieldlog conflicts` to see every value)"
                )
            ),
        ));
    }
    lines.join("\n")
}

/// "水的旅行 · 第 3/16 课时", with a warning when another session shares its date.
fn course_line(
    ctx: &Ctx,
    store: &Store,
    visit: &Visit,
    course: fieldlog_domain::CourseId,
) -> String {
    let title = store
        .course(&course.to_string())
        .map_or_else(|_| course.to_string(), |c| c.course.fields.title);
    match store.session_of(visit) {
        Ok(Some((session, planned))) => {
            let mut line = format!(
                "{title} · {}",
                fieldlog_domain::course::session_label(session.number, planned, ctx.lang)
            );
            if session.clash {
                line.push_str(ctx.tr(
                    "（同一天还有本课程的另一条课时记录，请核对是否重复）",
                    " (another session of this course is on the same date: check for a duplicate)",
                ));
            }
            line
        }
        _ => title,
    }
}

/// Who was present, by name where this device holds the roster.
fn present_names(ctx: &Ctx, store: &Store, visit: &Visit) -> String {
    let roster = visit
        .fields
        .course
        .and_then(|c| store.roster(&c.to_string()).ok())
        .unwrap_or_default();
    let names: Vec<String> = visit
        .fields
        .attendance
        .iter()
        .map(|id| {
            roster
                .iter()
                .find(|s| s.id == *id)
                .map_or_else(|| id.to_string(), |s| s.name.clone())
        })
        .collect();
    match ctx.lang {
        Lang::ZhCn => format!("{} 人（{}）", names.len(), names.join(list_sep(ctx.lang))),
        Lang::En => format!(
            "{} present ({})",
            names.len(),
            names.join(list_sep(ctx.lang))
        ),
    }
}

/// What `visit list` prints: a table, newest first.
fn list(
    ctx: &Ctx,
    schools: &HashMap<SchoolId, School>,
    visits: &[Reviewed],
    with_status: bool,
) -> String {
    if visits.is_empty() {
        return ctx.tr("没有走访记录。", "No visits.").into();
    }
    let lang = ctx.lang;
    let rows = visits
        .iter()
        .map(|r| {
            let v = &r.visit;
            let school = schools
                .get(&v.fields.school)
                .map_or_else(|| v.fields.school.to_string(), |s| s.fields.name.clone());
            let mut row = vec![
                v.fields.date.to_string(),
                school,
                activities(ctx, v),
                v.audience_total().to_string(),
                review_label(ctx, &r.review),
            ];
            if !r.review.flag_note.is_empty() {
                row[4] = format!("{}{}{}", row[4], ctx.tr("：", ": "), r.review.flag_note);
            }
            if with_status {
                row.push(if v.deleted {
                    ctx.tr("已删除", "deleted").to_string()
                } else {
                    String::new()
                });
            }
            row.push(v.id.to_string());
            row
        })
        .collect();
    let mut header = vec![
        Field::Date.label(lang),
        Field::School.label(lang),
        Field::Activities.label(lang),
        ctx.tr("受众人数", "audience"),
        ctx.tr("审核", "review"),
    ];
    if with_status {
        header.push(Field::Status.label(lang));
    }
    header.push(ctx.tr("编号", "id"));
    table(&header, rows, &[3])
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "—" } else { text }
}
