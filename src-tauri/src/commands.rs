//! The Tauri commands: each unpacks its arguments and calls [`Device`]. All run off the main
//! thread (`async`), so a slow disk never freezes the window.

use crate::device::Device;
use crate::error::{AppError, AppResult};
use fieldlog_app_api::desk::{
    Decide, DeskFilter, EXPORT_EVENT, ExportLedger, ExportProgress, Exported, FigureArgs,
    QueueView, RegistryArgs, SchoolRef, SetTargets, TargetsArgs,
};
use fieldlog_app_api::{
    AddCourse, AddPairing, AddSchool, AddStudent, CommandError, CourseArgs, CourseDetail,
    DiscardPhotos, EndPairing, Enroll, ErrorKind, ListVisits, Members, MembersArgs, Overview,
    PairingRow, PhotoRefArgs, RemoveStudent, SaveVisit, SchoolHit, SearchSchools, SessionNumber,
    SetUpDevice, StagedPhoto, Thumbnail, VisitDetail, VisitRef, VisitSummary,
};
use fieldlog_domain::CourseSummary;
use fieldlog_domain::{
    Dashboard, Decision, FigureVisits, RegistryRow, SimilarSchool, Student, TargetProgress, VisitId,
};
use tauri::ipc::{InvokeBody, Request};
use tauri::{Emitter, State};

#[tauri::command(async)]
pub fn overview(device: State<'_, Device>) -> AppResult<Overview> {
    device.overview()
}

#[tauri::command(async)]
pub fn set_up_device(device: State<'_, Device>, args: SetUpDevice) -> AppResult<Overview> {
    device.set_up(&args)
}

#[tauri::command(async)]
pub fn enroll(device: State<'_, Device>, args: Enroll) -> AppResult<Overview> {
    device.enroll(&args)
}

#[tauri::command(async)]
pub fn search_schools(device: State<'_, Device>, args: SearchSchools) -> AppResult<Vec<SchoolHit>> {
    device.search_schools(&args)
}

#[tauri::command(async)]
pub fn add_school(device: State<'_, Device>, args: AddSchool) -> AppResult<SchoolHit> {
    device.add_school(&args)
}

/// The photo's bytes are the raw request body, so a 5 MB photo is not sent as JSON. Its
/// format is read from its content, so the `x-file-name` header is not needed.
#[tauri::command(async)]
pub fn stage_photo(device: State<'_, Device>, request: Request<'_>) -> AppResult<StagedPhoto> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(AppError(CommandError::new(
            ErrorKind::BadPhoto,
            "stage_photo expects the photo as a raw body",
        )));
    };
    device.stage_photo(bytes)
}

#[tauri::command(async)]
pub fn discard_photos(device: State<'_, Device>, args: DiscardPhotos) -> AppResult<()> {
    device.discard_photos(&args)
}

#[tauri::command(async)]
pub fn save_visit(device: State<'_, Device>, args: SaveVisit) -> AppResult<VisitId> {
    device.save_visit(&args)
}

#[tauri::command(async)]
pub fn list_visits(device: State<'_, Device>, args: ListVisits) -> AppResult<Vec<VisitSummary>> {
    device.list_visits(&args)
}

#[tauri::command(async)]
pub fn visit_detail(device: State<'_, Device>, args: VisitRef) -> AppResult<VisitDetail> {
    device.visit_detail(args.id)
}

#[tauri::command(async)]
pub fn photo_thumbnail(device: State<'_, Device>, args: PhotoRefArgs) -> AppResult<Thumbnail> {
    device.photo_thumbnail(&args.sha256)
}

#[tauri::command(async)]
pub fn list_courses(device: State<'_, Device>) -> AppResult<Vec<CourseSummary>> {
    device.list_courses()
}

#[tauri::command(async)]
pub fn course_detail(device: State<'_, Device>, args: CourseArgs) -> AppResult<CourseDetail> {
    device.course_detail(args.id)
}

#[tauri::command(async)]
pub fn add_course(device: State<'_, Device>, args: AddCourse) -> AppResult<CourseSummary> {
    device.add_course(&args)
}

#[tauri::command(async)]
pub fn add_student(device: State<'_, Device>, args: AddStudent) -> AppResult<Student> {
    device.add_student(&args)
}

#[tauri::command(async)]
pub fn remove_student(device: State<'_, Device>, args: RemoveStudent) -> AppResult<Student> {
    device.remove_student(&args)
}

#[tauri::command(async)]
pub fn next_session(device: State<'_, Device>, args: CourseArgs) -> AppResult<SessionNumber> {
    device.next_session(args.id)
}

#[tauri::command(async)]
pub fn list_pairings(device: State<'_, Device>) -> AppResult<Vec<PairingRow>> {
    device.list_pairings()
}

#[tauri::command(async)]
pub fn add_pairing(device: State<'_, Device>, args: AddPairing) -> AppResult<PairingRow> {
    device.add_pairing(&args)
}

#[tauri::command(async)]
pub fn end_pairing(device: State<'_, Device>, args: EndPairing) -> AppResult<PairingRow> {
    device.end_pairing(&args)
}

#[tauri::command(async)]
pub fn members(device: State<'_, Device>, args: MembersArgs) -> AppResult<Members> {
    device.members(args.refresh)
}

#[tauri::command(async)]
pub fn sync_now(device: State<'_, Device>) {
    device.sync.now();
}

/// Whether to print `first-render` on stdout when the UI is ready (`cargo xtask bench app`).
#[derive(Debug, Clone, Copy)]
pub struct ReportFirstRender(pub bool);

#[tauri::command(async)]
pub fn ui_ready(report: State<'_, ReportFirstRender>) {
    tracing::info!("the UI rendered its first screen");
    if report.0 {
        #[allow(clippy::print_stdout, reason = "the benchmark reads this line")]
        {
            println!("first-render");
        }
    }
}

#[tauri::command(async)]
pub fn review_queue(device: State<'_, Device>) -> AppResult<QueueView> {
    device.review_queue()
}

#[tauri::command(async)]
pub fn decide(device: State<'_, Device>, args: Decide) -> AppResult<Vec<Decision>> {
    device.decide(&args)
}

#[tauri::command(async)]
pub fn visit_history(device: State<'_, Device>, args: VisitRef) -> AppResult<Vec<Decision>> {
    device.visit_history(args.id)
}

#[tauri::command(async)]
pub fn dashboard(device: State<'_, Device>, args: DeskFilter) -> AppResult<Dashboard> {
    device.dashboard(&args)
}

#[tauri::command(async)]
pub fn figure_visits(device: State<'_, Device>, args: FigureArgs) -> AppResult<FigureVisits> {
    device.figure_visits(&args)
}

#[tauri::command(async)]
pub fn targets(device: State<'_, Device>, args: TargetsArgs) -> AppResult<Vec<TargetProgress>> {
    device.targets(&args)
}

#[tauri::command(async)]
pub fn set_targets(device: State<'_, Device>, args: SetTargets) -> AppResult<Vec<TargetProgress>> {
    device.set_targets(&args)
}

#[tauri::command(async)]
pub fn registry(device: State<'_, Device>, args: RegistryArgs) -> AppResult<Vec<RegistryRow>> {
    device.registry(&args)
}

#[tauri::command(async)]
pub fn similar_schools(
    device: State<'_, Device>,
    args: SchoolRef,
) -> AppResult<Vec<SimilarSchool>> {
    device.similar_schools(args.id)
}

/// `FIELDLOG_SAVE_AS` answers the save dialog with that path: the end-to-end tests drive
/// the webview, and WebDriver cannot reach a native dialog.
const SAVE_AS_ENV: &str = "FIELDLOG_SAVE_AS";

/// Asks where to save with the system's dialog, then writes the ledger there, emitting
/// progress every 1,000 rows. `None` when the person cancelled.
#[tauri::command(async)]
pub fn export_ledger<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    device: State<'_, Device>,
    args: ExportLedger,
) -> AppResult<Option<Exported>> {
    let total = device.ledger_rows(&args.filter)?;
    let extension = args.format.extension();
    let suggested = format!("工作台账-{}.{extension}", args.filter.year);
    let file = match std::env::var_os(SAVE_AS_ENV) {
        Some(path) if !path.is_empty() => Some(std::path::PathBuf::from(path)),
        _ => {
            use tauri_plugin_dialog::DialogExt;
            app.dialog()
                .file()
                .set_file_name(&suggested)
                .add_filter(extension.to_uppercase(), &[extension])
                .blocking_save_file()
                .and_then(|path| path.into_path().ok())
        }
    };
    let Some(file) = file else {
        return Ok(None);
    };
    let emit = |rows| {
        if let Err(error) = app.emit(EXPORT_EVENT, ExportProgress { rows, total }) {
            tracing::warn!(%error, "could not emit the export progress");
        }
    };
    emit(0);
    let exported = device.export_ledger(&args.filter, args.format, &file, &mut |rows| {
        if rows % 1000 == 0 {
            emit(rows);
        }
    })?;
    emit(exported.rows);
    Ok(Some(exported))
}
