//! `fieldlog enroll`, `fieldlog sync`, `fieldlog status`: the bureau connection.

use super::Ctx;
use crate::output::{emit, local_time};
use anyhow::Result;
use fieldlog_core::{Enrollment, SyncStatus, SyncSummary};
use std::io::{IsTerminal, Write};

pub fn enroll(ctx: &Ctx, url: &str, code: &str) -> Result<String> {
    let mut store = ctx.open()?;
    let enrollment = fieldlog_core::sync::enroll(&mut store, url, code)?;
    emit(ctx.json, &enrollment, |e| {
        [
            ctx.tr("已加入科协平台。", "Enrolled.").to_string(),
            ctx.line(ctx.tr("平台地址", "bureau"), &e.url),
            ctx.line(ctx.tr("成员", "member"), &e.member),
            ctx.line(ctx.tr("团队", "team"), &store.device().team),
            ctx.line(ctx.tr("角色", "role"), e.role.label(ctx.lang)),
        ]
        .join("\n")
    })
}

pub fn sync(ctx: &Ctx) -> Result<String> {
    let mut store = ctx.open()?;
    let show_progress = !ctx.json && std::io::stderr().is_terminal();
    let summary = fieldlog_core::sync::sync(&mut store, |so_far| {
        if show_progress {
            let mut err = std::io::stderr().lock();
            // Progress is best effort: a closed stderr must not fail the sync.
            let _ = write!(err, "\r{}", progress(ctx, so_far));
            let _ = err.flush();
        }
    })?;
    if show_progress {
        eprintln!();
    }
    emit(ctx.json, &summary, |s| {
        [
            ctx.tr("同步完成。", "Sync complete.").to_string(),
            ctx.line(ctx.tr("发送修改", "changes sent"), s.sent),
            ctx.line(ctx.tr("平台新收", "new at the bureau"), s.accepted),
            ctx.line(ctx.tr("收到修改", "changes received"), s.received),
            ctx.line(
                ctx.tr("流量", "bytes on the wire"),
                format!("↑{} ↓{}", s.bytes_sent, s.bytes_received),
            ),
            ctx.line(ctx.tr("轮次", "rounds"), s.rounds),
        ]
        .join("\n")
    })
}

fn progress(ctx: &Ctx, s: &SyncSummary) -> String {
    format!(
        "{} {}: ↑{} ↓{} ({} B / {} B)",
        ctx.tr("同步中… 第", "syncing… round"),
        s.rounds,
        s.sent,
        s.received,
        s.bytes_sent,
        s.bytes_received
    )
}

pub fn status(ctx: &Ctx) -> Result<String> {
    let status = ctx.open()?.sync_status()?;
    emit(ctx.json, &status, |s: &SyncStatus| {
        let photos = ctx.line(
            ctx.tr("照片占用", "photo storage"),
            format!("{:.1} MB", s.photo_bytes as f64 / 1e6),
        );
        match &s.enrollment {
            None => [
                ctx.tr(
                    "尚未加入科协平台：记录只保存在本机。运行 `fieldlog enroll 地址 邀请码` 加入。",
                    "Not enrolled: records stay on this device. Run `fieldlog enroll URL CODE`.",
                )
                .to_string(),
                photos,
            ]
            .join("\n"),
            Some(e) => [
                ctx.line(ctx.tr("平台地址", "bureau"), &e.url),
                ctx.line(ctx.tr("上次同步", "last sync"), last_sync(ctx, e)),
                ctx.line(
                    ctx.tr("待发送", "waiting to go"),
                    format!(
                        "{} {}（{} {}）",
                        s.waiting_changes,
                        ctx.tr("项修改", "changes"),
                        s.waiting_documents,
                        ctx.tr("个文档", "documents")
                    ),
                ),
                photos,
            ]
            .join("\n"),
        }
    })
}

fn last_sync(ctx: &Ctx, e: &Enrollment) -> String {
    e.last_sync_at
        .map_or_else(|| ctx.tr("从未", "never").to_string(), local_time)
}
