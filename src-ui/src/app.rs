//! The page: top bar with the always-visible sync status, the current screen, navigation.

use crate::courses::{CourseList, CourseView};
use crate::editor::Editor;
use crate::i18n::*;
use crate::visits::Detail;
use crate::widgets::SyncPill;
use crate::{api, home, settings, visits};
use fieldlog_app_api::{Overview, SyncState, cmd};
use fieldlog_domain::{CourseId, Lang, Role, VisitId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

/// Which screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Home,
    /// `None`: a new visit.
    Editor(Option<VisitId>),
    Visits,
    Detail(VisitId),
    Courses,
    Course(CourseId),
    /// A new visit, as a session of this course.
    NewSession(CourseId),
    Settings,
}

/// State every screen may read or change.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub screen: RwSignal<Screen>,
    pub overview: RwSignal<Option<Overview>>,
    pub sync: RwSignal<SyncState>,
    /// Milliseconds since the epoch, ticking every 30 s for "N minutes ago".
    pub now_ms: RwSignal<f64>,
    /// Bumped when records may have changed (a save, a sync), so lists reload.
    pub changed: RwSignal<u32>,
    /// A short confirmation ("Saved") shown at the bottom.
    pub notice: RwSignal<Option<String>>,
}

impl Ctx {
    pub fn go(&self, screen: Screen) {
        self.screen.set(screen);
    }

    /// Reloads the overview (device, enrollment, storage, sync).
    pub fn reload_overview(&self) {
        let ctx = *self;
        spawn_local(async move {
            if let Ok(overview) = api::call0::<Overview>(cmd::OVERVIEW).await {
                ctx.sync.set(overview.sync.clone());
                ctx.overview.set(Some(overview));
            }
        });
    }
}

pub fn use_ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// The domain's language for the current locale (validation messages, vocabularies).
pub fn lang_of(locale: Locale) -> Lang {
    match locale {
        Locale::zh_CN => Lang::ZhCn,
        Locale::en => Lang::En,
    }
}

const LANG_STORAGE_KEY: &str = "fieldlog.lang";

/// The language the person chose earlier on this device, if any.
pub fn stored_locale() -> Option<Locale> {
    let storage = window().local_storage().ok().flatten()?;
    match storage.get_item(LANG_STORAGE_KEY).ok().flatten()?.as_str() {
        "zh-CN" => Some(Locale::zh_CN),
        "en" => Some(Locale::en),
        _ => None,
    }
}

pub fn store_locale(locale: Locale) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let tag = match locale {
            Locale::zh_CN => "zh-CN",
            Locale::en => "en",
        };
        // Not remembering the choice only costs choosing again next time.
        let _ = storage.set_item(LANG_STORAGE_KEY, tag);
    }
}

#[component]
pub fn App() -> impl IntoView {
    view! {
        <I18nContextProvider>
            <Shell />
        </I18nContextProvider>
    }
}

/// Sets up what every page shares: the stored language, the [`Ctx`] (overview, sync
/// events, the ticking clock, notices), `<html lang>`, and telling the shell once the first
/// screen is up.
pub fn provide_page_ctx() -> Ctx {
    let i18n = use_i18n();
    if let Some(locale) = stored_locale() {
        i18n.set_locale(locale);
    }
    let ctx = Ctx {
        screen: RwSignal::new(Screen::Home),
        overview: RwSignal::new(None),
        sync: RwSignal::new(SyncState::NotEnrolled),
        now_ms: RwSignal::new(js_sys::Date::now()),
        changed: RwSignal::new(0),
        notice: RwSignal::new(None),
    };
    provide_context(ctx);
    ctx.reload_overview();
    spawn_local(api::listen_sync(move |state| {
        let finished = matches!(state, SyncState::Synced { .. });
        ctx.sync.set(state);
        if finished {
            ctx.changed.update(|n| *n += 1);
            ctx.reload_overview();
        }
    }));
    set_interval(
        move || ctx.now_ms.set(js_sys::Date::now()),
        Duration::from_secs(30),
    );
    // A notice goes away by itself after a few seconds.
    Effect::new(move |_| {
        if ctx.notice.get().is_some() {
            set_timeout(move || ctx.notice.set(None), Duration::from_secs(3));
        }
    });
    // Keep <html lang> right, so the webview picks CJK glyphs for Chinese.
    Effect::new(move |_| {
        let tag = match i18n.get_locale() {
            Locale::zh_CN => "zh-CN",
            Locale::en => "en",
        };
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", tag);
        }
    });

    // Tell the shell once the first screen is on glass (two frames after the overview).
    let reported = StoredValue::new(false);
    Effect::new(move |_| {
        if ctx.overview.get().is_some() && !reported.get_value() {
            reported.set_value(true);
            request_animation_frame(|| {
                request_animation_frame(|| {
                    spawn_local(async {
                        let _ = api::call0::<()>(cmd::UI_READY).await;
                    });
                });
            });
        }
    });

    ctx
}

#[component]
fn Shell() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = provide_page_ctx();
    // A coordinator's device opens the desk (its own page); `?field` keeps the field screens.
    let is_coordinator = move || {
        ctx.overview
            .get()
            .and_then(|o| o.enrollment)
            .is_some_and(|e| e.role == Role::Coordinator)
    };
    Effect::new(move |_| {
        let search = window().location().search().unwrap_or_default();
        if is_coordinator() && !search.contains("field") {
            let _ = window().location().replace("/desk/index.html");
        }
    });
    let screen = move || match ctx.screen.get() {
        Screen::Home => home::Home().into_any(),
        Screen::Editor(id) => view! { <Editor id=id /> }.into_any(),
        Screen::NewSession(course) => view! { <Editor id=None course=course /> }.into_any(),
        Screen::Visits => visits::VisitList().into_any(),
        Screen::Detail(id) => view! { <Detail id=id /> }.into_any(),
        Screen::Courses => view! { <CourseList /> }.into_any(),
        Screen::Course(id) => view! { <CourseView id=id /> }.into_any(),
        Screen::Settings => settings::Settings().into_any(),
    };
    let nav_class = move |target: Screen| {
        let active = matches!(
            (ctx.screen.get(), target),
            (Screen::Home, Screen::Home)
                | (Screen::Settings, Screen::Settings)
                | (Screen::Visits | Screen::Detail(_), Screen::Visits)
                | (Screen::Courses | Screen::Course(_), Screen::Courses)
        );
        if active {
            "nav-item active"
        } else {
            "nav-item"
        }
    };

    view! {
        <div class="layout">
            <header class="topbar">
                <h1 class="brand">{t!(i18n, app.title)}</h1>
                <SyncPill />
            </header>
            <nav class="nav">
                <button id="nav-home" class=move || nav_class(Screen::Home)
                    on:click=move |_| ctx.go(Screen::Home)>
                    <span class="nav-icon" aria-hidden="true">"⌂"</span>
                    <span>{t!(i18n, nav.home)}</span>
                </button>
                <button id="nav-visits" class=move || nav_class(Screen::Visits)
                    on:click=move |_| ctx.go(Screen::Visits)>
                    <span class="nav-icon" aria-hidden="true">"☰"</span>
                    <span>{t!(i18n, nav.visits)}</span>
                </button>
                <button id="nav-courses" class=move || nav_class(Screen::Courses)
                    on:click=move |_| ctx.go(Screen::Courses)>
                    <span class="nav-icon" aria-hidden="true">"▦"</span>
                    <span>{t!(i18n, nav.courses)}</span>
                </button>
                <button id="nav-settings" class=move || nav_class(Screen::Settings)
                    on:click=move |_| ctx.go(Screen::Settings)>
                    <span class="nav-icon" aria-hidden="true">"⚙"</span>
                    <span>{t!(i18n, nav.settings)}</span>
                </button>
                <Show when=is_coordinator>
                    <a class="nav-item" id="nav-desk" href="/desk/index.html">
                        <span class="nav-icon" aria-hidden="true">"▥"</span>
                        <span>{t!(i18n, nav.desk)}</span>
                    </a>
                </Show>
            </nav>
            <main class="content">{screen}</main>
            {move || ctx.notice.get().map(|text| view! {
                <div class="notice" role="status" id="notice"
                    on:click=move |_| ctx.notice.set(None)>{text}</div>
            })}
        </div>
    }
}
