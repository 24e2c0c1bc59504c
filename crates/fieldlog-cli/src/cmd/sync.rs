//! `fieldlog enroll`, `fieldlog sync`, `fieldlog status`, `fieldlog settings`: the bureau
//! connection and what the device keeps.

use super::Ctx;
use crate::output::{emit, local_time};
use anyhow::Result;
use fieldlog_core::{Enrollment, OriginalsPolicy, Settings, SyncStatus, SyncSummary};
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
            ctx.line(ctx.tr("上传照片", "photos uploaded"), photos(ctx, s)),
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
    if s.photos_total > 0 {
        return format!(
            "{} {}\x1b[K",
            ctx.tr("上传照片", "uploading photos"),
            photos(ctx, s)
        );
    }
    format!(
        "{} {}: ↑{} ↓{} ({} B / {} B)\x1b[K",
        ctx.tr("同步中… 第", "syncing… round"),
        s.rounds,
        s.sent,
        s.received,
        s.bytes_sent,
        s.bytes_received
    )
}

/// `3/5 (1.2 / 2.0 MB)`
fn photos(ctx: &Ctx, s: &SyncSummary) -> String {
    if s.photos_total == 0 {
        return ctx.tr("无", "none").to_string();
    }
    format!(
        "{}/{} ({} / {})",
        s.photos_done,
        s.photos_total,
        megabytes(s.photo_bytes_done),
        megabytes(s.photo_bytes_total)
    )
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn status(ctx: &Ctx) -> Result<String> {
    let status = ctx.open()?.sync_status()?;
    emit(ctx.json, &status, |s: &SyncStatus| {
        let photos = [
            ctx.line(
                ctx.tr("照片占用", "photo storage"),
                megabytes(s.photo_bytes),
            ),
            ctx.line(
                ctx.tr("待上传照片", "photos waiting to upload"),
                format!(
                    "{} ({})",
                    s.waiting_photos.photos,
                    megabytes(s.waiting_photos.bytes)
                ),
            ),
        ]
        .join("\n");
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

pub fn settings(
    ctx: &Ctx,
    originals: Option<OriginalsPolicy>,
    review_after_days: Option<u32>,
) -> Result<String> {
    let mut store = ctx.open()?;
    if let Some(policy) = originals {
        store.set_originals_policy(policy)?;
    }
    if let Some(days) = review_after_days {
        store.set_review_after_days(days)?;
    }
    emit(ctx.json, &store.settings()?, |s: &Settings| {
        let originals = match s.originals {
            OriginalsPolicy::Keep => ctx.tr("一直保留", "keep"),
            OriginalsPolicy::UntilUploaded => ctx.tr("上传后删除", "until uploaded"),
            OriginalsPolicy::Drop => ctx.tr("不保留", "drop"),
        };
        [
            ctx.line(
                ctx.tr("照片原图（仅存本机）", "photo originals (this device only)"),
                format!("{originals} ({})", s.originals.key()),
            ),
            ctx.line(
                ctx.tr(
                    "未核实记录列入审核（天）",
                    "review unverified visits after (days)",
                ),
                s.review_after_days,
            ),
        ]
        .join("\n")
    })
}
