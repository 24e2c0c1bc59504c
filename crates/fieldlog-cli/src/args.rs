//! The command line, as clap parses it. Values that carry a user's record content stay text
//! here: the domain validates them and names the field in the user's language.

use chrono::NaiveDate;
use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};
use fieldlog_core::OriginalsPolicy;
use fieldlog_domain::{ActivityKind, Gender, GradeBand, Lang};
use std::path::PathBuf;

/// Log science-outreach school visits offline, and carry them between devices as bundle files.
///
/// 离线记录科普进校园走访，并用同步包在设备之间传递记录。
#[derive(Debug, Parser)]
#[command(name = "fieldlog", version, propagate_version = true, after_help = cli_help())]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The device's data directory [default: the platform's data dir for Fieldlog]
    #[arg(long, global = true, env = "FIELDLOG_DATA_DIR", value_name = "DIR",
          value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from))]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text (errors too, as one JSON line on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// Language of messages: zh-CN or en [default: from FIELDLOG_LANG, LC_ALL, LC_MESSAGES or
    /// LANG, else zh-CN]
    #[arg(long, global = true, value_name = "LANG", value_parser = parse_lang)]
    pub lang: Option<Lang>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this device's identity in the data directory / 创建本设备
    Init {
        /// A name people recognise, e.g. 一号机 or "Li's laptop"
        #[arg(long)]
        device_name: String,
        /// The team this device records for, e.g. caravan-1
        #[arg(long)]
        team: String,
    },
    /// The school registry / 学校名录
    #[command(subcommand)]
    School(SchoolCommand),
    /// Record, edit and list visits / 走访记录
    #[command(subcommand)]
    Visit(VisitCommand),
    /// Photos of a visit / 照片
    #[command(subcommand)]
    Photo(PhotoCommand),
    /// Fields that hold concurrent values after a merge / 冲突
    Conflicts,
    /// Carry changes between devices as a file / 同步包
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Join a bureau with a one-time code from a coordinator / 加入科协平台
    Enroll {
        /// The bureau's address, e.g. https://kx.example.cn
        url: String,
        /// The one-time enrollment code
        code: String,
    },
    /// Send what the bureau lacks and receive what is new / 同步
    Sync,
    /// The bureau, the last sync and what waits to go / 同步状态
    Status,
    /// Show or change this device's settings / 设置
    Settings {
        /// Keep photo originals (with their GPS and camera data) on this device:
        /// keep, until-uploaded (the default) or drop. They never leave the device.
        #[arg(long, value_name = "POLICY", value_parser = parse_originals)]
        originals: Option<OriginalsPolicy>,
        /// Coordinators: list unverified visits in `fieldlog review` once they are this many
        /// days old (default 14)
        #[arg(long, value_name = "DAYS")]
        review_after_days: Option<u32>,
    },
    /// Coordinators: what waits for review, and decisions about visits / 审核
    Review {
        #[command(subcommand)]
        command: Option<ReviewCommand>,
    },
    /// Coordinators: set targets / 设定目标
    #[command(subcommand)]
    Target(TargetCommand),
    /// Targets and where the figures stand / 目标进度
    Targets {
        /// Only this year's targets
        #[arg(long)]
        year: Option<i32>,
        /// Only this district's targets
        #[arg(long)]
        district: Option<String>,
    },
    /// Export records / 导出
    #[command(subcommand)]
    Export(ExportCommand),
    /// Series courses of 12–16 sessions at one school, and their rosters / 系列课程
    #[command(subcommand)]
    Course(CourseCommand),
    /// Volunteers paired with schools' science teachers / 结对帮扶
    #[command(subcommand)]
    Pairing(PairingCommand),
    /// The members the bureau enrolled (the team's; a coordinator's region's) / 成员
    Members {
        /// Show the copy on this device without asking the bureau
        #[arg(long)]
        offline: bool,
    },
    /// The figures a bureau publishes / 统计报表
    Report {
        #[command(flatten)]
        period: Period,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Suspected duplicates: visits that may be one event logged twice, best first
    Duplicates {
        #[command(flatten)]
        period: Period,
    },
    /// OTHER is a duplicate of KEEP: it stops counting; both stay readable
    Merge {
        /// The visit that counts (if it was merged itself, the one it was merged into)
        keep: String,
        /// The visit that stops counting
        other: String,
        /// Whose audience counts: keep, other, or sum (two people who counted different doors)
        #[arg(long, default_value = "keep")]
        audience: String,
        /// Fields KEEP takes from OTHER: date, activities, topic, presenters, notes,
        /// donations.books, donations.kits (comma-separated)
        #[arg(long, value_name = "FIELD,...")]
        take: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Undo the merge of OTHER: both count again
    Unmerge {
        other: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// A and B are not the same event: never suggest the pair again
    Distinct {
        a: String,
        b: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Settle a field that holds concurrent values (or set a count to the right total)
    Resolve {
        visit: String,
        /// topic, date, school, presenters, notes, audience.students, audience.teachers,
        /// audience.others, donations.books, donations.kits
        field: String,
        value: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Mark visits verified (已核实)
    Verify {
        #[arg(required = true)]
        visits: Vec<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Ask the volunteer to fix a visit; the note reaches their device
    Flag {
        visit: String,
        #[arg(long)]
        note: String,
    },
    /// Every decision about a visit, oldest first
    History { visit: String },
}

/// Which visits: by date and district.
#[derive(Debug, Clone, Args)]
pub struct Period {
    /// First visit date (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last visit date (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Only schools of this district (区县)
    #[arg(long)]
    pub district: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Set goals: lectures, audience, schools, rural_lecture_share (0.2 or 20%),
    /// districts_covered (a number or all), teachers_trained, books
    Set {
        #[arg(long)]
        year: i32,
        /// A district's targets; the whole region's without it
        #[arg(long)]
        district: Option<String>,
        #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_assignment)]
        goals: Vec<(String, String)>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The work ledger (工作台账): one row per counted visit
    Ledger {
        /// Write an Excel workbook (工作台账, 汇总, 审核记录)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "csv",
            conflicts_with = "csv"
        )]
        xlsx: Option<PathBuf>,
        /// Write the ledger as CSV (UTF-8 with a BOM)
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        #[command(flatten)]
        period: Period,
    },
    /// The courses: sessions held (in the period) and planned, average attendance; counts
    /// only, never a name
    Courses {
        /// Write an Excel workbook (系列课程)
        #[arg(long, value_name = "FILE", required = true)]
        xlsx: PathBuf,
        #[command(flatten)]
        period: Period,
    },
}

#[derive(Debug, Subcommand)]
pub enum CourseCommand {
    /// Add a course of this device's team; prints its id
    Add {
        /// The school: its id or exact name
        #[arg(long, value_name = "REF")]
        school: String,
        #[arg(long)]
        title: String,
        /// Sessions planned (1–40)
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        sessions: i64,
        #[arg(long, default_value = "")]
        theme: String,
        /// First session planned (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        start: Option<String>,
        /// Last session planned (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        end: Option<String>,
    },
    /// Change a course's title, theme, planned sessions or dates
    Edit {
        /// The course's id or exact title
        course: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        theme: Option<String>,
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        sessions: Option<i64>,
        /// YYYY-MM-DD, or "" to clear
        #[arg(long, value_name = "DATE")]
        start: Option<String>,
        /// YYYY-MM-DD, or "" to clear
        #[arg(long, value_name = "DATE")]
        end: Option<String>,
    },
    /// Every course with sessions held and planned
    List,
    /// One course: its sessions (with attendance), what is missing, clashes
    Show {
        /// The course's id or exact title
        course: String,
    },
    /// A course's roster of students (kept with the team and the bureau)
    Roster {
        /// The course's id or exact title
        course: String,
        #[command(subcommand)]
        command: Option<RosterCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Put a student on the roster
    Add {
        name: String,
        /// e.g. 四年级
        #[arg(long, default_value = "")]
        grade: String,
        /// female|male|女|男
        #[arg(long, default_value = "")]
        gender: String,
    },
    /// Take a student off the roster (earlier attendance still counts)
    Remove { name: String },
    /// The roster as CSV (name, grade, gender, sessions attended); refused outside the
    /// course's team and coordinators
    Export {
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// Pair a volunteer (an enrolled member of this team) with a school's teacher
    Add {
        #[arg(long, value_name = "MEMBER")]
        volunteer: String,
        #[arg(long, value_name = "NAME")]
        teacher: String,
        /// The school: its id or exact name
        #[arg(long, value_name = "REF")]
        school: String,
        /// YYYY-MM-DD [default: today]
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// End a pairing
    End {
        id: String,
        /// YYYY-MM-DD [default: today]
        #[arg(long, value_name = "DATE")]
        on: Option<NaiveDate>,
    },
    /// Every pairing, newest first
    List,
}

/// Corrections to a school's registry entry.
#[derive(Debug, Clone, Args)]
pub struct SchoolCorrections {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub district: Option<String>,
    /// rural|urban|乡村|城区
    #[arg(long)]
    pub area: Option<String>,
    #[arg(long)]
    pub level: Option<String>,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Subcommand)]
pub enum SchoolCommand {
    /// Import a registry CSV with the header name,district,area,level,enrollment
    Import {
        /// The CSV file (UTF-8); area is rural|urban|乡村|城区
        file: PathBuf,
    },
    /// Add one school entered in the field (pending until a coordinator approves it)
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        district: String,
        /// rural|urban|乡村|城区
        #[arg(long)]
        area: String,
        /// e.g. primary|junior|小学|初中
        #[arg(long)]
        level: Option<String>,
        #[arg(long, allow_negative_numbers = true)]
        enrollment: Option<i64>,
        /// Mark it registered instead of pending
        #[arg(long)]
        registered: bool,
    },
    /// List every school
    List,
    /// Coordinators: register a school entered in the field, with corrections
    Approve {
        /// The school's id or exact name
        school: String,
        #[command(flatten)]
        corrections: SchoolCorrections,
    },
    /// Coordinators: a pending school is the registered INTO; its visits count for INTO
    Merge {
        pending: String,
        into: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Coordinators: correct a school's registry entry (its area applies to all its visits)
    Set {
        school: String,
        #[command(flatten)]
        corrections: SchoolCorrections,
    },
    /// Every decision about a school, oldest first
    History { school: String },
    /// Find schools by part of the name or by pinyin (nsxx, nanshan)
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum VisitCommand {
    /// Record a visit from flags, or from one JSON object on stdin (--json-in); prints its id
    #[command(after_help = visit_add_help())]
    Add(Box<VisitAdd>),
    /// Record many visits from a file in one step: a JSON array of visit objects (as for
    /// `visit add --json-in`), or one object per line; if any is refused nothing is saved
    Import { file: PathBuf },
    /// Change fields of a visit
    #[command(after_help = visit_edit_help())]
    Edit {
        id: String,
        /// field=value; repeat for several fields
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true, value_parser = parse_assignment)]
        set: Vec<(String, String)>,
    },
    /// Show one visit
    Show { id: String },
    /// List visits, newest first
    List {
        /// Only visits dated in this month (YYYY-MM)
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
        month: Option<String>,
        /// Only visits to this school (id or exact name)
        #[arg(long, value_name = "REF")]
        school: Option<String>,
        /// Include deleted visits
        #[arg(long)]
        deleted: bool,
    },
    /// Mark a visit deleted; it never counts again
    Delete { id: String },
    /// Take attendance for a session of a course: exactly these students (roster names or
    /// ids) were present; the student count becomes their number
    Attend {
        id: String,
        #[arg(required = true, value_name = "NAME")]
        present: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct VisitAdd {
    /// Read the visit as one JSON object from standard input (see below)
    #[arg(long, conflicts_with_all = [
        "school", "date", "activities", "topic", "presenters", "students", "teachers",
        "others", "books", "kits", "notes", "course", "attend",
    ])]
    pub json_in: bool,
    /// A session of this course (its id or exact title); the school and topic follow it
    #[arg(long, value_name = "COURSE")]
    pub course: Option<String>,
    /// A student present (repeatable; roster names); the student count is their number
    #[arg(long, value_name = "NAME")]
    pub attend: Vec<String>,
    /// The school: its id or exact name
    #[arg(long, value_name = "REF")]
    pub school: Option<String>,
    /// YYYY-MM-DD [default: today]
    #[arg(long)]
    pub date: Option<String>,
    /// An activity kind (repeatable, or comma-separated; see below)
    #[arg(long = "activity", alias = "activities", value_name = "KIND")]
    pub activities: Vec<String>,
    /// Topic / 主题
    #[arg(long)]
    pub topic: Option<String>,
    /// Who presented / 主讲人
    #[arg(long)]
    pub presenters: Option<String>,
    /// Students in the audience / 学生人数
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub students: Option<i64>,
    /// Teachers in the audience / 教师人数
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub teachers: Option<i64>,
    /// Anyone else in the audience / 其他人数
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub others: Option<i64>,
    /// Books donated / 捐赠图书
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub books: Option<i64>,
    /// Equipment kits donated / 捐赠器材
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub kits: Option<i64>,
    /// Notes / 备注
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write the changes peers lack to FILE (atomically)
    Export {
        file: PathBuf,
        /// Everything this device holds
        #[arg(long, conflicts_with = "for_device")]
        all: bool,
        /// What one peer (device id or name) lacks, as far as its last bundle told us
        #[arg(long = "for", value_name = "DEVICE")]
        for_device: Option<String>,
    },
    /// Apply a bundle from another device
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum PhotoCommand {
    /// Attach a photo (JPEG, PNG or WebP): stored as a 1600 px copy and a 320 px thumbnail,
    /// upright, with all metadata (GPS, camera serial…) removed
    Add {
        /// The visit's id
        visit: String,
        file: PathBuf,
        /// A caption (up to 500 characters)
        #[arg(long, default_value = "")]
        caption: String,
        /// The people shown agreed to publication (同意公开); off unless given
        #[arg(long)]
        consent: bool,
    },
    /// List a visit's photos
    List {
        /// The visit's id
        visit: String,
    },
    /// A photo file (display copy or thumbnail, by sha256): from this device, or fetched from
    /// the bureau if a visit this device may see shows it. Prints the file's path.
    Fetch {
        /// The file's sha256, as `photo list` shows (the photo id is its display copy)
        sha256: String,
    },
    /// Detach a photo from a visit
    Remove {
        /// The visit's id
        visit: String,
        /// The photo's id (its display copy's sha256, as `photo list` shows)
        photo: String,
    },
}

fn parse_originals(given: &str) -> Result<OriginalsPolicy, String> {
    OriginalsPolicy::parse(given).ok_or_else(|| "expected keep, until-uploaded or drop".into())
}

fn parse_lang(given: &str) -> Result<Lang, String> {
    let lower = given.trim().to_ascii_lowercase();
    if lower.starts_with("zh") {
        Ok(Lang::ZhCn)
    } else if lower.starts_with("en") {
        Ok(Lang::En)
    } else {
        Err("expected zh-CN or en".into())
    }
}

fn parse_month(given: &str) -> Result<String, String> {
    let given = given.trim();
    let valid =
        given.len() == 7 && NaiveDate::parse_from_str(&format!("{given}-01"), "%Y-%m-%d").is_ok();
    valid
        .then(|| given.to_string())
        .ok_or_else(|| "expected a month as YYYY-MM".into())
}

fn parse_assignment(given: &str) -> Result<(String, String), String> {
    given
        .split_once('=')
        .map(|(key, value)| (key.trim().to_string(), value.to_string()))
        .ok_or_else(|| "expected FIELD=VALUE".into())
}

fn activity_lines() -> String {
    ActivityKind::ALL
        .iter()
        .map(|kind| {
            format!(
                "  {:<18}{} / {}\n",
                kind.key(),
                kind.label(Lang::ZhCn),
                kind.label(Lang::En)
            )
        })
        .collect()
}

fn visit_add_help() -> String {
    format!(
        "Activity kinds (--activity, or \"activities\" in --json-in; the Chinese label works too):\n\
         {}\n\
         --json-in reads one JSON object from standard input. Only \"school\" and \"activities\"\n\
         are required; a missing \"date\" means today, missing counts are 0:\n\
         \x20 {{\"school\": \"<id or exact name>\", \"date\": \"YYYY-MM-DD\",\n\
         \x20  \"activities\": [\"lecture\", \"experiment_show\"], \"topic\": \"...\", \"presenters\": \"...\",\n\
         \x20  \"audience\": {{\"students\": 40, \"teachers\": 2, \"others\": 0,\n\
         \x20               \"breakdown\": {{\"grades_1_3.female\": 12}}}},\n\
         \x20  \"donations\": {{\"books\": 10, \"kits\": 1}}, \"notes\": \"...\"}}\n\n\
         Example:\n\
         \x20 echo '{{\"school\": \"南山小学\", \"activities\": [\"lecture\"], \"audience\": {{\"students\": 40}}}}' \\\n\
         \x20   | fieldlog visit add --json-in",
        activity_lines()
    )
}

fn visit_edit_help() -> String {
    let keys = |all: &[&str]| all.join(", ");
    let bands: Vec<&str> = GradeBand::ALL.iter().map(|b| b.key()).collect();
    let genders: Vec<&str> = Gender::ALL.iter().map(|g| g.key()).collect();
    format!(
        "Fields: school, date, activities (comma-separated), topic, presenters, notes,\n\
         audience.students, audience.teachers, audience.others, donations.books, donations.kits,\n\
         audience.breakdown.<band>.<gender>\n\
         \x20 <band>:   {}\n\
         \x20 <gender>: {}\n\n\
         Activity kinds:\n{}\n\
         Example: fieldlog visit edit <ID> --set audience.students=50 --set topic=磁铁",
        keys(&bands),
        keys(&genders),
        activity_lines()
    )
}

fn cli_help() -> String {
    format!(
        "Activity kinds (visit add --activity, visit edit --set activities=…):\n{}\n\
         A visit can also come as JSON on stdin: fieldlog visit add --json-in < visit.json\n\
         (`fieldlog visit add --help` shows the object's form).",
        activity_lines()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_in_and_field_flags_do_not_mix() {
        let parsed = Cli::try_parse_from(["fieldlog", "visit", "add", "--json-in", "--topic", "x"]);
        let err = parsed.expect_err("mixing must be refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn negative_counts_reach_validation() {
        let cli = Cli::try_parse_from(["fieldlog", "visit", "add", "--students", "-5"])
            .expect("a negative count parses");
        let Command::Visit(VisitCommand::Add(add)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(add.students, Some(-5));
    }

    #[test]
    fn months_and_assignments_are_checked() {
        assert!(parse_month("2025-05").is_ok());
        assert!(parse_month("2025-5").is_err());
        assert!(parse_month("2025-13").is_err());
        assert_eq!(
            parse_assignment("topic=a=b"),
            Ok(("topic".into(), "a=b".into()))
        );
        assert!(parse_assignment("topic").is_err());
    }
}
