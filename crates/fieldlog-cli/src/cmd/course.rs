//! `fieldlog course …`, `fieldlog pairing …` and `fieldlog members`.

use super::Ctx;
use crate::args::{CourseCommand, PairingCommand, RosterCommand};
use crate::error::CliError;
use crate::lang::list_sep;
use crate::output::{emit, table};
use anyhow::Result;
use fieldlog_core::Store;
use fieldlog_domain::course::session_label;
use fieldlog_domain::{
    CourseInput, CourseSummary, EnrolledMember, Field, Lang, Pairing, PairingInput, Student,
    StudentInput,
};
use serde_json::json;

pub fn course(command: CourseCommand, ctx: &Ctx) -> Result<String> {
    match command {
        CourseCommand::Add {
            school,
            title,
            sessions,
            theme,
            start,
            end,
        } => {
            let input = CourseInput {
                school,
                title,
                theme,
                sessions,
                start,
                end,
            };
            let course = ctx.open()?.add_course(&input, ctx.today)?;
            emit(ctx.json, &json!({ "id": course.id }), |_| {
                course.id.to_string()
            })
        }
        CourseCommand::Edit {
            course,
            title,
            theme,
            sessions,
            start,
            end,
        } => {
            let mut store = ctx.open()?;
            let edited = store.edit_course(
                &course,
                |input| {
                    input.title = title.unwrap_or(std::mem::take(&mut input.title));
                    input.theme = theme.unwrap_or(std::mem::take(&mut input.theme));
                    input.sessions = sessions.unwrap_or(input.sessions);
                    input.start = start.or(input.start.take());
                    input.end = end.or(input.end.take());
                },
                ctx.today,
            )?;
            let summary = store.course(&edited.id.to_string())?;
            emit(ctx.json, &summary, |s| show(ctx, &store, s))
        }
        CourseCommand::List => {
            let courses = ctx.open()?.courses()?;
            emit(ctx.json, &courses, |c| list(ctx, c))
        }
        CourseCommand::Show { course } => {
            let store = ctx.open()?;
            let summary = store.course(&course)?;
            emit(ctx.json, &summary, |s| show(ctx, &store, s))
        }
        CourseCommand::Roster { course, command } => roster(ctx, &course, command),
    }
}

fn list(ctx: &Ctx, courses: &[CourseSummary]) -> String {
    if courses.is_empty() {
        return ctx.tr("还没有课程。", "No courses.").into();
    }
    let rows = courses
        .iter()
        .map(|c| {
            vec![
                c.course.fields.title.clone(),
                c.school_name.clone(),
                format!("{}/{}", c.held, c.planned),
                c.course.id.to_string(),
            ]
        })
        .collect();
    table(
        &[
            Field::Course.label(ctx.lang),
            Field::School.label(ctx.lang),
            ctx.tr("已上/计划", "held/planned"),
            ctx.tr("编号", "id"),
        ],
        rows,
        &[],
    )
}

fn show(ctx: &Ctx, store: &Store, c: &CourseSummary) -> String {
    let lang = ctx.lang;
    let f = &c.course.fields;
    let mut lines = vec![
        ctx.line(ctx.tr("编号", "id"), c.course.id),
        ctx.line(Field::Title.label(lang), &f.title),
        ctx.line(Field::School.label(lang), &c.school_name),
    ];
    if !f.theme.is_empty() {
        lines.push(ctx.line(Field::Theme.label(lang), &f.theme));
    }
    if f.start.is_some() || f.end.is_some() {
        let date = |d: Option<chrono::NaiveDate>| d.map_or("—".to_string(), |d| d.to_string());
        lines.push(ctx.line(
            ctx.tr("日期", "dates"),
            format!("{} – {}", date(f.start), date(f.end)),
        ));
    }
    lines.push(ctx.line(
        ctx.tr("课时", "sessions"),
        match lang {
            Lang::ZhCn => format!(
                "已上 {} 课时，计划 {} 课时，还差 {} 课时",
                c.held, c.planned, c.missing
            ),
            Lang::En => format!(
                "{} held of {} planned, {} to go",
                c.held, c.planned, c.missing
            ),
        },
    ));
    let clashes = c.sessions.iter().filter(|s| s.clash).count();
    if clashes > 0 {
        lines.push(ctx.line(
            ctx.tr("注意", "note"),
            match lang {
                Lang::ZhCn => format!(
                    "{clashes} 条课时记录与另一条同日（可能是同一节课记了两次），请核对"
                ),
                Lang::En => format!(
                    "{clashes} sessions share their date with another (perhaps one session logged twice): check them"
                ),
            },
        ));
    }
    if !c.sessions.is_empty() {
        let rows = c
            .sessions
            .iter()
            .map(|s| {
                let mut label = session_label(s.number, c.planned, lang);
                if s.clash {
                    label.push_str(" ⚠");
                }
                vec![
                    label,
                    s.date.to_string(),
                    s.students.to_string(),
                    s.present.map_or_else(|| "—".to_string(), |n| n.to_string()),
                    s.visit.to_string(),
                ]
            })
            .collect();
        lines.push(String::new());
        lines.push(table(
            &[
                ctx.tr("课时", "session"),
                Field::Date.label(lang),
                Field::Students.label(lang),
                ctx.tr("点名到课", "marked present"),
                ctx.tr("记录编号", "visit id"),
            ],
            rows,
            &[2, 3],
        ));
    }
    if let Ok(roster) = store.roster(&c.course.id.to_string()) {
        let names: Vec<&str> = roster
            .iter()
            .filter(|s| !s.removed)
            .map(|s| s.name.as_str())
            .collect();
        if !names.is_empty() {
            lines.push(String::new());
            lines.push(ctx.line(
                ctx.tr("名单", "roster"),
                format!(
                    "{} {}{}",
                    names.len(),
                    ctx.tr("人：", "students: "),
                    names.join(list_sep(lang))
                ),
            ));
        }
    }
    lines.join("\n")
}

fn roster(ctx: &Ctx, course: &str, command: Option<RosterCommand>) -> Result<String> {
    let mut store = ctx.open()?;
    match command {
        None => {
            let roster = store.roster_attendance(course)?;
            emit(ctx.json, &roster_json(&roster), |_| {
                roster_text(ctx, &roster)
            })
        }
        Some(RosterCommand::Add {
            name,
            grade,
            gender,
        }) => {
            let student = store.add_student(
                course,
                &StudentInput {
                    name,
                    grade,
                    gender,
                },
            )?;
            emit(ctx.json, &student, |s| {
                ctx.line(ctx.tr("已加入名单", "added to the roster"), &s.name)
            })
        }
        Some(RosterCommand::Remove { name }) => {
            let student = store.remove_student(course, &name)?;
            emit(ctx.json, &student, |s| {
                ctx.line(ctx.tr("已移出名单", "taken off the roster"), &s.name)
            })
        }
        Some(RosterCommand::Export { csv }) => {
            let rows = store.export_roster(course, &csv)?;
            emit(
                ctx.json,
                &json!({ "file": csv, "rows": rows }),
                |_| match ctx.lang {
                    Lang::ZhCn => format!("已导出名单 {}（{rows} 人）", csv.display()),
                    Lang::En => format!("Wrote the roster to {} ({rows} students)", csv.display()),
                },
            )
        }
    }
}

fn roster_json(roster: &[(Student, u32)]) -> serde_json::Value {
    roster
        .iter()
        .map(|(s, attended)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["attended"] = json!(attended);
            v
        })
        .collect()
}

fn roster_text(ctx: &Ctx, roster: &[(Student, u32)]) -> String {
    if roster.is_empty() {
        return ctx.tr("名单是空的。", "The roster is empty.").into();
    }
    let rows = roster
        .iter()
        .map(|(s, attended)| {
            vec![
                s.name.clone(),
                s.grade.clone(),
                s.gender
                    .map_or(String::new(), |g| g.label(ctx.lang).to_string()),
                attended.to_string(),
                if s.removed {
                    ctx.tr("已移出", "removed").to_string()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    table(
        &[
            Field::Student.label(ctx.lang),
            Field::Grade.label(ctx.lang),
            Field::Gender.label(ctx.lang),
            ctx.tr("到课次数", "sessions attended"),
            "",
        ],
        rows,
        &[3],
    )
}

pub fn pairing(command: PairingCommand, ctx: &Ctx) -> Result<String> {
    let mut store = ctx.open()?;
    match command {
        PairingCommand::Add {
            volunteer,
            teacher,
            school,
            since,
        } => {
            let input = PairingInput {
                volunteer,
                teacher,
                school,
                since,
            };
            let pairing = store.add_pairing(&input, ctx.today)?;
            emit(ctx.json, &json!({ "id": pairing.id }), |_| {
                pairing.id.to_string()
            })
        }
        PairingCommand::End { id, on } => {
            let id = id
                .trim()
                .parse()
                .map_err(|_| CliError::BadPairingId(id.trim().to_string()))?;
            let pairing = store.end_pairing(id, on.unwrap_or(ctx.today))?;
            emit(ctx.json, &pairing, |p| {
                ctx.line(
                    ctx.tr("结对已结束", "pairing ended"),
                    p.until.unwrap_or(ctx.today),
                )
            })
        }
        PairingCommand::List => {
            let pairings = store.pairings()?;
            emit(ctx.json, &pairings, |p| pairings_text(ctx, &store, p))
        }
    }
}

fn pairings_text(ctx: &Ctx, store: &Store, pairings: &[Pairing]) -> String {
    if pairings.is_empty() {
        return ctx.tr("还没有结对。", "No pairings.").into();
    }
    let rows = pairings
        .iter()
        .map(|p| {
            let school = store.school(p.fields.school).map_or_else(
                |_| p.fields.school.to_string(),
                |s| format!("{}（{}）", s.fields.name, s.fields.area.label(ctx.lang)),
            );
            vec![
                p.fields.volunteer.clone(),
                p.fields.teacher.clone(),
                school,
                p.fields.since.to_string(),
                p.until.map_or(String::new(), |d| d.to_string()),
                p.id.to_string(),
            ]
        })
        .collect();
    table(
        &[
            Field::Volunteer.label(ctx.lang),
            Field::TeacherName.label(ctx.lang),
            Field::School.label(ctx.lang),
            Field::Since.label(ctx.lang),
            Field::Until.label(ctx.lang),
            ctx.tr("编号", "id"),
        ],
        rows,
        &[],
    )
}

pub fn members(ctx: &Ctx, offline: bool) -> Result<String> {
    let mut store = ctx.open()?;
    let members = if offline {
        store.members()?
    } else {
        fieldlog_core::sync::refresh_members(&mut store)?
    };
    emit(ctx.json, &members, |m| members_text(ctx, m))
}

fn members_text(ctx: &Ctx, members: &[EnrolledMember]) -> String {
    if members.is_empty() {
        return ctx
            .tr(
                "没有成员名单（加入科协平台后运行 fieldlog members）。",
                "No members known (enroll, then run fieldlog members).",
            )
            .into();
    }
    let rows = members
        .iter()
        .map(|m| {
            vec![
                m.team.to_string(),
                m.name.clone(),
                m.role.label(ctx.lang).to_string(),
            ]
        })
        .collect();
    table(
        &[
            Field::Team.label(ctx.lang),
            ctx.tr("成员", "member"),
            ctx.tr("角色", "role"),
        ],
        rows,
        &[],
    )
}
