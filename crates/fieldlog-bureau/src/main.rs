//! `fieldlog-bureau`: the bureau's sync server and its admin commands.
//!
//! Settings come from flags, then `FIELDLOG_BUREAU_*` variables, then a TOML file
//! (`--config`), then defaults; the first that says something wins. Diagnostics go to
//! stderr, filtered by `FIELDLOG_LOG`. A failure is one line on stderr and exit code 1.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a terminal program prints"
)]

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use fieldlog_bureau::{
    BlobStore, Bureau, Config, DB_FILE, Database, DeviceRecord, IssuedCode, S3Settings, S3Store,
    TeamType,
};
use fieldlog_domain::{Role, TeamKind};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "fieldlog-bureau",
    version,
    about = "Fieldlog's bureau: the sync server devices enroll with"
)]
struct Cli {
    /// The bureau's data directory.
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_DATA_DIR",
        value_name = "DIR"
    )]
    data_dir: Option<PathBuf>,
    /// Keep the records in PostgreSQL (`postgres://user:password@host:port/database`)
    /// instead of the data directory's `bureau.sqlite3`; the data directory still holds
    /// uploads in progress and the projection the figures are read from.
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_DATABASE",
        value_name = "URL"
    )]
    database: Option<String>,
    /// A TOML file with settings (`data_dir`, `database`, `log_format`, `listen`, `metrics_listen`,
    /// `max_changes_per_response`, `expires_hours`, `blobs`, `s3_endpoint`, `s3_region`,
    /// `s3_access_key_id`, `s3_secret_access_key`, `s3_session_token`, and `serve`'s limits
    /// named as their flags, with `_`).
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// Print results (and errors) as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Diagnostics on stderr as `text` (for a terminal) or `json` (one object a line,
    /// for a log collector) [default: text].
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: Option<LogFormat>,
    #[command(flatten)]
    blobs: BlobFlags,
    #[command(subcommand)]
    command: Command,
}

/// Where complete photo files are kept (uploads in progress stay in the data directory).
#[derive(Debug, Args)]
struct BlobFlags {
    /// Keep complete photo files in an S3-compatible bucket (`s3://bucket` or
    /// `s3://bucket/prefix`) instead of the data directory's `blobs/`. Credentials come
    /// from the config file (`s3_access_key_id`, `s3_secret_access_key`) or
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
    #[arg(long, global = true, env = "FIELDLOG_BUREAU_BLOBS", value_name = "URL")]
    blobs: Option<String>,
    /// The S3-compatible server (`https://host:port`; `http://` for one on a trusted
    /// network) [default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS itself].
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_S3_ENDPOINT",
        value_name = "URL"
    )]
    s3_endpoint: Option<String>,
    /// The bucket's region [default: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1].
    #[arg(
        long,
        global = true,
        env = "FIELDLOG_BUREAU_S3_REGION",
        value_name = "REGION"
    )]
    s3_region: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The published figures over everything synced (same rules as the devices).
    Report {
        #[command(flatten)]
        period: Period,
    },
    /// Visits synced to the bureau, newest first (deleted ones too with --deleted).
    Visits {
        #[arg(long)]
        deleted: bool,
    },
    /// Fields holding concurrent values, with every value and who entered it.
    Conflicts,
    /// Photos of the visits held, and whether their files have arrived.
    Photos,
    /// What waits for a coordinator, region-wide: duplicates, conflicts, pending schools,
    /// fixed visits, unverified ones (read-only; decisions come from coordinator devices).
    Review {
        /// List unverified visits dated at least this many days ago.
        #[arg(long, value_name = "DAYS", default_value_t = fieldlog_core::settings::DEFAULT_REVIEW_AFTER_DAYS)]
        older_than_days: u32,
    },
    /// The targets coordinators set, with their progress over everything synced.
    Targets {
        #[arg(long)]
        year: Option<i32>,
        #[arg(long)]
        district: Option<String>,
    },
    /// Export records over everything synced.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Remove changes devices sent that are larger than a change may be (stored before the
    /// bureau refused them), with every change built on them; lists what it removed.
    /// Devices that could not sync past them recover at their next sync.
    Purge {
        /// Remove device changes larger than this many bytes.
        #[arg(long, value_name = "BYTES", default_value_t = fieldlog_domain::sync::MAX_CHANGE_BYTES)]
        larger_than: usize,
    },
    /// Serve the sync API until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, env = "FIELDLOG_BUREAU_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
        /// Address to serve `GET /metrics` on (Prometheus; with `/healthz` and `/readyz`).
        /// Keep it private (loopback or an internal network): the metrics are not for
        /// devices. Not served unless given.
        #[arg(long, env = "FIELDLOG_BUREAU_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Serve HTTPS with this PEM certificate chain (leaf first); with --tls-key. Both
        /// files are read again on SIGHUP (connections open keep their session).
        #[arg(long, env = "FIELDLOG_BUREAU_TLS_CERT", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "FIELDLOG_BUREAU_TLS_KEY", value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// The most changes one answer carries.
        #[arg(
            long,
            env = "FIELDLOG_BUREAU_MAX_CHANGES_PER_RESPONSE",
            value_name = "N"
        )]
        max_changes_per_response: Option<u32>,
        #[command(flatten)]
        limits: ServeFlags,
    },
    /// Create the bureau in the data directory and issue the first coordinator's code.
    Init {
        /// The first coordinator's name.
        #[arg(long, value_name = "NAME")]
        coordinator: String,
        /// The region: districts whose registries and teams the coordinators see.
        #[arg(long, value_delimiter = ',', required = true, value_name = "D1,D2")]
        districts: Vec<String>,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// Teams of volunteers and caravan crews.
    #[command(subcommand)]
    Team(TeamCommand),
    /// The school registry.
    #[command(subcommand)]
    School(SchoolCommand),
    /// Issue a one-time enrollment code for a member of a team.
    Enroll {
        #[arg(long, value_name = "TEAM")]
        team: String,
        #[arg(long, value_name = "NAME")]
        member: String,
        #[arg(long, value_parser = parse_role, default_value = "volunteer")]
        role: Role,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// Enrolled devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Back up the data directory while the bureau may be serving: the database (SQLite's
    /// online backup), then every photo file, and a manifest of their sha256s.
    Backup {
        /// A new or empty directory for the backup.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup into the data directory (stop the bureau first). Every file is
    /// checked against the backup's manifest before anything is written.
    Restore {
        /// The backup directory (holding `manifest.json`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Replace what a non-empty data directory holds.
        #[arg(long)]
        force: bool,
    },
    /// Copy the embedded bureau of the data directory into an empty PostgreSQL database
    /// (and its photo files into the bucket `--blobs` names), then check the copy: every
    /// document's heads, every device, every photo file's sha256. Stop `serve` first; the
    /// data directory is left as it was. Devices keep their cursors.
    Migrate {
        /// The PostgreSQL database (`postgres://user:password@host:port/database`).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// The work ledger (工作台账): the same rows as `fieldlog export ledger` on a device.
    Ledger {
        /// Write an Excel workbook (工作台账, 汇总, 审核记录).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "csv",
            conflicts_with = "csv"
        )]
        xlsx: Option<PathBuf>,
        /// Write the ledger as CSV (UTF-8 with a BOM).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        #[command(flatten)]
        period: Period,
    },
    /// The courses (系列课程): sessions held and planned, average attendance; counts only,
    /// the same rows as `fieldlog export courses` on a device.
    Courses {
        #[arg(long, value_name = "FILE", required = true)]
        xlsx: PathBuf,
        #[command(flatten)]
        period: Period,
    },
}

/// Which visits a figure or an export covers, by visit date and school district.
#[derive(Debug, Args)]
struct Period {
    /// First visit date counted (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    from: Option<chrono::NaiveDate>,
    /// Last visit date counted (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    to: Option<chrono::NaiveDate>,
    /// Only schools of this district.
    #[arg(long)]
    district: Option<String>,
}

impl Period {
    fn filter(self) -> Result<fieldlog_core::ReportFilter> {
        let district = self
            .district
            .map(|d| fieldlog_domain::District::parse(&d))
            .transpose()
            .map_err(fieldlog_domain::ValidationErrors::from)?;
        Ok(fieldlog_core::ReportFilter {
            from: self.from,
            to: self.to,
            district,
        })
    }
}

/// Limits on clients (defaults in `fieldlog_bureau::ServeConfig`).
#[derive(Debug, Args)]
struct ServeFlags {
    /// The most connections served at once; more are answered 503 `busy` [default: from
    /// the open-file limit, at most 4096].
    #[arg(long, env = "FIELDLOG_BUREAU_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers; also how long an idle kept-alive
    /// connection stays open [default: 15].
    #[arg(long, env = "FIELDLOG_BUREAU_HEADER_TIMEOUT", value_name = "SECS")]
    header_timeout: Option<u64>,
    /// Seconds a request body may pause before it is cut [default: 15].
    #[arg(long, env = "FIELDLOG_BUREAU_BODY_STALL_TIMEOUT", value_name = "SECS")]
    body_stall_timeout: Option<u64>,
    /// Seconds a request body may take in all [default: 120, a device's round timeout].
    #[arg(long, env = "FIELDLOG_BUREAU_BODY_TIMEOUT", value_name = "SECS")]
    body_timeout: Option<u64>,
    /// Seconds requests in flight get after SIGINT or SIGTERM [default: 10].
    #[arg(long, env = "FIELDLOG_BUREAU_SHUTDOWN_GRACE", value_name = "SECS")]
    shutdown_grace: Option<u64>,
    /// Requests a minute per device, which may also come all at once [default: 1800].
    #[arg(long, env = "FIELDLOG_BUREAU_DEVICE_RATE", value_name = "PER_MINUTE")]
    device_rate: Option<u32>,
    /// Enrollments a minute per network address [default: 60].
    #[arg(long, env = "FIELDLOG_BUREAU_ENROLL_RATE", value_name = "PER_MINUTE")]
    enroll_rate: Option<u32>,
    /// Days after which an unfinished photo upload is removed at startup [default: 30].
    #[arg(
        long,
        env = "FIELDLOG_BUREAU_PARTIAL_MAX_AGE_DAYS",
        value_name = "DAYS"
    )]
    partial_max_age_days: Option<u64>,
}

#[derive(Debug, Args)]
struct Expiry {
    /// How long the code stays valid (default 7 days).
    #[arg(long, env = "FIELDLOG_BUREAU_EXPIRES_HOURS", value_name = "HOURS")]
    expires_hours: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum TeamCommand {
    /// Add a team and the districts it works in.
    Add {
        #[arg(long, value_name = "TEAM")]
        team: String,
        #[arg(long, value_parser = parse_kind)]
        kind: TeamKind,
        #[arg(long, value_delimiter = ',', required = true, value_name = "D1,D2")]
        districts: Vec<String>,
    },
    /// List the teams.
    List,
}

#[derive(Debug, Subcommand)]
enum SchoolCommand {
    /// Import a registry CSV (`name,district,area,level,enrollment`).
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// List enrolled devices.
    List,
    /// Revoke a device: its token stops working at once.
    Revoke { device_id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

fn parse_kind(s: &str) -> Result<TeamKind, String> {
    TeamKind::parse(s).map_err(|e| e.to_string())
}

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    Text,
    Json,
}

/// Settings from the `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    log_format: Option<LogFormat>,
    listen: Option<String>,
    metrics_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_changes_per_response: Option<u32>,
    expires_hours: Option<u32>,
    max_connections: Option<usize>,
    header_timeout: Option<u64>,
    body_stall_timeout: Option<u64>,
    body_timeout: Option<u64>,
    shutdown_grace: Option<u64>,
    device_rate: Option<u32>,
    enroll_rate: Option<u32>,
    partial_max_age_days: Option<u64>,
    blobs: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_session_token: Option<String>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8440";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let file = match read_config(cli.config.as_deref()) {
        Ok(file) => file,
        Err(error) => return failed(&error, json),
    };
    init_tracing(
        matches!(cli.command, Command::Serve { .. }),
        cli.log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Text),
    );
    match run(cli, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed(&error, json),
    }
}

/// Says why on stderr, in one line: the error and its causes, leaving out a cause whose
/// text the line already holds (some libraries' errors print their causes themselves).
fn failed(error: &anyhow::Error, json: bool) -> ExitCode {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    // One line, even when a cause holds a server's multi-line answer.
    let line = line
        .lines()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if json {
        eprintln!("{}", serde_json::json!({ "error": { "message": line } }));
    } else {
        eprintln!("error: {line}");
    }
    ExitCode::FAILURE
}

/// The `--config` file's settings (none without one).
fn read_config(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str::<FileConfig>(&text).with_context(|| format!("reading {}", path.display()))
}

/// `FIELDLOG_LOG` (e.g. `debug`, `fieldlog_bureau=trace`) filters diagnostics on stderr;
/// `serve` logs at `info` by default (a line per request answered, health checks at
/// `debug`), the admin commands say nothing. As JSON, each line is one object: `timestamp`,
/// `level`, `target`, the event's fields (`message`, `status`, `latency_ms`…) at the top,
/// and `span`, the request's (`method`, `route`, `device`). No header is ever logged, so
/// no token or code is.
fn init_tracing(serving: bool, format: LogFormat) {
    let default = if serving { "info" } else { "off" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIELDLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn run(cli: Cli, file: FileConfig) -> Result<()> {
    let data_dir = cli
        .data_dir
        .or(file.data_dir.clone())
        .context("no data directory: pass --data-dir or set FIELDLOG_BUREAU_DATA_DIR")?;
    let expires = |expiry: &Expiry| {
        expiry
            .expires_hours
            .or(file.expires_hours)
            .map_or(fieldlog_bureau::DEFAULT_CODE_TTL, |h| {
                Duration::from_secs(u64::from(h) * 3600)
            })
    };
    let json = cli.json;
    let mut config = Config {
        database: database(cli.database.or(file.database.clone()))?,
        ..Config::default()
    };
    let s3 = s3_settings(&cli.blobs, &file)?;
    match cli.command {
        Command::Init {
            coordinator,
            districts,
            expiry,
        } => {
            let bureau = Bureau::open(&data_dir, config)?;
            let code = bureau.initialize(&coordinator, &districts, expires(&expiry))?;
            print_code(&code, json, Some(&data_dir))
        }
        Command::Serve {
            listen,
            metrics_listen,
            tls_cert,
            tls_key,
            max_changes_per_response,
            limits,
        } => {
            let listen = listen
                .or(file.listen.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
            let metrics_listen = metrics_listen.or(file.metrics_listen.clone());
            if let Some(max) = max_changes_per_response.or(file.max_changes_per_response) {
                config.max_changes_per_response = max;
            }
            serve_config(&mut config.serve, &limits, &file);
            let grace = config.serve.shutdown_grace;
            config.blob_store = blob_store(s3.as_ref())?;
            let bureau = open_existing(&data_dir, config)?;
            let tls = match (
                tls_cert.or(file.tls_cert.clone()),
                tls_key.or(file.tls_key.clone()),
            ) {
                (Some(cert), Some(key)) => Some(std::sync::Arc::new(
                    fieldlog_bureau::tls::Tls::load(&cert, &key)?,
                )),
                (None, None) => None,
                _ => bail!("TLS needs both a certificate (tls_cert) and its key (tls_key)"),
            };
            serve(&listen, metrics_listen.as_deref(), tls, bureau, grace)
        }
        Command::Team(TeamCommand::Add {
            team,
            kind,
            districts,
        }) => {
            let bureau = open_existing(&data_dir, config)?;
            let team = bureau.add_team(&team, TeamType::from(kind), &districts)?;
            if json {
                print(&serde_json::to_string(&team)?)
            } else {
                print(&format!(
                    "added team {} ({}) in {}",
                    team.id,
                    team.kind,
                    join(&team.districts)
                ))
            }
        }
        Command::Report { period } => {
            let bureau = open_existing(&data_dir, config)?;
            let report = bureau.report(&period.filter()?)?;
            if json {
                return print(&serde_json::to_string(&report)?);
            }
            print(&format!(
                "visits: {}\nschools reached: {} (rural {} / urban {})\naudience: {}\nlectures: {}\nbooks: {}\nkits: {}\nlectures at rural schools: {}\ndistricts covered: {}\nteachers trained: {}\nduplicates merged: {}\nverified / unverified: {} / {}",
                report.visits,
                report.schools_reached,
                report.rural_schools,
                report.urban_schools,
                report.audience,
                report.lectures,
                report.books,
                report.kits,
                report.rural_lectures,
                report.districts_covered,
                report.teachers_trained,
                report.duplicates_merged,
                report.verified_visits,
                report.unverified_visits
            ))
        }
        Command::Review { older_than_days } => {
            let bureau = open_existing(&data_dir, config)?;
            let today = chrono::Local::now().date_naive();
            let queue = bureau.review_queue(today, older_than_days)?;
            if json {
                return print(&serde_json::to_string(&queue)?);
            }
            let mut out = vec![format!(
                "suspected duplicates: {}\nconflicts: {}\npending schools: {}\nfixed, awaiting review: {}\nunverified for {older_than_days} days or more: {}",
                queue.duplicates.len(),
                queue.conflicts.len(),
                queue.pending_schools.len(),
                queue.fixed.len(),
                queue.unverified.len()
            )];
            for pair in &queue.duplicates {
                let reasons: Vec<&str> = pair.reasons.iter().map(|r| r.key()).collect();
                out.push(format!(
                    "  duplicate? {} {} score {:.2} ({})",
                    pair.a,
                    pair.b,
                    pair.score,
                    reasons.join(", ")
                ));
            }
            for school in &queue.pending_schools {
                out.push(format!(
                    "  pending school {} {} {}",
                    school.fields.name, school.fields.district, school.id
                ));
            }
            for visit in &queue.fixed {
                out.push(format!(
                    "  fixed {} {} {} {}",
                    visit.date, visit.school, visit.created_by, visit.id
                ));
            }
            print(&out.join("\n"))
        }
        Command::Targets { year, district } => {
            let bureau = open_existing(&data_dir, config)?;
            let district = district
                .map(|d| fieldlog_domain::District::parse(&d))
                .transpose()
                .map_err(fieldlog_domain::ValidationErrors::from)?;
            let targets = bureau.targets(year, district.as_ref())?;
            if json {
                return print(&serde_json::to_string(&targets)?);
            }
            let mut table = table(&[
                "year",
                "district",
                "target",
                "goal",
                "current",
                "met",
                "districts not reached",
            ]);
            for t in targets {
                let current = match (t.numerator, t.denominator) {
                    (Some(n), Some(d)) => format!("{} ({n}/{d})", t.current),
                    _ => t.current.to_string(),
                };
                table.add_row(vec![
                    t.year.to_string(),
                    t.district
                        .map_or_else(|| "region".into(), |d| d.to_string()),
                    t.key.key().to_string(),
                    t.goal.to_text(),
                    current,
                    t.met.to_string(),
                    join(&t.missing_districts),
                ]);
            }
            print(&render(&mut table))
        }
        Command::Export(command) => {
            use fieldlog_core::decide::Export;
            let bureau = open_existing(&data_dir, config)?;
            let (what, file, period) = match command {
                ExportCommand::Ledger {
                    xlsx: Some(file),
                    period,
                    ..
                } => (Export::LedgerXlsx, file, period),
                ExportCommand::Ledger {
                    csv: Some(file),
                    period,
                    ..
                } => (Export::LedgerCsv, file, period),
                ExportCommand::Ledger { .. } => unreachable!("clap requires --xlsx or --csv"),
                ExportCommand::Courses { xlsx, period } => (Export::CoursesXlsx, xlsx, period),
            };
            let filter = period.filter()?;
            let offset = *chrono::Local::now().offset();
            let rows = bureau.export(what, &file, &filter, offset)?;
            if json {
                return print(&serde_json::json!({ "file": file, "rows": rows }).to_string());
            }
            let what = match what {
                Export::CoursesXlsx => "the courses",
                _ => "the work ledger",
            };
            print(&format!("wrote {what} to {} ({rows} rows)", file.display()))
        }
        Command::Visits { deleted } => {
            let bureau = open_existing(&data_dir, config)?;
            let visits = bureau.visits(&fieldlog_core::VisitFilter {
                include_deleted: deleted,
                ..Default::default()
            })?;
            if json {
                return print(&serde_json::to_string(&visits)?);
            }
            let names: HashMap<_, _> = bureau
                .schools()?
                .into_iter()
                .map(|school| (school.id, school.fields.name))
                .collect();
            let mut table = table(&["date", "team", "school", "audience", "id"]);
            for v in visits {
                let school = v.fields.school;
                table.add_row(vec![
                    v.fields.date.to_string(),
                    v.team.to_string(),
                    names
                        .get(&school)
                        .map_or_else(|| school.to_string(), Clone::clone),
                    v.audience_total().to_string(),
                    v.id.to_string(),
                ]);
            }
            print(&render(&mut table))
        }
        Command::Purge { larger_than } => {
            let bureau = open_existing(&data_dir, config)?;
            let purged = bureau.purge(larger_than)?;
            if json {
                return print(&serde_json::to_string(&purged)?);
            }
            if purged.is_empty() {
                return print(&format!("no device change larger than {larger_than} bytes"));
            }
            let mut table = table(&["seq", "document", "change", "device", "bytes", "why"]);
            for p in &purged {
                table.add_row(vec![
                    p.seq.to_string(),
                    p.doc_id.clone(),
                    p.hash.clone(),
                    p.device_id.clone().unwrap_or_default(),
                    p.bytes.to_string(),
                    match p.reason {
                        fieldlog_bureau::PurgeReason::TooLarge => "too large",
                        fieldlog_bureau::PurgeReason::DependsOnRemoved => {
                            "builds on a removed change"
                        }
                    }
                    .to_string(),
                ]);
            }
            print(&format!(
                "{}\nremoved {} changes",
                render(&mut table),
                purged.len()
            ))
        }
        Command::Photos => {
            config.blob_store = blob_store(s3.as_ref())?;
            let bureau = open_existing(&data_dir, config)?;
            let photos = bureau.photos()?;
            if json {
                return print(&serde_json::to_string(&photos)?);
            }
            let yes_no = |held: bool| if held { "yes" } else { "waiting" }.to_string();
            let mut table = table(&[
                "date",
                "team",
                "visit",
                "caption",
                "consent",
                "thumbnail",
                "display",
                "photo",
            ]);
            for p in photos {
                table.add_row(vec![
                    p.date.to_string(),
                    p.team.to_string(),
                    p.visit.to_string(),
                    p.photo.caption.clone(),
                    if p.photo.consent { "yes" } else { "no" }.to_string(),
                    yes_no(p.thumbnail_held),
                    yes_no(p.display_held),
                    p.photo.display_sha256.clone(),
                ]);
            }
            print(&render(&mut table))
        }
        Command::Conflicts => {
            let bureau = open_existing(&data_dir, config)?;
            let conflicts = bureau.conflicts()?;
            if json {
                return print(&serde_json::to_string(&conflicts)?);
            }
            let mut table = table(&["record", "field", "value", "author"]);
            for c in conflicts {
                for v in c.values {
                    table.add_row(vec![
                        c.record_id.clone(),
                        c.field.to_string(),
                        v.value,
                        v.author,
                    ]);
                }
            }
            print(&render(&mut table))
        }
        Command::Team(TeamCommand::List) => {
            let bureau = open_existing(&data_dir, config)?;
            let teams = bureau.teams()?;
            if json {
                return print(&serde_json::to_string(&teams)?);
            }
            let mut table = table(&["team", "kind", "districts"]);
            for team in teams {
                table.add_row(vec![
                    team.id.to_string(),
                    team.kind.to_string(),
                    join(&team.districts),
                ]);
            }
            print(&render(&mut table))
        }
        Command::School(SchoolCommand::Import { file: csv }) => {
            let bureau = open_existing(&data_dir, config)?;
            let reader =
                std::fs::File::open(&csv).with_context(|| format!("opening {}", csv.display()))?;
            let summary = bureau.import_schools_csv(std::io::BufReader::new(reader))?;
            if json {
                print(&serde_json::to_string(&summary)?)
            } else {
                print(&format!(
                    "schools: {} added, {} updated, {} unchanged",
                    summary.added, summary.updated, summary.unchanged
                ))
            }
        }
        Command::Enroll {
            team,
            member,
            role,
            expiry,
        } => {
            let bureau = open_existing(&data_dir, config)?;
            let code = bureau.issue_code(&team, &member, role, expires(&expiry))?;
            print_code(&code, json, None)
        }
        Command::Backup { to } => {
            embedded_only(&config.database, "backup")?;
            let now = chrono::Utc::now().timestamp_millis();
            // Photo files in a bucket stay there (see `backup`'s doc); the manifest says so.
            let blobs = match &s3 {
                Some(s3) => fieldlog_bureau::backup::PhotoFiles::InObjectStore(s3.url()),
                None => fieldlog_bureau::backup::PhotoFiles::Copied,
            };
            let manifest = fieldlog_bureau::backup::backup_with(&data_dir, &to, now, &blobs)?;
            print_backup("backed up", &manifest, &to, json)
        }
        Command::Migrate { to } => {
            let Database::Postgres { url } = database(Some(to))? else {
                bail!("--to must be a postgres:// URL");
            };
            let store = blob_store(s3.as_ref())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime for the photo copy")?;
            let blobs = store.as_deref().map(|store| (store, &runtime));
            let migrated = fieldlog_bureau::migrate::to_postgres(&data_dir, &url, blobs)?;
            if json {
                return print(&serde_json::to_string(&migrated)?);
            }
            let photos = match &s3 {
                Some(s3) => format!(
                    "{} photo files ({} bytes) copied to {} and read back",
                    migrated.blobs,
                    migrated.blob_bytes,
                    s3.url()
                ),
                None => "photo files stay in the data directory".to_string(),
            };
            print(&format!(
                "migrated to {}: {} teams, {} devices, {} codes, {} documents, {} changes \
                 (the log continues after {}); checked every document's heads and every \
                 device; {photos}\nfrom now on, run the bureau with --database and this URL",
                fieldlog_bureau::postgres::redacted(&url),
                migrated.teams,
                migrated.devices,
                migrated.codes,
                migrated.documents,
                migrated.changes,
                migrated.last_seq,
            ))
        }
        Command::Restore { from, force } => {
            embedded_only(&config.database, "restore")?;
            let manifest = fieldlog_bureau::backup::restore(&from, &data_dir, force)?;
            print_backup("restored", &manifest, &data_dir, json)
        }
        Command::Device(DeviceCommand::List) => {
            let bureau = open_existing(&data_dir, config)?;
            print_devices(&bureau.devices()?, json)
        }
        Command::Device(DeviceCommand::Revoke { device_id }) => {
            let bureau = open_existing(&data_dir, config)?;
            let device = bureau.revoke(&device_id)?;
            if json {
                print(&device_json(&device).to_string())
            } else {
                print(&format!("revoked {} ({})", device.id, device.name))
            }
        }
    }
}

/// The bucket's settings when `blobs` names one: flags (or their `FIELDLOG_BUREAU_*`
/// variables), then the config file, then the standard AWS variables, then defaults.
fn s3_settings(flags: &BlobFlags, file: &FileConfig) -> Result<Option<S3Settings>> {
    let Some(url) = flags.blobs.clone().or_else(|| file.blobs.clone()) else {
        return Ok(None);
    };
    let (bucket, prefix) = S3Settings::parse_url(&url)?;
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let endpoint = flags
        .s3_endpoint
        .clone()
        .or_else(|| file.s3_endpoint.clone())
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let region = flags
        .s3_region
        .clone()
        .or_else(|| file.s3_region.clone())
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    let (access_key_id, secret_access_key, session_token) = match (
        &file.s3_access_key_id,
        &file.s3_secret_access_key,
    ) {
        (Some(key), Some(secret)) => (key.clone(), secret.clone(), file.s3_session_token.clone()),
        (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => (key, secret, env("AWS_SESSION_TOKEN")),
            _ => bail!(
                "blobs: {url} needs credentials: set s3_access_key_id and s3_secret_access_key in the config file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ),
        },
        _ => bail!(
            "s3_access_key_id and s3_secret_access_key: the config file gives one without the other"
        ),
    };
    Ok(Some(S3Settings {
        bucket,
        prefix,
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        session_token,
    }))
}

/// The store for complete photo files: the bucket's, or `None` for the data directory's.
fn blob_store(s3: Option<&S3Settings>) -> Result<Option<Arc<dyn BlobStore>>> {
    Ok(match s3 {
        Some(s3) => Some(Arc::new(S3Store::new(s3)?)),
        None => None,
    })
}

/// Where the records are: `postgres://…` (or `postgresql://…`) for PostgreSQL, nothing
/// (or `embedded`) for the data directory's file.
fn database(url: Option<String>) -> Result<Database> {
    match url.as_deref().map(str::trim) {
        None | Some("" | "embedded") => Ok(Database::Embedded),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Database::Postgres {
                url: url.to_string(),
            })
        }
        Some(_) => bail!(
            "--database must be a postgres:// URL (or `embedded` for the data directory's \
             {DB_FILE})"
        ),
    }
}

/// Backups copy the embedded file; a PostgreSQL database is backed up with its own tools.
fn embedded_only(database: &Database, command: &str) -> Result<()> {
    if *database != Database::Embedded {
        bail!(
            "`{command}` works on the embedded {DB_FILE}; back up a PostgreSQL bureau with \
             pg_dump (or your replicas) and its photo bucket with the object store's tools"
        );
    }
    Ok(())
}

fn open_existing(data_dir: &Path, config: Config) -> Result<Bureau> {
    let not_initialized = || {
        anyhow::anyhow!(
            "no bureau in {}; run `fieldlog-bureau init` first",
            data_dir.display()
        )
    };
    let embedded = config.database == Database::Embedded;
    if embedded && !data_dir.join(DB_FILE).exists() {
        return Err(not_initialized());
    }
    let bureau = Bureau::open(data_dir, config)?;
    // A PostgreSQL database has no file to look for: its bureau team says it was set up.
    if !embedded && !bureau.teams()?.iter().any(|t| t.kind == TeamType::Bureau) {
        return Err(not_initialized());
    }
    Ok(bureau)
}

/// Flags, then the file, then the defaults; the connection cap defaults to what the
/// process's open-file limit allows.
fn serve_config(serve: &mut fieldlog_bureau::ServeConfig, flags: &ServeFlags, file: &FileConfig) {
    let secs = |flag: Option<u64>, file: Option<u64>, default: &mut Duration| {
        if let Some(s) = flag.or(file) {
            *default = Duration::from_secs(s);
        }
    };
    secs(
        flags.header_timeout,
        file.header_timeout,
        &mut serve.header_timeout,
    );
    secs(
        flags.body_stall_timeout,
        file.body_stall_timeout,
        &mut serve.body_stall_timeout,
    );
    secs(
        flags.body_timeout,
        file.body_timeout,
        &mut serve.body_timeout,
    );
    secs(
        flags.shutdown_grace,
        file.shutdown_grace,
        &mut serve.shutdown_grace,
    );
    if let Some(days) = flags.partial_max_age_days.or(file.partial_max_age_days) {
        serve.partial_max_age = Duration::from_secs(days.saturating_mul(24 * 3600));
    }
    if let Some(n) = flags.device_rate.or(file.device_rate) {
        serve.device_rate = fieldlog_bureau::RateLimit::per_minute(n);
    }
    if let Some(n) = flags.enroll_rate.or(file.enroll_rate) {
        serve.enroll_rate = fieldlog_bureau::RateLimit::per_minute(n);
    }
    let open_files = open_file_limit();
    let fits = fieldlog_bureau::connection_cap(open_files);
    serve.max_connections = match flags.max_connections.or(file.max_connections) {
        Some(n) => {
            if n > fits {
                tracing::warn!(
                    max_connections = n,
                    open_files,
                    fits,
                    "more connections than the open-file limit leaves room for"
                );
            }
            n.max(1)
        }
        None => fits,
    };
}

/// The process's (soft) limit on open files; no limit reads as `u64::MAX`.
fn open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        // Windows' handle limit is far above any cap we would choose.
        u64::MAX
    }
}

fn serve(
    listen: &str,
    metrics: Option<&str>,
    tls: Option<std::sync::Arc<fieldlog_bureau::tls::Tls>>,
    bureau: Bureau,
    grace: Duration,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        // A bucket that is not there, refused credentials or an endpoint that does not
        // answer stop the bureau here, rather than fail each upload.
        bureau
            .blobs()
            .check()
            .await
            .context("blobs: the photo store does not answer")?;
        // Signal handlers go in before the readiness line, so a SIGTERM right after it
        // already stops the server gracefully.
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let mut options = fieldlog_bureau::ServeOptions::default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some(tls) = &tls {
            reload_on_hangup(tls.clone())?;
        }
        options.tls = tls;
        // One write for both lines, so a reader of the first has the second too.
        let mut ready = format!("listening on {scheme}://{addr}");
        if let Some(metrics) = metrics {
            let listener = tokio::net::TcpListener::bind(metrics)
                .await
                .with_context(|| format!("listening for metrics on {metrics}"))?;
            let addr = listener
                .local_addr()
                .context("reading the metrics address")?;
            ready.push_str(&format!("\nmetrics on http://{addr}/metrics"));
            options.metrics = Some(listener);
        }
        print(&ready)?;
        tracing::info!(
            max_connections = bureau.config().serve.max_connections,
            "serving"
        );
        fieldlog_bureau::serve_with(listener, bureau, options, shutdown)
            .await
            .context("serving")?;
        tracing::info!("stopped");
        Ok(())
    });
    // Storage work of a cut request may still run on the blocking pool; give it the grace
    // too, then exit all the same.
    runtime.shutdown_timeout(grace);
    served
}

/// Reads the TLS certificate and key again on each SIGHUP (logging the outcome; a failed
/// reload keeps the certificate in use).
fn reload_on_hangup(tls: std::sync::Arc<fieldlog_bureau::tls::Tls>) -> Result<()> {
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("reloaded the TLS certificate"),
                    Err(e) => tracing::error!(
                        error = %fieldlog_bureau::http::error_chain(&e),
                        "reloading the TLS certificate failed; keeping the one in use"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    Ok(async move {
        #[cfg(unix)]
        let term = term.recv();
        #[cfg(not(unix))]
        let term = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
    })
}

fn print_code(code: &IssuedCode, json: bool, data_dir: Option<&Path>) -> Result<()> {
    let expires = format_ms(code.expires_at);
    if json {
        let mut value = serde_json::json!({
            "code": code.code,
            "team": code.team,
            "member": code.member,
            "role": code.role,
            "expires_at": expires,
        });
        if let Some(dir) = data_dir {
            value["data_dir"] = serde_json::json!(dir.display().to_string());
        }
        return print(&value.to_string());
    }
    let qr = qrcode::QrCode::new(code.uri().as_bytes())
        .context("drawing the QR code")?
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build();
    let mut text = String::new();
    if let Some(dir) = data_dir {
        text.push_str(&format!("bureau created in {}\n", dir.display()));
    }
    text.push_str(&format!(
        "enrollment code for {} ({}, team {}): {}\nvalid until {expires}; it works once.\n{qr}",
        code.member,
        code.role.key(),
        code.team,
        code.code
    ));
    print(&text)
}

fn print_backup(
    done: &str,
    manifest: &fieldlog_bureau::backup::Manifest,
    dir: &Path,
    json: bool,
) -> Result<()> {
    let database = manifest.files.first().map(|f| f.bytes).unwrap_or_default();
    let (photos, photo_bytes) = manifest.blobs();
    if json {
        return print(
            &serde_json::json!({
                "dir": dir,
                "created_at": format_ms(manifest.created_at_ms),
                "database_bytes": database,
                "photo_files": photos,
                "photo_bytes": photo_bytes,
                "photo_store": manifest.photo_store,
            })
            .to_string(),
        );
    }
    let photos = match &manifest.photo_store {
        Some(store) => format!("photo files not copied: they stay in {store}"),
        None => format!("{photos} photo files ({photo_bytes} bytes)"),
    };
    print(&format!(
        "{done} {} (taken {}): database {database} bytes, {photos}",
        dir.display(),
        format_ms(manifest.created_at_ms)
    ))
}

fn print_devices(devices: &[DeviceRecord], json: bool) -> Result<()> {
    if json {
        let list: Vec<_> = devices.iter().map(device_json).collect();
        return print(&serde_json::Value::from(list).to_string());
    }
    let mut table = table(&[
        "device", "name", "team", "member", "role", "enrolled", "revoked",
    ]);
    for d in devices {
        table.add_row(vec![
            d.id.to_string(),
            d.name.clone(),
            d.team.to_string(),
            d.member.clone(),
            d.role.key().to_string(),
            format_ms(d.enrolled_at),
            d.revoked_at.map(format_ms).unwrap_or_default(),
        ]);
    }
    print(&render(&mut table))
}

fn device_json(d: &DeviceRecord) -> serde_json::Value {
    serde_json::json!({
        "device_id": d.id,
        "name": d.name,
        "team": d.team,
        "member": d.member,
        "role": d.role,
        "enrolled_at": format_ms(d.enrolled_at),
        "revoked_at": d.revoked_at.map(format_ms),
    })
}

fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// A table as text: two spaces between columns, no trailing spaces.
fn render(table: &mut comfy_table::Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn join(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 3339 in UTC, to the second.
fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Prints to stdout and flushes (the `listening on` line is a readiness signal).
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}
