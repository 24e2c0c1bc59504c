//! `fieldlog photo …`: attaching photos to visits.

use super::Ctx;
use crate::args::PhotoCommand;
use crate::output::{emit, table};
use anyhow::Result;
use fieldlog_domain::photo::PhotoRef;
use serde_json::json;

pub fn run(command: PhotoCommand, ctx: &Ctx) -> Result<String> {
    match command {
        PhotoCommand::Add {
            visit,
            file,
            caption,
            consent,
        } => {
            let visit = super::visit::parse_id(&visit)?;
            let photo = ctx.open()?.add_photo(visit, &file, &caption, consent)?;
            emit(ctx.json, &photo, |p| p.display_sha256.clone())
        }
        PhotoCommand::List { visit } => {
            let visit = super::visit::parse_id(&visit)?;
            let photos = ctx.open()?.visit(visit)?.photos;
            emit(ctx.json, &photos, |photos| list(ctx, photos))
        }
        PhotoCommand::Fetch { sha256 } => {
            let path = fieldlog_core::upload::fetch_photo(&ctx.open()?, sha256.trim())?;
            emit(ctx.json, &json!({ "path": path }), |_| {
                path.display().to_string()
            })
        }
        PhotoCommand::Remove { visit, photo } => {
            let visit = super::visit::parse_id(&visit)?;
            ctx.open()?.remove_photo(visit, photo.trim())?;
            emit(
                ctx.json,
                &json!({ "visit": visit, "removed": photo }),
                |_| ctx.line(ctx.tr("已移除照片", "removed photo"), &photo),
            )
        }
    }
}

fn list(ctx: &Ctx, photos: &[PhotoRef]) -> String {
    if photos.is_empty() {
        return ctx
            .tr("这条记录还没有照片。", "This visit has no photos.")
            .to_string();
    }
    let rows = photos
        .iter()
        .map(|p| {
            vec![
                p.taken_at.clone().unwrap_or_default(),
                format!("{}×{}", p.width, p.height),
                ctx.tr(
                    if p.consent { "同意" } else { "未同意" },
                    if p.consent { "yes" } else { "no" },
                )
                .to_string(),
                p.caption.clone(),
                p.display_sha256.clone(),
            ]
        })
        .collect();
    table(
        &[
            ctx.tr("拍摄时间", "taken"),
            ctx.tr("尺寸", "size"),
            ctx.tr("同意公开", "consent"),
            ctx.tr("说明", "caption"),
            ctx.tr("编号", "id"),
        ],
        rows,
        &[],
    )
}
