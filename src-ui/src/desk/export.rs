//! The work ledger export from the dashboard's current filter: the system's save dialog,
//! then the file written by core, with progress while it runs.

use super::use_desk;
use crate::api;
use crate::app::use_ctx;
use crate::i18n::*;
use crate::widgets::ErrorBox;
use fieldlog_app_api::CommandError;
use fieldlog_app_api::cmd;
use fieldlog_app_api::desk::{ExportLedger, Exported, LedgerFormat};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn ExportButtons() -> impl IntoView {
    let i18n = use_i18n();
    let desk = use_desk();
    let ctx = use_ctx();
    let running = RwSignal::new(false);
    let failure = RwSignal::new(None::<CommandError>);
    let done = RwSignal::new(None::<Exported>);
    let export = move |format: LedgerFormat| {
        let args = ExportLedger {
            filter: desk.filter.get_untracked(),
            format,
        };
        running.set(true);
        failure.set(None);
        done.set(None);
        desk.export.set(None);
        spawn_local(async move {
            match api::call::<_, Option<Exported>>(cmd::EXPORT_LEDGER, &args).await {
                Ok(Some(exported)) => done.set(Some(exported)),
                Ok(None) => ctx
                    .notice
                    .set(Some(t_string!(i18n, export.cancelled).to_string())),
                Err(error) => failure.set(Some(error)),
            }
            running.set(false);
        });
    };
    view! {
        <div class="export">
            <div class="export-buttons">
                <button type="button" class="primary" id="export-xlsx" disabled=move || running.get()
                    on:click=move |_| export(LedgerFormat::Xlsx)>{t!(i18n, export.xlsx)}</button>
                <button type="button" class="secondary" id="export-csv" disabled=move || running.get()
                    on:click=move |_| export(LedgerFormat::Csv)>{t!(i18n, export.csv)}</button>
            </div>
            <Show when=move || running.get()>
                {move || desk.export.get().map(|p| {
                    let width = if p.total == 0 { 100.0 } else { p.rows as f64 * 100.0 / p.total as f64 };
                    view! {
                        <div class="export-progress" id="export-progress">
                            <span>{move || t_string!(i18n, export.progress, rows = p.rows, total = p.total).to_string()}</span>
                            <div class="progress"><div class="progress-bar" style=format!("width: {width:.1}%")></div></div>
                        </div>
                    }
                })}
            </Show>
            {move || done.get().map(|d| view! {
                <p class="export-done" id="export-done">
                    {move || t_string!(i18n, export.done, rows = d.rows, path = d.path.clone()).to_string()}
                </p>
            })}
            {move || failure.get().map(|e| view! { <ErrorBox error=e /> })}
        </div>
    }
}
