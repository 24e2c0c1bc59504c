//! The visits behind a figure under the dashboard's filter: how many, and the latest of
//! them; each opens the visit.

use super::dashboard::figure_label;
use super::{DeskScreen, load_latest, use_desk};
use crate::app::lang_of;
use crate::i18n::*;
use crate::widgets::ErrorBox;
use fieldlog_app_api::CommandError;
use fieldlog_app_api::cmd;
use fieldlog_app_api::desk::FigureArgs;
use fieldlog_domain::{Figure, FigureVisits as Behind};
use leptos::prelude::*;

#[component]
pub fn FigureVisits(figure: Figure) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let lang = move || lang_of(i18n.get_locale());
    let behind = RwSignal::new(None::<Behind>);
    let failure = RwSignal::new(None::<CommandError>);
    let args = move || FigureArgs {
        filter: desk.filter.get(),
        figure,
    };
    load_latest(cmd::FIGURE_VISITS, args, behind, failure, |_| {});
    let period = move || {
        let filter = desk.filter.get();
        let (from, to) = filter.span();
        let mut text = t_string!(
            i18n,
            figure.period,
            from = from.to_string(),
            to = to.to_string()
        )
        .to_string();
        if let Some(d) = filter.district {
            text = format!("{text} · {d}");
        }
        text
    };
    view! {
        <section class="screen figure-visits">
            <div class="screen-head">
                <h2 id="figure-title">{move || {
                    let total = behind.get().map(|b| b.total).unwrap_or_default();
                    t_string!(i18n, figure.title, figure = figure_label(i18n, figure), value = total).to_string()
                }}</h2>
                <button type="button" class="secondary" id="figure-back"
                    on:click=move |_| desk.screen.set(desk.back.get())>{t!(i18n, desk.back)}</button>
            </div>
            <p class="muted">{period}</p>
            {move || failure.get().map(|e| view! { <ErrorBox error=e /> })}
            {move || behind.get().map(|b| {
                let shown = b.visits.len();
                let total = b.total;
                view! {
                    <p class="muted" id="figure-total">{move || t_string!(i18n, figure.total, n = total, shown = shown).to_string()}</p>
                    {(total == 0).then(|| view! { <p class="empty">{t!(i18n, figure.none)}</p> })}
                    <table class="desk-table" id="figure-table">
                        <thead><tr>
                            <th>{t!(i18n, figure.date)}</th>
                            <th>{t!(i18n, figure.school)}</th>
                            <th>{t!(i18n, figure.district)}</th>
                            <th>{t!(i18n, figure.area)}</th>
                            <th class="num">{t!(i18n, figure.audience)}</th>
                            <th>{t!(i18n, figure.lecture)}</th>
                            <th class="num">{t!(i18n, figure.books)}</th>
                            <th class="num">{t!(i18n, figure.kits)}</th>
                            <th class="num">{t!(i18n, figure.teachers)}</th>
                            <th>{t!(i18n, figure.review)}</th>
                        </tr></thead>
                        <tbody>
                            {b.visits.into_iter().map(|v| {
                                let id = v.id;
                                view! {
                                    <tr class="figure-row" data-visit=id.to_string()
                                        on:click=move |_| desk.go(DeskScreen::Visit(id))>
                                        <td>{v.date.to_string()}</td>
                                        <td><button type="button" class="link">{v.school_name.clone()}</button></td>
                                        <td>{v.district.map(|d| d.to_string()).unwrap_or_default()}</td>
                                        <td>{move || v.area.map(|a| a.label(lang())).unwrap_or_default()}</td>
                                        <td class="num">{v.audience}</td>
                                        <td>{v.lecture.then(|| view! { {t!(i18n, figure.yes)} })}</td>
                                        <td class="num">{v.books}</td>
                                        <td class="num">{v.kits}</td>
                                        <td class="num">{v.teachers_trained}</td>
                                        <td>{move || v.review.map(|r| r.label(lang())).unwrap_or_default()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            })}
        </section>
    }
}
