//! One visit as the desk shows it: everything entered (school, district, course), where it
//! stands in review (and the flag's note), its conflicting fields (resolvable here), and its
//! history — every decision, by whom, from which device, when and why. Verify, flag with a
//! note (the volunteer sees it on their phone), or undo a merge.

use super::queue::{ConflictResolver, Decider, Refusals, cap};
use super::{DeskScreen, load_latest, use_desk};
use crate::app::lang_of;
use crate::editor::SavedPhoto;
use crate::i18n::*;
use crate::widgets::{BadgeView, ErrorBox, FieldErr, local_time};
use fieldlog_app_api::desk::Decide;
use fieldlog_app_api::{CommandError, VisitDetail, VisitRef, cmd};
use fieldlog_domain::course::session_label;
use fieldlog_domain::{Decision, Field, ReviewState, VisitId};
use leptos::prelude::*;

#[component]
pub fn DeskVisit(id: VisitId) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let detail = RwSignal::new(None::<VisitDetail>);
    let failure = RwSignal::new(None::<CommandError>);
    load_latest(
        cmd::VISIT_DETAIL,
        move || VisitRef { id },
        detail,
        failure,
        |_| {},
    );
    // Redrawn only when the detail changes, not on every reload.
    let body = Memo::new(move |_| detail.get());
    view! {
        <section class="screen desk-visit" data-visit=id.to_string()>
            <div class="detail-actions">
                <button type="button" class="secondary" id="desk-visit-back"
                    on:click=move |_| desk.go(desk.back.get_untracked())>
                    "← "{t!(i18n, desk_visit.back)}
                </button>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            {move || body.get().map(|d| view! { <VisitBody detail=d /> })}
        </section>
    }
}

#[component]
fn VisitBody(detail: VisitDetail) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let lang = move || lang_of(i18n.get_locale());
    let visit = detail.summary.visit.clone();
    let id = visit.id;
    let fields = visit.fields.clone();
    let review = detail.review.clone();
    let conflicted: Vec<Field> = detail.conflicts.iter().map(|c| c.field).collect();
    let school = detail.school.clone();
    let course = detail.course.clone();
    let school_name = detail.summary.school_name.clone();
    let badge = detail.summary.badge;
    let recorded = format!(
        "{} · {} · {}",
        visit.created_by,
        visit.team,
        local_time(visit.created_at)
    );
    let edited = (visit.edited_at > 0).then(|| local_time(visit.edited_at));
    let name_row = school_name.clone();
    let rows = move || {
        let l = lang();
        let audience = &fields.audience;
        let mut shown: Vec<(String, String, Option<Field>)> = Vec::new();
        let place = match &school {
            Some(s) => format!(
                "{} · {} · {}",
                s.district,
                s.area.label(l),
                s.status.label(l)
            ),
            None => String::new(),
        };
        shown.push((
            cap(Field::School.label(l)),
            name_row.clone(),
            Some(Field::School),
        ));
        shown.push((cap(Field::District.label(l)), place, None));
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
            shown.push((cap(Field::Course.label(l)), value, Some(Field::Course)));
        }
        let activities = fields
            .activities
            .iter()
            .map(|a| a.label(l))
            .collect::<Vec<_>>()
            .join("、");
        for (field, value) in [
            (Field::Date, fields.date.to_string()),
            (Field::Activities, activities),
            (Field::Topic, fields.topic.clone()),
            (Field::Presenters, fields.presenters.clone()),
            (Field::Students, audience.students.to_string()),
            (Field::Teachers, audience.teachers.to_string()),
            (Field::Others, audience.others.to_string()),
            (Field::Audience, audience.total().to_string()),
        ] {
            shown.push((cap(field.label(l)), value, Some(field)));
        }
        if let Some(course) = course.as_ref().filter(|c| !c.present.is_empty()) {
            shown.push((
                cap(Field::Attendance.label(l)),
                format!("{}（{}）", course.present.join("、"), course.present.len()),
                Some(Field::Attendance),
            ));
        }
        if !audience.breakdown.is_empty() {
            let breakdown = audience
                .breakdown
                .iter()
                .map(|(c, n)| format!("{}{} {n}", c.band.label(l), c.gender.label(l)))
                .collect::<Vec<_>>()
                .join("，");
            shown.push((
                cap(Field::Breakdown.label(l)),
                breakdown,
                Some(Field::Breakdown),
            ));
        }
        for (field, value) in [
            (Field::Books, fields.donations.books.to_string()),
            (Field::Kits, fields.donations.kits.to_string()),
            (Field::Notes, fields.notes.clone()),
        ] {
            shown.push((cap(field.label(l)), value, Some(field)));
        }
        shown.push((
            t_string!(i18n, desk_visit.recorded_by).to_string(),
            recorded.clone(),
            None,
        ));
        if let Some(at) = &edited {
            shown.push((
                t_string!(i18n, desk_visit.edited_at).to_string(),
                at.clone(),
                None,
            ));
        }
        shown
            .into_iter()
            .map(|(label, value, field)| {
                let conflicted = field.is_some_and(|f| conflicted.contains(&f));
                view! {
                    <div class=if conflicted { "detail-row conflicted" } else { "detail-row" }
                        data-field=field.map(|f| f.key()).unwrap_or_default()>
                        <dt>{label}</dt>
                        <dd>
                            {if value.trim().is_empty() { "—".to_string() } else { value }}
                            {conflicted.then(|| view! { <span class="tag conflict">{t_string!(i18n, desk_visit.conflicted)}</span> })}
                        </dd>
                    </div>
                }
            })
            .collect_view()
    };
    let state = review.state.unwrap_or(ReviewState::Unreviewed);
    let state_class = match state {
        ReviewState::Verified => "tag ok review-state",
        ReviewState::Flagged => "tag flagged review-state",
        _ => "tag review-state",
    };
    let flag_note = review.flag_note.clone();
    let duplicate_of = review.duplicate_of;
    let photos = visit.photos.clone();
    let no_photos = photos.is_empty();
    let conflicts = detail.conflicts.clone();
    let history = detail.history.clone();
    view! {
        <div class="desk-visit-grid">
            <article class="card detail-card">
                <header class="detail-head">
                    <h2 id="desk-visit-school">{school_name}</h2>
                    <BadgeView badge=badge />
                </header>
                <p>
                    <span class="muted">{t!(i18n, desk_visit.review_state)}" "</span>
                    <span class=state_class id="visit-review-state" data-state=state.key()>{move || state.label(lang())}</span>
                </p>
                {(!flag_note.is_empty()).then(|| view! {
                    <p class="warning" id="visit-flag-shown">
                        {move || t_string!(i18n, desk_visit.flag_note, note = flag_note.clone()).to_string()}
                    </p>
                })}
                {duplicate_of.map(|into| view! {
                    <p class="warning merged-note" id="visit-merged">
                        {t!(i18n, desk_visit.merged_into)}" "
                        <button type="button" class="link" id="visit-open-kept" data-visit=into.to_string()
                            on:click=move |_| desk.go(DeskScreen::Visit(into))>{t!(i18n, desk_visit.open_kept)}</button>
                    </p>
                })}
                <dl class="detail-list">{rows}</dl>
                <h3>{t!(i18n, desk_visit.photos)}</h3>
                {no_photos.then(|| view! { <p class="empty">{t!(i18n, desk_visit.no_photos)}</p> })}
                <ul class="photo-list">
                    {photos.into_iter().map(|p| view! { <SavedPhoto photo=p /> }).collect_view()}
                </ul>
            </article>
            <div class="desk-visit-side">
                <Actions id=id state=state merged=duplicate_of.is_some() />
                {(!conflicts.is_empty()).then(|| view! {
                    <div class="card visit-conflicts" id="visit-conflicts">
                        <h3>{t!(i18n, desk_visit.conflicts)}</h3>
                        {conflicts.into_iter().map(|c| {
                            let field = c.field;
                            view! {
                                <div class="conflict-item" data-visit=id.to_string() data-field=field.key()>
                                    <h4>{move || cap(field.label(lang()))}</h4>
                                    <ConflictResolver visit=id field=field values=c.values />
                                </div>
                            }
                        }).collect_view()}
                    </div>
                })}
                <History history=history />
            </div>
        </div>
    }
}

/// Verify, flag with a note, undo a merge.
#[component]
fn Actions(id: VisitId, state: ReviewState, merged: bool) -> impl IntoView {
    let i18n = use_i18n();
    let verifier = Decider::new();
    let flagger = Decider::new();
    let unmerger = Decider::new();
    let note = RwSignal::new(String::new());
    let unmerge_note = RwSignal::new(String::new());
    let confirming = RwSignal::new(false);
    let verify = move |_| {
        let decide = Decide::Verify {
            visits: vec![id],
            note: String::new(),
        };
        verifier.run(
            decide,
            t_string!(i18n, desk_visit.verified).to_string(),
            || (),
        );
    };
    let flag = move |_| {
        let decide = Decide::Flag {
            visit: id,
            note: note.get_untracked(),
        };
        verifier.errors.set(Vec::new());
        verifier.failure.set(None);
        flagger.run(
            decide,
            t_string!(i18n, desk_visit.flagged).to_string(),
            move || note.set(String::new()),
        );
    };
    let unmerge = move |_| {
        let decide = Decide::Unmerge {
            other: id,
            note: unmerge_note.get_untracked(),
        };
        unmerger.run(
            decide,
            t_string!(i18n, desk_visit.unmerged).to_string(),
            move || confirming.set(false),
        );
    };
    view! {
        <div class="card visit-actions">
            <h3>{t!(i18n, desk_visit.decide)}</h3>
            {(state != ReviewState::Verified && !merged).then(|| view! {
                <button type="button" class="primary" id="visit-verify" on:click=verify
                    disabled=move || verifier.busy.get()>{t!(i18n, desk_visit.verify)}</button>
                <Refusals errors=verifier.errors failure=verifier.failure />
            })}
            {(state == ReviewState::Verified).then(|| view! {
                <p class="muted">{t!(i18n, desk_visit.already_verified)}</p>
            })}
            {(!merged).then(|| view! {
                <div class="flag-form">
                    <label class="field">
                        <span class="label">{t!(i18n, desk_visit.flag_label)}</span>
                        <textarea id="visit-flag-note" rows="3"
                            placeholder=move || t_string!(i18n, desk_visit.flag_hint)
                            prop:value=move || note.get()
                            on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                        <FieldErr field=Field::Note errors=flagger.errors />
                    </label>
                    <Refusals errors=flagger.errors failure=flagger.failure shown=vec![Field::Note] />
                    <button type="button" class="danger" id="visit-flag" on:click=flag
                        disabled=move || flagger.busy.get()>
                        {t!(i18n, desk_visit.flag)}
                    </button>
                </div>
            })}
            {merged.then(|| view! {
                <div class="unmerge-form">
                    <p class="muted">{t!(i18n, desk_visit.unmerge_explain)}</p>
                    {move || if confirming.get() {
                        view! {
                            <label class="field">
                                <span class="label">{t!(i18n, desk_visit.note_optional)}</span>
                                <input type="text" id="visit-unmerge-note" prop:value=move || unmerge_note.get()
                                    on:input=move |ev| unmerge_note.set(event_target_value(&ev)) />
                                <FieldErr field=Field::Note errors=unmerger.errors />
                            </label>
                            <div class="decision-actions">
                                <button type="button" class="secondary" id="visit-unmerge-cancel"
                                    on:click=move |_| confirming.set(false)>{t!(i18n, desk_visit.cancel)}</button>
                                <button type="button" class="primary" id="visit-unmerge-confirm" on:click=unmerge
                                    disabled=move || unmerger.busy.get()>{t!(i18n, desk_visit.unmerge_confirm)}</button>
                            </div>
                        }.into_any()
                    } else {
                        view! {
                            <button type="button" class="secondary" id="visit-unmerge"
                                on:click=move |_| confirming.set(true)>{t!(i18n, desk_visit.unmerge)}</button>
                        }.into_any()
                    }}
                    <Refusals errors=unmerger.errors failure=unmerger.failure shown=vec![Field::Note] />
                </div>
            })}
        </div>
    }
}

/// Every decision about the visit, oldest first.
#[component]
fn History(history: Vec<Decision>) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let empty = history.is_empty();
    let history = StoredValue::new(history);
    view! {
        <div class="card visit-history" id="visit-history">
            <h3>{t!(i18n, desk_visit.history)}</h3>
            {empty.then(|| view! { <p class="empty" id="visit-history-empty">{t!(i18n, desk_visit.no_history)}</p> })}
            {(!empty).then(|| view! {
                <ol class="history-rows">
                    {move || {
                        let l = lang();
                        history.get_value().into_iter().map(|d| {
                            let note = d.note.clone();
                            let what = d.describe(l);
                            let what = (what != d.kind.label(l)).then_some(what);
                            view! {
                                <li class="history-row" data-kind=d.kind.key() data-decision=d.id.clone()>
                                    <div class="row-main">
                                        <strong class="history-kind">{cap(d.kind.label(l))}</strong>
                                        <time class="muted">{local_time(d.at)}</time>
                                    </div>
                                    {what.map(|w| view! { <p class="history-what">{w}</p> })}
                                    <p class="muted history-who">
                                        {t_string!(i18n, desk_visit.decided_by, member = d.member.clone(), device = d.device.clone()).to_string()}
                                    </p>
                                    {(!note.is_empty()).then(|| view! {
                                        <p class="history-note">{t_string!(i18n, desk_visit.note, note = note.clone()).to_string()}</p>
                                    })}
                                </li>
                            }
                        }).collect_view()
                    }}
                </ol>
            })}
        </div>
    }
}
