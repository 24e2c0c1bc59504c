//! The coordinator's desk: its own page (`desk/index.html`, built from the `fieldlog-desk`
//! binary), so the volunteer's wasm never carries these screens, and the chart library
//! (a trimmed ECharts, `vendor/echarts.min.js`) loads only here. Desktop first (≥ 1280 px),
//! still usable at 1024 px.
//!
//! - [`queue`]: the review queue by section, with its decisions.
//! - [`dashboard`]: the published figures, charts and targets of a period and district;
//!   every figure opens [`figures`], the visits behind it.
//! - [`targets`]: the targets editor. [`registry`]: schools, search, approve, merge, edit.
//! - [`visit`]: one visit as the desk shows it, with its history, verify and flag.
//! - [`charts`]: ECharts through wasm-bindgen. [`export`]: the ledger export.

pub mod charts;
pub mod dashboard;
pub mod export;
pub mod figures;
pub mod queue;
pub mod registry;
pub mod targets;
pub mod visit;

use crate::api;
use crate::app::{Ctx, provide_page_ctx, store_locale};
use crate::i18n::*;
use crate::widgets::SyncPill;
use chrono::Datelike;
use fieldlog_app_api::CommandError;
use fieldlog_app_api::desk::{DeskFilter, EXPORT_EVENT, ExportProgress};
use fieldlog_domain::{Figure, Role, VisitId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Which desk screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskScreen {
    Queue,
    Dashboard,
    /// The visits behind a figure under the current filter.
    Figure(Figure),
    Targets,
    Registry,
    Visit(VisitId),
}

/// What the desk's screens share.
#[derive(Debug, Clone, Copy)]
pub struct DeskCtx {
    pub screen: RwSignal<DeskScreen>,
    /// The screen to go back to from a visit or a figure's list.
    pub back: RwSignal<DeskScreen>,
    /// The period and district the dashboard, figures and export look at.
    pub filter: RwSignal<DeskFilter>,
    /// Bumped after each decision, so the screens reload.
    pub decided: RwSignal<u32>,
    /// Rows written by the export running now, if any.
    pub export: RwSignal<Option<ExportProgress>>,
}

impl DeskCtx {
    pub fn go(&self, screen: DeskScreen) {
        let current = self.screen.get_untracked();
        if !matches!(current, DeskScreen::Visit(_) | DeskScreen::Figure(_)) {
            self.back.set(current);
        }
        self.screen.set(screen);
    }

    /// Another decision was made: reload what shows the queue or the figures.
    pub fn reload(&self) {
        self.decided.update(|n| *n += 1);
    }
}

pub fn use_desk() -> DeskCtx {
    expect_context::<DeskCtx>()
}

/// The districts of the coordinator's region, for the district pickers (tracked).
pub fn region(ctx: Ctx) -> Vec<String> {
    ctx.overview
        .get()
        .and_then(|o| o.enrollment)
        .map(|e| e.districts)
        .unwrap_or_default()
}

/// Loads `command` with what `args` reads, again whenever that or a decision changes, into
/// `into` (failures into `failure`). Only the answer to the latest call counts, and one equal
/// to what is shown leaves it as it is, so open forms survive a background sync. `on_answer`
/// sees each answer that counts first.
pub fn load_latest<A, R>(
    command: &'static str,
    args: impl Fn() -> A + 'static,
    into: RwSignal<Option<R>>,
    failure: RwSignal<Option<CommandError>>,
    on_answer: impl Fn(&R) + Clone + 'static,
) where
    A: Serialize + 'static,
    R: DeserializeOwned + PartialEq + Send + Sync + 'static,
{
    let desk = use_desk();
    let latest = StoredValue::new(0_u32);
    Effect::new(move |_| {
        desk.decided.track();
        let args = args();
        let asked = latest.get_value() + 1;
        latest.set_value(asked);
        let on_answer = on_answer.clone();
        spawn_local(async move {
            let answer = api::call::<_, R>(command, &args).await;
            // A later call (or leaving the screen) makes this answer stale.
            if latest.try_get_value() != Some(asked) {
                return;
            }
            match answer {
                Ok(found) => {
                    failure.set(None);
                    on_answer(&found);
                    if into.with_untracked(|shown| shown.as_ref() != Some(&found)) {
                        into.set(Some(found));
                    }
                }
                Err(error) => failure.set(Some(error)),
            }
        });
    });
}

#[component]
pub fn Desk() -> impl IntoView {
    view! {
        <I18nContextProvider>
            <DeskShell />
        </I18nContextProvider>
    }
}

#[component]
fn DeskShell() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = provide_page_ctx();
    let year = chrono::Local::now().year();
    let desk = DeskCtx {
        screen: RwSignal::new(DeskScreen::Queue),
        back: RwSignal::new(DeskScreen::Queue),
        filter: RwSignal::new(DeskFilter {
            year,
            from: None,
            to: None,
            district: None,
        }),
        decided: RwSignal::new(0),
        export: RwSignal::new(None),
    };
    provide_context(desk);
    spawn_local(api::listen(
        EXPORT_EVENT,
        move |progress: ExportProgress| {
            desk.export.set(Some(progress));
        },
    ));
    // Decisions made elsewhere arrive by sync: reload then too.
    Effect::new(move |_| {
        ctx.changed.track();
        desk.decided.update(|n| *n += 1);
    });
    // Only a coordinator's device shows the desk.
    let coordinator = move || {
        ctx.overview
            .get()
            .map(|o| o.enrollment.is_some_and(|e| e.role == Role::Coordinator))
    };
    let screen = move || match (coordinator(), desk.screen.get()) {
        (None, _) => ().into_any(),
        (Some(false), _) => view! {
            <div class="card"><p>{t!(i18n, desk.not_coordinator)}</p>
                <a class="button primary" href="/index.html">{t!(i18n, desk.field)}</a></div>
        }
        .into_any(),
        (Some(true), DeskScreen::Queue) => queue::Queue().into_any(),
        (Some(true), DeskScreen::Dashboard) => dashboard::Dashboard().into_any(),
        (Some(true), DeskScreen::Figure(figure)) => {
            view! { <figures::FigureVisits figure=figure /> }.into_any()
        }
        (Some(true), DeskScreen::Targets) => targets::Targets().into_any(),
        (Some(true), DeskScreen::Registry) => registry::Registry().into_any(),
        (Some(true), DeskScreen::Visit(id)) => view! { <visit::DeskVisit id=id /> }.into_any(),
    };
    let nav_class = move |target: DeskScreen| {
        let current = match desk.screen.get() {
            DeskScreen::Visit(_) | DeskScreen::Figure(_) => desk.back.get(),
            other => other,
        };
        if current == target {
            "nav-item active"
        } else {
            "nav-item"
        }
    };
    let choose = move |locale: Locale| {
        i18n.set_locale(locale);
        store_locale(locale);
    };
    let nav = move |id: &'static str, target: DeskScreen, icon: &'static str, label: String| {
        view! {
            <button id=id class=move || nav_class(target) on:click=move |_| desk.go(target)>
                <span class="nav-icon" aria-hidden="true">{icon}</span>
                <span>{label}</span>
            </button>
        }
    };
    view! {
        <div class="layout desk">
            <header class="topbar">
                <h1 class="brand">{t!(i18n, desk.title)}</h1>
                <div class="topbar-end">
                    <button type="button" class="link" id="desk-lang"
                        on:click=move |_| choose(match i18n.get_locale() {
                            Locale::zh_CN => Locale::en,
                            Locale::en => Locale::zh_CN,
                        })>
                        {move || match i18n.get_locale() { Locale::zh_CN => "English", Locale::en => "中文" }}
                    </button>
                    <SyncPill />
                </div>
            </header>
            <nav class="nav">
                {move || nav("nav-queue", DeskScreen::Queue, "✓", t_string!(i18n, desk.nav_queue).to_string())}
                {move || nav("nav-dashboard", DeskScreen::Dashboard, "▥", t_string!(i18n, desk.nav_dashboard).to_string())}
                {move || nav("nav-targets", DeskScreen::Targets, "◎", t_string!(i18n, desk.nav_targets).to_string())}
                {move || nav("nav-registry", DeskScreen::Registry, "⌂", t_string!(i18n, desk.nav_registry).to_string())}
                <a class="nav-item" id="nav-field" href="/index.html?field">
                    <span class="nav-icon" aria-hidden="true">"✎"</span>
                    <span>{t!(i18n, desk.field)}</span>
                </a>
            </nav>
            <main class="content">{screen}</main>
            {move || ctx.notice.get().map(|text| view! {
                <div class="notice" role="status" id="notice"
                    on:click=move |_| ctx.notice.set(None)>{text}</div>
            })}
        </div>
    }
}
