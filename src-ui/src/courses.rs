//! Series courses (系列课程): the list with sessions held against planned, a new-course form,
//! and a course's screen: its sessions (number, date, students, those present, clashes), its
//! roster with add and remove, and "log a session", which opens the editor on the course.

use crate::api;
use crate::app::{Screen, lang_of, use_ctx};
use crate::editor::SchoolPicker;
use crate::i18n::*;
use crate::widgets::{Counter, ErrorBox, FieldErr, TextField, show_refusal};
use fieldlog_app_api::{
    AddCourse, AddStudent, CommandError, CourseArgs, CourseDetail, RemoveStudent, RosterEntry,
    SchoolHit, cmd,
};
use fieldlog_domain::CourseSummary;
use fieldlog_domain::course::session_label;
use fieldlog_domain::{
    CourseId, CourseInput, Field, FieldError, Gender, Student, StudentId, StudentInput,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// How much of a course was held, for the progress bar's width.
fn percent(held: u32, planned: u32) -> u32 {
    (held.min(planned) * 100).checked_div(planned).unwrap_or(0)
}

#[component]
fn Progress(held: u32, planned: u32) -> impl IntoView {
    view! {
        <div class="progress" role="progressbar" aria-valuemin="0"
            aria-valuemax=planned.to_string() aria-valuenow=held.to_string()>
            <div class="progress-bar" style=format!("width: {}%", percent(held, planned))></div>
        </div>
    }
}

#[component]
pub fn CourseList() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let courses = RwSignal::new(None::<Vec<CourseSummary>>);
    let failure = RwSignal::new(None::<CommandError>);
    let adding = RwSignal::new(false);
    Effect::new(move |_| {
        ctx.changed.track();
        spawn_local(async move {
            match api::call0::<Vec<CourseSummary>>(cmd::LIST_COURSES).await {
                Ok(list) => courses.set(Some(list)),
                Err(error) => failure.set(Some(error)),
            }
        });
    });
    let team = move || {
        ctx.overview
            .get()
            .and_then(|o| o.device)
            .map(|d| d.team)
            .unwrap_or_default()
    };
    view! {
        <section class="screen courses">
            <div class="screen-head">
                <h2>{t!(i18n, courses.title)}</h2>
                <Show when=move || !adding.get()>
                    <button type="button" class="secondary" id="new-course-toggle"
                        on:click=move |_| adding.set(true)>
                        "＋ "{t!(i18n, courses.new)}
                    </button>
                </Show>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <Show when=move || adding.get()>
                <NewCourse adding=adding />
            </Show>
            {move || courses.get().map(|list| if list.is_empty() {
                view! { <p class="empty" id="no-courses">{t!(i18n, courses.none)}</p> }.into_any()
            } else {
                let own = team();
                view! {
                    <ul class="course-rows">
                        {list.into_iter().map(|c| {
                            let id = c.course.id;
                            let (held, planned) = (c.held, c.planned);
                            let other_team = (c.course.team.as_str() != own)
                                .then(|| c.course.team.to_string());
                            view! {
                                <li>
                                    <button type="button" class="course-row" data-course=id.to_string()
                                        on:click=move |_| ctx.go(Screen::Course(id))>
                                        <span class="row-main">
                                            <span class="row-title">{c.course.fields.title.clone()}</span>
                                            <span class="row-count">
                                                {move || t_string!(i18n, courses.held, held = held, planned = planned).to_string()}
                                            </span>
                                        </span>
                                        <span class="row-sub">
                                            <span>{c.school_name.clone()}</span>
                                            {other_team.map(|team| view! { <span class="tag">{team}</span> })}
                                        </span>
                                        <Progress held=held planned=planned />
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            })}
        </section>
    }
}

/// A new course of this team: school, title, theme, planned sessions, dates.
#[component]
fn NewCourse(adding: RwSignal<bool>) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let school = RwSignal::new(None::<SchoolHit>);
    let title = RwSignal::new(String::new());
    let theme = RwSignal::new(String::new());
    let sessions = RwSignal::new(16_i64);
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let busy = RwSignal::new(false);
    let date = |value: RwSignal<String>| Some(value.get_untracked()).filter(|d| !d.is_empty());
    let create = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let args = AddCourse {
            course: CourseInput {
                school: school
                    .get_untracked()
                    .map(|s| s.id.to_string())
                    .unwrap_or_default(),
                title: title.get_untracked(),
                theme: theme.get_untracked(),
                sessions: sessions.get_untracked(),
                start: date(start),
                end: date(end),
            },
        };
        spawn_local(async move {
            match api::call::<_, CourseSummary>(cmd::ADD_COURSE, &args).await {
                Ok(course) => {
                    ctx.changed.update(|n| *n += 1);
                    ctx.notice
                        .set(Some(t_string!(i18n, courses.created).to_string()));
                    ctx.go(Screen::Course(course.course.id));
                }
                Err(error) => {
                    show_refusal(error, errors, failure);
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <div class="card new-course" id="new-course">
            <h3>{t!(i18n, courses.new)}</h3>
            <SchoolPicker school=school errors=errors />
            <TextField id="course-title" value=title field=Field::Title errors=errors>
                {t!(i18n, courses.title_label)}
            </TextField>
            <TextField id="course-theme" value=theme field=Field::Theme errors=errors>
                {t!(i18n, courses.theme)}
            </TextField>
            <div class="field">
                <Counter name="course-sessions" value=sessions>{t!(i18n, courses.sessions)}</Counter>
                <FieldErr field=Field::Sessions errors=errors />
            </div>
            <div class="two-dates">
                <TextField id="course-start" value=start kind="date" field=Field::CourseStart errors=errors>
                    {t!(i18n, courses.start)}
                </TextField>
                <TextField id="course-end" value=end kind="date" field=Field::CourseEnd errors=errors>
                    {t!(i18n, courses.end)}
                </TextField>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <div class="form-actions">
                <button type="button" class="secondary" id="new-course-cancel"
                    on:click=move |_| adding.set(false)>{t!(i18n, courses.cancel)}</button>
                <button type="button" class="primary" id="new-course-add" on:click=create
                    disabled=move || busy.get()>{t!(i18n, courses.add)}</button>
            </div>
        </div>
    }
}

/// A course: how far it got, its sessions, its roster, and "log a session".
#[component]
pub fn CourseView(id: CourseId) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let detail = RwSignal::new(None::<CourseDetail>);
    let failure = RwSignal::new(None::<CommandError>);
    // Bumped after a roster change, so the course reloads.
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        ctx.changed.track();
        reload.track();
        spawn_local(async move {
            match api::call::<_, CourseDetail>(cmd::COURSE_DETAIL, &CourseArgs { id }).await {
                Ok(found) => {
                    failure.set(None);
                    detail.set(Some(found));
                }
                Err(error) => failure.set(Some(error)),
            }
        });
    });
    view! {
        <section class="screen course" data-course=id.to_string()>
            <div class="detail-actions">
                <button type="button" class="secondary" id="course-back"
                    on:click=move |_| ctx.go(Screen::Courses)>{t!(i18n, courses.back)}</button>
                <button type="button" class="primary" id="log-session"
                    on:click=move |_| ctx.go(Screen::NewSession(id))>{t!(i18n, courses.log_session)}</button>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            {move || detail.get().map(|d| view! {
                <div class="course-grid">
                    <div>
                        <CourseHead detail=d.clone() />
                        <Sessions detail=d.clone() />
                    </div>
                    <Roster course=id roster=d.roster.clone() reload=reload />
                </div>
            })}
        </section>
    }
}

#[component]
fn CourseHead(detail: CourseDetail) -> impl IntoView {
    let i18n = use_i18n();
    let summary = detail.summary;
    let fields = summary.course.fields.clone();
    let (held, planned, missing) = (summary.held, summary.planned, summary.missing);
    let dates = match (fields.start, fields.end) {
        (None, None) => None,
        (start, end) => {
            let show =
                |d: Option<chrono::NaiveDate>| d.map_or("…".to_string(), |d| d.to_string());
            Some((show(start), show(end)))
        }
    };
    let clashes = summary.sessions.iter().any(|s| s.clash);
    view! {
        <article class="card course-head">
            <h2 id="course-title-shown">{fields.title.clone()}</h2>
            <p class="muted" id="course-school">
                {summary.school_name.clone()}
                {(!fields.theme.is_empty()).then(|| format!(" · {}", fields.theme))}
            </p>
            {dates.map(|(start, end)| view! {
                <p class="muted">{move || t_string!(i18n, courses.dates, start = start.clone(), end = end.clone()).to_string()}</p>
            })}
            <Progress held=held planned=planned />
            <p id="course-progress">
                {move || t_string!(i18n, courses.progress, held = held, planned = planned, missing = missing).to_string()}
            </p>
            {clashes.then(|| view! { <p class="warning" id="clash-note" role="note">{t!(i18n, courses.clash_note)}</p> })}
        </article>
    }
}

#[component]
fn Sessions(detail: CourseDetail) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let lang = move || lang_of(i18n.get_locale());
    let planned = detail.summary.planned;
    let sessions = detail.summary.sessions;
    view! {
        <div class="card">
            <h3>{t!(i18n, courses.sessions_title)}</h3>
            {sessions.is_empty().then(|| view! { <p class="empty" id="no-sessions">{t!(i18n, courses.no_sessions)}</p> })}
            <ul class="session-rows">
                {sessions.into_iter().map(|s| {
                    let visit = s.visit;
                    let (students, present) = (s.students, s.present);
                    view! {
                        <li>
                            <button type="button" class="session-row" data-visit=visit.to_string()
                                data-number=s.number.to_string()
                                on:click=move |_| ctx.go(Screen::Detail(visit))>
                                <span class="row-main">
                                    <span class="session-label">{move || session_label(s.number, planned, lang())}</span>
                                    <span class="row-date">{s.date.to_string()}</span>
                                </span>
                                <span class="row-sub">
                                    <span class="session-students">{move || t_string!(i18n, courses.students_n, n = students).to_string()}</span>
                                    {present.map(|n| view! {
                                        <span class="session-present">{move || t_string!(i18n, courses.present_n, n = n).to_string()}</span>
                                    })}
                                    {s.clash.then(|| view! { <span class="tag clash">"⚠ "{t!(i18n, courses.clash)}</span> })}
                                </span>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

/// The roster: who is on it (and how often they came), add a student, take one off. Kept for
/// the course's team and coordinators: anyone else sees why not.
#[component]
fn Roster(
    course: CourseId,
    roster: Option<Vec<RosterEntry>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let i18n = use_i18n();
    let Some(roster) = roster else {
        return view! {
            <div class="card roster" id="roster">
                <h3>{t!(i18n, courses.roster)}</h3>
                <p class="muted" id="roster-hidden">{t!(i18n, courses.roster_hidden)}</p>
            </div>
        }
        .into_any();
    };
    let (current, removed): (Vec<RosterEntry>, Vec<RosterEntry>) =
        roster.into_iter().partition(|r| !r.student.removed);
    let count = current.len();
    let removed_count = removed.len();
    view! {
        <div class="card roster" id="roster">
            <h3>
                {t!(i18n, courses.roster)}
                <span class="muted count" id="roster-count">{move || t_string!(i18n, courses.roster_count, n = count).to_string()}</span>
            </h3>
            {current.is_empty().then(|| view! { <p class="empty" id="roster-empty">{t!(i18n, courses.roster_empty)}</p> })}
            <ul class="roster-rows">
                {current.into_iter().map(|entry| view! {
                    <RosterRow course=course entry=entry reload=reload />
                }).collect_view()}
            </ul>
            {(removed_count > 0).then(|| view! {
                <details class="removed">
                    <summary>{move || t_string!(i18n, courses.removed, n = removed_count).to_string()}</summary>
                    <ul class="roster-rows">
                        {removed.into_iter().map(|entry| view! {
                            <RosterRow course=course entry=entry reload=reload />
                        }).collect_view()}
                    </ul>
                </details>
            })}
            <AddStudentForm course=course reload=reload />
        </div>
    }
    .into_any()
}

#[component]
fn RosterRow(course: CourseId, entry: RosterEntry, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let Student {
        id,
        name,
        grade,
        gender,
        removed,
    } = entry.student;
    let attended = entry.attended;
    let confirming = RwSignal::new(false);
    let failure = RwSignal::new(None::<CommandError>);
    let remove = move |student: StudentId| {
        spawn_local(async move {
            let args = RemoveStudent { course, student };
            match api::call::<_, Student>(cmd::REMOVE_STUDENT, &args).await {
                Ok(_) => reload.update(|n| *n += 1),
                Err(error) => failure.set(Some(error)),
            }
        });
    };
    let about = move || {
        let mut parts = Vec::new();
        if !grade.is_empty() {
            parts.push(grade.clone());
        }
        if let Some(gender) = gender {
            parts.push(gender.label(lang()).to_string());
        }
        parts.push(t_string!(i18n, courses.attended, n = attended).to_string());
        parts.join(" · ")
    };
    view! {
        <li class=if removed { "roster-row removed" } else { "roster-row" } data-student=name.clone()>
            <span class="roster-who">
                <strong>{name.clone()}</strong>
                <small class="muted">{about}</small>
            </span>
            {(!removed).then(|| view! {
                {move || if confirming.get() {
                    view! {
                        <button type="button" class="danger confirm-remove" on:click=move |_| remove(id)>
                            {t!(i18n, courses.confirm_remove)}
                        </button>
                    }.into_any()
                } else {
                    view! {
                        <button type="button" class="secondary remove-student" on:click=move |_| confirming.set(true)>
                            {t!(i18n, courses.remove)}
                        </button>
                    }.into_any()
                }}
            })}
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
        </li>
    }
}

#[component]
fn AddStudentForm(course: CourseId, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let name = RwSignal::new(String::new());
    let grade = RwSignal::new(String::new());
    let gender = RwSignal::new(None::<Gender>);
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let add = move |_| {
        let args = AddStudent {
            course,
            student: StudentInput {
                name: name.get_untracked(),
                grade: grade.get_untracked(),
                gender: gender
                    .get_untracked()
                    .map(|g| g.key().to_string())
                    .unwrap_or_default(),
            },
        };
        spawn_local(async move {
            match api::call::<_, Student>(cmd::ADD_STUDENT, &args).await {
                Ok(_) => {
                    // The grade often stays the same for the next name.
                    name.set(String::new());
                    gender.set(None);
                    errors.set(Vec::new());
                    failure.set(None);
                    reload.update(|n| *n += 1);
                }
                Err(error) => {
                    show_refusal(error, errors, failure);
                }
            }
        });
    };
    view! {
        <div class="add-student" id="add-student">
            <h4>{t!(i18n, courses.add_student)}</h4>
            <TextField id="student-name" value=name field=Field::Student errors=errors>
                {t!(i18n, courses.student_name)}
            </TextField>
            <TextField id="student-grade" value=grade field=Field::Grade errors=errors>
                {t!(i18n, courses.grade)}
            </TextField>
            <div class="field">
                <span class="label">{t!(i18n, courses.gender)}</span>
                <div class="chips">
                    {Gender::ALL.iter().map(|&g| {
                        let on = move || gender.get() == Some(g);
                        view! {
                            <button type="button" id=format!("student-gender-{}", g.key())
                                class=move || if on() { "chip on" } else { "chip" }
                                aria-pressed=move || on().to_string()
                                on:click=move |_| gender.update(|v| *v = if *v == Some(g) { None } else { Some(g) })>
                                {move || g.label(lang())}
                            </button>
                        }
                    }).collect_view()}
                </div>
                <FieldErr field=Field::Gender errors=errors />
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <button type="button" class="primary" id="student-add" on:click=add>
                {t!(i18n, courses.add_student)}
            </button>
        </div>
    }
}
