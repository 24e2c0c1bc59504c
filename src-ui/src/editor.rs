//! The visit editor: course (the school and topic follow) with attendance by roster, school
//! picker, date, activities, topic, presenters, audience counters, donations, photos, notes.
//! Saving is local and instant; refused fields show their reason beside them, and nothing is
//! saved.

use crate::api;
use crate::app::{Screen, lang_of, use_ctx};
use crate::i18n::*;
use crate::widgets::{Counter, ErrorBox, FieldErr, TextField};
use fieldlog_app_api::{
    AddSchool, CommandError, CourseArgs, CourseDetail, DiscardPhotos, ErrorKind, NewPhoto,
    PhotoRefArgs, SaveVisit, SchoolHit, SearchSchools, SessionNumber, StagedPhoto, Thumbnail,
    VisitDetail, VisitRef, cmd,
};
use fieldlog_domain::CourseSummary;
use fieldlog_domain::course::session_label;
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::visit::{AudienceInput, DonationsInput};
use fieldlog_domain::{
    ActivityKind, Area, Cohort, CourseId, Field, FieldError, Gender, GradeBand, SchoolInput,
    SchoolStatus, Student, StudentId, VisitId, VisitInput,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::{BTreeMap, BTreeSet};
use wasm_bindgen::JsCast;

/// A photo picked for this visit, staged in the shell until the visit is saved.
#[derive(Debug, Clone)]
struct PhotoDraft {
    token: String,
    /// An object URL of the picked file, for the thumbnail.
    preview: String,
    caption: RwSignal<String>,
    consent: RwSignal<bool>,
}

/// Everything the form holds.
#[derive(Debug, Clone, Copy)]
struct Form {
    school: RwSignal<Option<SchoolHit>>,
    date: RwSignal<String>,
    activities: RwSignal<BTreeSet<ActivityKind>>,
    topic: RwSignal<String>,
    presenters: RwSignal<String>,
    notes: RwSignal<String>,
    students: RwSignal<i64>,
    teachers: RwSignal<i64>,
    others: RwSignal<i64>,
    books: RwSignal<i64>,
    kits: RwSignal<i64>,
    breakdown: StoredValue<BTreeMap<Cohort, RwSignal<i64>>>,
    photos: RwSignal<Vec<PhotoDraft>>,
    saved_photos: RwSignal<Vec<PhotoRef>>,
    errors: RwSignal<Vec<FieldError>>,
    /// The course this visit is a session of.
    course: RwSignal<Option<CourseId>>,
    /// The chosen course's title, which the topic takes until the person types another.
    course_title: RwSignal<String>,
    /// Students marked present.
    attendance: RwSignal<BTreeSet<StudentId>>,
    /// The course's roster as the attendance buttons show it; `None` until it is known.
    roster: RwSignal<Option<Vec<Student>>>,
    /// The session number shown beside the course.
    session: RwSignal<Option<SessionNumber>>,
    /// The edited visit's own course and session, shown again if the course is re-chosen.
    own_session: StoredValue<Option<(CourseId, Option<SessionNumber>)>>,
}

impl Form {
    fn new() -> Form {
        Form {
            school: RwSignal::new(None),
            date: RwSignal::new(chrono::Local::now().date_naive().to_string()),
            activities: RwSignal::new(BTreeSet::new()),
            topic: RwSignal::new(String::new()),
            presenters: RwSignal::new(String::new()),
            notes: RwSignal::new(String::new()),
            students: RwSignal::new(0),
            teachers: RwSignal::new(0),
            others: RwSignal::new(0),
            books: RwSignal::new(0),
            kits: RwSignal::new(0),
            breakdown: StoredValue::new(Cohort::all().map(|c| (c, RwSignal::new(0))).collect()),
            photos: RwSignal::new(Vec::new()),
            saved_photos: RwSignal::new(Vec::new()),
            errors: RwSignal::new(Vec::new()),
            course: RwSignal::new(None),
            course_title: RwSignal::new(String::new()),
            attendance: RwSignal::new(BTreeSet::new()),
            roster: RwSignal::new(None),
            session: RwSignal::new(None),
            own_session: StoredValue::new(None),
        }
    }

    /// Whether attendance is being taken: then the student count is the number present.
    fn taking_attendance(&self) -> bool {
        self.attendance.with(|present| !present.is_empty())
    }

    fn fill(&self, detail: &VisitDetail) {
        let fields = &detail.summary.visit.fields;
        self.school.set(detail.school.clone());
        self.date.set(fields.date.to_string());
        self.activities.set(fields.activities.clone());
        self.topic.set(fields.topic.clone());
        self.presenters.set(fields.presenters.clone());
        self.notes.set(fields.notes.clone());
        self.students.set(fields.audience.students.into());
        self.teachers.set(fields.audience.teachers.into());
        self.others.set(fields.audience.others.into());
        self.books.set(fields.donations.books.into());
        self.kits.set(fields.donations.kits.into());
        self.breakdown.with_value(|cells| {
            for (cohort, cell) in cells {
                let n = fields.audience.breakdown.get(cohort).copied().unwrap_or(0);
                cell.set(n.into());
            }
        });
        self.saved_photos.set(detail.summary.visit.photos.clone());
        self.attendance.set(fields.attendance.clone());
        if let Some(course) = &detail.course {
            self.course.set(Some(course.id));
            self.course_title.set(course.title.clone());
            self.session.set(course.session);
            self.own_session
                .set_value(Some((course.id, course.session)));
            load_course(*self, course.id, false);
        }
    }

    fn input(&self) -> VisitInput {
        VisitInput {
            school: self
                .school
                .get_untracked()
                .map(|s| s.id.to_string())
                .unwrap_or_default(),
            date: Some(self.date.get_untracked()),
            activities: self
                .activities
                .get_untracked()
                .iter()
                .map(|a| a.key().to_string())
                .collect(),
            topic: self.topic.get_untracked(),
            presenters: self.presenters.get_untracked(),
            notes: self.notes.get_untracked(),
            course: self
                .course
                .get_untracked()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            attendance: self
                .attendance
                .get_untracked()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            audience: AudienceInput {
                // With attendance the count is the number present, so the two always agree.
                students: match self.attendance.with_untracked(BTreeSet::len) {
                    0 => self.students.get_untracked(),
                    present => i64::try_from(present).unwrap_or(i64::MAX),
                },
                teachers: self.teachers.get_untracked(),
                others: self.others.get_untracked(),
                breakdown: self.breakdown.with_value(|cells| {
                    cells
                        .iter()
                        .map(|(c, n)| (c.to_string(), n.get_untracked()))
                        .filter(|(_, n)| *n != 0)
                        .collect()
                }),
            },
            donations: DonationsInput {
                books: self.books.get_untracked(),
                kits: self.kits.get_untracked(),
            },
        }
    }
}

/// Loads a course's school, roster and session number into the form. `picked`: the person
/// just chose it (the topic and activity follow, attendance starts empty); otherwise the
/// edited visit's course is being shown again.
fn load_course(form: Form, id: CourseId, picked: bool) {
    spawn_local(async move {
        let detail =
            match api::call::<_, CourseDetail>(cmd::COURSE_DETAIL, &CourseArgs { id }).await {
                Ok(detail) => detail,
                Err(error) => {
                    form.errors.set(
                        error
                            .details
                            .fields
                            .into_iter()
                            .map(|f| FieldError::new(Field::Course, f.reason))
                            .collect(),
                    );
                    return;
                }
            };
        // Another course was chosen while this one loaded.
        if form.course.get_untracked() != Some(id) {
            return;
        }
        if let Some(school) = detail.school {
            form.school.set(Some(school));
        }
        let present = form.attendance.get_untracked();
        form.roster.set(Some(
            detail
                .roster
                .unwrap_or_default()
                .into_iter()
                .map(|entry| entry.student)
                // Someone taken off the roster since stays shown where they were present.
                .filter(|s| !s.removed || present.contains(&s.id))
                .collect(),
        ));
        let title = detail.summary.course.fields.title;
        if picked {
            let previous = form.course_title.get_untracked();
            form.topic.update(|topic| {
                if topic.trim().is_empty() || *topic == previous {
                    *topic = title.clone();
                }
            });
            form.activities.update(|kinds| {
                if kinds.is_empty() {
                    kinds.insert(ActivityKind::ClassSession);
                }
            });
            let own = form
                .own_session
                .get_value()
                .filter(|(course, _)| *course == id);
            form.session.set(match own {
                Some((_, session)) => session,
                None => Some(detail.next),
            });
        }
        form.course_title.set(title);
    });
}

#[component]
pub fn Editor(
    id: Option<VisitId>,
    /// A new visit as a session of this course (from the course screen).
    #[prop(optional)]
    course: Option<CourseId>,
) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let form = Form::new();
    let failure = RwSignal::new(None::<CommandError>);
    let saving = RwSignal::new(false);
    if let Some(course) = course {
        form.course.set(Some(course));
        load_course(form, course, true);
    }
    if let Some(id) = id {
        spawn_local(async move {
            match api::call::<_, VisitDetail>(cmd::VISIT_DETAIL, &VisitRef { id }).await {
                Ok(detail) => form.fill(&detail),
                Err(error) => failure.set(Some(error)),
            }
        });
    }
    let save = move |_| {
        if saving.get_untracked() {
            return;
        }
        saving.set(true);
        let args = SaveVisit {
            id,
            input: form.input(),
            photos: form
                .photos
                .get_untracked()
                .iter()
                .map(|p| NewPhoto {
                    token: p.token.clone(),
                    caption: p.caption.get_untracked(),
                    consent: p.consent.get_untracked(),
                })
                .collect(),
            remove_photos: Vec::new(),
        };
        spawn_local(async move {
            match api::call::<_, VisitId>(cmd::SAVE_VISIT, &args).await {
                Ok(saved) => {
                    ctx.notice
                        .set(Some(t_string!(i18n, editor.saved).to_string()));
                    ctx.changed.update(|n| *n += 1);
                    ctx.reload_overview();
                    ctx.go(Screen::Detail(saved));
                }
                Err(error) => {
                    form.errors.set(error.details.fields.clone());
                    failure.set(Some(error));
                    saving.set(false);
                    scroll_to_first_error();
                }
            }
        });
    };
    let cancel = move |_| {
        let tokens: Vec<String> = form
            .photos
            .get_untracked()
            .iter()
            .map(|p| p.token.clone())
            .collect();
        discard(tokens);
        match (id, course) {
            (Some(id), _) => ctx.go(Screen::Detail(id)),
            (None, Some(course)) => ctx.go(Screen::Course(course)),
            (None, None) => ctx.go(Screen::Home),
        }
    };
    let title = move || match id {
        None => t_string!(i18n, editor.title_new),
        Some(_) => t_string!(i18n, editor.title_edit),
    };
    let lang = move || lang_of(i18n.get_locale());

    view! {
        <section class="screen editor">
            <h2>{title}</h2>
            {move || failure.get().map(|error| {
                if error.kind == ErrorKind::Invalid {
                    view! { <p class="form-error" id="form-error" role="alert">{t!(i18n, editor.fix_fields)}</p> }.into_any()
                } else {
                    view! { <ErrorBox error=error /> }.into_any()
                }
            })}
            <div class="editor-grid">
                <div class="editor-col">
                    <CoursePicker form=form />
                    <SchoolPicker school=form.school errors=form.errors
                        locked=Signal::derive(move || form.course.get().is_some()) />
                    <label class="field">
                        <span class="label">{t!(i18n, editor.date)}</span>
                        <input type="date" id="visit-date"
                            prop:value=move || form.date.get()
                            on:change=move |ev| form.date.set(event_target_value(&ev)) />
                        <FieldErr field=Field::Date errors=form.errors />
                    </label>
                    <Attendance form=form />
                    <div class="field" id="field-activities">
                        <span class="label">{t!(i18n, editor.activities)}</span>
                        <div class="chips">
                            {ActivityKind::ALL.iter().map(|&kind| {
                                let on = move || form.activities.get().contains(&kind);
                                view! {
                                    <button type="button" id=format!("chip-{}", kind.key())
                                        class=move || if on() { "chip on" } else { "chip" }
                                        aria-pressed=move || on().to_string()
                                        on:click=move |_| form.activities.update(|set| {
                                            if !set.remove(&kind) { set.insert(kind); }
                                        })>
                                        {move || kind.label(lang())}
                                    </button>
                                }
                            }).collect_view()}
                        </div>
                        <FieldErr field=Field::Activities errors=form.errors />
                    </div>
                    <TextField id="visit-topic" value=form.topic field=Field::Topic errors=form.errors>
                        {t!(i18n, editor.topic)}
                    </TextField>
                    <TextField id="visit-presenters" value=form.presenters field=Field::Presenters errors=form.errors>
                        {t!(i18n, editor.presenters)}
                    </TextField>
                </div>
                <div class="editor-col">
                    <Audience form=form />
                    <div class="field">
                        <span class="label">{t!(i18n, editor.donations)}</span>
                        <Counter name="books" value=form.books>{t!(i18n, editor.books)}</Counter>
                        <FieldErr field=Field::Books errors=form.errors />
                        <Counter name="kits" value=form.kits>{t!(i18n, editor.kits)}</Counter>
                        <FieldErr field=Field::Kits errors=form.errors />
                    </div>
                    <Photos form=form />
                    <label class="field">
                        <span class="label">{t!(i18n, editor.notes)}</span>
                        <textarea id="visit-notes" rows="4"
                            prop:value=move || form.notes.get()
                            on:input=move |ev| form.notes.set(event_target_value(&ev))></textarea>
                        <FieldErr field=Field::Notes errors=form.errors />
                    </label>
                </div>
            </div>
            <div class="save-bar">
                <button type="button" class="secondary" id="cancel-visit" on:click=cancel>{t!(i18n, editor.cancel)}</button>
                <button type="button" class="primary" id="save-visit" on:click=save
                    disabled=move || saving.get()>
                    {move || if saving.get() { t_string!(i18n, editor.saving) } else { t_string!(i18n, editor.save) }}
                </button>
            </div>
        </section>
    }
}

fn scroll_to_first_error() {
    request_animation_frame(|| {
        if let Ok(Some(element)) = document().query_selector(".field-error, .form-error") {
            element.scroll_into_view();
        }
    });
}

/// Picks a course of this team; the school, topic and session number follow.
#[component]
fn CoursePicker(form: Form) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let lang = move || lang_of(i18n.get_locale());
    let courses = RwSignal::new(Vec::<CourseSummary>::new());
    spawn_local(async move {
        if let Ok(all) = api::call0::<Vec<CourseSummary>>(cmd::LIST_COURSES).await {
            courses.set(all);
        }
    });
    // Only the team's own courses, and the edited visit's whatever it is.
    let offered = move || {
        let team = ctx
            .overview
            .get()
            .and_then(|o| o.device)
            .map(|d| d.team)
            .unwrap_or_default();
        let chosen = form.course.get();
        courses
            .get()
            .into_iter()
            .filter(|c| c.course.team.as_str() == team || Some(c.course.id) == chosen)
            .collect::<Vec<_>>()
    };
    let choose = move |value: String| {
        let picked: Option<CourseId> = value.parse().ok();
        form.course.set(picked);
        form.attendance.set(BTreeSet::new());
        form.roster.set(None);
        form.session.set(None);
        if let Some(course) = picked {
            load_course(form, course, true);
        }
    };
    let label = move || {
        form.session
            .get()
            .map(|s| session_label(s.number, s.planned, lang()))
    };
    view! {
        <Show when=move || !offered().is_empty() || form.course.get().is_some()>
            <label class="field" id="field-course">
                <span class="label">{t!(i18n, editor.course)}</span>
                <select id="visit-course" on:change=move |ev| choose(event_target_value(&ev))>
                    <option value="" selected=move || form.course.get().is_none()>
                        {t!(i18n, editor.no_course)}
                    </option>
                    {move || offered().into_iter().map(|c| {
                        let id = c.course.id;
                        view! {
                            <option value=id.to_string() selected=move || form.course.get() == Some(id)>
                                {format!("{} · {}", c.course.fields.title, c.school_name)}
                            </option>
                        }
                    }).collect_view()}
                </select>
                {move || label().map(|text| view! { <span class="session-label" id="session-label">{text}</span> })}
                <FieldErr field=Field::Course errors=form.errors />
            </label>
        </Show>
    }
}

/// Attendance from the course's roster: one large button per student, tapped as they answer.
#[component]
fn Attendance(form: Form) -> impl IntoView {
    let i18n = use_i18n();
    let students = move || form.roster.get().unwrap_or_default();
    let present = move || form.attendance.with(BTreeSet::len);
    let all_present = move |_| {
        form.attendance.set(
            students()
                .iter()
                .filter(|s| !s.removed)
                .map(|s| s.id)
                .collect(),
        );
    };
    let toggle = move |id: StudentId| {
        form.attendance.update(|set| {
            if !set.remove(&id) {
                set.insert(id);
            }
        });
    };
    view! {
        <Show when=move || form.course.get().is_some() && form.roster.get().is_some()>
            <div class="field attendance" id="field-attendance">
                <span class="label">
                    {t!(i18n, editor.attendance)}
                    <span class="total" id="attendance-count">
                        {move || t_string!(i18n, editor.present_count, n = present(), total = students().len()).to_string()}
                    </span>
                </span>
                {move || if students().is_empty() {
                    view! { <p class="muted" id="no-roster">{t!(i18n, editor.no_roster)}</p> }.into_any()
                } else {
                    view! {
                        <div class="roster-grid">
                            {students().into_iter().map(|student| {
                                let id = student.id;
                                let on = move || form.attendance.with(|set| set.contains(&id));
                                view! {
                                    <button type="button"
                                        class=move || if on() { "student on" } else { "student" }
                                        aria-pressed=move || on().to_string()
                                        data-student=student.name.clone()
                                        on:click=move |_| toggle(id)>
                                        {student.name.clone()}
                                    </button>
                                }
                            }).collect_view()}
                        </div>
                        <div class="attendance-actions">
                            <button type="button" class="secondary" id="attendance-all" on:click=all_present>
                                {t!(i18n, editor.all_present)}
                            </button>
                            <button type="button" class="link" id="attendance-clear"
                                on:click=move |_| form.attendance.set(BTreeSet::new())>
                                {t!(i18n, editor.clear_attendance)}
                            </button>
                        </div>
                    }.into_any()
                }}
                <FieldErr field=Field::Attendance errors=form.errors />
            </div>
        </Show>
    }
}

/// Finds schools by name or pinyin initials; recent ones first; adds a field-entered school.
/// `locked`: a course set the school, so it cannot be changed here.
#[component]
pub fn SchoolPicker(
    school: RwSignal<Option<SchoolHit>>,
    errors: RwSignal<Vec<FieldError>>,
    #[prop(optional)] locked: Option<Signal<bool>>,
) -> impl IntoView {
    let locked = move || locked.is_some_and(|l| l.get());
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let query = RwSignal::new(String::new());
    let hits = RwSignal::new(Vec::<SchoolHit>::new());
    let searched = RwSignal::new(false);
    // Answers can arrive out of order; only the latest query's answer is shown.
    let asked = StoredValue::new(0u32);
    let search = move |text: String| {
        asked.update_value(|n| *n += 1);
        let mine = asked.get_value();
        spawn_local(async move {
            let args = SearchSchools { query: text };
            if let Ok(found) = api::call::<_, Vec<SchoolHit>>(cmd::SEARCH_SCHOOLS, &args).await
                && asked.get_value() == mine
            {
                hits.set(found);
                searched.set(!args.query.trim().is_empty());
            }
        });
    };
    // Recent schools before anything is typed.
    search(String::new());

    let adding = RwSignal::new(false);
    let new_name = RwSignal::new(String::new());
    let new_district = RwSignal::new(String::new());
    let new_area = RwSignal::new(None::<Area>);
    let new_errors = RwSignal::new(Vec::<FieldError>::new());
    let add_school = move |_| {
        let args = AddSchool {
            school: SchoolInput {
                name: new_name.get_untracked(),
                district: new_district.get_untracked(),
                area: new_area
                    .get_untracked()
                    .map(|a| a.key().to_string())
                    .unwrap_or_default(),
                ..Default::default()
            },
        };
        spawn_local(async move {
            match api::call::<_, SchoolHit>(cmd::ADD_SCHOOL, &args).await {
                Ok(added) => {
                    school.set(Some(added));
                    adding.set(false);
                    new_errors.set(Vec::new());
                }
                Err(error) => new_errors.set(error.details.fields),
            }
        });
    };
    let open_new_school = move |_| {
        // A typed Chinese name is likely the new school's name.
        let typed = query.get_untracked();
        if !typed.is_ascii() {
            new_name.set(typed);
        }
        adding.set(true);
    };

    let chosen = move || {
        school.get().map(|hit| {
            view! {
                <div class="school-chosen" id="school-chosen">
                    <div>
                        <strong>{hit.name.clone()}</strong>
                        <small>{move || format!("{} · {}", hit.district, hit.area.label(lang()))}</small>
                        {(hit.status == SchoolStatus::Pending).then(|| view! {
                            <span class="tag">{t!(i18n, editor.pending)}</span>
                        })}
                    </div>
                    {move || if locked() {
                        view! { <small class="muted" id="school-from-course">{t!(i18n, editor.school_from_course)}</small> }.into_any()
                    } else {
                        view! {
                            <button type="button" class="secondary" id="change-school"
                                on:click=move |_| school.set(None)>{t!(i18n, editor.change_school)}</button>
                        }.into_any()
                    }}
                </div>
            }
        })
    };
    let picker = move || {
        view! {
            <input type="search" id="school-search" autocomplete="off"
                placeholder=move || t_string!(i18n, editor.school_search)
                prop:value=move || query.get()
                on:input=move |ev| {
                    let text = event_target_value(&ev);
                    query.set(text.clone());
                    search(text);
                } />
            <ul class="school-hits">
                {move || hits.get().into_iter().map(|hit| {
                    let picked = hit.clone();
                    view! {
                        <li>
                            <button type="button" class="school-hit" data-school=hit.name.clone()
                                on:click=move |_| school.set(Some(picked.clone()))>
                                <span>{hit.name.clone()}</span>
                                <small>{move || format!("{} · {}", hit.district, hit.area.label(lang()))}</small>
                                {hit.recent.then(|| view! { <span class="tag">{t!(i18n, editor.recent)}</span> })}
                                {(hit.status == SchoolStatus::Pending).then(|| view! {
                                    <span class="tag">{t!(i18n, editor.pending)}</span>
                                })}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {move || (searched.get() && hits.get().is_empty()).then(|| view! {
                <p class="empty">{t!(i18n, editor.no_match)}</p>
            })}
            {move || if adding.get() {
                view! {
                    <div class="new-school card" id="new-school">
                        <TextField id="new-school-name" value=new_name field=Field::SchoolName errors=new_errors>
                            {t!(i18n, editor.new_school_name)}
                        </TextField>
                        <TextField id="new-school-district" value=new_district field=Field::District errors=new_errors>
                            {t!(i18n, editor.district)}
                        </TextField>
                        <div class="field">
                            <span class="label">{t!(i18n, editor.area)}</span>
                            <div class="chips">
                                {Area::ALL.iter().map(|&area| {
                                    let on = move || new_area.get() == Some(area);
                                    view! {
                                        <button type="button" id=format!("area-{}", area.key())
                                            class=move || if on() { "chip on" } else { "chip" }
                                            aria-pressed=move || on().to_string()
                                            on:click=move |_| new_area.set(Some(area))>
                                            {move || area.label(lang())}
                                        </button>
                                    }
                                }).collect_view()}
                            </div>
                            <FieldErr field=Field::Area errors=new_errors />
                        </div>
                        <button type="button" class="primary" id="add-school" on:click=add_school>
                            {t!(i18n, editor.add_school)}
                        </button>
                    </div>
                }.into_any()
            } else {
                view! {
                    <button type="button" class="link" id="new-school-toggle" on:click=open_new_school>
                        "＋ "{t!(i18n, editor.new_school)}
                    </button>
                }.into_any()
            }}
        }
    };
    view! {
        <div class="field" id="field-school">
            <span class="label">{t!(i18n, editor.school)}</span>
            {move || if school.get().is_some() { chosen().into_any() } else { picker().into_any() }}
            <FieldErr field=Field::School errors=errors />
        </div>
    }
}

#[component]
fn Audience(form: Form) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let students = move || match form.attendance.with(BTreeSet::len) {
        0 => form.students.get().max(0),
        present => i64::try_from(present).unwrap_or(i64::MAX),
    };
    let total = move || students() + form.teachers.get().max(0) + form.others.get().max(0);
    // Only a change between counting and taking attendance swaps the student counter.
    let taking_attendance = Memo::new(move |_| form.taking_attendance());
    view! {
        <div class="field" id="field-audience">
            <span class="label">
                {t!(i18n, editor.audience)}
                <span class="total" id="audience-total">{move || t_string!(i18n, editor.total, n = total()).to_string()}</span>
            </span>
            {move || if taking_attendance.get() {
                view! {
                    <div class="counter" id="students-from-attendance">
                        <span class="counter-label">{t!(i18n, editor.students)}</span>
                        <span class="counter-fixed">
                            <strong id="students-present">{move || form.attendance.with(BTreeSet::len)}</strong>
                            <small>{t!(i18n, editor.from_attendance)}</small>
                        </span>
                    </div>
                }.into_any()
            } else {
                view! { <Counter name="students" value=form.students>{t!(i18n, editor.students)}</Counter> }.into_any()
            }}
            <FieldErr field=Field::Students errors=form.errors />
            <Counter name="teachers" value=form.teachers>{t!(i18n, editor.teachers)}</Counter>
            <FieldErr field=Field::Teachers errors=form.errors />
            <Counter name="others" value=form.others>{t!(i18n, editor.others)}</Counter>
            <FieldErr field=Field::Others errors=form.errors />
            <details class="breakdown">
                <summary>{t!(i18n, editor.breakdown)}</summary>
                <div class="breakdown-grid">
                    {GradeBand::ALL.iter().map(|&band| view! {
                        <div class="breakdown-row">
                            <span class="breakdown-band">{move || band.label(lang())}</span>
                            {Gender::ALL.iter().map(|&gender| {
                                let cohort = Cohort { band, gender };
                                let cell = form.breakdown.with_value(|cells| cells.get(&cohort).copied());
                                cell.map(|value| {
                                    let name: &'static str = cohort_name(cohort);
                                    view! {
                                        <Counter name=name value=value small=true>
                                            {move || gender.label(lang())}
                                        </Counter>
                                    }
                                })
                            }).collect_view()}
                        </div>
                    }).collect_view()}
                </div>
            </details>
            <FieldErr field=Field::Breakdown errors=form.errors />
        </div>
    }
}

/// Element-id names for the breakdown counters (`grades_1_3-female`).
fn cohort_name(cohort: Cohort) -> &'static str {
    match (cohort.band, cohort.gender) {
        (GradeBand::Preschool, Gender::Female) => "preschool-female",
        (GradeBand::Preschool, Gender::Male) => "preschool-male",
        (GradeBand::Grades1To3, Gender::Female) => "grades_1_3-female",
        (GradeBand::Grades1To3, Gender::Male) => "grades_1_3-male",
        (GradeBand::Grades4To6, Gender::Female) => "grades_4_6-female",
        (GradeBand::Grades4To6, Gender::Male) => "grades_4_6-male",
        (GradeBand::Junior, Gender::Female) => "junior-female",
        (GradeBand::Junior, Gender::Male) => "junior-male",
        (GradeBand::Senior, Gender::Female) => "senior-female",
        (GradeBand::Senior, Gender::Male) => "senior-male",
    }
}

/// Photos from the camera or from files: thumbnails, caption, consent (off by default).
#[component]
fn Photos(form: Form) -> impl IntoView {
    let i18n = use_i18n();
    let busy = RwSignal::new(0usize);
    let failure = RwSignal::new(None::<CommandError>);
    let on_pick = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(files) = input.files() else {
            return;
        };
        for index in 0..files.length() {
            let Some(file) = files.get(index) else {
                continue;
            };
            busy.update(|n| *n += 1);
            spawn_local(async move {
                match api::stage_photo(&file).await {
                    Ok(StagedPhoto { token }) => {
                        let preview =
                            web_sys::Url::create_object_url_with_blob(&file).unwrap_or_default();
                        failure.set(None);
                        form.photos.update(|photos| {
                            photos.push(PhotoDraft {
                                token,
                                preview,
                                caption: RwSignal::new(String::new()),
                                consent: RwSignal::new(false),
                            })
                        });
                    }
                    Err(error) => failure.set(Some(error)),
                }
                busy.update(|n| *n = n.saturating_sub(1));
            });
        }
        // Picking the same file again should work too.
        input.set_value("");
    };
    view! {
        <div class="field" id="field-photos">
            <span class="label">{t!(i18n, editor.photos)}</span>
            <div class="photo-actions">
                <input type="file" accept="image/*" capture="environment" id="photo-camera"
                    class="visually-hidden" on:change=on_pick />
                <label for="photo-camera" class="button secondary">{t!(i18n, editor.take_photo)}</label>
                <input type="file" accept="image/jpeg,image/png,image/webp" multiple id="photo-file"
                    class="visually-hidden" on:change=on_pick />
                <label for="photo-file" class="button secondary">{t!(i18n, editor.choose_photo)}</label>
            </div>
            {move || (busy.get() > 0).then(|| view! { <p class="muted" id="photo-busy">{t!(i18n, editor.photo_adding)}</p> })}
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <ul class="photo-list">
                {move || form.saved_photos.get().into_iter().map(|photo| view! {
                    <SavedPhoto photo=photo />
                }).collect_view()}
                <For each=move || form.photos.get() key=|p| p.token.clone() children=move |photo| {
                    let token = photo.token.clone();
                    view! {
                        <li class="photo-item draft">
                            <img src=photo.preview.clone() alt="" class="thumb" />
                            <div class="photo-meta">
                                <input type="text" class="photo-caption"
                                    placeholder=move || t_string!(i18n, editor.caption)
                                    prop:value=move || photo.caption.get()
                                    on:input=move |ev| photo.caption.set(event_target_value(&ev)) />
                                <label class="toggle">
                                    <input type="checkbox" class="photo-consent"
                                        prop:checked=move || photo.consent.get()
                                        on:change=move |ev| photo.consent.set(event_target_checked(&ev)) />
                                    <span>{t!(i18n, editor.consent)}</span>
                                </label>
                                <button type="button" class="link"
                                    on:click=move |_| {
                                        form.photos.update(|ps| ps.retain(|p| p.token != token));
                                        discard(vec![token.clone()]);
                                    }>
                                    {t!(i18n, editor.remove)}
                                </button>
                            </div>
                        </li>
                    }
                } />
            </ul>
            <FieldErr field=Field::Caption errors=form.errors />
        </div>
    }
}

/// Lets the shell forget photos picked but not to be saved. Best effort: what is left
/// behind goes a day after it was picked.
fn discard(tokens: Vec<String>) {
    if tokens.is_empty() {
        return;
    }
    spawn_local(async move {
        let _ = api::call::<_, ()>(cmd::DISCARD_PHOTOS, &DiscardPhotos { tokens }).await;
    });
}

/// A photo already attached to the visit: its thumbnail, caption and consent.
#[component]
pub fn SavedPhoto(photo: PhotoRef) -> impl IntoView {
    let i18n = use_i18n();
    let src = RwSignal::new(String::new());
    let sha256 = photo.thumbnail_sha256.clone();
    spawn_local(async move {
        if let Ok(thumb) =
            api::call::<_, Thumbnail>(cmd::PHOTO_THUMBNAIL, &PhotoRefArgs { sha256 }).await
        {
            src.set(thumb.data_url);
        }
    });
    let consent = photo.consent;
    view! {
        <li class="photo-item saved">
            <img src=move || src.get() alt=photo.caption.clone() class="thumb" />
            <div class="photo-meta">
                <span>{photo.caption.clone()}</span>
                <span class=if consent { "tag ok" } else { "tag" }>
                    {move || if consent { t_string!(i18n, detail.consent_yes) } else { t_string!(i18n, detail.consent_no) }}
                </span>
            </div>
        </li>
    }
}
