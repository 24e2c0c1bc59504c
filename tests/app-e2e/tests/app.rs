//! The real app (UI embedded) driven through tauri-driver and WebKitWebDriver, against a real
//! bureau on loopback: enroll, record a visit the way a volunteer does, see it sync, check it
//! at the bureau (and from a teammate's CLI), see a refused field explained beside it, set
//! up a series course with a roster and log a session taking attendance by taps, pair a
//! volunteer with a teacher, switch language, then save a visit with a photo out of signal
//! and see it go up by itself.
//!
//! Screenshots of the main screens (the course screens and the editor taking attendance
//! among them) at 360 px and 1280 px, in English and Chinese, are written to
//! `$FIELDLOG_E2E_ARTIFACTS/screenshots`.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use anyhow::{Context, Result, ensure};
use fantoccini::{Client, Locator};
use fieldlog_app_e2e::{
    Driver, click, env_path, open_editor, screenshot, sha256_hex, text_of, type_into, wait_for,
    write_test_photo,
};
use fieldlog_tests::bureau::Bureau;
use std::path::Path;

const SCHOOL: &str = "南山小学";
const ROSTER: [&str; 3] = ["张小明", "李小红", "王芳"];

#[tokio::test(flavor = "current_thread")]
async fn a_volunteer_records_a_visit_with_a_photo_and_it_reaches_the_bureau() -> Result<()> {
    let app = env_path("FIELDLOG_APP_BIN")?;
    let bureau_bin = env_path("FIELDLOG_BUREAU_BIN")?;
    let shots = env_path("FIELDLOG_E2E_ARTIFACTS")?.join("screenshots");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bureau = Bureau::start(&bureau_bin, &root.join("assets/demo-registry.csv"));
    let code = bureau.code("caravan-1", "李老师");

    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("device");
    let photo = work.path().join("课堂.png");
    write_test_photo(&photo, 0)?;
    // The app starts in the system language: English here, Chinese later by choice.
    let driver = Driver::start(&[
        ("FIELDLOG_DATA_DIR", &data_dir),
        ("LANG", Path::new("en_US.UTF-8")),
        ("LANGUAGE", Path::new("en_US")),
    ])?;
    let client = driver.session(&app).await?;
    let outcome = journey(&client, &bureau, &code, &photo, &shots).await;
    if outcome.is_err() {
        // What the window showed when it failed, for whoever reads the log.
        let _ = screenshot(&client, &shots, "failure").await;
    }
    // Close the session (and the app) whatever happened, then report.
    let _ = client.close().await;
    outcome
}

async fn journey(
    client: &Client,
    bureau: &Bureau,
    code: &str,
    photo: &Path,
    shots: &Path,
) -> Result<()> {
    client.set_window_size(360, 780).await?;
    // First run: not set up. Enroll from Settings.
    wait_for(client, "#nav-settings").await?;
    let home = text_of(client, "#nav-home").await?;
    ensure!(
        home.ends_with("Home"),
        "expected English first, got {home:?}"
    );
    click(client, "#nav-settings").await?;
    type_into(client, "#enroll-url", &bureau.url()).await?;
    type_into(client, "#enroll-code", code).await?;
    type_into(client, "#enroll-device-name", "Tablet 1").await?;
    click(client, "#enroll-submit").await?;
    wait_for(client, "#enrolled-url").await?;
    // The first sync brings the region's school registry.
    wait_for(client, "#sync-status[data-state='synced']").await?;

    // A new visit: school by pinyin initials, a lecture, counters, a photo.
    click(client, "#nav-home").await?;
    open_editor(client).await?;
    type_into(client, "#school-search", "nsxx").await?;
    click(client, &format!(".school-hit[data-school='{SCHOOL}']")).await?;
    wait_for(client, "#school-chosen").await?;
    click(client, "#chip-lecture").await?;
    for _ in 0..5 {
        click(client, "#inc-students").await?;
    }
    for _ in 0..2 {
        click(client, "#inc-teachers").await?;
    }
    click(client, "#inc-books").await?;
    type_into(client, "#visit-topic", "Water cycle").await?;
    wait_for(client, "#photo-file")
        .await?
        .send_keys(&photo.display().to_string())
        .await
        .context("attaching the photo")?;
    let caption = wait_for(client, ".photo-item.draft .photo-caption").await?;
    caption.send_keys("Experiment").await?;
    click(client, ".photo-item.draft .photo-consent").await?;
    screenshot(client, shots, "en-360-editor").await?;
    click(client, "#save-visit").await?;
    ensure!(text_of(client, "#detail-school").await? == SCHOOL);
    wait_for(client, ".photo-item.saved img[src^='data:image/jpeg']").await?;

    // In the list, then synced: the badge turns "synced" once the bureau holds it.
    click(client, "#nav-visits").await?;
    let row = wait_for(client, ".visit-row").await?;
    let visit_id = row.attr("data-visit").await?.context("row without id")?;
    click(client, "#sync-status").await?;
    wait_for(client, ".visit-row .badge-synced").await?;

    // At the bureau: the visit with its counts and the photo's record.
    let visits = bureau.read(&["visits"]);
    let visit = visits
        .as_array()
        .and_then(|all| all.iter().find(|v| v["id"] == visit_id.as_str()))
        .with_context(|| format!("visit {visit_id} not at the bureau: {visits}"))?;
    ensure!(visit["audience"]["students"] == 5, "students: {visit}");
    ensure!(visit["audience"]["teachers"] == 2, "teachers: {visit}");
    ensure!(visit["donations"]["books"] == 1, "books: {visit}");
    ensure!(
        visit["activities"] == serde_json::json!(["lecture"]),
        "{visit}"
    );
    let photos = visit["photos"].as_array().context("photos")?;
    ensure!(photos.len() == 1, "photos: {visit}");
    ensure!(photos[0]["caption"] == "Experiment" && photos[0]["consent"] == true);
    // Both of the photo's files arrived, and a teammate's phone gets the same display copy.
    let arrivals = bureau.read(&["photos"]);
    let arrival = arrivals
        .as_array()
        .and_then(|all| all.iter().find(|a| a["visit"] == visit_id.as_str()))
        .with_context(|| format!("no photo of {visit_id} at the bureau: {arrivals}"))?;
    ensure!(
        arrival["thumbnail_held"] == true && arrival["display_held"] == true,
        "photo files not at the bureau: {arrival}"
    );
    let display = arrival["photo"]["display_sha256"]
        .as_str()
        .context("display hash")?;
    let fetched = teammate_fetches(bureau, display)?;
    ensure!(sha256_hex(&fetched) == display, "fetched copy differs");

    // Refused input: no school and a negative count. Shown beside the fields; nothing saved.
    click(client, "#nav-home").await?;
    open_editor(client).await?;
    click(client, "#chip-lecture").await?;
    type_into(client, "#count-students", "-3").await?;
    click(client, "#save-visit").await?;
    let school_error = text_of(client, "#error-school").await?;
    ensure!(school_error.contains("required"), "{school_error}");
    let students_error = text_of(client, "#error-audience-students").await?;
    ensure!(students_error.contains("between 0 and"), "{students_error}");
    wait_for(client, "#form-error").await?;
    screenshot(client, shots, "en-360-editor-refused").await?;
    click(client, "#cancel-visit").await?;
    click(client, "#nav-visits").await?;
    wait_for(client, ".visit-row").await?;
    ensure!(client.find_all(Locator::Css(".visit-row")).await?.len() == 1);
    ensure!(bureau.read(&["visits"]).as_array().map(Vec::len) == Some(1));

    let session = course_session(client, bureau, shots).await?;
    pairing(client, shots).await?;

    screens(client, shots, "en", &visit_id).await?;

    // Chinese, chosen in Settings: every label follows.
    click(client, "#nav-settings").await?;
    click(client, "#lang-zh-CN").await?;
    ensure!(text_of(client, "#nav-home").await?.ends_with("首页"));
    ensure!(text_of(client, "#nav-visits").await?.ends_with("记录"));
    // textContent: WebKit reports no visible text for the ellipsised status line.
    let status = wait_for(client, "#sync-status .sync-text")
        .await?
        .prop("textContent")
        .await?
        .unwrap_or_default();
    ensure!(
        status.contains("已同步"),
        "sync status in Chinese: {status:?}"
    );
    screens(client, shots, "zh-CN", &visit_id).await?;
    click(client, "#nav-home").await?;
    open_editor(client).await?;
    click(client, "#save-visit").await?;
    let school_error = text_of(client, "#error-school").await?;
    ensure!(school_error.contains("必填"), "{school_error}");
    click(client, "#cancel-visit").await?;

    let second_photo = photo.with_file_name("实验.png");
    write_test_photo(&second_photo, 0x5a)?;
    offline_then_online(client, bureau, &second_photo, &[visit_id, session], shots).await
}

/// A series course set up on the course screen with a roster of three; a session logged from
/// the editor by picking the course (school and topic follow) and tapping two names; the
/// course screen then shows session 1 with 2 present, and the bureau holds the session with
/// a student count of 2. Returns the session's visit id.
async fn course_session(client: &Client, bureau: &Bureau, shots: &Path) -> Result<String> {
    click(client, "#nav-courses").await?;
    wait_for(client, "#no-courses").await?;
    click(client, "#new-course-toggle").await?;
    type_into(client, "#school-search", "nsxx").await?;
    click(client, &format!(".school-hit[data-school='{SCHOOL}']")).await?;
    type_into(client, "#course-title", "Water journey").await?;
    screenshot(client, shots, "en-360-new-course").await?;
    click(client, "#new-course-add").await?;
    let course = wait_for(client, ".screen.course[data-course]")
        .await?
        .attr("data-course")
        .await?
        .context("course screen without id")?;
    ensure!(text_of(client, "#course-title-shown").await? == "Water journey");
    wait_for(client, "#roster-empty").await?;
    for name in ROSTER {
        type_into(client, "#student-name", name).await?;
        click(client, "#student-add").await?;
        wait_for(client, &format!(".roster-row[data-student='{name}']")).await?;
    }
    ensure!(text_of(client, "#roster-count").await?.contains('3'));

    click(client, "#nav-home").await?;
    open_editor(client).await?;
    wait_for(client, "#visit-course")
        .await?
        .select_by_value(&course)
        .await
        .context("picking the course")?;
    let label = text_of(client, "#session-label").await?;
    ensure!(label == "session 1 of 16", "session label: {label:?}");
    // The school follows the course, and so do the topic and the activity.
    wait_for(client, "#school-from-course").await?;
    ensure!(text_of(client, "#school-chosen strong").await? == SCHOOL);
    let topic = wait_for(client, "#visit-topic")
        .await?
        .prop("value")
        .await?;
    ensure!(
        topic.as_deref() == Some("Water journey"),
        "topic: {topic:?}"
    );
    wait_for(client, "#chip-class_session[aria-pressed='true']").await?;
    for name in &ROSTER[..2] {
        click(client, &format!(".student[data-student='{name}']")).await?;
        wait_for(
            client,
            &format!(".student[data-student='{name}'][aria-pressed='true']"),
        )
        .await?;
    }
    let count = text_of(client, "#attendance-count").await?;
    ensure!(count == "2 of 3 present", "attendance: {count:?}");
    ensure!(text_of(client, "#students-present").await? == "2");
    screenshot(client, shots, "en-360-session-editor").await?;
    click(client, "#save-visit").await?;
    ensure!(text_of(client, "#detail-school").await? == SCHOOL);
    let course_row = text_of(client, ".detail-row[data-field='course'] dd").await?;
    ensure!(
        course_row.contains("session 1 of 16"),
        "course row: {course_row:?}"
    );
    let present = text_of(client, ".detail-row[data-field='attendance'] dd").await?;
    ensure!(present.contains("(2)"), "attendance row: {present:?}");
    screenshot(client, shots, "en-360-session-detail").await?;

    click(client, "#nav-courses").await?;
    click(client, &format!(".course-row[data-course='{course}']")).await?;
    let present = text_of(client, ".session-row[data-number='1'] .session-present").await?;
    ensure!(present == "2 marked present", "session 1: {present:?}");
    let progress = text_of(client, "#course-progress").await?;
    ensure!(
        progress.starts_with("1 of 16 sessions held"),
        "progress: {progress:?}"
    );
    let session = wait_for(client, ".session-row[data-number='1']")
        .await?
        .attr("data-visit")
        .await?
        .context("session without visit id")?;
    let attended = text_of(
        client,
        &format!(".roster-row[data-student='{}']", ROSTER[0]),
    )
    .await?;
    ensure!(attended.contains("attended 1"), "roster: {attended:?}");
    screenshot(client, shots, "en-360-session-course").await?;

    // Synced by itself after the save: the bureau counts the two present, by id, not name.
    click(client, "#nav-visits").await?;
    wait_for(
        client,
        &format!(".visit-row[data-visit='{session}'] .badge-synced"),
    )
    .await?;
    let visits = bureau.read(&["visits"]);
    let visit = visits
        .as_array()
        .and_then(|all| all.iter().find(|v| v["id"] == session.as_str()))
        .with_context(|| format!("session {session} not at the bureau: {visits}"))?;
    ensure!(visit["audience"]["students"] == 2, "students: {visit}");
    ensure!(visit["course"] == course.as_str(), "course: {visit}");
    ensure!(
        visit["attendance"].as_array().map(Vec::len) == Some(2),
        "attendance: {visit}"
    );
    ensure!(
        !visit.to_string().contains(ROSTER[0]),
        "a name left: {visit}"
    );
    Ok(session)
}

/// Settings: the volunteer enrolled on this device, picked from the members the bureau
/// lists, paired with a teacher of the school.
async fn pairing(client: &Client, shots: &Path) -> Result<()> {
    click(client, "#nav-settings").await?;
    wait_for(client, "#no-pairings").await?;
    click(client, "#new-pairing-toggle").await?;
    // The member list comes from the bureau.
    wait_for(client, "#pairing-volunteer option[value='李老师']").await?;
    wait_for(client, "#pairing-volunteer")
        .await?
        .select_by_value("李老师")
        .await
        .context("picking the volunteer")?;
    type_into(client, "#pairing-teacher", "Wang Mei").await?;
    type_into(client, "#new-pairing #school-search", "nsxx").await?;
    click(
        client,
        &format!("#new-pairing .school-hit[data-school='{SCHOOL}']"),
    )
    .await?;
    screenshot(client, shots, "en-360-new-pairing").await?;
    click(client, "#pairing-add").await?;
    ensure!(text_of(client, ".pairing-row .pairing-volunteer").await? == "李老师");
    ensure!(text_of(client, ".pairing-row .pairing-teacher").await? == "Wang Mei");
    Ok(())
}

/// In Chinese, out of signal: a visit with a photo is saved all the same, shows as a draft,
/// and goes up by itself, photo files included, once the bureau answers again.
async fn offline_then_online(
    client: &Client,
    bureau: &Bureau,
    photo: &Path,
    synced: &[String],
    shots: &Path,
) -> Result<()> {
    bureau.proxy.set_offline(true);
    click(client, "#nav-home").await?;
    open_editor(client).await?;
    type_into(client, "#school-search", "nsxx").await?;
    click(client, &format!(".school-hit[data-school='{SCHOOL}']")).await?;
    wait_for(client, "#school-chosen").await?;
    click(client, "#chip-experiment_show").await?;
    for _ in 0..3 {
        click(client, "#inc-students").await?;
    }
    wait_for(client, "#photo-file")
        .await?
        .send_keys(&photo.display().to_string())
        .await
        .context("attaching the photo")?;
    wait_for(client, ".photo-item.draft").await?;
    click(client, "#save-visit").await?;
    wait_for(client, "#detail-school").await?;
    // The save nudges a sync, which finds no bureau.
    wait_for(client, "#sync-status[data-state='offline']").await?;
    click(client, "#nav-visits").await?;
    wait_for(client, ".visit-row .badge-draft").await?;
    screenshot(client, shots, "zh-CN-360-offline").await?;
    let mut ids = Vec::new();
    for row in client.find_all(Locator::Css(".visit-row")).await? {
        ids.extend(row.attr("data-visit").await?);
    }
    let visit_id = ids
        .into_iter()
        .find(|id| !synced.contains(id))
        .context("the visit saved offline is not listed")?;
    // The visits synced earlier, in the same month, stay synced.
    for earlier in synced {
        wait_for(
            client,
            &format!(".visit-row[data-visit='{earlier}'] .badge-synced"),
        )
        .await?;
    }
    ensure!(
        bureau.read(&["visits"]).as_array().map(Vec::len) == Some(synced.len()),
        "nothing should reach the bureau while offline"
    );

    // Signal again: no tap needed.
    bureau.proxy.set_offline(false);
    wait_for(
        client,
        &format!(".visit-row[data-visit='{visit_id}'] .badge-synced"),
    )
    .await?;
    let visits = bureau.read(&["visits"]);
    let visit = visits
        .as_array()
        .and_then(|all| all.iter().find(|v| v["id"] == visit_id.as_str()))
        .with_context(|| format!("visit {visit_id} not at the bureau: {visits}"))?;
    ensure!(visit["audience"]["students"] == 3, "students: {visit}");
    let arrivals = bureau.read(&["photos"]);
    let arrival = arrivals
        .as_array()
        .and_then(|all| all.iter().find(|a| a["visit"] == visit_id.as_str()))
        .with_context(|| format!("no photo of {visit_id} at the bureau: {arrivals}"))?;
    ensure!(
        arrival["thumbnail_held"] == true && arrival["display_held"] == true,
        "photo files not at the bureau: {arrival}"
    );
    Ok(())
}

/// A second device of the team, through the `fieldlog` CLI: enrolls, syncs and fetches the
/// photo file `sha256` from the bureau. Returns the file's bytes.
fn teammate_fetches(bureau: &Bureau, sha256: &str) -> Result<Vec<u8>> {
    let cli = env_path("FIELDLOG_CLI_BIN")?;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_str().context("temp dir path")?;
    let code = bureau.code("caravan-1", "钱老师");
    let url = bureau.url();
    let mut printed = String::new();
    for args in [
        &["init", "--device-name", "二号机", "--team", "caravan-1"][..],
        &["enroll", &url, &code],
        &["sync"],
        &["photo", "fetch", sha256],
    ] {
        let out = std::process::Command::new(&cli)
            .args(["--data-dir", data_dir])
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "fieldlog {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed = String::from_utf8(out.stdout)?;
    }
    Ok(std::fs::read(printed.trim())?)
}

/// Home, visit list, visit detail (of `visit`, which has a photo), editor, courses, a
/// course, the editor taking attendance, and settings at phone and desktop widths.
async fn screens(client: &Client, shots: &Path, lang: &str, visit: &str) -> Result<()> {
    for (width, height) in [(360, 780), (1280, 800)] {
        client.set_window_size(width, height).await?;
        click(client, "#nav-home").await?;
        wait_for(client, ".visit-row").await?;
        screenshot(client, shots, &format!("{lang}-{width}-home")).await?;
        click(client, "#nav-visits").await?;
        click(client, &format!(".visit-row[data-visit='{visit}']")).await?;
        wait_for(client, ".photo-item.saved img[src^='data:']").await?;
        screenshot(client, shots, &format!("{lang}-{width}-detail")).await?;
        click(client, "#nav-visits").await?;
        wait_for(client, ".visit-row").await?;
        screenshot(client, shots, &format!("{lang}-{width}-visits")).await?;
        click(client, "#nav-home").await?;
        open_editor(client).await?;
        type_into(client, "#school-search", "qx").await?;
        wait_for(client, ".school-hit").await?;
        screenshot(client, shots, &format!("{lang}-{width}-editor")).await?;
        click(client, "#cancel-visit").await?;
        click(client, "#nav-courses").await?;
        wait_for(client, ".course-row").await?;
        screenshot(client, shots, &format!("{lang}-{width}-courses")).await?;
        click(client, ".course-row").await?;
        wait_for(client, ".session-row").await?;
        screenshot(client, shots, &format!("{lang}-{width}-course")).await?;
        click(client, "#log-session").await?;
        click(client, &format!(".student[data-student='{}']", ROSTER[2])).await?;
        wait_for(client, ".student[aria-pressed='true']").await?;
        // The top of the editor: the course, its session number, the school and attendance.
        client
            .execute("window.scrollTo(0, 0)", Vec::new())
            .await
            .context("scrolling to the top")?;
        screenshot(client, shots, &format!("{lang}-{width}-editor-attendance")).await?;
        click(client, "#cancel-visit").await?;
        wait_for(client, ".session-row").await?;
        click(client, "#nav-settings").await?;
        wait_for(client, "#enrolled-url").await?;
        screenshot(client, shots, &format!("{lang}-{width}-settings")).await?;
    }
    client.set_window_size(360, 780).await?;
    Ok(())
}
