//! The coordinator's desk in the real app (tauri-driver, WebKitWebDriver) against a real
//! bureau holding volunteers' visits: the coordinator merges a duplicate pair, resolves a
//! conflict, approves a pending school and flags a visit; a volunteer's device then shows
//! the flag note; the dashboard's figures equal `fieldlog report --json` for the same
//! filter; the ledger exported from the dashboard, converted by LibreOffice, equals the
//! CLI's export. Screenshots of the dashboard, each queue section and the registry at 1280
//! and 1024 px in zh-CN and en go to `$FIELDLOG_E2E_ARTIFACTS/screenshots/desk-*`.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use anyhow::{Context, Result, ensure};
use chrono::Datelike;
use fantoccini::Client;
use fieldlog_app_e2e::{Driver, click, env_path, screenshot, text_of, type_into, wait_for};
use fieldlog_tests::bureau::{Bureau, Device};
use fieldlog_tests::libreoffice::sheets_as_csv;
use std::path::Path;
use std::process::Command;

const PAIRED_SCHOOL: &str = "南山小学";
const CONFLICT_SCHOOL: &str = "南山区东坪镇中心小学";
const FLAGGED_SCHOOL: &str = "南山区实验小学";
const PENDING_SCHOOL: &str = "南山区凤凰乡中心小学";
const FLAG_NOTE: &str = "请补充受众人数";

/// Runs the `fieldlog` CLI on `data_dir`; answers its stdout.
fn cli(data_dir: &Path, args: &[&str]) -> Result<String> {
    let bin = env_path("FIELDLOG_CLI_BIN")?;
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "fieldlog {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Two crew phones log a region's visits and sync: a stop logged on both (a duplicate
/// pair), a visit whose topic both edit before syncing (a conflict), a visit at a school
/// entered in the field (pending), and one the coordinator will flag.
fn volunteers(bureau: &Bureau) -> Result<(Device, Device, String)> {
    let mut one = Device::enrolled(bureau, "一号机", "caravan-1");
    let mut two = Device::enrolled(bureau, "二号机", "caravan-1");
    one.sync()?;
    two.sync()?;
    one.add(PAIRED_SCHOOL, 60);
    two.add(PAIRED_SCHOOL, 58);
    let shared = one.add(CONFLICT_SCHOOL, 30);
    let flagged = one.add(FLAGGED_SCHOOL, 40);
    let pending = fieldlog_domain::SchoolInput {
        name: PENDING_SCHOOL.into(),
        district: "南山区".into(),
        area: "乡村".into(),
        ..Default::default()
    };
    two.store
        .add_school(&pending, fieldlog_domain::SchoolStatus::Pending)?;
    two.add(PENDING_SCHOOL, 25);
    one.sync()?;
    two.sync()?;
    one.sync()?;
    let today = chrono::Local::now().date_naive();
    one.store
        .edit_visit(shared, &[("topic".into(), "光的折射".into())], today)?;
    two.store
        .edit_visit(shared, &[("topic".into(), "电路".into())], today)?;
    one.sync()?;
    two.sync()?;
    Ok((one, two, flagged.to_string()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_coordinator_works_through_the_queue_sees_the_figures_and_exports_the_ledger()
-> Result<()> {
    let app = env_path("FIELDLOG_APP_BIN")?;
    let bureau_bin = env_path("FIELDLOG_BUREAU_BIN")?;
    let shots = env_path("FIELDLOG_E2E_ARTIFACTS")?.join("screenshots");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bureau = Bureau::start(&bureau_bin, &root.join("assets/demo-registry.csv"));
    let (_one, _two, flagged) = volunteers(&bureau)?;

    // The coordinator's device: enrolled and synced before the app opens it.
    let work = tempfile::tempdir()?;
    let desk_dir = work.path().join("desk");
    let desk = desk_dir.to_str().context("path")?;
    cli(
        &desk_dir,
        &["init", "--device-name", "协调台", "--team", "bureau"],
    )?;
    let code = bureau.coordinator_code("王协调");
    cli(&desk_dir, &["enroll", &bureau.url(), &code])?;
    cli(&desk_dir, &["sync"])?;
    let exported = work.path().join("台账.xlsx");
    let driver = Driver::start(&[
        ("FIELDLOG_DATA_DIR", desk_dir.as_path()),
        ("FIELDLOG_SAVE_AS", exported.as_path()),
        ("LANG", Path::new("zh_CN.UTF-8")),
        ("LANGUAGE", Path::new("zh_CN")),
    ])?;
    let client = driver.session(&app).await?;
    let outcome = desk_journey(&client, desk, &flagged, &exported, &shots).await;
    if outcome.is_err() {
        let _ = screenshot(&client, &shots, "desk-failure").await;
    }
    let _ = client.close().await;
    outcome?;

    // A volunteer's device (the CLI) syncs and shows the note on the flagged visit.
    let phone = work.path().join("phone");
    cli(
        &phone,
        &["init", "--device-name", "三号机", "--team", "caravan-1"],
    )?;
    cli(
        &phone,
        &["enroll", &bureau.url(), &bureau.code("caravan-1", "赵老师")],
    )?;
    cli(&phone, &["sync"])?;
    let shown = cli(&phone, &["visit", "show", &flagged])?;
    ensure!(
        shown.contains(FLAG_NOTE),
        "the volunteer does not see the note: {shown}"
    );
    Ok(())
}

async fn desk_journey(
    client: &Client,
    desk: &str,
    flagged: &str,
    exported: &Path,
    shots: &Path,
) -> Result<()> {
    client.set_window_size(1280, 900).await?;
    // A coordinator's device opens the desk, at the queue.
    wait_for(client, "#nav-queue").await?;
    set_lang(client, "zh-CN").await?;
    targets(client).await?;
    // Every screen while the queue still holds its items, then the work.
    screens(client, shots).await?;
    set_lang(client, "zh-CN").await?;
    queue(client, shots).await?;
    dashboard(client, desk, flagged, exported).await
}

/// This year's targets for the region through the editor; a refused goal is explained
/// beside its input.
async fn targets(client: &Client) -> Result<()> {
    click(client, "#nav-targets").await?;
    type_into(client, "#target-lectures", "很多").await?;
    click(client, "#targets-save").await?;
    wait_for(client, "#error-target-lectures").await?;
    let lectures = wait_for(client, "#target-lectures").await?;
    lectures.clear().await?;
    lectures.send_keys("10").await?;
    type_into(client, "#target-rural_lecture_share", "20%").await?;
    type_into(client, "#target-districts_covered", "all").await?;
    click(client, "#targets-save").await?;
    wait_for(client, "#target-progress-lectures").await?;
    wait_for(client, "#target-progress-districts_covered").await?;
    Ok(())
}

/// Merge the pair, resolve the conflict, approve the pending school.
async fn queue(client: &Client, shots: &Path) -> Result<()> {
    client.set_window_size(1280, 900).await?;
    click(client, "#nav-queue").await?;
    click(client, "#queue-tab-duplicates").await?;
    wait_for(client, ".pair").await?;
    screenshot(client, shots, "desk-zh-CN-1280-queue-duplicates-pair").await?;
    click(client, ".pair .merge-keep-a").await?;
    click(client, ".pair .merge-confirm").await?;
    empty_section(client, "duplicates").await?;

    click(client, "#queue-tab-conflicts").await?;
    click(client, ".conflict-item .conflict-pick").await?;
    click(client, ".conflict-item .conflict-confirm").await?;
    empty_section(client, "conflicts").await?;

    click(client, "#queue-tab-schools").await?;
    let pending = wait_for(client, ".pending-school").await?;
    ensure!(pending.text().await?.contains(PENDING_SCHOOL));
    click(client, ".pending-school .school-approve").await?;
    empty_section(client, "schools").await?;
    Ok(())
}

/// Waits until a queue section's count shows 0.
async fn empty_section(client: &Client, section: &str) -> Result<()> {
    let xpath = format!(
        "//*[@id='queue-tab-{section}']//*[contains(@class, 'tab-count') and normalize-space(.) = '0']"
    );
    client
        .wait()
        .at_most(fieldlog_app_e2e::PATIENCE)
        .for_element(fantoccini::Locator::XPath(&xpath))
        .await
        .with_context(|| format!("the {section} section did not empty"))?;
    Ok(())
}

/// The dashboard's figures equal the CLI's report for the same filter; the XLSX exported
/// from the dashboard equals the CLI's, both read by LibreOffice.
async fn dashboard(client: &Client, desk: &str, flagged: &str, exported: &Path) -> Result<()> {
    click(client, "#nav-dashboard").await?;
    wait_for(client, "#chart-months svg").await?;
    let year = chrono::Local::now().year();
    let (from, to) = (format!("{year}-01-01"), format!("{year}-12-31"));
    let report: serde_json::Value = serde_json::from_str(&cli(
        Path::new(desk),
        &["--json", "report", "--from", &from, "--to", &to],
    )?)?;
    for (figure, key) in [
        ("visits", "visits"),
        ("schools", "schools_reached"),
        ("audience", "audience"),
        ("lectures", "lectures"),
        ("rural_lectures", "rural_lectures"),
        ("books", "books"),
    ] {
        let shown = text_of(client, &format!("#figure-value-{figure}")).await?;
        ensure!(
            shown.parse::<u64>().ok() == report[key].as_u64(),
            "{figure}: the dashboard shows {shown}, the CLI {}",
            report[key]
        );
    }
    ensure!(report["visits"] == 4, "{report}");

    // A figure opens the visits behind it.
    click(client, "#figure-visits").await?;
    wait_for(client, ".figure-row").await?;
    let rows = client
        .find_all(fantoccini::Locator::Css(".figure-row"))
        .await?;
    ensure!(
        rows.len() == 4,
        "{} rows behind the visits figure",
        rows.len()
    );
    // One of them opens; the coordinator flags it with a note.
    click(
        client,
        &format!(".figure-row[data-visit='{flagged}'] button"),
    )
    .await?;
    type_into(client, "#visit-flag-note", FLAG_NOTE).await?;
    click(client, "#visit-flag").await?;
    wait_for(client, "#visit-review-state[data-state='flagged']").await?;
    click(client, "#nav-dashboard").await?;
    wait_for(client, "#figure-value-visits").await?;

    click(client, "#export-xlsx").await?;
    wait_for(client, "#export-done").await?;
    let cli_xlsx = exported.with_file_name("cli.xlsx");
    cli(
        Path::new(desk),
        &[
            "export",
            "ledger",
            "--xlsx",
            cli_xlsx.to_str().context("path")?,
            "--from",
            &from,
            "--to",
            &to,
        ],
    )?;
    let ours = ledger_sheet(exported)?;
    ensure!(ours.lines().count() == 5, "the ledger: {ours}");
    ensure!(
        ours == ledger_sheet(&cli_xlsx)?,
        "the app's ledger differs from the CLI's"
    );
    Ok(())
}

/// The 工作台账 sheet of a workbook as LibreOffice reads it, as CSV.
fn ledger_sheet(xlsx: &Path) -> Result<String> {
    Ok(sheets_as_csv(xlsx, &["工作台账"]).remove(0))
}

/// Shows the desk in `lang`: the page keeps <html lang> on the language shown, and the top
/// bar's button switches.
async fn set_lang(client: &Client, lang: &str) -> Result<()> {
    let shown = client
        .execute("return document.documentElement.lang", Vec::new())
        .await?;
    if shown.as_str() != Some(lang) {
        click(client, "#desk-lang").await?;
        wait_for(client, &format!("html[lang='{lang}']")).await?;
    }
    Ok(())
}

/// The dashboard, each queue section and the registry at 1280 and 1024 px, in Chinese and
/// then English.
async fn screens(client: &Client, shots: &Path) -> Result<()> {
    for lang in ["zh-CN", "en"] {
        set_lang(client, lang).await?;
        for (width, height) in [(1280, 900), (1024, 768)] {
            client.set_window_size(width, height).await?;
            click(client, "#nav-dashboard").await?;
            wait_for(client, "#chart-districts svg").await?;
            screenshot(client, shots, &format!("desk-{lang}-{width}-dashboard")).await?;
            click(client, "#nav-queue").await?;
            for section in ["duplicates", "conflicts", "schools", "fixed", "unverified"] {
                click(client, &format!("#queue-tab-{section}")).await?;
                screenshot(
                    client,
                    shots,
                    &format!("desk-{lang}-{width}-queue-{section}"),
                )
                .await?;
            }
            click(client, "#nav-registry").await?;
            wait_for(client, ".registry-row").await?;
            screenshot(client, shots, &format!("desk-{lang}-{width}-registry")).await?;
            click(client, "#nav-targets").await?;
            screenshot(client, shots, &format!("desk-{lang}-{width}-targets")).await?;
        }
    }
    Ok(())
}
