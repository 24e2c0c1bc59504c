//! The visit list (filter by month and school) and a visit's detail, where a field with
//! concurrent values shows every value and who entered it.

use crate::api;
use crate::app::{Screen, lang_of, use_ctx};
use crate::editor::SavedPhoto;
use crate::home::VisitRows;
use crate::i18n::*;
use crate::widgets::{BadgeView, ErrorBox, local_time};
use fieldlog_app_api::{CommandError, ListVisits, VisitDetail, VisitRef, VisitSummary, cmd};
use fieldlog_domain::course::session_label;
use fieldlog_domain::{Field, ReviewState, SchoolId, VisitId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeMap;

#[component]
pub fn VisitList() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let month = RwSignal::new(String::new());
    let school = RwSignal::new(None::<SchoolId>);
    let visits = RwSignal::new(None::<Vec<VisitSummary>>);
    // Every school this device has visits for, for the filter.
    let schools = RwSignal::new(BTreeMap::<SchoolId, String>::new());
    Effect::new(move |_| {
        ctx.changed.track();
        let args = ListVisits {
            month: Some(month.get()).filter(|m| !m.is_empty()),
            school: school.get(),
        };
        let unfiltered = args.month.is_none() && args.school.is_none();
        spawn_local(async move {
            if let Ok(list) = api::call::<_, Vec<VisitSummary>>(cmd::LIST_VISITS, &args).await {
                if unfiltered {
                    schools.set(
                        list.iter()
                            .map(|v| (v.visit.fields.school, v.school_name.clone()))
                            .collect(),
                    );
                }
                visits.set(Some(list));
            }
        });
    });
    view! {
        <section class="screen visits">
            <h2>{t!(i18n, visits.title)}</h2>
            <div class="filters">
                <label class="field">
                    <span class="label">{t!(i18n, visits.month)}</span>
                    <input type="month" id="filter-month"
                        prop:value=move || month.get()
                        on:change=move |ev| month.set(event_target_value(&ev)) />
                </label>
                <label class="field">
                    <span class="label">{t!(i18n, visits.school)}</span>
                    <select id="filter-school" on:change=move |ev| {
                        school.set(event_target_value(&ev).parse().ok());
                    }>
                        <option value="" selected=move || school.get().is_none()>{t!(i18n, visits.all_schools)}</option>
                        {move || schools.get().into_iter().map(|(id, name)| view! {
                            <option value=id.to_string() selected=move || school.get() == Some(id)>{name}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="button" class="link" id="filter-clear"
                    on:click=move |_| { month.set(String::new()); school.set(None); }>
                    {t!(i18n, visits.clear)}
                </button>
            </div>
            {move || visits.get().map(|list| if list.is_empty() {
                view! { <p class="empty">{t!(i18n, visits.none)}</p> }.into_any()
            } else {
                view! { <VisitRows visits=list /> }.into_any()
            })}
        </section>
    }
}

#[component]
pub fn Detail(id: VisitId) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let detail = RwSignal::new(None::<VisitDetail>);
    let failure = RwSignal::new(None::<CommandError>);
    Effect::new(move |_| {
        ctx.changed.track();
        spawn_local(async move {
            match api::call::<_, VisitDetail>(cmd::VISIT_DETAIL, &VisitRef { id }).await {
                Ok(found) => detail.set(Some(found)),
                Err(error) => failure.set(Some(error)),
            }
        });
    });
    view! {
        <section class="screen detail">
            <div class="detail-actions">
                <button type="button" class="secondary" id="detail-back"
                    on:click=move |_| ctx.go(Screen::Visits)>{t!(i18n, detail.back)}</button>
                <button type="button" class="primary" id="detail-edit"
                    on:click=move |_| ctx.go(Screen::Editor(Some(id)))>{t!(i18n, detail.edit)}</button>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            {move || detail.get().map(|d| view! { <DetailBody detail=d /> })}
        </section>
    }
}

#[component]
fn DetailBody(detail: VisitDetail) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let visit = detail.summary.visit.clone();
    let fields = visit.fields.clone();
    let conflicts = detail.conflicts.clone();
    let conflict_for = move |field: Field| conflicts.iter().find(|c| c.field == field).cloned();
    let area = detail.school.as_ref().map(|s| s.area);
    let district = detail
        .school
        .as_ref()
        .map(|s| s.district.clone())
        .unwrap_or_default();
    let activities = fields.activities.clone();
    let audience = fields.audience.clone();
    let course = detail.course.clone();
    let row = move |field: Field, label: String, value: String| {
        let conflict = conflict_for(field);
        let class = if conflict.is_some() {
            "detail-row conflicted"
        } else {
            "detail-row"
        };
        view! {
            <div class=class
                data-field=field.key()>
                <dt>{label}</dt>
                <dd>
                    {value}
                    {conflict.map(|c| view! {
                        <div class="conflict">
                            <p>{t!(i18n, detail.conflict_intro)}</p>
                            <ul>
                                {c.values.into_iter().map(|v| {
                                    let who = v.author.clone();
                                    let when = local_time(v.at);
                                    view! {
                                        <li>
                                            <strong class="conflict-value">{v.value.clone()}</strong>
                                            " "
                                            <small>{move || t_string!(i18n, detail.entered_by, who = who.clone(), when = when.clone()).to_string()}</small>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </div>
                    })}
                </dd>
            </div>
        }
    };
    let rows = move || {
        let l = lang();
        let breakdown = audience
            .breakdown
            .iter()
            .map(|(c, n)| format!("{}{} {n}", c.band.label(l), c.gender.label(l)))
            .collect::<Vec<_>>()
            .join("，");
        let mut shown: Vec<(Field, String)> = Vec::new();
        if let Some(course) = &course {
            let mut value = course.title.clone();
            if let Some(session) = course.session {
                value = format!(
                    "{value} · {}",
                    session_label(session.number, session.planned, l)
                );
            }
            if course.clash {
                value.push_str(" ⚠");
            }
            shown.push((Field::Course, value));
        }
        shown.extend([
            (Field::Date, fields.date.to_string()),
            (
                Field::Activities,
                activities
                    .iter()
                    .map(|a| a.label(l))
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            (Field::Topic, fields.topic.clone()),
            (Field::Presenters, fields.presenters.clone()),
            (Field::Students, audience.students.to_string()),
        ]);
        if let Some(course) = course.as_ref().filter(|c| !c.present.is_empty()) {
            let names = course.present.join("、");
            let n = course.present.len();
            shown.push((
                Field::Attendance,
                t_string!(i18n, detail.present, names = names, n = n).to_string(),
            ));
        }
        shown.extend([
            (Field::Teachers, audience.teachers.to_string()),
            (Field::Others, audience.others.to_string()),
        ]);
        if !breakdown.is_empty() {
            shown.push((Field::Breakdown, breakdown));
        }
        shown.extend([
            (Field::Books, fields.donations.books.to_string()),
            (Field::Kits, fields.donations.kits.to_string()),
            (Field::Notes, fields.notes.clone()),
        ]);
        shown
            .into_iter()
            .map(|(field, value)| row(field, field.label(l).into(), value))
            .collect_view()
    };
    let photos = visit.photos.clone();
    let no_photos = photos.is_empty();
    // A coordinator's "please fix" shows until the visit is edited (then it is fixed).
    let flag_note = (detail.review.state == Some(ReviewState::Flagged))
        .then(|| detail.review.flag_note.clone());
    let history = detail.history.clone();
    view! {
        <article class="card detail-card">
            <header class="detail-head">
                <h2 id="detail-school">{detail.summary.school_name.clone()}</h2>
                <BadgeView badge=detail.summary.badge />
            </header>
            <p class="muted">
                {move || format!("{district} · {}", area.map(|a| a.label(lang())).unwrap_or_default())}
                " · "{t!(i18n, detail.recorded_by)}" "{visit.created_by.clone()}
            </p>
            {flag_note.map(|note| view! {
                <p class="warning" id="flag-note" role="alert">
                    {move || t_string!(i18n, detail.flag_note, note = note.clone()).to_string()}
                </p>
            })}
            <dl class="detail-list">{rows}</dl>
            <h3>{t!(i18n, editor.photos)}</h3>
            {no_photos.then(|| view! { <p class="empty">{t!(i18n, detail.no_photos)}</p> })}
            <ul class="photo-list">
                {photos.into_iter().map(|p| view! { <SavedPhoto photo=p /> }).collect_view()}
            </ul>
            {(!history.is_empty()).then(|| view! {
                <h3>{t!(i18n, detail.history)}</h3>
                <ul class="history" id="visit-history">
                    {history.into_iter().map(|d| {
                        let when = local_time(d.at);
                        let who = d.member.clone();
                        view! {
                            <li>
                                <span>{move || d.describe(lang())}</span>
                                <small class="muted">{format!(" · {who} · {when}")}</small>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
        </article>
    }
}
