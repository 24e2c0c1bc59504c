//! `fieldlog bundle …`: changes carried between devices as a file.

use super::Ctx;
use crate::args::BundleCommand;
use crate::error::CliError;
use crate::output::emit;
use anyhow::Result;
use fieldlog_core::{BundleStats, ExportScope, ImportStats};
use fieldlog_domain::Lang;
use std::io::Write;
use std::path::Path;

pub fn run(command: BundleCommand, ctx: &Ctx) -> Result<String> {
    match command {
        BundleCommand::Export {
            file,
            all,
            for_device,
        } => {
            let scope = match (all, for_device) {
                (true, _) => ExportScope::All,
                (false, Some(peer)) => ExportScope::For(peer),
                (false, None) => ExportScope::MissingAtPeers,
            };
            let (bytes, stats) = ctx.open()?.export_bundle(&scope)?;
            write_atomically(&file, &bytes)?;
            emit(ctx.json, &stats, |s: &BundleStats| {
                [
                    ctx.line(ctx.tr("已写入", "written to"), file.display()),
                    ctx.line(ctx.tr("文档", "documents"), s.documents),
                    ctx.line(ctx.tr("修改", "changes"), s.changes),
                    ctx.line(ctx.tr("字节", "bytes"), s.bytes),
                ]
                .join("\n")
            })
        }
        BundleCommand::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let stats = ctx.open()?.import_bundle(&bytes)?;
            emit(ctx.json, &stats, |s: &ImportStats| {
                [
                    ctx.line(
                        ctx.tr("来自", "from"),
                        match ctx.lang {
                            Lang::ZhCn => format!("{}（{}）", s.from_name, s.from_device),
                            Lang::En => format!("{} ({})", s.from_name, s.from_device),
                        },
                    ),
                    ctx.line(ctx.tr("新应用的修改", "changes applied"), s.applied),
                    ctx.line(ctx.tr("已有的修改", "already present"), s.already_present),
                ]
                .join("\n")
            })
        }
    }
}

/// Writes a temporary file beside `path`, flushes it to disk, then renames it over `path`:
/// a reader never sees half a bundle, and a failed export leaves any old file as it was.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let error = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".fieldlog-bundle-")
        .tempfile_in(dir)
        .map_err(error)?;
    temp.write_all(bytes).map_err(error)?;
    temp.as_file().sync_all().map_err(error)?;
    temp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}
