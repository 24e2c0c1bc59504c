//! Pieces the screens share.

use crate::app::{lang_of, use_ctx};
use crate::i18n::*;
use fieldlog_app_api::{Badge, CommandError, ErrorKind, SyncState, cmd};
use fieldlog_domain::{Field, FieldError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_i18n::I18nContext;

/// "3 分钟前" / "3 min ago" for a time in ms since the epoch.
pub fn ago(i18n: I18nContext<Locale>, at_ms: Option<i64>, now_ms: f64) -> String {
    let Some(at) = at_ms else {
        return t_string!(i18n, time.never).to_string();
    };
    let minutes = ((now_ms - at as f64) / 60_000.0).max(0.0) as i64;
    match minutes {
        0 => t_string!(i18n, time.just_now).to_string(),
        1..=59 => t_string!(i18n, time.minutes_ago, n = minutes).to_string(),
        60..=2879 => t_string!(i18n, time.hours_ago, n = minutes / 60).to_string(),
        _ => t_string!(i18n, time.days_ago, n = minutes / 1440).to_string(),
    }
}

/// A local date and time, `2026-05-19 14:03`.
pub fn local_time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// The catalog message for a command error, in the current language; a refusal says why.
/// A refusal shown where it belongs: each refused field beside its input, anything else in
/// the form's error box.
pub fn show_refusal(
    error: CommandError,
    errors: RwSignal<Vec<FieldError>>,
    failure: RwSignal<Option<CommandError>>,
) {
    errors.set(error.details.fields.clone());
    failure.set(Some(error).filter(|e| e.details.fields.is_empty()));
}

pub fn error_text(i18n: I18nContext<Locale>, error: &CommandError) -> String {
    if let Some(refusal) = error.details.refusal {
        let reason = refusal.explain(lang_of(i18n.get_locale()));
        return t_string!(i18n, error.refused_because, reason = reason).to_string();
    }
    let text = match error.kind {
        ErrorKind::Invalid => t_string!(i18n, error.invalid),
        ErrorKind::NotSetUp => t_string!(i18n, error.not_set_up),
        ErrorKind::NotFound => t_string!(i18n, error.not_found),
        ErrorKind::BadPhoto => t_string!(i18n, error.bad_photo),
        ErrorKind::FileUnreadable => t_string!(i18n, error.file_unreadable),
        ErrorKind::NotEnrolled => t_string!(i18n, error.not_enrolled),
        ErrorKind::TeamMismatch => t_string!(i18n, error.team_mismatch),
        ErrorKind::Offline => t_string!(i18n, error.offline),
        ErrorKind::Refused => t_string!(i18n, error.refused),
        ErrorKind::BadResponse => t_string!(i18n, error.bad_response),
        ErrorKind::Storage => t_string!(i18n, error.storage),
        ErrorKind::NotAllowed => t_string!(i18n, error.not_allowed),
        ErrorKind::Decision => {
            let why = error
                .details
                .explained
                .as_ref()
                .map(|e| match i18n.get_locale() {
                    Locale::zh_CN => e.zh_cn.clone(),
                    Locale::en => e.en.clone(),
                });
            return t_string!(i18n, error.decision, reason = why.unwrap_or_default()).to_string();
        }
    };
    text.to_string()
}

/// An error box: the message, with the technical cause folded away.
#[component]
pub fn ErrorBox(error: CommandError) -> impl IntoView {
    let i18n = use_i18n();
    let cause = error.details.cause.clone();
    let message = move || error_text(i18n, &error);
    view! {
        <div class="error-box" role="alert">
            <p>{message}</p>
            {(!cause.is_empty()).then(|| view! {
                <details><summary>{t!(i18n, error.details)}</summary><code>{cause}</code></details>
            })}
        </div>
    }
}

/// The always-visible sync status. Tapping it syncs now.
#[component]
pub fn SyncPill() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let text = move || {
        let now = ctx.now_ms.get();
        match ctx.sync.get() {
            SyncState::NotEnrolled => t_string!(i18n, sync.not_enrolled).to_string(),
            SyncState::Offline { last_sync_at } => {
                t_string!(i18n, sync.offline, when = ago(i18n, last_sync_at, now)).to_string()
            }
            SyncState::Syncing {
                photos_total: 0,
                rounds,
                sent,
                received,
                ..
            } => t_string!(
                i18n,
                sync.syncing,
                round = rounds + 1,
                sent = sent,
                received = received
            )
            .to_string(),
            SyncState::Syncing {
                photos_done,
                photos_total,
                photo_bytes_done,
                photo_bytes_total,
                ..
            } => t_string!(
                i18n,
                sync.uploading_photos,
                done = photos_done,
                total = photos_total,
                bytes = format!("{} / {}", bytes(photo_bytes_done), bytes(photo_bytes_total))
            )
            .to_string(),
            SyncState::Synced {
                at,
                waiting_changes,
                waiting_photos,
            } => {
                let mut text =
                    t_string!(i18n, sync.synced, when = ago(i18n, Some(at), now)).to_string();
                if waiting_changes > 0 {
                    text += &t_string!(i18n, sync.waiting, n = waiting_changes).to_string();
                }
                if waiting_photos > 0 {
                    text += &t_string!(i18n, sync.waiting_photos, n = waiting_photos).to_string();
                }
                text
            }
            SyncState::NeedsAttention { error } => {
                t_string!(i18n, sync.attention, reason = error_text(i18n, &error)).to_string()
            }
        }
    };
    let class = move || match ctx.sync.get() {
        SyncState::NotEnrolled => "sync-pill local",
        SyncState::Offline { .. } => "sync-pill offline",
        SyncState::Syncing { .. } => "sync-pill syncing",
        SyncState::Synced { .. } => "sync-pill synced",
        SyncState::NeedsAttention { .. } => "sync-pill attention",
    };
    let state = move || match ctx.sync.get() {
        SyncState::NotEnrolled => "not_enrolled",
        SyncState::Offline { .. } => "offline",
        SyncState::Syncing { .. } => "syncing",
        SyncState::Synced { .. } => "synced",
        SyncState::NeedsAttention { .. } => "needs_attention",
    };
    let sync_now = move |_| {
        spawn_local(async move {
            // The state arrives as events; a failure to ask shows there too.
            let _ = crate::api::call0::<()>(cmd::SYNC_NOW).await;
        });
    };
    view! {
        <button id="sync-status" class=class data-state=state on:click=sync_now
            title=move || t_string!(i18n, sync.now)>
            <span class="dot" aria-hidden="true"></span>
            <span class="sync-text">{text}</span>
        </button>
    }
}

#[component]
pub fn BadgeView(badge: Badge) -> impl IntoView {
    let i18n = use_i18n();
    let label = move || match badge {
        Badge::Draft => t_string!(i18n, badge.draft),
        Badge::Synced => t_string!(i18n, badge.synced),
        Badge::Verified => t_string!(i18n, badge.verified),
        Badge::Conflict => t_string!(i18n, badge.conflict),
        Badge::Flagged => t_string!(i18n, badge.flagged),
    };
    view! { <span class=format!("badge badge-{}", badge.key())>{label}</span> }
}

/// The message for `field` among `errors`, in the current language, shown beside the field.
#[component]
pub fn FieldErr(field: Field, errors: RwSignal<Vec<FieldError>>) -> impl IntoView {
    let i18n = use_i18n();
    let message = move || {
        let lang = lang_of(i18n.get_locale());
        errors
            .get()
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.reason.message(lang))
            .collect::<Vec<_>>()
            .join("；")
    };
    let id = format!("error-{}", field.key().replace('.', "-"));
    view! {
        <Show when=move || !message().is_empty()>
            <p class="field-error" id=id.clone() role="alert">{message}</p>
        </Show>
    }
}

/// A +/− counter with a typed number in the middle. Large targets for thumbs.
#[component]
pub fn Counter(
    /// Used in element ids: `inc-<name>`, `dec-<name>`, `count-<name>`.
    name: &'static str,
    value: RwSignal<i64>,
    #[prop(optional)] small: bool,
    children: Children,
) -> impl IntoView {
    let i18n = use_i18n();
    let class = if small { "counter small" } else { "counter" };
    view! {
        <div class=class>
            <span class="counter-label">{children()}</span>
            <div class="counter-controls">
                <button type="button" class="round" id=format!("dec-{name}")
                    aria-label=move || t_string!(i18n, editor.decrease)
                    on:click=move |_| value.update(|v| *v = (*v - 1).max(0))>"−"</button>
                <input type="number" inputmode="numeric" min="0" id=format!("count-{name}")
                    prop:value=move || value.get().to_string()
                    on:change=move |ev| {
                        // Text that is not a number becomes -1, which validation refuses
                        // beside the field rather than silently keeping the old value.
                        let typed = event_target_value(&ev);
                        value.set(typed.trim().parse().unwrap_or(-1));
                    } />
                <button type="button" class="round" id=format!("inc-{name}")
                    aria-label=move || t_string!(i18n, editor.increase)
                    on:click=move |_| value.update(|v| *v = (*v).max(0) + 1)>"+"</button>
            </div>
        </div>
    }
}

/// A labelled one-line text input bound to `value`, with `field`'s refusal beside it.
#[component]
pub fn TextField(
    id: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] field: Option<Field>,
    #[prop(optional)] errors: Option<RwSignal<Vec<FieldError>>>,
    #[prop(default = "text")] kind: &'static str,
    children: Children,
) -> impl IntoView {
    let refusal = field
        .zip(errors)
        .map(|(field, errors)| view! { <FieldErr field=field errors=errors /> });
    view! {
        <label class="field">
            <span class="label">{children()}</span>
            <input type=kind id=id
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev)) />
            {refusal}
        </label>
    }
}
