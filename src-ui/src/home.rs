//! Home: today's and recent visits, the big "new visit" action; first-run set-up.

use crate::api;
use crate::app::{Screen, lang_of, use_ctx};
use crate::i18n::*;
use crate::widgets::{BadgeView, ErrorBox, TextField};
use fieldlog_app_api::{CommandError, ListVisits, Overview, SetUpDevice, VisitSummary, cmd};
use fieldlog_domain::{Field, FieldError};
use leptos::prelude::*;
use leptos::task::spawn_local;

const RECENT: usize = 10;

#[component]
pub fn Home() -> impl IntoView {
    let ctx = use_ctx();
    let set_up = move || ctx.overview.get().map(|o| o.device.is_some());
    view! {
        {move || match set_up() {
            None => ().into_any(),
            Some(false) => view! { <SetUp /> }.into_any(),
            Some(true) => view! { <Today /> }.into_any(),
        }}
    }
}

#[component]
fn Today() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let visits = RwSignal::new(None::<Vec<VisitSummary>>);
    Effect::new(move |_| {
        ctx.changed.track();
        spawn_local(async move {
            if let Ok(list) = api::call(cmd::LIST_VISITS, &ListVisits::default()).await {
                visits.set(Some(list));
            }
        });
    });
    let today = chrono::Local::now().date_naive();
    let today_visits = move || {
        visits
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.visit.fields.date == today)
            .collect::<Vec<_>>()
    };
    let recent_visits = move || {
        visits
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.visit.fields.date != today)
            .take(RECENT)
            .collect::<Vec<_>>()
    };
    view! {
        <section class="screen home">
            <button id="new-visit" class="primary big"
                on:click=move |_| ctx.go(Screen::Editor(None))>
                <span aria-hidden="true">"＋ "</span>{t!(i18n, home.new_visit)}
            </button>
            <h2>{t!(i18n, home.today)}</h2>
            {move || {
                let list = today_visits();
                if list.is_empty() {
                    view! { <p class="empty">{t!(i18n, home.no_visits_today)}</p> }.into_any()
                } else {
                    view! { <VisitRows visits=list /> }.into_any()
                }
            }}
            {move || {
                let list = recent_visits();
                let none_at_all = visits.get().is_some_and(|v| v.is_empty());
                if none_at_all {
                    view! {
                        <h2>{t!(i18n, home.recent)}</h2>
                        <p class="empty">{t!(i18n, home.no_visits)}</p>
                    }
                    .into_any()
                } else if list.is_empty() {
                    // Only today's visits so far: no empty "recent" heading.
                    ().into_any()
                } else {
                    view! {
                        <h2>{t!(i18n, home.recent)}</h2>
                        <VisitRows visits=list />
                    }
                    .into_any()
                }
            }}
        </section>
    }
}

/// Visit rows; tapping one opens it.
#[component]
pub fn VisitRows(visits: Vec<VisitSummary>) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    view! {
        <ul class="visit-rows">
            {visits.into_iter().map(|v| {
                let id = v.visit.id;
                let lang = move || lang_of(i18n.get_locale());
                let activities = v.visit.fields.activities.clone();
                let total = v.visit.audience_total();
                let photos = v.visit.photos.len();
                view! {
                    <li>
                        <button class="visit-row" data-visit=id.to_string()
                            on:click=move |_| ctx.go(Screen::Detail(id))>
                            <span class="row-main">
                                <span class="row-school">{v.school_name.clone()}</span>
                                <BadgeView badge=v.badge />
                            </span>
                            <span class="row-sub">
                                <span>{v.visit.fields.date.to_string()}</span>
                                <span>{move || activities.iter()
                                    .map(|a| a.label(lang()))
                                    .collect::<Vec<_>>()
                                    .join("、")}</span>
                                <span class="row-count">{move || t_string!(i18n, home.audience, n = total).to_string()}</span>
                                {(photos > 0).then(|| view! {
                                    <span>{move || t_string!(i18n, home.photos, n = photos).to_string()}</span>
                                })}
                            </span>
                        </button>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// First run: name the device and the team, to log offline at once.
#[component]
fn SetUp() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let device_name = RwSignal::new(String::new());
    let team = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let start = move |_| {
        let args = SetUpDevice {
            device_name: device_name.get_untracked(),
            team: team.get_untracked(),
        };
        spawn_local(async move {
            match api::call::<_, Overview>(cmd::SET_UP_DEVICE, &args).await {
                Ok(overview) => ctx.overview.set(Some(overview)),
                Err(error) => {
                    errors.set(error.details.fields.clone());
                    failure.set(Some(error));
                }
            }
        });
    };
    view! {
        <section class="screen setup card">
            <h2>{t!(i18n, setup.title)}</h2>
            <p>{t!(i18n, setup.intro)}</p>
            <TextField id="setup-device-name" value=device_name field=Field::DeviceName errors=errors>
                {t!(i18n, setup.device_name)}
            </TextField>
            <TextField id="setup-team" value=team field=Field::Team errors=errors>
                {t!(i18n, setup.team)}
            </TextField>
            {move || failure.get().filter(|e| e.details.fields.is_empty())
                .map(|error| view! { <ErrorBox error=error /> })}
            <button id="setup-start" class="primary big" on:click=start>{t!(i18n, setup.start)}</button>
            <button class="link" on:click=move |_| ctx.go(Screen::Settings)>{t!(i18n, setup.or_enroll)}</button>
        </section>
    }
}
