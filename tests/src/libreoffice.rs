//! Reading an exported workbook the way a user's spreadsheet does: LibreOffice converts
//! it, every sheet, to CSV.

use std::path::Path;
use std::process::Command;

/// The sheets named `sheets` of `xlsx` as LibreOffice converts them to CSV (UTF-8, comma,
/// quoted), in that order. Panics when LibreOffice is missing (`cargo xtask test` installs
/// `libreoffice-calc`) or cannot read the file.
pub fn sheets_as_csv(xlsx: &Path, sheets: &[&str]) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new("libreoffice")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.path().display()
        ))
        .args(["--headless", "--convert-to"])
        // UTF-8 (76), comma, quote, all sheets (-1) into <name>-<sheet>.csv.
        .arg("csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1")
        .arg("--outdir")
        .arg(out.path())
        .arg(xlsx)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("libreoffice runs (cargo xtask test installs libreoffice-calc)");
    assert!(
        status.success(),
        "LibreOffice could not read {}",
        xlsx.display()
    );
    let stem = xlsx.file_stem().unwrap().to_string_lossy().into_owned();
    sheets
        .iter()
        .map(|sheet| {
            let path = out.path().join(format!("{stem}-{sheet}.csv"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}
