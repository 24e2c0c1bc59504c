//! Settings: language, joining the bureau, pairings (the volunteer's work), this device,
//! storage, last sync.

use crate::api;
use crate::app::{store_locale, use_ctx};
use crate::i18n::*;
use crate::pairings::Pairings;
use crate::widgets::{ErrorBox, TextField, ago, bytes, local_time, show_refusal};
use fieldlog_app_api::{CommandError, Enroll, Overview, cmd};
use fieldlog_domain::{Field, FieldError};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn Settings() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    ctx.reload_overview();
    let choose = move |locale: Locale| {
        i18n.set_locale(locale);
        store_locale(locale);
    };
    let lang_class = move |locale: Locale| {
        if i18n.get_locale() == locale {
            "chip on"
        } else {
            "chip"
        }
    };
    let device = move || ctx.overview.get().and_then(|o| o.device);
    let enrollment = move || ctx.overview.get().and_then(|o| o.enrollment);
    view! {
        <section class="screen settings">
            <h2>{t!(i18n, settings.title)}</h2>
            <div class="card">
                <h3>{t!(i18n, settings.language)}</h3>
                <div class="chips">
                    <button type="button" id="lang-zh-CN" class=move || lang_class(Locale::zh_CN)
                        lang="zh-CN" on:click=move |_| choose(Locale::zh_CN)>"中文"</button>
                    <button type="button" id="lang-en" class=move || lang_class(Locale::en)
                        lang="en" on:click=move |_| choose(Locale::en)>"English"</button>
                </div>
            </div>
            <div class="card">
                <h3>{t!(i18n, settings.enrollment)}</h3>
                {move || match enrollment() {
                    Some(e) => {
                        let member = e.member.clone();
                        view! {
                            <p id="enrolled-as">{move || t_string!(i18n, settings.enrolled_as, member = member.clone()).to_string()}</p>
                            <dl class="detail-list">
                                <div class="detail-row"><dt>{t!(i18n, settings.url)}</dt><dd id="enrolled-url">{e.url.clone()}</dd></div>
                            </dl>
                        }.into_any()
                    }
                    None => view! { <EnrollForm /> }.into_any(),
                }}
            </div>
            <Show when=move || device().is_some()>
                <Pairings />
            </Show>
            <div class="card">
                <h3>{t!(i18n, settings.device)}</h3>
                <dl class="detail-list">
                    {move || match device() {
                        Some(d) => view! {
                            <div class="detail-row"><dt>{t!(i18n, settings.device_name)}</dt><dd id="device-name">{d.name}</dd></div>
                            <div class="detail-row"><dt>{t!(i18n, settings.team)}</dt><dd id="device-team">{d.team}</dd></div>
                        }.into_any(),
                        None => view! {
                            <div class="detail-row"><dt>{t!(i18n, settings.device_name)}</dt><dd>{t!(i18n, settings.not_set_up)}</dd></div>
                        }.into_any(),
                    }}
                    <div class="detail-row">
                        <dt>{t!(i18n, settings.last_sync)}</dt>
                        <dd id="last-sync">{move || {
                            let at = enrollment().and_then(|e| e.last_sync_at);
                            let relative = ago(i18n, at, ctx.now_ms.get());
                            match at {
                                Some(at) => format!("{} ({relative})", local_time(at)),
                                None => relative,
                            }
                        }}</dd>
                    </div>
                    <div class="detail-row">
                        <dt>{t!(i18n, settings.storage)}</dt>
                        <dd id="storage">{move || ctx.overview.get().map(|o| t_string!(
                            i18n,
                            settings.storage_value,
                            db = bytes(o.storage.database_bytes),
                            photos = bytes(o.storage.photo_bytes)
                        ).to_string())}</dd>
                    </div>
                    <div class="detail-row">
                        <dt>{t!(i18n, settings.data_dir)}</dt>
                        <dd><code>{move || ctx.overview.get().map(|o| o.data_dir)}</code></dd>
                    </div>
                </dl>
            </div>
        </section>
    }
}

#[component]
fn EnrollForm() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let url = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let device_name = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let busy = RwSignal::new(false);
    let needs_name = move || ctx.overview.get().is_some_and(|o| o.device.is_none());
    let enroll = move |_| {
        busy.set(true);
        let args = Enroll {
            url: url.get_untracked(),
            code: code.get_untracked(),
            device_name: device_name.get_untracked(),
        };
        spawn_local(async move {
            match api::call::<_, Overview>(cmd::ENROLL, &args).await {
                Ok(overview) => {
                    failure.set(None);
                    errors.set(Vec::new());
                    ctx.overview.set(Some(overview));
                }
                Err(error) => {
                    show_refusal(error, errors, failure);
                }
            }
            busy.set(false);
        });
    };
    view! {
        <div class="enroll">
            <TextField id="enroll-url" value=url kind="url">{t!(i18n, settings.url)}</TextField>
            <TextField id="enroll-code" value=code>{t!(i18n, settings.code)}</TextField>
            <Show when=needs_name>
                <TextField id="enroll-device-name" value=device_name field=Field::DeviceName errors=errors>
                    {t!(i18n, settings.device_name)}
                </TextField>
            </Show>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <button type="button" class="primary" id="enroll-submit" on:click=enroll disabled=move || busy.get()>
                {move || if busy.get() { t_string!(i18n, settings.enrolling) } else { t_string!(i18n, settings.enroll) }}
            </button>
        </div>
    }
}
