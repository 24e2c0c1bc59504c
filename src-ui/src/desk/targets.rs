//! The targets editor: pick a year and a district (or the whole region); see the targets in
//! force with where each stands (current against goal, numerator over denominator for
//! shares and coverage, the districts still at zero); set goals, one input per target,
//! prefilled with the goals in force. Only the goals changed are saved.

use super::queue::cap;
use super::{load_latest, use_desk};
use crate::api;
use crate::app::{lang_of, use_ctx};
use crate::i18n::*;
use crate::widgets::ErrorBox;
use chrono::Datelike;
use fieldlog_app_api::desk::{SetTargets, TargetsArgs};
use fieldlog_app_api::{CommandError, cmd};
use fieldlog_domain::{District, Field, FieldError, Goal, Lang, Reason, TargetKey, TargetProgress};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeMap;

/// Targets measured as a share (a fraction, typed as `20%` or `0.2`).
fn is_share(key: TargetKey) -> bool {
    matches!(key, TargetKey::RuralLectureShare | TargetKey::PairingRate)
}

/// A percentage without trailing zeros: 20%, 12.5%.
fn percent(fraction: f64) -> String {
    let p = (fraction * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A goal as its input shows it: `20%` for shares, `all`, or a whole number.
fn goal_text(key: TargetKey, goal: Goal) -> String {
    match goal {
        Goal::All => "all".into(),
        Goal::Number(n) if is_share(key) => percent(n),
        Goal::Number(n) => format!("{n:.0}"),
    }
}

/// The current value of a target, as its progress shows it.
fn current_text(key: TargetKey, current: f64) -> String {
    if is_share(key) {
        percent(current)
    } else {
        format!("{current:.0}")
    }
}

/// How far along, 0 to 100, for the bar.
fn done_percent(p: &TargetProgress) -> f64 {
    let fraction = match p.goal {
        Goal::All => match (p.numerator, p.denominator) {
            (Some(n), Some(d)) if d > 0 => n as f64 / d as f64,
            _ => f64::from(u8::from(p.met)),
        },
        Goal::Number(goal) if goal > 0.0 => p.current / goal,
        Goal::Number(_) => 1.0,
    };
    (fraction * 100.0).clamp(0.0, 100.0)
}

/// The target a refusal names, when it says (`lectures=很多`).
fn refused_key(error: &FieldError) -> Option<TargetKey> {
    let given = match &error.reason {
        Reason::NotANumber { given } | Reason::UnknownValue { given, .. } => given,
        _ => return None,
    };
    let key = given.split_once('=').map_or(given.as_str(), |(k, _)| k);
    TargetKey::parse(key).ok()
}

#[component]
pub fn Targets() -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let ctx = use_ctx();
    let lang = move || lang_of(i18n.get_locale());
    let this_year = chrono::Local::now().year();
    let year = RwSignal::new(desk.filter.get_untracked().year);
    let district = RwSignal::new(desk.filter.get_untracked().district);
    let targets = RwSignal::new(None::<Vec<TargetProgress>>);
    let failure = RwSignal::new(None::<CommandError>);
    let args = move || TargetsArgs {
        year: year.get(),
        district: district.get(),
    };
    load_latest(cmd::TARGETS, args, targets, failure, |_| {});
    let districts = move || super::region(ctx);
    let years: Vec<i32> = ((this_year - 3)..=(this_year + 1)).rev().collect();
    let years = move || {
        let mut list = years.clone();
        let chosen = year.get();
        if !list.contains(&chosen) {
            list.push(chosen);
            list.sort_unstable_by(|a, b| b.cmp(a));
        }
        list
    };
    // The goals set for exactly this year and district: the form's starting values.
    let in_force = Memo::new(move |_| {
        let (y, d) = (year.get(), district.get());
        targets.with(|t| {
            t.as_deref()
                .unwrap_or_default()
                .iter()
                .filter(|p| p.year == y && p.district == d)
                .map(|p| (p.key, goal_text(p.key, p.goal)))
                .collect::<BTreeMap<TargetKey, String>>()
        })
    });
    let region_label = move || t_string!(i18n, targets.whole_region).to_string();
    view! {
        <section class="screen desk-targets">
            <h2>{t!(i18n, targets.title)}</h2>
            <div class="filters desk-filters">
                <label class="field">
                    <span class="label">{move || cap(Field::Year.label(lang()))}</span>
                    <select id="targets-year" on:change=move |ev| {
                        if let Ok(y) = event_target_value(&ev).parse() { year.set(y); }
                    }>
                        {move || years().into_iter().map(|y| view! {
                            <option value=y.to_string() selected=move || year.get() == y>{y}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span class="label">{move || cap(Field::District.label(lang()))}</span>
                    <select id="targets-district" on:change=move |ev| {
                        district.set(District::parse(&event_target_value(&ev)).ok());
                    }>
                        <option value="" selected=move || district.get().is_none()>{region_label}</option>
                        {move || districts().into_iter().map(|d| {
                            let chosen = d.clone();
                            view! {
                                <option value=d.clone()
                                    selected=move || district.get().is_some_and(|c| c.as_str() == chosen)>{d.clone()}</option>
                            }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <div class="targets-grid">
                <div class="card targets-progress">
                    <h3>{t!(i18n, targets.in_force)}</h3>
                    {move || targets.get().map(|list| if list.is_empty() {
                        view! { <p class="empty" id="targets-none">{t!(i18n, targets.none)}</p> }.into_any()
                    } else {
                        view! {
                            <ul class="target-rows">
                                {list.into_iter().map(|p| view! { <ProgressRow progress=p /> }).collect_view()}
                            </ul>
                        }.into_any()
                    })}
                </div>
                // Rebuilt when the year, the district or the goals in force change.
                {move || {
                    let goals = in_force.get();
                    view! { <GoalsForm year=year.get() district=district.get() goals=goals targets=targets /> }
                }}
            </div>
        </section>
    }
}

#[component]
pub(super) fn ProgressRow(
    progress: TargetProgress,
    /// Opens the visits behind the target (the dashboard's rows).
    #[prop(optional)]
    on_open: Option<Callback<()>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let key = progress.key;
    let width = format!("width: {:.1}%", done_percent(&progress));
    let now = done_percent(&progress).round().to_string();
    let goal = move || match progress.goal {
        Goal::All => t_string!(i18n, targets.goal_all).to_string(),
        goal => goal_text(key, goal),
    };
    let fraction = progress
        .numerator
        .zip(progress.denominator)
        .map(|(n, d)| format!("{n}/{d}"));
    let current = current_text(key, progress.current);
    let place = progress.district.as_ref().map(District::to_string);
    let missing = progress
        .missing_districts
        .iter()
        .map(District::to_string)
        .collect::<Vec<_>>()
        .join("、");
    let met = progress.met;
    view! {
        <li class="target-progress" id=format!("target-progress-{}", key.key())
            data-key=key.key() data-met=met.to_string()>
            <div class="row-main">
                <span class="row-title">
                    {match on_open {
                        Some(open) => view! {
                            <button type="button" class="link target-open" on:click=move |_| open.run(())>
                                {move || cap(key.label(lang()))}
                            </button>
                        }.into_any(),
                        None => view! { <span>{move || cap(key.label(lang()))}</span> }.into_any(),
                    }}
                    {place.map(|p| view! { <span class="tag district">{p}</span> })}
                </span>
                <span class="target-figures">
                    <strong class="target-current">{current}</strong>
                    {fraction.map(|f| view! { <span class="target-fraction">" ("{f}")"</span> })}
                    " / "
                    <span class="target-goal">{goal}</span>
                    {move || if met {
                        view! { <span class="tag ok">"✓ "{t_string!(i18n, targets.met)}</span> }.into_any()
                    } else {
                        view! { <span class="tag">{t_string!(i18n, targets.not_met)}</span> }.into_any()
                    }}
                </span>
            </div>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=now>
                <div class=if met { "progress-bar" } else { "progress-bar behind" } style=width></div>
            </div>
            {(!missing.is_empty()).then(|| view! {
                <p class="missing-districts">
                    {move || t_string!(i18n, targets.missing, districts = missing.clone()).to_string()}
                </p>
            })}
        </li>
    }
}

/// What a key's input accepts.
fn hint(i18n: leptos_i18n::I18nContext<Locale>, key: TargetKey) -> String {
    match key {
        TargetKey::RuralLectureShare | TargetKey::PairingRate => {
            t_string!(i18n, targets.hint_share).to_string()
        }
        TargetKey::DistrictsCovered => t_string!(i18n, targets.hint_districts).to_string(),
        _ => t_string!(i18n, targets.hint_count).to_string(),
    }
}

/// One input per target; saving sends the goals typed or changed.
#[component]
fn GoalsForm(
    year: i32,
    district: Option<District>,
    goals: BTreeMap<TargetKey, String>,
    targets: RwSignal<Option<Vec<TargetProgress>>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let ctx = use_ctx();
    let lang = move || lang_of(i18n.get_locale());
    let values: BTreeMap<TargetKey, RwSignal<String>> = TargetKey::ALL
        .iter()
        .map(|&k| (k, RwSignal::new(goals.get(&k).cloned().unwrap_or_default())))
        .collect();
    let values = StoredValue::new(values);
    let goals = StoredValue::new(goals);
    // Refusals per target; anything that names no target goes to `general`.
    let refused = RwSignal::new(BTreeMap::<TargetKey, String>::new());
    let general = RwSignal::new(Vec::<String>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let busy = RwSignal::new(false);
    let district_for_save = district.clone();
    let changed = move || {
        values.with_value(|values| {
            goals.with_value(|goals| {
                values
                    .iter()
                    .filter_map(|(k, v)| {
                        let typed = v.get().trim().to_string();
                        let was = goals.get(k).map(String::as_str).unwrap_or_default();
                        (!typed.is_empty() && typed != was).then_some((*k, typed))
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    let save = move |_| {
        if busy.get_untracked() {
            return;
        }
        let lang = lang_of(i18n.get_locale_untracked());
        let wanted = values.with_value(|values| {
            goals.with_value(|goals| {
                values
                    .iter()
                    .filter_map(|(k, v)| {
                        let typed = v.get_untracked().trim().to_string();
                        let was = goals.get(k).map(String::as_str).unwrap_or_default();
                        (!typed.is_empty() && typed != was).then_some((*k, typed))
                    })
                    .collect::<Vec<_>>()
            })
        });
        // The domain's own check first, so every refusal shows at once beside its input.
        let mut local = BTreeMap::new();
        for (key, typed) in &wanted {
            if let Err(error) = Goal::parse(*key, typed) {
                let message = match error.reason {
                    // The domain names the target in `given`; beside its input, the typed
                    // text says enough.
                    Reason::NotANumber { .. } => Reason::NotANumber {
                        given: typed.clone(),
                    }
                    .message(lang),
                    Reason::OutOfRange { .. } if is_share(*key) => {
                        t_string!(i18n, targets.share_range).to_string()
                    }
                    other => other.message(lang),
                };
                local.insert(*key, message);
            }
        }
        general.set(Vec::new());
        failure.set(None);
        if !local.is_empty() {
            refused.set(local);
            return;
        }
        refused.set(BTreeMap::new());
        if wanted.is_empty() {
            return;
        }
        busy.set(true);
        let args = SetTargets {
            year,
            district: district_for_save.clone(),
            goals: wanted,
        };
        spawn_local(async move {
            let answer = api::call::<_, Vec<TargetProgress>>(cmd::SET_TARGETS, &args).await;
            busy.set(false);
            match answer {
                Ok(now) => {
                    ctx.notice
                        .set(Some(t_string!(i18n, targets.saved).to_string()));
                    targets.set(Some(now));
                    desk.reload();
                }
                Err(error) if !error.details.fields.is_empty() => {
                    let mut by_key = BTreeMap::new();
                    let mut other = Vec::new();
                    for e in &error.details.fields {
                        match refused_key(e).filter(|_| e.field == Field::Target) {
                            Some(key) => {
                                by_key.insert(key, e.reason.message(lang));
                            }
                            None => other.push(e.message(lang)),
                        }
                    }
                    refused.set(by_key);
                    general.set(other);
                }
                Err(error) => failure.set(Some(error)),
            }
        });
    };
    let place = match &district {
        Some(d) => d.to_string(),
        None => String::new(),
    };
    let inputs = move || {
        let l: Lang = lang();
        TargetKey::ALL
            .iter()
            .copied()
            .map(|key| {
                let value = values.with_value(|v| v[&key]);
                let id = format!("target-{}", key.key());
                let error = move || refused.with(|r| r.get(&key).cloned());
                view! {
                    <label class="field target-field" class:refused=move || error().is_some() data-key=key.key()>
                        <span class="label">{cap(key.label(l))}</span>
                        <input type="text" id=id inputmode="decimal"
                            aria-invalid=move || error().is_some().to_string()
                            prop:value=move || value.get()
                            on:input=move |ev| value.set(event_target_value(&ev)) />
                        <small class="hint">{hint(i18n, key)}</small>
                        {move || error().map(|m| view! {
                            <p class="field-error" role="alert" id=format!("error-target-{}", key.key())>{m}</p>
                        })}
                    </label>
                }
            })
            .collect_view()
    };
    view! {
        <div class="card targets-form">
            <h3>{move || if place.is_empty() {
                t_string!(i18n, targets.set_region, year = year).to_string()
            } else {
                t_string!(i18n, targets.set_district, year = year, district = place.clone()).to_string()
            }}</h3>
            <p class="muted">{t!(i18n, targets.form_intro)}</p>
            <div class="target-inputs">{inputs}</div>
            {move || general.get().into_iter().map(|m| view! { <p class="field-error" role="alert">{m}</p> }).collect_view()}
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <button type="button" class="primary" id="targets-save" on:click=save
                disabled=move || busy.get() || changed().is_empty()>
                {t!(i18n, targets.save)}
            </button>
        </div>
    }
}
