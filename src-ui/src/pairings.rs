//! Pairings (结对帮扶) in Settings: this team's volunteers paired with schools' teachers, a
//! form to add one (the volunteer picked from the members the bureau enrolled) and ending one.

use crate::api;
use crate::app::use_ctx;
use crate::editor::SchoolPicker;
use crate::i18n::*;
use crate::widgets::{ErrorBox, FieldErr, TextField, show_refusal};
use fieldlog_app_api::{
    AddPairing, CommandError, EndPairing, Members, MembersArgs, PairingRow, SchoolHit, cmd,
};
use fieldlog_domain::{EnrolledMember, Field, FieldError, PairingId, PairingInput};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn Pairings() -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let rows = RwSignal::new(None::<Vec<PairingRow>>);
    let failure = RwSignal::new(None::<CommandError>);
    let adding = RwSignal::new(false);
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        ctx.changed.track();
        reload.track();
        spawn_local(async move {
            match api::call0::<Vec<PairingRow>>(cmd::LIST_PAIRINGS).await {
                Ok(list) => rows.set(Some(list)),
                Err(error) => failure.set(Some(error)),
            }
        });
    });
    let today = chrono::Local::now().date_naive();
    view! {
        <div class="card pairings" id="pairings">
            <h3>{t!(i18n, pairing.title)}</h3>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            {move || rows.get().map(|list| if list.is_empty() {
                view! { <p class="empty" id="no-pairings">{t!(i18n, pairing.none)}</p> }.into_any()
            } else {
                view! {
                    <ul class="pairing-rows">
                        {list.into_iter().map(|row| {
                            let active = row.pairing.active_on(today);
                            view! { <PairingItem row=row active=active reload=reload /> }
                        }).collect_view()}
                    </ul>
                }.into_any()
            })}
            {move || if adding.get() {
                view! { <NewPairing adding=adding reload=reload /> }.into_any()
            } else {
                view! {
                    <button type="button" class="secondary" id="new-pairing-toggle"
                        on:click=move |_| adding.set(true)>
                        "＋ "{t!(i18n, pairing.new)}
                    </button>
                }.into_any()
            }}
        </div>
    }
}

#[component]
fn PairingItem(row: PairingRow, active: bool, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let pairing = row.pairing;
    let id: PairingId = pairing.id;
    let since = pairing.fields.since.to_string();
    let until = pairing.until.map(|d| d.to_string());
    let ending = RwSignal::new(false);
    let on = RwSignal::new(chrono::Local::now().date_naive().to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let end = move |_| {
        let args = EndPairing {
            id,
            on: Some(on.get_untracked()),
        };
        spawn_local(async move {
            match api::call::<_, PairingRow>(cmd::END_PAIRING, &args).await {
                Ok(_) => reload.update(|n| *n += 1),
                Err(error) => {
                    show_refusal(error, errors, failure);
                }
            }
        });
    };
    let period = move || match until.clone() {
        None => t_string!(i18n, pairing.period_open, since = since.clone()).to_string(),
        Some(until) => {
            t_string!(i18n, pairing.period, since = since.clone(), until = until).to_string()
        }
    };
    view! {
        <li class="pairing-row" data-pairing=id.to_string()>
            <div class="pairing-who">
                <strong class="pairing-volunteer">{pairing.fields.volunteer.clone()}</strong>
                " ⇄ "
                <strong class="pairing-teacher">{pairing.fields.teacher.clone()}</strong>
                <span class=if active { "tag ok" } else { "tag" }>
                    {move || if active { t_string!(i18n, pairing.active) } else { t_string!(i18n, pairing.ended) }}
                </span>
            </div>
            <small class="muted">{row.school_name.clone()}" · "{period}</small>
            {active.then(|| view! {
                {move || if ending.get() {
                    view! {
                        <div class="end-pairing">
                            <TextField id="pairing-until" value=on kind="date" field=Field::Until errors=errors>
                                {t!(i18n, pairing.until)}
                            </TextField>
                            <div class="form-actions">
                                <button type="button" class="secondary" on:click=move |_| ending.set(false)>
                                    {t!(i18n, pairing.cancel)}
                                </button>
                                <button type="button" class="danger" id="pairing-end-confirm" on:click=end>
                                    {t!(i18n, pairing.confirm_end)}
                                </button>
                            </div>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <button type="button" class="link end-pairing-open" on:click=move |_| ending.set(true)>
                            {t!(i18n, pairing.end)}
                        </button>
                    }.into_any()
                }}
            })}
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
        </li>
    }
}

/// Where the member list stands while the form is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberList {
    /// Asking the bureau; the list held shows meanwhile.
    Refreshing,
    Fresh,
    /// The bureau could not be asked: the list held.
    Held,
}

#[component]
fn NewPairing(adding: RwSignal<bool>, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let ctx = use_ctx();
    let members = RwSignal::new(Vec::<EnrolledMember>::new());
    let state = RwSignal::new(MemberList::Refreshing);
    // The list held at once, then the bureau's (which may wait on the network).
    spawn_local(async move {
        if let Ok(held) =
            api::call::<_, Members>(cmd::MEMBERS, &MembersArgs { refresh: false }).await
            && state.get_untracked() == MemberList::Refreshing
        {
            members.set(held.members);
        }
        match api::call::<_, Members>(cmd::MEMBERS, &MembersArgs { refresh: true }).await {
            Ok(fetched) => {
                state.set(if fetched.refreshed {
                    MemberList::Fresh
                } else {
                    MemberList::Held
                });
                members.set(fetched.members);
            }
            Err(_) => state.set(MemberList::Held),
        }
    });
    let team = move || {
        ctx.overview
            .get()
            .and_then(|o| o.device)
            .map(|d| d.team)
            .unwrap_or_default()
    };
    // Only this team's members may be paired from this device.
    let volunteers = move || {
        let team = team();
        members
            .get()
            .into_iter()
            .filter(|m| m.team.as_str() == team)
            .map(|m| m.name)
            .collect::<Vec<_>>()
    };
    let volunteer = RwSignal::new(String::new());
    let teacher = RwSignal::new(String::new());
    let school = RwSignal::new(None::<SchoolHit>);
    let since = RwSignal::new(chrono::Local::now().date_naive().to_string());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let failure = RwSignal::new(None::<CommandError>);
    let add = move |_| {
        let args = AddPairing {
            pairing: PairingInput {
                volunteer: volunteer.get_untracked(),
                teacher: teacher.get_untracked(),
                school: school
                    .get_untracked()
                    .map(|s| s.id.to_string())
                    .unwrap_or_default(),
                since: Some(since.get_untracked()).filter(|d| !d.is_empty()),
            },
        };
        spawn_local(async move {
            match api::call::<_, PairingRow>(cmd::ADD_PAIRING, &args).await {
                Ok(_) => {
                    adding.set(false);
                    reload.update(|n| *n += 1);
                }
                Err(error) => {
                    show_refusal(error, errors, failure);
                }
            }
        });
    };
    view! {
        <div class="new-pairing" id="new-pairing">
            <h4>{t!(i18n, pairing.new)}</h4>
            <label class="field">
                <span class="label">{t!(i18n, pairing.volunteer)}</span>
                <select id="pairing-volunteer" on:change=move |ev| volunteer.set(event_target_value(&ev))>
                    <option value="" selected=move || volunteer.get().is_empty()>{t!(i18n, pairing.choose_volunteer)}</option>
                    {move || volunteers().into_iter().map(|name| {
                        let value = name.clone();
                        view! {
                            <option value=name.clone() selected=move || volunteer.get() == value>{name.clone()}</option>
                        }
                    }).collect_view()}
                </select>
                {move || match state.get() {
                    MemberList::Refreshing => Some(view! { <small class="muted" id="members-state">{t!(i18n, pairing.members_loading)}</small> }.into_any()),
                    MemberList::Held if volunteers().is_empty() => Some(view! { <small class="muted" id="members-state">{t!(i18n, pairing.no_members)}</small> }.into_any()),
                    MemberList::Held => Some(view! { <small class="muted" id="members-state">{t!(i18n, pairing.members_held)}</small> }.into_any()),
                    MemberList::Fresh => None,
                }}
                <FieldErr field=Field::Volunteer errors=errors />
            </label>
            <TextField id="pairing-teacher" value=teacher field=Field::TeacherName errors=errors>
                {t!(i18n, pairing.teacher)}
            </TextField>
            <SchoolPicker school=school errors=errors />
            <TextField id="pairing-since" value=since kind="date" field=Field::Since errors=errors>
                {t!(i18n, pairing.since)}
            </TextField>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <div class="form-actions">
                <button type="button" class="secondary" id="new-pairing-cancel"
                    on:click=move |_| adding.set(false)>{t!(i18n, pairing.cancel)}</button>
                <button type="button" class="primary" id="pairing-add" on:click=add>{t!(i18n, pairing.add)}</button>
            </div>
        </div>
    }
}
