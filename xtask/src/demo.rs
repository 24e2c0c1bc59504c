//! `cargo xtask run --cli`: builds the `fieldlog` CLI and walks through a demo session on a fresh data
//! dir, printing each command before its output so a newcomer can repeat it by hand.

use crate::sh;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const REGISTRY: &str = "assets/demo-registry.csv";
const SCHOOL_A: &str = "南山小学";
const SCHOOL_B: &str = "青溪县龙潭镇中心小学";

const HELP: &str = "\
Usage: cargo xtask run --cli

Builds the fieldlog CLI (release) and runs a demo session against a fresh data dir under
<target dir>/demo/: init a device, import assets/demo-registry.csv, search, add two visits,
list them and print the report (as text and as JSON).";

/// One `fieldlog` invocation: its arguments after `--data-dir D`, and what to feed its stdin.
struct Call {
    args: &'static [&'static str],
    stdin: Option<String>,
}

pub fn run(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return Ok(());
    }
    let root = sh::workspace_root()?;
    let cargo = sh::cargo();
    let target = sh::target_dir(&root);

    let build = ["build", "-p", "fieldlog-cli", "--release", "--locked"];
    println!("==> build");
    println!("$ {}", sh::display(&cargo, &build));
    sh::run(&root, &cargo, &build).context("building the CLI failed")?;
    let binary = target
        .join("release")
        .join(format!("fieldlog{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        anyhow::bail!("built the CLI but found no binary at {}", binary.display());
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let data_dir = fresh_dir(&target.join("demo"), now)?;
    let today = civil_date(now);
    println!("==> demo (data dir {})", data_dir.display());

    for call in calls(&today) {
        let mut args = vec![
            "--data-dir".to_string(),
            data_dir.to_string_lossy().into_owned(),
        ];
        args.extend(call.args.iter().map(|a| a.to_string()));
        println!();
        let shown = sh::display("fieldlog", &args);
        match &call.stdin {
            None => {
                println!("$ {shown}");
                sh::run(&root, &binary, &args)?;
            }
            Some(input) => {
                println!("$ {shown} <<'EOF'\n{input}\nEOF");
                sh::run_with_stdin(&root, &binary, &args, input)?;
            }
        }
    }
    println!(
        "\n==> demo done; the data dir stays at {}",
        data_dir.display()
    );
    Ok(())
}

fn calls(today: &str) -> Vec<Call> {
    let plain = |args| Call { args, stdin: None };
    vec![
        plain(&["init", "--device-name", "演示设备", "--team", "caravan-1"]),
        plain(&["school", "import", REGISTRY]),
        plain(&["school", "search", "nsxx"]),
        Call {
            args: &["visit", "add", "--json-in"],
            stdin: Some(format!(
                r#"{{"school":"{SCHOOL_A}","date":"{today}","activities":["lecture","experiment_show"],"topic":"水的三态","audience":{{"students":86,"teachers":4,"others":2}},"donations":{{"books":120,"kits":2}},"notes":"演示"}}"#
            )),
        },
        Call {
            args: &["visit", "add", "--json-in"],
            stdin: Some(format!(
                r#"{{"school":"{SCHOOL_B}","date":"{today}","activities":["mobile_museum","hands_on"],"topic":"简单电路","audience":{{"students":143,"teachers":9,"others":0}},"donations":{{"books":200,"kits":5}},"notes":"演示：流动科技馆进校"}}"#
            )),
        },
        plain(&["visit", "list"]),
        plain(&["report"]),
        plain(&["--json", "report"]),
    ]
}

/// Creates `<parent>/device-<unix seconds>`, with a `-2`, `-3`… suffix if that already exists.
fn fresh_dir(parent: &Path, now: u64) -> Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("could not create {}", parent.display()))?;
    let mut attempt = 1u64;
    loop {
        let name = match attempt {
            1 => format!("device-{now}"),
            n => format!("device-{now}-{n}"),
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => {
                return Err(e).with_context(|| format!("could not create {}", dir.display()));
            }
        }
    }
}

/// The UTC date (`YYYY-MM-DD`) of a Unix time, by Howard Hinnant's `civil_from_days`.
///
/// The CLI accepts dates up to one day after its own (local) today, and in China local time is
/// ahead of UTC, so the UTC date is always accepted.
fn civil_date(unix_seconds: u64) -> String {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_matches_known_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(86_399), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(951_868_800), "2000-03-01");
        assert_eq!(civil_date(1_704_067_199), "2023-12-31");
        assert_eq!(civil_date(1_704_067_200), "2024-01-01");
        assert_eq!(civil_date(4_107_542_400), "2100-03-01");
    }
}
