//! One function per command. Each returns the text (or JSON) to print; `main` prints it.

mod bundle;
mod conflicts;
mod course;
mod photo;
mod report;
mod review;
mod school;
mod sync;
mod visit;

use crate::args::{Command, Global};
use crate::error::CliError;
use crate::lang::{line, tr};
use crate::output::emit;
use anyhow::Result;
use chrono::NaiveDate;
use fieldlog_core::{Device, Options, Store};
use fieldlog_domain::{Field, Lang};
use std::path::PathBuf;

/// What every command needs to know about this invocation.
#[derive(Debug)]
pub struct Ctx {
    pub lang: Lang,
    pub json: bool,
    pub data_dir: PathBuf,
    /// The local date, which bounds how far ahead a visit may be dated.
    pub today: NaiveDate,
}

impl Ctx {
    pub fn new(global: &Global, lang: Lang) -> Result<Ctx> {
        let data_dir = match &global.data_dir {
            // An empty FIELDLOG_DATA_DIR means unset, not the current directory.
            Some(dir) if !dir.as_os_str().is_empty() => dir.clone(),
            _ => directories::ProjectDirs::from("org", "Fieldlog", "fieldlog")
                .ok_or(CliError::NoDataDir)?
                .data_dir()
                .to_path_buf(),
        };
        Ok(Ctx {
            lang,
            json: global.json,
            data_dir,
            today: chrono::Local::now().date_naive(),
        })
    }

    fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.data_dir, Options::default())?)
    }

    fn tr(&self, zh: &'static str, en: &'static str) -> &'static str {
        tr(self.lang, zh, en)
    }

    fn line(&self, label: &str, value: impl std::fmt::Display) -> String {
        line(self.lang, label, value)
    }
}

pub fn run(command: Command, ctx: &Ctx) -> Result<String> {
    match command {
        Command::Init { device_name, team } => init(ctx, &device_name, &team),
        Command::School(command) => school::run(command, ctx),
        Command::Visit(command) => visit::run(command, ctx),
        Command::Photo(command) => photo::run(command, ctx),
        Command::Conflicts => conflicts::run(ctx),
        Command::Bundle(command) => bundle::run(command, ctx),
        Command::Report { period } => report::run(ctx, &period),
        Command::Review { command } => review::run(command, ctx),
        Command::Target(command) => review::target(command, ctx),
        Command::Targets { year, district } => review::targets(ctx, year, district),
        Command::Export(command) => review::export(command, ctx),
        Command::Course(command) => course::course(command, ctx),
        Command::Pairing(command) => course::pairing(command, ctx),
        Command::Members { offline } => course::members(ctx, offline),
        Command::Enroll { url, code } => sync::enroll(ctx, &url, &code),
        Command::Sync => sync::sync(ctx),
        Command::Status => sync::status(ctx),
        Command::Settings {
            originals,
            review_after_days,
        } => sync::settings(ctx, originals, review_after_days),
    }
}

fn init(ctx: &Ctx, device_name: &str, team: &str) -> Result<String> {
    let store = Store::init(&ctx.data_dir, device_name, team, Options::default())?;
    emit(ctx.json, store.device(), |d: &Device| {
        [
            ctx.tr("已创建设备。", "Device created.").to_string(),
            ctx.line(ctx.tr("设备编号", "device id"), d.id),
            ctx.line(Field::DeviceName.label(ctx.lang), &d.name),
            ctx.line(Field::Team.label(ctx.lang), &d.team),
            ctx.line("actor", &d.actor),
            ctx.line(ctx.tr("数据目录", "data dir"), ctx.data_dir.display()),
        ]
        .join("\n")
    })
}
