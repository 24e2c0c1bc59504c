//! The registry: the region's schools, found by name or pinyin (`nsxx` finds 南山小学) and
//! filtered by district, area and status, with their counted visits. A registered school's
//! area or level can be corrected (its visits then count with them); a school entered in the
//! field is approved, or merged into the registered school it really is.
//!
//! [`ApproveSchoolForm`] and [`MergeSchoolPicker`] serve the review queue too.

use super::load_latest;
use super::queue::{Decider, Refusals, cap, content_key};
use crate::api;
use crate::app::{lang_of, use_ctx};
use crate::i18n::*;
use crate::widgets::{ErrorBox, FieldErr};
use fieldlog_app_api::desk::{Decide, RegistryArgs, SchoolRef};
use fieldlog_app_api::{CommandError, cmd};
use fieldlog_domain::{
    Area, District, Field, RegistryRow, School, SchoolId, SchoolLevel, SchoolStatus, SimilarSchool,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeMap;

/// Rows drawn at once; a search narrows the rest.
const SHOWN_ROWS: usize = 300;

#[component]
pub fn Registry() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let lang = move || lang_of(i18n.get_locale());
    let query = RwSignal::new(String::new());
    let district = RwSignal::new(None::<District>);
    let area = RwSignal::new(None::<Area>);
    let status = RwSignal::new(None::<SchoolStatus>);
    let rows = RwSignal::new(None::<Vec<RegistryRow>>);
    let failure = RwSignal::new(None::<CommandError>);
    let args = move || RegistryArgs {
        query: query.get().trim().to_string(),
        district: district.get(),
        area: area.get(),
        status: status.get(),
    };
    load_latest(cmd::REGISTRY, args, rows, failure, |_| {});
    let districts = move || super::region(ctx);
    // Each row with the name of the school it was merged into, if any.
    let shown = move || {
        rows.with(|rows| {
            let rows = rows.as_deref().unwrap_or_default();
            let names: BTreeMap<SchoolId, &str> = rows
                .iter()
                .map(|r| (r.school.id, r.school.fields.name.as_str()))
                .collect();
            rows.iter()
                .take(SHOWN_ROWS)
                .map(|r| {
                    let into = r.school.merged_into.map(|id| {
                        names
                            .get(&id)
                            .map_or_else(|| id.to_string(), |n| n.to_string())
                    });
                    (r.clone(), into)
                })
                .collect::<Vec<_>>()
        })
    };
    let total = move || rows.with(|r| r.as_ref().map(Vec::len));
    let clear = move |_| {
        query.set(String::new());
        district.set(None);
        area.set(None);
        status.set(None);
    };
    view! {
        <section class="screen desk-registry">
            <h2>{t!(i18n, registry.title)}</h2>
            <div class="filters desk-filters">
                <label class="field">
                    <span class="label">{t!(i18n, registry.search)}</span>
                    <input type="search" id="registry-search"
                        placeholder=move || t_string!(i18n, registry.search_hint)
                        prop:value=move || query.get()
                        on:input=move |ev| query.set(event_target_value(&ev)) />
                </label>
                <label class="field">
                    <span class="label">{move || cap(Field::District.label(lang()))}</span>
                    <select id="registry-district" on:change=move |ev| {
                        district.set(District::parse(&event_target_value(&ev)).ok());
                    }>
                        <option value="" selected=move || district.get().is_none()>{t!(i18n, registry.all_districts)}</option>
                        {move || districts().into_iter().map(|d| {
                            let chosen = d.clone();
                            view! {
                                <option value=d.clone()
                                    selected=move || district.get().is_some_and(|c| c.as_str() == chosen)>{d.clone()}</option>
                            }
                        }).collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span class="label">{move || cap(Field::Area.label(lang()))}</span>
                    <select id="registry-area" on:change=move |ev| {
                        area.set(Area::parse(&event_target_value(&ev)).ok());
                    }>
                        <option value="" selected=move || area.get().is_none()>{t!(i18n, registry.all_areas)}</option>
                        {Area::ALL.iter().copied().map(|a| view! {
                            <option value=a.key() selected=move || area.get() == Some(a)>{move || cap(a.label(lang()))}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span class="label">{move || cap(Field::Status.label(lang()))}</span>
                    <select id="registry-status" on:change=move |ev| {
                        status.set(SchoolStatus::parse(&event_target_value(&ev)).ok());
                    }>
                        <option value="" selected=move || status.get().is_none()>{t!(i18n, registry.all_statuses)}</option>
                        {SchoolStatus::ALL.iter().copied().map(|s| view! {
                            <option value=s.key() selected=move || status.get() == Some(s)>{move || cap(s.label(lang()))}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="button" class="link" id="registry-clear" on:click=clear>{t!(i18n, registry.clear)}</button>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <p class="muted" id="registry-count">{move || total().map(|n| {
                if n > SHOWN_ROWS {
                    t_string!(i18n, registry.count_more, n = n, shown = SHOWN_ROWS).to_string()
                } else {
                    t_string!(i18n, registry.count, n = n).to_string()
                }
            })}</p>
            <Show when=move || total() == Some(0)>
                <p class="empty" id="registry-empty">{t!(i18n, registry.none)}</p>
            </Show>
            <Show when=move || total().is_some_and(|n| n > 0)>
                <div class="table-scroll">
                <table class="desk-table registry-table">
                    <thead>
                        <tr>
                            <th>{move || cap(Field::SchoolName.label(lang()))}</th>
                            <th>{move || cap(Field::District.label(lang()))}</th>
                            <th>{move || cap(Field::Area.label(lang()))}</th>
                            <th>{move || cap(Field::Level.label(lang()))}</th>
                            <th>{move || cap(Field::Status.label(lang()))}</th>
                            <th class="num">{t!(i18n, registry.visits)}</th>
                            <th>{t!(i18n, registry.actions)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=shown key=content_key
                            children=move |(row, into)| view! { <RegistryItem row=row into=into /> } />
                    </tbody>
                </table>
                </div>
            </Show>
        </section>
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Panel {
    Edit,
    Approve,
    Merge,
}

/// A school's row, and under it the form its action opened.
#[component]
fn RegistryItem(row: RegistryRow, into: Option<String>) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let school = row.school;
    let id = school.id;
    let f = school.fields.clone();
    let status = school.status;
    let pending = status == SchoolStatus::Pending && into.is_none();
    let panel = RwSignal::new(None::<Panel>);
    let open = move |which: Panel| panel.update(|p| *p = (*p != Some(which)).then_some(which));
    let status_tag = move || {
        match &into {
        Some(name) => view! {
            <span class="tag merged">{t_string!(i18n, registry.merged_into, name = name.clone()).to_string()}</span>
        }
        .into_any(),
        None => {
            let class = if status == SchoolStatus::Registered { "tag ok" } else { "tag" };
            view! { <span class=class>{status.label(lang())}</span> }.into_any()
        }
    }
    };
    let merged = !pending && status == SchoolStatus::Pending;
    let level = f.level;
    let area = f.area;
    let school = StoredValue::new(school);
    view! {
        <tr class="registry-row" data-school=id.to_string() data-status=status.key()
            class:open=move || panel.get().is_some()>
            <td class="school-name">{f.name.clone()}</td>
            <td>{f.district.to_string()}</td>
            <td>{move || area.label(lang())}</td>
            <td>{move || level.map(|l| l.label(lang())).unwrap_or("—")}</td>
            <td>{status_tag}</td>
            <td class="num">{row.visits}</td>
            <td class="row-actions">
                {(!pending && !merged).then(|| view! {
                    <button type="button" class="secondary registry-edit" aria-expanded=move || (panel.get() == Some(Panel::Edit)).to_string()
                        on:click=move |_| open(Panel::Edit)>{t!(i18n, registry.edit)}</button>
                })}
                {pending.then(|| view! {
                    <button type="button" class="primary registry-approve" aria-expanded=move || (panel.get() == Some(Panel::Approve)).to_string()
                        on:click=move |_| open(Panel::Approve)>{t!(i18n, registry.approve)}</button>
                    <button type="button" class="secondary registry-merge" aria-expanded=move || (panel.get() == Some(Panel::Merge)).to_string()
                        on:click=move |_| open(Panel::Merge)>{t!(i18n, registry.merge)}</button>
                })}
            </td>
        </tr>
        {move || panel.get().map(|which| {
            let school = school.get_value();
            let body = match which {
                Panel::Edit => view! { <SetSchoolForm school=school /> }.into_any(),
                Panel::Approve => view! { <ApproveSchoolForm school=school /> }.into_any(),
                Panel::Merge => view! { <MergeLoader school=school /> }.into_any(),
            };
            view! {
                <tr class="registry-panel" data-school=id.to_string()>
                    <td colspan="7">{body}</td>
                </tr>
            }
        })}
    }
}

/// Area chips and a level select, bound to `area` and `level`; classes `<prefix>-area`
/// (with `data-area`) and `<prefix>-level` for tests.
#[component]
fn AreaLevel(
    prefix: &'static str,
    area: RwSignal<Area>,
    level: RwSignal<Option<SchoolLevel>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    view! {
        <div class="area-level">
            <div class="field">
                <span class="label">{move || cap(Field::Area.label(lang()))}</span>
                <div class="chips" role="radiogroup">
                    {Area::ALL.iter().copied().map(|a| view! {
                        <button type="button" role="radio" data-area=a.key()
                            class=move || format!("chip {prefix}-area{}", if area.get() == a { " on" } else { "" })
                            aria-checked=move || (area.get() == a).to_string()
                            on:click=move |_| area.set(a)>{move || cap(a.label(lang()))}</button>
                    }).collect_view()}
                </div>
            </div>
            <label class="field">
                <span class="label">{move || cap(Field::Level.label(lang()))}</span>
                <select class=format!("{prefix}-level") on:change=move |ev| {
                    level.set(SchoolLevel::parse(&event_target_value(&ev)).ok());
                }>
                    <option value="" selected=move || level.get().is_none()>{t!(i18n, registry.no_level)}</option>
                    {SchoolLevel::ALL.iter().copied().map(|l| view! {
                        <option value=l.key() selected=move || level.get() == Some(l)>{move || cap(l.label(lang()))}</option>
                    }).collect_view()}
                </select>
            </label>
        </div>
    }
}

/// Corrects a school's area or level (only what changed is sent).
#[component]
fn SetSchoolForm(school: School) -> impl IntoView {
    let i18n = use_i18n();
    let decider = Decider::new();
    let (was_area, was_level) = (school.fields.area, school.fields.level);
    let area = RwSignal::new(was_area);
    let level = RwSignal::new(was_level);
    let note = RwSignal::new(String::new());
    let id = school.id;
    let name = school.fields.name.clone();
    let changed = move || area.get() != was_area || level.get() != was_level;
    let save = move |_| {
        let (a, l) = (area.get_untracked(), level.get_untracked());
        let decide = Decide::SetSchool {
            school: id,
            area: (a != was_area).then_some(a),
            level: (l != was_level).then(|| l.map(|l| l.key().to_string()).unwrap_or_default()),
            note: note.get_untracked(),
        };
        let done = t_string!(i18n, registry.saved, name = name.clone()).to_string();
        decider.run(decide, done, || ());
    };
    view! {
        <div class="school-form set-school">
            <AreaLevel prefix="registry-set" area=area level=level />
            <label class="field">
                <span class="label">{t!(i18n, registry.note_optional)}</span>
                <input type="text" class="registry-set-note" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <FieldErr field=Field::Note errors=decider.errors />
            </label>
            <p class="muted">{t!(i18n, registry.set_explain)}</p>
            <Refusals errors=decider.errors failure=decider.failure shown=vec![Field::Note] />
            <button type="button" class="primary registry-save" on:click=save
                disabled=move || !changed() || decider.busy.get()>{t!(i18n, registry.save)}</button>
        </div>
    }
}

/// Approves a school entered in the field, with its area (as entered, or corrected) and
/// level: one click with what was entered.
#[component]
pub(super) fn ApproveSchoolForm(school: School) -> impl IntoView {
    let i18n = use_i18n();
    let decider = Decider::new();
    let area = RwSignal::new(school.fields.area);
    let level = RwSignal::new(school.fields.level);
    let note = RwSignal::new(String::new());
    let id = school.id;
    let name = school.fields.name.clone();
    let approve = move |_| {
        let decide = Decide::ApproveSchool {
            school: id,
            area: area.get_untracked(),
            level: level.get_untracked().map(|l| l.key().to_string()),
            note: note.get_untracked(),
        };
        let done = t_string!(i18n, registry.approved, name = name.clone()).to_string();
        decider.run(decide, done, || ());
    };
    view! {
        <div class="school-form approve-school" data-school=id.to_string()>
            <AreaLevel prefix="approve" area=area level=level />
            <label class="field">
                <span class="label">{t!(i18n, registry.note_optional)}</span>
                <input type="text" class="approve-note" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <FieldErr field=Field::Note errors=decider.errors />
            </label>
            <Refusals errors=decider.errors failure=decider.failure shown=vec![Field::Note] />
            <button type="button" class="primary school-approve" on:click=approve
                disabled=move || decider.busy.get()>{t!(i18n, registry.approve_confirm)}</button>
        </div>
    }
}

/// Loads the registered schools close to `school`, then offers them.
#[component]
fn MergeLoader(school: School) -> impl IntoView {
    let i18n = use_i18n();
    let similar = RwSignal::new(None::<Vec<SimilarSchool>>);
    let failure = RwSignal::new(None::<CommandError>);
    let id = school.id;
    spawn_local(async move {
        match api::call::<_, Vec<SimilarSchool>>(cmd::SIMILAR_SCHOOLS, &SchoolRef { id }).await {
            Ok(found) => similar.set(Some(found)),
            Err(error) => failure.set(Some(error)),
        }
    });
    let school = StoredValue::new(school);
    view! {
        {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
        {move || match similar.get() {
            Some(found) => view! { <MergeSchoolPicker pending=school.get_value() similar=found /> }.into_any(),
            None if failure.with(Option::is_none) => view! { <p class="muted">{t!(i18n, registry.loading)}</p> }.into_any(),
            None => ().into_any(),
        }}
    }
}

/// A registered school a pending one may be merged into.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    school: School,
    score: Option<f64>,
    visits: Option<u64>,
}

/// Merges a pending school into a registered one: the close ones first (with how close),
/// or any registered school found by name or pinyin; then confirm.
#[component]
pub(super) fn MergeSchoolPicker(pending: School, similar: Vec<SimilarSchool>) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let decider = Decider::new();
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<RegistryRow>::new());
    let into = RwSignal::new(None::<School>);
    let note = RwSignal::new(String::new());
    let latest = StoredValue::new(0_u32);
    let pending_id = pending.id;
    let pending_name = pending.fields.name.clone();
    Effect::new(move |_| {
        let typed = query.get().trim().to_string();
        let asked = latest.get_value() + 1;
        latest.set_value(asked);
        if typed.is_empty() {
            found.set(Vec::new());
            return;
        }
        let args = RegistryArgs {
            query: typed,
            status: Some(SchoolStatus::Registered),
            ..RegistryArgs::default()
        };
        spawn_local(async move {
            let answer = api::call::<_, Vec<RegistryRow>>(cmd::REGISTRY, &args).await;
            if latest.try_get_value() != Some(asked) {
                return;
            }
            match answer {
                Ok(rows) => found.set(rows.into_iter().take(20).collect()),
                Err(error) => decider.failure.set(Some(error)),
            }
        });
    });
    let option = move |c: Candidate| {
        let id = c.school.id;
        let f = &c.school.fields;
        let name = f.name.clone();
        let district = f.district.to_string();
        let (area, level) = (f.area, f.level);
        let facts = move || {
            let l = lang();
            let mut parts = vec![district.clone(), area.label(l).to_string()];
            if let Some(level) = level {
                parts.push(level.label(l).to_string());
            }
            parts.join(" · ")
        };
        let score = c.score.map(|s| format!("{:.0}%", s * 100.0));
        let visits = c.visits;
        let school = StoredValue::new(c.school);
        view! {
            <li class="school-option" data-school=id.to_string()>
                <span class="option-main">
                    <strong>{name}</strong>
                    <small class="muted">{facts}</small>
                </span>
                {score.map(|s| view! {
                    <span class="score">{move || t_string!(i18n, registry.similarity, score = s.clone()).to_string()}</span>
                })}
                {visits.map(|n| view! {
                    <span class="muted">{move || t_string!(i18n, registry.visits_n, n = n).to_string()}</span>
                })}
                <button type="button" class="secondary school-merge-into" data-into=id.to_string()
                    on:click=move |_| into.set(Some(school.get_value()))>{t!(i18n, registry.merge_into)}</button>
            </li>
        }
    };
    let similar_empty = similar.is_empty();
    let similar_list: Vec<Candidate> = similar
        .into_iter()
        .map(|s| Candidate {
            school: s.school,
            score: Some(s.score),
            visits: None,
        })
        .collect();
    let similar_list = StoredValue::new(similar_list);
    let merge = move |_| {
        let Some(target) = into.get_untracked() else {
            return;
        };
        let decide = Decide::MergeSchool {
            pending: pending_id,
            into: target.id,
            note: note.get_untracked(),
        };
        let done = t_string!(
            i18n,
            registry.school_merged,
            into = target.fields.name.clone()
        )
        .to_string();
        decider.run(decide, done, || ());
    };
    let cancel = move |_| {
        into.set(None);
        decider.errors.set(Vec::new());
        decider.failure.set(None);
    };
    view! {
        <div class="school-form merge-school" data-school=pending_id.to_string()>
            {move || match into.get() {
                Some(target) => {
                    let (from, to) = (pending_name.clone(), target.fields.name.clone());
                    view! {
                        <div class="merge-confirm-panel" data-into=target.id.to_string()>
                            <p>{move || t_string!(i18n, registry.merge_explain, from = from.clone(), to = to.clone()).to_string()}</p>
                            <label class="field">
                                <span class="label">{t!(i18n, registry.note_optional)}</span>
                                <input type="text" class="school-merge-note" prop:value=move || note.get()
                                    on:input=move |ev| note.set(event_target_value(&ev)) />
                                <FieldErr field=Field::Note errors=decider.errors />
                            </label>
                            <Refusals errors=decider.errors failure=decider.failure shown=vec![Field::Note] />
                            <div class="decision-actions">
                                <button type="button" class="secondary school-merge-cancel" on:click=cancel>{t!(i18n, registry.cancel)}</button>
                                <button type="button" class="primary school-merge-confirm" on:click=merge
                                    disabled=move || decider.busy.get()>{t!(i18n, registry.merge_confirm)}</button>
                            </div>
                        </div>
                    }.into_any()
                }
                None => view! {
                    {similar_empty.then(|| view! { <p class="muted">{t!(i18n, registry.no_similar)}</p> })}
                    <ul class="school-options similar-schools">
                        {similar_list.get_value().into_iter().map(option).collect_view()}
                    </ul>
                    <label class="field">
                        <span class="label">{t!(i18n, registry.search_other)}</span>
                        <input type="search" class="school-search"
                            placeholder=move || t_string!(i18n, registry.search_hint)
                            prop:value=move || query.get()
                            on:input=move |ev| query.set(event_target_value(&ev)) />
                    </label>
                    <ul class="school-options found-schools">
                        {move || found.get().into_iter()
                            .filter(|r| r.school.id != pending_id && r.school.merged_into.is_none())
                            .map(|r| option(Candidate { school: r.school, score: None, visits: Some(r.visits) }))
                            .collect_view()}
                    </ul>
                    {move || (!query.with(|q| q.trim().is_empty()) && found.with(Vec::is_empty)).then(|| view! {
                        <p class="muted">{t!(i18n, registry.nothing_found)}</p>
                    })}
                    <Refusals errors=decider.errors failure=decider.failure />
                }.into_any(),
            }}
        </div>
    }
}
