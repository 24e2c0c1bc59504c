//! Fieldlog's app shell: a Tauri 2 window around the Leptos UI (`src-ui`), with thin
//! commands over `fieldlog-core`.
//!
//! - [`commands`]: the Tauri commands, one per UI action; names and types live in
//!   `fieldlog-app-api`, shared with the UI.
//! - [`device`]: what the commands do, over one store; testable without a window.
//! - [`sync_task`]: the background sync thread and its status events.
//! - [`error`]: core errors mapped once to `{kind, message_key, details}`.
//!
//! The data directory is the app data dir (`~/.local/share/org.fieldlog.app` on Linux), or
//! `FIELDLOG_DATA_DIR` when set (tests, demo). Logging follows `FIELDLOG_LOG`;
//! `FIELDLOG_REPORT_FIRST_RENDER` prints `first-render` when the UI is up (benchmark).

pub mod commands;
pub mod desk;
pub mod device;
pub mod error;
pub mod sync_task;

use device::Device;
use fieldlog_app_api::SYNC_EVENT;
use std::path::PathBuf;
use tauri::{Emitter, Manager};

/// Registers every command; shared by the app and the command-layer tests.
pub fn with_commands<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::overview,
        commands::set_up_device,
        commands::enroll,
        commands::search_schools,
        commands::add_school,
        commands::stage_photo,
        commands::discard_photos,
        commands::save_visit,
        commands::list_visits,
        commands::visit_detail,
        commands::photo_thumbnail,
        commands::list_courses,
        commands::course_detail,
        commands::add_course,
        commands::add_student,
        commands::remove_student,
        commands::next_session,
        commands::list_pairings,
        commands::add_pairing,
        commands::end_pairing,
        commands::members,
        commands::sync_now,
        commands::ui_ready,
        commands::review_queue,
        commands::decide,
        commands::visit_history,
        commands::dashboard,
        commands::figure_visits,
        commands::targets,
        commands::set_targets,
        commands::registry,
        commands::similar_schools,
        commands::export_ledger,
    ])
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let filter = std::env::var("FIELDLOG_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let app = with_commands(tauri::Builder::default())
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let data_dir = match std::env::var_os("FIELDLOG_DATA_DIR") {
                Some(dir) if !dir.is_empty() => PathBuf::from(dir),
                _ => app.path().app_data_dir()?,
            };
            let handle = app.handle().clone();
            let sync = sync_task::spawn(data_dir.clone(), move |state| {
                if let Err(error) = handle.emit(SYNC_EVENT, state) {
                    tracing::warn!(%error, "could not emit the sync state");
                }
            })?;
            let device = Device::open(&data_dir, sync).map_err(|e| e.0)?;
            app.manage(device);
            let report = std::env::var_os("FIELDLOG_REPORT_FIRST_RENDER").is_some();
            app.manage(commands::ReportFirstRender(report));
            Ok(())
        })
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(error) = app {
        tracing::error!(%error, "the app stopped with an error");
        std::process::exit(1);
    }
}
