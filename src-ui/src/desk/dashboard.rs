//! The dashboard: for a year (or a date range) and a district, the published figures,
//! visits per month against the year before, per district (districts at zero marked),
//! rural against urban, and each target's progress with its numerator and denominator.
//! Every figure, bar and slice opens the visits behind it. The figures are core's
//! (`fieldlog report` computes the same).

use super::charts::{Chart, ChartClick};
use super::export::ExportButtons;
use super::targets::ProgressRow;
use super::{DeskScreen, load_latest, use_desk};
use crate::app::use_ctx;
use crate::i18n::*;
use crate::widgets::ErrorBox;
use chrono::{Datelike, NaiveDate};
use fieldlog_app_api::CommandError;
use fieldlog_app_api::cmd;
use fieldlog_app_api::desk::DeskFilter;
use fieldlog_domain::{Dashboard as Board, District, Figure, TargetKey};
use leptos::prelude::*;
use serde_json::json;

const GREEN: &str = "#1f7a4d";
const GREY_GREEN: &str = "#9bb3a6";
const AMBER: &str = "#c58b00";
const RED: &str = "#b3261e";

/// The label of a figure in the current language.
pub fn figure_label(i18n: leptos_i18n::I18nContext<Locale>, figure: Figure) -> String {
    match figure {
        Figure::Visits => t_string!(i18n, dashboard.visits),
        Figure::Schools => t_string!(i18n, dashboard.schools),
        Figure::RuralSchools => t_string!(i18n, dashboard.rural_schools),
        Figure::UrbanSchools => t_string!(i18n, dashboard.urban_schools),
        Figure::Audience => t_string!(i18n, dashboard.audience),
        Figure::Lectures => t_string!(i18n, dashboard.lectures),
        Figure::RuralLectures => t_string!(i18n, dashboard.rural_lectures),
        Figure::Books => t_string!(i18n, dashboard.books),
        Figure::Kits => t_string!(i18n, dashboard.kits),
        Figure::TeachersTrained => t_string!(i18n, dashboard.teachers_trained),
        Figure::CourseSessions => t_string!(i18n, dashboard.course_sessions),
    }
    .to_string()
}

/// The figure whose visits stand behind a target's progress, if one does.
fn target_figure(key: TargetKey) -> Option<Figure> {
    match key {
        TargetKey::Lectures => Some(Figure::Lectures),
        TargetKey::Audience => Some(Figure::Audience),
        TargetKey::Schools => Some(Figure::Schools),
        TargetKey::RuralLectureShare => Some(Figure::RuralLectures),
        TargetKey::DistrictsCovered => Some(Figure::Visits),
        TargetKey::TeachersTrained => Some(Figure::TeachersTrained),
        TargetKey::Books => Some(Figure::Books),
        TargetKey::Courses => Some(Figure::CourseSessions),
        TargetKey::PairingRate | TargetKey::Pairings => None,
    }
}

fn month_span(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((first, next.pred_opt()?))
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let board = RwSignal::new(None::<Board>);
    let failure = RwSignal::new(None::<CommandError>);
    load_latest(
        cmd::DASHBOARD,
        move || desk.filter.get(),
        board,
        failure,
        |_| {},
    );
    let open = move |figure: Figure| desk.go(DeskScreen::Figure(figure));
    view! {
        <section class="screen dashboard">
            <div class="screen-head">
                <h2>{t!(i18n, dashboard.title)}</h2>
                <ExportButtons />
            </div>
            <FilterBar />
            {move || failure.get().map(|e| view! { <ErrorBox error=e /> })}
            {move || match board.get() {
                None => view! { <p class="muted">{t!(i18n, desk.loading)}</p> }.into_any(),
                Some(b) => view! { <BoardView board=b open=Callback::new(open) /> }.into_any(),
            }}
        </section>
    }
}

/// Year, dates and district; every change reloads the dashboard.
#[component]
fn FilterBar() -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let ctx = use_ctx();
    let this_year = chrono::Local::now().year();
    let years = move || {
        let chosen = desk.filter.get().year;
        let mut years: Vec<i32> = (this_year - 4..=this_year).rev().collect();
        if !years.contains(&chosen) {
            years.push(chosen);
        }
        years
    };
    let region = move || super::region(ctx);
    let set = move |change: &dyn Fn(&mut DeskFilter)| desk.filter.update(|f| change(f));
    let date_value = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    view! {
        <div class="card desk-filters">
            <label class="field">
                <span class="label">{t!(i18n, dashboard.year)}</span>
                <select id="filter-year" on:change=move |ev| {
                    if let Ok(year) = event_target_value(&ev).parse::<i32>() {
                        set(&|f| { f.year = year; f.from = None; f.to = None; });
                    }
                }>
                    {move || years().into_iter().map(|y| view! {
                        <option value=y.to_string() selected=move || desk.filter.get().year == y>{y}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="field">
                <span class="label">{t!(i18n, dashboard.from)}</span>
                <input type="date" id="filter-from"
                    prop:value=move || date_value(desk.filter.get().from)
                    on:change=move |ev| {
                        let from = event_target_value(&ev).parse::<NaiveDate>().ok();
                        set(&|f| f.from = from);
                    } />
            </label>
            <label class="field">
                <span class="label">{t!(i18n, dashboard.to)}</span>
                <input type="date" id="filter-to"
                    prop:value=move || date_value(desk.filter.get().to)
                    on:change=move |ev| {
                        let to = event_target_value(&ev).parse::<NaiveDate>().ok();
                        set(&|f| f.to = to);
                    } />
            </label>
            <label class="field">
                <span class="label">{t!(i18n, dashboard.district)}</span>
                <select id="filter-district" on:change=move |ev| {
                    let district = District::parse(&event_target_value(&ev)).ok();
                    set(&|f| f.district = district.clone());
                }>
                    <option value="" selected=move || desk.filter.get().district.is_none()>
                        {t!(i18n, dashboard.all_districts)}
                    </option>
                    {move || region().into_iter().map(|d| {
                        let value = d.clone();
                        view! {
                            <option value=d.clone() selected=move || {
                                desk.filter.get().district.is_some_and(|x| x.as_str() == value)
                            }>{d.clone()}</option>
                        }
                    }).collect_view()}
                </select>
            </label>
            <Show when=move || { let f = desk.filter.get(); f.from.is_some() || f.to.is_some() }>
                <button type="button" class="link" id="filter-clear"
                    on:click=move |_| set(&|f| { f.from = None; f.to = None; })>
                    {t!(i18n, dashboard.clear)}
                </button>
            </Show>
        </div>
    }
}

#[component]
fn BoardView(board: Board, open: Callback<Figure>) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let report = board.report;
    let figure_card = move |figure: Figure, sub: Option<String>| {
        let key = figure.key();
        view! {
            <button type="button" class="figure-card" id=format!("figure-{key}")
                on:click=move |_| open.run(figure)>
                <span class="figure-label">{move || figure_label(i18n, figure)}</span>
                <strong class="figure-value" id=format!("figure-value-{key}")>{figure.of(&report)}</strong>
                {sub.clone().map(|s| view! { <span class="figure-sub">{s}</span> })}
            </button>
        }
    };
    let schools_split = move || {
        t_string!(
            i18n,
            dashboard.schools_split,
            rural = report.rural_schools,
            urban = report.urban_schools
        )
        .to_string()
    };

    // Visits per month, this year (bars) against the year before (a line).
    let year = board.year;
    let months = board.months.clone();
    let month_option = Signal::derive(move || {
        let _ = i18n.get_locale();
        let labels: Vec<String> = (1..=12)
            .map(|n| t_string!(i18n, dashboard.month, n = n).to_string())
            .collect();
        let this = t_string!(i18n, dashboard.this_year, year = year).to_string();
        let previous = t_string!(i18n, dashboard.this_year, year = year - 1).to_string();
        json!({
            "animation": false,
            "tooltip": {"trigger": "axis"},
            "legend": {"data": [this, previous], "top": 0},
            "grid": {"left": 48, "right": 16, "top": 36, "bottom": 28},
            "xAxis": {"type": "category", "data": labels},
            "yAxis": {"type": "value", "minInterval": 1},
            "series": [
                {"id": "this", "name": this, "type": "bar", "itemStyle": {"color": GREEN},
                 "data": months.iter().map(|m| m.visits).collect::<Vec<_>>()},
                {"id": "previous", "name": previous, "type": "line", "itemStyle": {"color": GREY_GREEN},
                 "data": months.iter().map(|m| m.previous_year).collect::<Vec<_>>()},
            ],
        })
    });
    let on_month = Callback::new(move |click: ChartClick| {
        let shown = if click.series == "previous" {
            year - 1
        } else {
            year
        };
        if let Some((from, to)) = month_span(shown, click.index as u32 + 1) {
            desk.filter.update(|f| {
                f.year = shown;
                f.from = Some(from);
                f.to = Some(to);
            });
            open.run(Figure::Visits);
        }
    });

    // Visits per district, most first from the top, rural and urban stacked; a district
    // at zero is named in red and labelled "not covered".
    let districts = board.districts.clone();
    let district_rows = districts.len();
    let district_names: Vec<String> = districts
        .iter()
        .rev()
        .map(|d| d.district.to_string())
        .collect();
    let district_option = Signal::derive(move || {
        let _ = i18n.get_locale();
        let rows: Vec<_> = districts.iter().rev().collect();
        let uncovered = t_string!(i18n, dashboard.uncovered).to_string();
        let names: Vec<_> = rows
            .iter()
            .map(|d| {
                if d.visits == 0 {
                    json!({"value": d.district.as_str(), "textStyle": {"color": RED, "fontWeight": "bold"}})
                } else {
                    json!(d.district.as_str())
                }
            })
            .collect();
        let rural_name = t_string!(i18n, dashboard.rural_schools).to_string();
        let urban_name = t_string!(i18n, dashboard.urban_schools).to_string();
        json!({
            "animation": false,
            "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
            "legend": {"data": [rural_name, urban_name], "top": 0},
            "grid": {"left": 96, "right": 72, "top": 36, "bottom": 16},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {"type": "category", "data": names},
            "series": [
                {"id": "rural", "name": rural_name, "type": "bar", "stack": "visits", "itemStyle": {"color": GREEN},
                 "data": rows.iter().map(|d| d.rural_visits).collect::<Vec<_>>()},
                {"id": "urban", "name": urban_name, "type": "bar", "stack": "visits", "itemStyle": {"color": GREY_GREEN},
                 "data": rows.iter().map(|d| {
                     if d.visits == 0 {
                         json!({"value": 0, "label": {"show": true, "position": "right", "formatter": uncovered, "color": RED}})
                     } else {
                         json!(d.urban_visits)
                     }
                 }).collect::<Vec<_>>()},
            ],
        })
    });
    let on_district = Callback::new(move |click: ChartClick| {
        if let Some(name) = district_names.get(click.index) {
            let district = District::parse(name).ok();
            desk.filter.update(|f| f.district = district);
            open.run(Figure::Visits);
        }
    });

    // Rural against urban schools reached.
    let area_option = Signal::derive(move || {
        let _ = i18n.get_locale();
        json!({
            "animation": false,
            "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
            "legend": {"bottom": 0},
            "series": [{
                "id": "areas", "type": "pie", "radius": ["40%", "70%"],
                "label": {"formatter": "{b}\n{c}"},
                "data": [
                    {"name": t_string!(i18n, dashboard.rural_schools).to_string(), "value": report.rural_schools, "itemStyle": {"color": GREEN}},
                    {"name": t_string!(i18n, dashboard.urban_schools).to_string(), "value": report.urban_schools, "itemStyle": {"color": AMBER}},
                ],
            }],
        })
    });
    let on_area = Callback::new(move |click: ChartClick| {
        open.run(if click.index == 0 {
            Figure::RuralSchools
        } else {
            Figure::UrbanSchools
        });
    });

    let targets = board.targets.clone();
    let no_targets = targets.is_empty();
    let previous = year - 1;
    view! {
        <h3>{t!(i18n, dashboard.figures)}</h3>
        <div class="figure-grid">
            {figure_card(Figure::Visits, None)}
            {move || figure_card(Figure::Schools, Some(schools_split()))}
            {figure_card(Figure::Audience, None)}
            {figure_card(Figure::Lectures, None)}
            {figure_card(Figure::RuralLectures, None)}
            {figure_card(Figure::Books, None)}
            {figure_card(Figure::Kits, None)}
            {figure_card(Figure::TeachersTrained, None)}
            {figure_card(Figure::CourseSessions, None)}
        </div>
        <div class="chart-grid">
            <div class="card chart-card wide">
                <h3>{move || t_string!(i18n, dashboard.per_month, year = year, previous = previous).to_string()}</h3>
                <Chart id="chart-months" option=month_option on_click=on_month
                    label=Signal::derive(move || t_string!(i18n, dashboard.per_month, year = year, previous = previous).to_string()) />
            </div>
            <div class="card chart-card">
                <h3>{t!(i18n, dashboard.per_district)}</h3>
                <div style=format!("height: {}px", 60 + 30 * district_rows.max(1))>
                    <Chart id="chart-districts" option=district_option on_click=on_district
                        label=Signal::derive(move || t_string!(i18n, dashboard.per_district).to_string()) />
                </div>
            </div>
            <div class="card chart-card">
                <h3>{t!(i18n, dashboard.rural_urban)}</h3>
                <Chart id="chart-areas" option=area_option on_click=on_area
                    label=Signal::derive(move || t_string!(i18n, dashboard.rural_urban).to_string()) />
            </div>
        </div>
        <div class="card">
            <div class="screen-head">
                <h3>{t!(i18n, dashboard.targets)}</h3>
                <button type="button" class="link" id="dashboard-set-targets"
                    on:click=move |_| desk.go(DeskScreen::Targets)>{t!(i18n, dashboard.set_targets)}</button>
            </div>
            {no_targets.then(|| view! { <p class="muted">{t!(i18n, dashboard.no_targets)}</p> })}
            <ul class="target-rows">
                {targets.into_iter().map(|target| {
                    let on_open = target_figure(target.key).map(|figure| Callback::new(move |()| open.run(figure)));
                    match on_open {
                        Some(on_open) => view! { <ProgressRow progress=target on_open=on_open /> }.into_any(),
                        None => view! { <ProgressRow progress=target /> }.into_any(),
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}
