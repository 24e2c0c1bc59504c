//! The review queue: one screen, five sections with their counts — suspected duplicates
//! side by side, fields holding conflicting values, schools entered in the field, visits
//! fixed after a flag and visits left unverified — each with its decisions.
//!
//! Also what the other desk screens share: [`Decider`] (make a decision, then reload the
//! desk and confirm) and [`ConflictResolver`] (pick one value of a field, or type one).

use super::registry::{ApproveSchoolForm, MergeSchoolPicker};
use super::{DeskCtx, DeskScreen, load_latest, use_desk};
use crate::api;
use crate::app::{Ctx, lang_of, use_ctx};
use crate::i18n::*;
use crate::widgets::{ErrorBox, FieldErr, local_time, show_refusal};
use fieldlog_app_api::desk::{
    ConflictView, Decide, DuplicateView, PendingSchool, QueueView, VisitCard,
};
use fieldlog_app_api::{CommandError, ConflictValue, cmd};
use fieldlog_domain::review::TAKEABLE;
use fieldlog_domain::{AudienceRule, Decision, Field, FieldError, Lang, QueuedVisit, VisitId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use std::collections::BTreeSet;

/// The rows of a visit shown side by side with its suspected duplicate.
const PAIR_ROWS: [Field; 12] = [
    Field::School,
    Field::Date,
    Field::Activities,
    Field::Topic,
    Field::Presenters,
    Field::Students,
    Field::Teachers,
    Field::Others,
    Field::Audience,
    Field::Books,
    Field::Kits,
    Field::Notes,
];

/// Makes coordinator decisions for one form: refusals land in `errors` (beside the fields)
/// or `failure` (the form's error box); a decision made reloads every desk screen and shows
/// a short confirmation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decider {
    desk: DeskCtx,
    ctx: Ctx,
    pub errors: RwSignal<Vec<FieldError>>,
    pub failure: RwSignal<Option<CommandError>>,
    pub busy: RwSignal<bool>,
}

impl Decider {
    pub fn new() -> Self {
        Decider {
            desk: use_desk(),
            ctx: use_ctx(),
            errors: RwSignal::new(Vec::new()),
            failure: RwSignal::new(None),
            busy: RwSignal::new(false),
        }
    }

    /// Sends `decide`; once made, runs `after`, shows `done` and reloads the desk.
    pub fn run(self, decide: Decide, done: String, after: impl FnOnce() + 'static) {
        if self.busy.get_untracked() {
            return;
        }
        self.busy.set(true);
        spawn_local(async move {
            let answer = api::call::<_, Vec<Decision>>(cmd::DECIDE, &decide).await;
            self.busy.set(false);
            match answer {
                Ok(_) => {
                    self.errors.set(Vec::new());
                    self.failure.set(None);
                    after();
                    self.ctx.notice.set(Some(done));
                    self.desk.reload();
                }
                Err(error) => show_refusal(error, self.errors, self.failure),
            }
        });
    }
}

/// A label as a heading or a column's name: its first letter upper case (the domain's
/// English labels are lower case; Chinese is unchanged).
pub(super) fn cap(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Field refusals that have no input of their own in a form (`shown` have one), and the
/// form's general error.
#[component]
pub(super) fn Refusals(
    errors: RwSignal<Vec<FieldError>>,
    failure: RwSignal<Option<CommandError>>,
    #[prop(optional)] shown: Vec<Field>,
) -> impl IntoView {
    let i18n = use_i18n();
    let others = move || {
        let lang = lang_of(i18n.get_locale());
        errors
            .get()
            .iter()
            .filter(|e| !shown.contains(&e.field))
            .map(|e| e.message(lang))
            .collect::<Vec<_>>()
    };
    view! {
        {move || others().into_iter().map(|m| view! { <p class="field-error" role="alert">{m}</p> }).collect_view()}
        {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
    }
}

/// A key that changes whenever an item's content does, so a list keeps the open forms of
/// the items that did not change across reloads.
pub(super) fn content_key<T: Serialize>(item: &T) -> String {
    serde_json::to_string(item).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Duplicates,
    Conflicts,
    Schools,
    Fixed,
    Unverified,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::Duplicates,
        Section::Conflicts,
        Section::Schools,
        Section::Fixed,
        Section::Unverified,
    ];

    fn key(self) -> &'static str {
        match self {
            Section::Duplicates => "duplicates",
            Section::Conflicts => "conflicts",
            Section::Schools => "schools",
            Section::Fixed => "fixed",
            Section::Unverified => "unverified",
        }
    }

    /// How many wait in the section (the queue sends the first of them).
    fn count(self, queue: &QueueView) -> usize {
        let t = &queue.totals;
        match self {
            Section::Duplicates => t.duplicates,
            Section::Conflicts => t.conflicts,
            Section::Schools => t.pending_schools,
            Section::Fixed => t.fixed,
            Section::Unverified => t.unverified,
        }
    }

    fn shown(self, queue: &QueueView) -> usize {
        match self {
            Section::Duplicates => queue.duplicates.len(),
            Section::Conflicts => queue.conflicts.len(),
            Section::Schools => queue.pending_schools.len(),
            Section::Fixed => queue.fixed.len(),
            Section::Unverified => queue.unverified.len(),
        }
    }
}

#[component]
pub fn Queue() -> impl IntoView {
    let i18n = use_i18n();
    let queue = RwSignal::new(None::<QueueView>);
    let failure = RwSignal::new(None::<CommandError>);
    let section = RwSignal::new(Section::Duplicates);
    let chosen = RwSignal::new(false);
    // Loaded (or failed): the sections show. A memo, so a reload does not redraw them.
    let loaded = Memo::new(move |_| queue.with(Option::is_some) || failure.with(Option::is_some));
    // Until the coordinator picks a section, open the first one with work in it.
    let open_first = move |found: &QueueView| {
        let first = Section::ALL.into_iter().find(|s| s.count(found) > 0);
        if !chosen.get_untracked()
            && section.get_untracked().count(found) == 0
            && let Some(first) = first
        {
            section.set(first);
        }
    };
    load_latest(cmd::REVIEW_QUEUE, || (), queue, failure, open_first);
    let tab = move |s: Section| {
        let label = move || match s {
            Section::Duplicates => t_string!(i18n, queue.tab_duplicates),
            Section::Conflicts => t_string!(i18n, queue.tab_conflicts),
            Section::Schools => t_string!(i18n, queue.tab_schools),
            Section::Fixed => t_string!(i18n, queue.tab_fixed),
            Section::Unverified => t_string!(i18n, queue.tab_unverified),
        };
        let count = move || {
            queue.with(|q| {
                q.as_ref()
                    .map(|q| s.count(q).to_string())
                    .unwrap_or_default()
            })
        };
        let class = move || {
            let mut class = String::from("queue-tab");
            if section.get() == s {
                class.push_str(" active");
            }
            if queue.with(|q| q.as_ref().is_some_and(|q| s.count(q) == 0)) {
                class.push_str(" done");
            }
            class
        };
        view! {
            <button type="button" role="tab" id=format!("queue-tab-{}", s.key()) class=class
                aria-selected=move || (section.get() == s).to_string()
                aria-controls="queue-section"
                on:click=move |_| { chosen.set(true); section.set(s); }>
                <span class="tab-label">{label}</span>
                <span class="tab-count" data-count=count>{count}</span>
            </button>
        }
    };
    let body = move || match section.get() {
        Section::Duplicates => view! { <Duplicates queue=queue /> }.into_any(),
        Section::Conflicts => view! { <Conflicts queue=queue /> }.into_any(),
        Section::Schools => view! { <PendingSchools queue=queue /> }.into_any(),
        Section::Fixed => view! { <QueuedVisits queue=queue section=Section::Fixed /> }.into_any(),
        Section::Unverified => {
            view! { <QueuedVisits queue=queue section=Section::Unverified /> }.into_any()
        }
    };
    view! {
        <section class="screen desk-queue">
            <h2>{t!(i18n, queue.title)}</h2>
            <div class="queue-tabs" role="tablist" aria-label=move || t_string!(i18n, queue.title)>
                {Section::ALL.into_iter().map(tab).collect_view()}
            </div>
            {move || failure.get().map(|error| view! { <ErrorBox error=error /> })}
            <div id="queue-section" role="tabpanel" data-section=move || section.get().key()>
                {move || if loaded.get() {
                    body()
                } else {
                    view! { <p class="muted">{t!(i18n, queue.loading)}</p> }.into_any()
                }}
            </div>
        </section>
    }
}

/// "Nothing waiting here", once the queue has loaded.
#[component]
fn Empty(
    queue: RwSignal<Option<QueueView>>,
    section: Section,
    children: ChildrenFn,
) -> impl IntoView {
    let i18n = use_i18n();
    let empty = move || queue.with(|q| q.as_ref().is_some_and(|q| section.count(q) == 0));
    // The best of a long section come first; the rest follow as these are decided.
    let more = move || {
        queue.with(|q| {
            q.as_ref()
                .map(|q| (section.shown(q), section.count(q)))
                .filter(|(shown, total)| shown < total)
        })
    };
    view! {
        <Show when=empty>
            <p class="empty queue-empty">{children()}</p>
        </Show>
        {move || more().map(|(shown, total)| view! {
            <p class="muted queue-more">{t_string!(i18n, queue.showing_first, shown = shown, total = total).to_string()}</p>
        })}
    }
}

// ---- duplicates ----

#[component]
fn Duplicates(queue: RwSignal<Option<QueueView>>) -> impl IntoView {
    let i18n = use_i18n();
    let items =
        move || queue.with(|q| q.as_ref().map(|q| q.duplicates.clone()).unwrap_or_default());
    view! {
        <p class="section-intro muted">{t!(i18n, queue.duplicates_intro)}</p>
        <Empty queue=queue section=Section::Duplicates>{t!(i18n, queue.no_duplicates)}</Empty>
        <For each=items key=content_key children=move |item| view! { <PairCard item=item /> } />
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// A field of a visit as the pair shows it.
fn shown_value(card: &VisitCard, field: Field, lang: Lang) -> String {
    let f = &card.visit.fields;
    let text = |s: &str| {
        if s.trim().is_empty() {
            "—".to_string()
        } else {
            s.to_string()
        }
    };
    match field {
        Field::School if card.district.is_empty() => card.school_name.clone(),
        Field::School => format!("{} · {}", card.school_name, card.district),
        Field::Date => f.date.to_string(),
        Field::Activities => text(
            &f.activities
                .iter()
                .map(|a| a.label(lang))
                .collect::<Vec<_>>()
                .join("、"),
        ),
        Field::Topic => text(&f.topic),
        Field::Presenters => text(&f.presenters),
        Field::Notes => text(&f.notes),
        Field::Students => f.audience.students.to_string(),
        Field::Teachers => f.audience.teachers.to_string(),
        Field::Others => f.audience.others.to_string(),
        Field::Audience => f.audience.total().to_string(),
        Field::Books => f.donations.books.to_string(),
        Field::Kits => f.donations.kits.to_string(),
        _ => String::new(),
    }
}

#[component]
fn PairCard(item: DuplicateView) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let decider = Decider::new();
    let lang = move || lang_of(i18n.get_locale());
    let a = StoredValue::new(item.a.clone());
    let b = StoredValue::new(item.b.clone());
    let (a_id, b_id) = (item.a.visit.id, item.b.visit.id);
    let differing = item.differing.clone();
    let mut differs: Vec<Field> = differing.clone();
    if item.a.visit.audience_total() != item.b.visit.audience_total() {
        differs.push(Field::Audience);
    }
    // What the kept visit may take from the other: the takeable fields entered differently.
    let takeable: Vec<Field> = TAKEABLE
        .into_iter()
        .filter(|f| differing.contains(f))
        .collect();
    let keep = RwSignal::new(None::<Side>);
    let distinct = RwSignal::new(false);
    let take = RwSignal::new(BTreeSet::<Field>::new());
    let audience = RwSignal::new(AudienceRule::Keep);
    let note = RwSignal::new(String::new());
    let card = move |side: Side| match side {
        Side::A => a.get_value(),
        Side::B => b.get_value(),
    };
    let choose = move |side: Side| {
        distinct.set(false);
        keep.set(Some(side));
    };
    let cancel = move |_| {
        keep.set(None);
        distinct.set(false);
        take.set(BTreeSet::new());
        audience.set(AudienceRule::Keep);
        note.set(String::new());
        decider.errors.set(Vec::new());
        decider.failure.set(None);
    };
    let merge = move |_| {
        let Some(side) = keep.get_untracked() else {
            return;
        };
        let (kept, other) = match side {
            Side::A => (a_id, b_id),
            Side::B => (b_id, a_id),
        };
        let decide = Decide::Merge {
            keep: kept,
            other,
            audience: audience.get_untracked(),
            take: take.get_untracked().into_iter().collect(),
            note: note.get_untracked(),
        };
        decider.run(decide, t_string!(i18n, queue.merged).to_string(), || ());
    };
    let mark_distinct = move |_| {
        let decide = Decide::Distinct {
            a: a_id,
            b: b_id,
            note: note.get_untracked(),
        };
        decider.run(
            decide,
            t_string!(i18n, queue.marked_distinct).to_string(),
            || (),
        );
    };
    let differs_rows = differs.clone();
    let rows = move || {
        let l = lang();
        let (a, b) = (a.get_value(), b.get_value());
        PAIR_ROWS
            .into_iter()
            .map(|field| {
                let differ = differs_rows.contains(&field);
                view! {
                    <tr class=if differ { "differs" } else { "" } data-field=field.key()>
                        <th scope="row">
                            {differ.then(|| view! {
                                <span class="differs-mark" title=move || t_string!(i18n, queue.differs)>"≠"</span>
                                <span class="visually-hidden">{move || t_string!(i18n, queue.differs)}</span>
                            })}
                            {cap(field.label(l))}
                        </th>
                        <td>{shown_value(&a, field, l)}</td>
                        <td>{shown_value(&b, field, l)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let recorded = move |card: &VisitCard| {
        format!(
            "{} · {}",
            card.visit.created_by,
            local_time(card.visit.created_at)
        )
    };
    let head = move |side: Side| {
        let shown = card(side);
        let id = shown.visit.id;
        let letter = match side {
            Side::A => "A",
            Side::B => "B",
        };
        let role = move || match keep.get() {
            Some(kept) if kept == side => Some(("tag ok", t_string!(i18n, queue.kept))),
            Some(_) => Some(("tag", t_string!(i18n, queue.merged_away))),
            None => None,
        };
        view! {
            <th scope="col" class="pair-head">
                <span class="pair-letter">{letter}</span>
                {move || role().map(|(class, r)| view! { <span class=class>{r}</span> })}
                <small class="muted">{recorded(&shown)}</small>
                <button type="button" class="link open-visit" data-visit=id.to_string()
                    on:click=move |_| desk.go(DeskScreen::Visit(id))>{t!(i18n, queue.open_visit)}</button>
            </th>
        }
    };
    let table_class = move || match keep.get() {
        Some(Side::A) => "pair-table keep-a",
        Some(Side::B) => "pair-table keep-b",
        None => "pair-table",
    };
    let score = format!("{:.0}%", item.pair.score * 100.0);
    let reasons = item.pair.reasons.clone();
    let takeable_view = StoredValue::new(takeable);
    let merge_panel = move || {
        let side = keep.get()?;
        let (kept, other) = match side {
            Side::A => (card(Side::A), card(Side::B)),
            Side::B => (card(Side::B), card(Side::A)),
        };
        let (kept_total, other_total) = (kept.visit.audience_total(), other.visit.audience_total());
        let other_letter = if side == Side::A { "B" } else { "A" };
        let takeable = takeable_view.get_value();
        let nothing_to_take = takeable.is_empty();
        let other_card = StoredValue::new(other);
        Some(view! {
            <div class="merge-panel" data-keep=if side == Side::A { "a" } else { "b" }>
                <p>{move || t_string!(i18n, queue.merge_explain, other = other_letter).to_string()}</p>
                <fieldset class="merge-take">
                    <legend>{move || t_string!(i18n, queue.take_from, other = other_letter).to_string()}</legend>
                    {nothing_to_take.then(|| view! { <p class="muted">{t!(i18n, queue.nothing_to_take)}</p> })}
                    {takeable.into_iter().map(|field| {
                        let value = move || other_card.with_value(|c| shown_value(c, field, lang()));
                        view! {
                            <label class="check">
                                <input type="checkbox" class="merge-take-field" value=field.key()
                                    prop:checked=move || take.with(|t| t.contains(&field))
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        take.update(|t| { if on { t.insert(field); } else { t.remove(&field); } });
                                    } />
                                <span>{move || cap(field.label(lang()))}"："<q>{value}</q></span>
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <fieldset class="merge-audience">
                    <legend>{move || cap(Field::Audience.label(lang()))}</legend>
                    {AudienceRule::ALL.iter().copied().map(|rule| {
                        let n = match rule {
                            AudienceRule::Keep => kept_total,
                            AudienceRule::Other => other_total,
                            AudienceRule::Sum => kept_total + other_total,
                        };
                        view! {
                            <label class="check">
                                <input type="radio" class="merge-audience-rule" value=rule.key()
                                    name=format!("audience-{a_id}-{b_id}")
                                    prop:checked=move || audience.get() == rule
                                    on:change=move |_| audience.set(rule) />
                                <span>{move || format!("{} ({n})", rule.label(lang()))}</span>
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <label class="field">
                    <span class="label">{t!(i18n, queue.note_optional)}</span>
                    <input type="text" class="merge-note" prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev)) />
                    <FieldErr field=Field::Note errors=decider.errors />
                </label>
                <Refusals errors=decider.errors failure=decider.failure shown=vec![Field::Note] />
                <div class="decision-actions">
                    <button type="button" class="secondary merge-cancel" on:click=cancel>{t!(i18n, queue.cancel)}</button>
                    <button type="button" class="primary merge-confirm" on:click=merge
                        disabled=move || decider.busy.get()>{t!(i18n, queue.confirm_merge)}</button>
                </div>
            </div>
        })
    };
    let distinct_panel = move || {
        distinct.get().then(|| view! {
            <div class="merge-panel distinct-panel">
                <p>{t!(i18n, queue.distinct_explain)}</p>
                <label class="field">
                    <span class="label">{t!(i18n, queue.note_optional)}</span>
                    <input type="text" class="distinct-note" prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev)) />
                    <FieldErr field=Field::Note errors=decider.errors />
                </label>
                <Refusals errors=decider.errors failure=decider.failure shown=vec![Field::Note] />
                <div class="decision-actions">
                    <button type="button" class="secondary distinct-cancel" on:click=cancel>{t!(i18n, queue.cancel)}</button>
                    <button type="button" class="primary distinct-confirm" on:click=mark_distinct
                        disabled=move || decider.busy.get()>{t!(i18n, queue.confirm_distinct)}</button>
                </div>
            </div>
        })
    };
    let choosing = move || keep.get().is_none() && !distinct.get();
    view! {
        <article class="card pair" data-visit=a_id.to_string() data-other=b_id.to_string()>
            <header class="pair-summary">
                <span class="pair-score">{move || t_string!(i18n, queue.score, score = score.clone()).to_string()}</span>
                <span class="pair-reasons">
                    {move || reasons.iter().map(|r| view! { <span class="tag reason">{r.label(lang())}</span> }).collect_view()}
                </span>
            </header>
            <table class=table_class>
                <thead>
                    <tr>
                        <th scope="col"><span class="visually-hidden">{t!(i18n, queue.field)}</span></th>
                        {head(Side::A)}
                        {head(Side::B)}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <Show when=choosing>
                <div class="decision-actions pair-actions">
                    <button type="button" class="primary merge-keep-a" on:click=move |_| choose(Side::A)>
                        {t!(i18n, queue.keep_a)}
                    </button>
                    <button type="button" class="primary merge-keep-b" on:click=move |_| choose(Side::B)>
                        {t!(i18n, queue.keep_b)}
                    </button>
                    <button type="button" class="secondary pair-distinct"
                        on:click=move |_| { keep.set(None); distinct.set(true); }>
                        {t!(i18n, queue.not_same)}
                    </button>
                </div>
            </Show>
            {merge_panel}
            {distinct_panel}
        </article>
    }
}

// ---- conflicts ----

#[component]
fn Conflicts(queue: RwSignal<Option<QueueView>>) -> impl IntoView {
    let i18n = use_i18n();
    let items = move || queue.with(|q| q.as_ref().map(|q| q.conflicts.clone()).unwrap_or_default());
    view! {
        <p class="section-intro muted">{t!(i18n, queue.conflicts_intro)}</p>
        <Empty queue=queue section=Section::Conflicts>{t!(i18n, queue.no_conflicts)}</Empty>
        <For each=items key=content_key children=move |item| view! { <ConflictCard item=item /> } />
    }
}

#[component]
fn ConflictCard(item: ConflictView) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let id = item.visit.visit.id;
    let field = item.field;
    let date = item.visit.visit.fields.date.to_string();
    let place = if item.visit.district.is_empty() {
        item.visit.school_name.clone()
    } else {
        format!("{} · {}", item.visit.school_name, item.visit.district)
    };
    view! {
        <article class="card conflict-item" data-visit=id.to_string() data-field=field.key()>
            <header class="item-head">
                <div>
                    <h3>{move || cap(field.label(lang_of(i18n.get_locale())))}</h3>
                    <p class="muted">{place}" · "{date}</p>
                </div>
                <button type="button" class="link open-visit" data-visit=id.to_string()
                    on:click=move |_| desk.go(DeskScreen::Visit(id))>{t!(i18n, queue.open_visit)}</button>
            </header>
            <ConflictResolver visit=id field=field values=item.values />
        </article>
    }
}

/// Every value a field holds, with who entered it and when: pick one (or type a corrected
/// one), then confirm.
#[component]
pub(super) fn ConflictResolver(
    visit: VisitId,
    field: Field,
    values: Vec<ConflictValue>,
) -> impl IntoView {
    let i18n = use_i18n();
    let decider = Decider::new();
    let picked = RwSignal::new(None::<usize>);
    let custom = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let values = StoredValue::new(values);
    let choice = move |typed: String, picked: Option<usize>| {
        if !typed.trim().is_empty() {
            return Some(typed.trim().to_string());
        }
        picked.and_then(|i| values.with_value(|v| v.get(i).map(|v| v.value.clone())))
    };
    let chosen = move || choice(custom.get(), picked.get());
    let resolve = move |_| {
        let Some(value) = choice(custom.get_untracked(), picked.get_untracked()) else {
            return;
        };
        let decide = Decide::Resolve {
            visit,
            field,
            value,
            note: note.get_untracked(),
        };
        decider.run(decide, t_string!(i18n, queue.resolved).to_string(), || ());
    };
    let list = values.get_value();
    view! {
        <div class="resolver" data-field=field.key()>
            <p class="muted">{t!(i18n, queue.pick_value)}</p>
            <ul class="conflict-values">
                {list.into_iter().enumerate().map(|(i, v)| {
                    let who = v.author.clone();
                    let when = local_time(v.at);
                    let on = move || picked.get() == Some(i) && custom.with(|c| c.trim().is_empty());
                    view! {
                        <li>
                            <button type="button" data-value=v.value.clone() data-index=i.to_string()
                                class=move || if on() { "conflict-pick on" } else { "conflict-pick" }
                                aria-pressed=move || on().to_string()
                                on:click=move |_| { custom.set(String::new()); picked.set(Some(i)); }>
                                <strong class="conflict-value">{v.value.clone()}</strong>
                                <small>{move || t_string!(i18n, queue.entered_by, who = who.clone(), when = when.clone()).to_string()}</small>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <label class="field">
                <span class="label">{t!(i18n, queue.custom_value)}</span>
                <input type="text" class="conflict-custom" prop:value=move || custom.get()
                    on:input=move |ev| custom.set(event_target_value(&ev)) />
                <FieldErr field=field errors=decider.errors />
            </label>
            <label class="field">
                <span class="label">{t!(i18n, queue.note_optional)}</span>
                <input type="text" class="conflict-note" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <FieldErr field=Field::Note errors=decider.errors />
            </label>
            <Refusals errors=decider.errors failure=decider.failure shown=vec![field, Field::Note] />
            <div class="decision-actions">
                <button type="button" class="primary conflict-confirm" on:click=resolve
                    disabled=move || chosen().is_none() || decider.busy.get()>
                    {move || match chosen() {
                        Some(value) => t_string!(i18n, queue.use_value, value = value).to_string(),
                        None => t_string!(i18n, queue.choose_first).to_string(),
                    }}
                </button>
            </div>
        </div>
    }
}

// ---- pending schools ----

#[component]
fn PendingSchools(queue: RwSignal<Option<QueueView>>) -> impl IntoView {
    let i18n = use_i18n();
    let items = move || {
        queue.with(|q| {
            q.as_ref()
                .map(|q| q.pending_schools.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <p class="section-intro muted">{t!(i18n, queue.schools_intro)}</p>
        <Empty queue=queue section=Section::Schools>{t!(i18n, queue.no_schools)}</Empty>
        <For each=items key=content_key children=move |item| view! { <PendingCard item=item /> } />
    }
}

#[component]
fn PendingCard(item: PendingSchool) -> impl IntoView {
    let i18n = use_i18n();
    let lang = move || lang_of(i18n.get_locale());
    let school = item.school.clone();
    let id = school.id;
    let name = school.fields.name.clone();
    let district = school.fields.district.to_string();
    let area = school.fields.area;
    let level = school.fields.level;
    let visits = item.visits;
    let facts = move || {
        let l = lang();
        let mut parts = vec![district.clone(), area.label(l).to_string()];
        if let Some(level) = level {
            parts.push(level.label(l).to_string());
        }
        parts.push(t_string!(i18n, queue.school_visits, n = visits).to_string());
        parts.join(" · ")
    };
    view! {
        <article class="card pending-school" data-school=id.to_string()>
            <header class="item-head">
                <div>
                    <h3>{name}<span class="tag">{move || fieldlog_domain::SchoolStatus::Pending.label(lang())}</span></h3>
                    <p class="muted">{facts}</p>
                </div>
            </header>
            <div class="school-choices">
                <section class="school-choice">
                    <h4>{t!(i18n, queue.is_registered)}</h4>
                    <MergeSchoolPicker pending=school.clone() similar=item.similar />
                </section>
                <section class="school-choice">
                    <h4>{t!(i18n, queue.is_new)}</h4>
                    <ApproveSchoolForm school=school />
                </section>
            </div>
        </article>
    }
}

// ---- fixed and unverified visits ----

fn listed(queue: &QueueView, section: Section) -> &[QueuedVisit] {
    match section {
        Section::Fixed => &queue.fixed,
        _ => &queue.unverified,
    }
}

#[component]
fn QueuedVisits(queue: RwSignal<Option<QueueView>>, section: Section) -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let decider = Decider::new();
    let items = move || {
        queue.with(|q| {
            q.as_ref()
                .map(|q| listed(q, section).to_vec())
                .unwrap_or_default()
        })
    };
    let selected = RwSignal::new(BTreeSet::<VisitId>::new());
    // Keep only what is still listed after a reload.
    Effect::new(move |_| {
        let listed: BTreeSet<VisitId> = items().iter().map(|v| v.id).collect();
        if selected.with_untracked(|s| !s.is_subset(&listed)) {
            selected.update(|s| s.retain(|id| listed.contains(id)));
        }
    });
    let all_selected = move || {
        let listed = items();
        !listed.is_empty() && selected.with(|s| listed.iter().all(|v| s.contains(&v.id)))
    };
    let toggle_all = move |ev| {
        let on = event_target_checked(&ev);
        selected.set(if on {
            queue.with_untracked(|q| {
                q.as_ref()
                    .map(|q| listed(q, section).iter().map(|v| v.id).collect())
                    .unwrap_or_default()
            })
        } else {
            BTreeSet::new()
        });
    };
    let verify = move |_| {
        let visits: Vec<VisitId> = selected.get_untracked().into_iter().collect();
        if visits.is_empty() {
            return;
        }
        let n = visits.len();
        let done = t_string!(i18n, queue.verified_n, n = n).to_string();
        decider.run(
            Decide::Verify {
                visits,
                note: String::new(),
            },
            done,
            move || selected.set(BTreeSet::new()),
        );
    };
    let intro = move || match section {
        Section::Fixed => t_string!(i18n, queue.fixed_intro).to_string(),
        _ => queue
            .with(|q| q.as_ref().map(|q| q.unverified_after_days))
            .map(|days| t_string!(i18n, queue.unverified_intro, days = days).to_string())
            .unwrap_or_default(),
    };
    let row = move |v: QueuedVisit| {
        let id = v.id;
        view! {
            <tr class="queued-visit" data-visit=id.to_string()
                class:selected=move || selected.with(|s| s.contains(&id))>
                <td class="check-cell">
                    <input type="checkbox" class="verify-check" data-visit=id.to_string()
                        aria-label=move || t_string!(i18n, queue.select_visit)
                        prop:checked=move || selected.with(|s| s.contains(&id))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                        } />
                </td>
                <td>{v.date.to_string()}</td>
                <td>
                    <button type="button" class="link open-visit" data-visit=id.to_string()
                        on:click=move |_| desk.go(DeskScreen::Visit(id))>{v.school.clone()}</button>
                </td>
                <td>{v.team.clone()}</td>
                <td>{v.created_by.clone()}</td>
                {(section == Section::Fixed).then(|| view! { <td class="flag-note">{v.note.clone()}</td> })}
            </tr>
        }
    };
    let empty_text = move || match section {
        Section::Fixed => t_string!(i18n, queue.no_fixed),
        _ => t_string!(i18n, queue.no_unverified),
    };
    view! {
        <p class="section-intro muted">{intro}</p>
        <Empty queue=queue section=section>{empty_text}</Empty>
        <Show when=move || !items().is_empty()>
            <div class="bulk-bar">
                <button type="button" class="primary" id="verify-selected" on:click=verify
                    disabled=move || selected.with(BTreeSet::is_empty) || decider.busy.get()>
                    {move || t_string!(i18n, queue.verify_selected, n = selected.with(BTreeSet::len)).to_string()}
                </button>
                <Refusals errors=decider.errors failure=decider.failure />
            </div>
            <table class="desk-table queued-visits">
                <thead>
                    <tr>
                        <th class="check-cell">
                            <input type="checkbox" id="verify-all"
                                aria-label=move || t_string!(i18n, queue.select_all)
                                prop:checked=all_selected on:change=toggle_all />
                        </th>
                        <th>{move || cap(Field::Date.label(lang_of(i18n.get_locale())))}</th>
                        <th>{move || cap(Field::School.label(lang_of(i18n.get_locale())))}</th>
                        <th>{move || cap(Field::Team.label(lang_of(i18n.get_locale())))}</th>
                        <th>{t!(i18n, queue.recorded_by)}</th>
                        {(section == Section::Fixed).then(|| view! { <th>{t!(i18n, queue.flag_note)}</th> })}
                    </tr>
                </thead>
                <tbody>
                    <For each=items key=content_key children=row />
                </tbody>
            </table>
        </Show>
    }
}
