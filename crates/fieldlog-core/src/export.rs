//! The work ledger (工作台账) bureaus keep: one row per counted visit, as XLSX (with the
//! summary and the review record) or as CSV (the first sheet, UTF-8 with a BOM so Excel
//! reads the Chinese).
//!
//! Rows stream from one query to the writer: the CSV writes as it reads, and the XLSX
//! worksheets run in `rust_xlsxwriter`'s constant-memory mode (each row goes to a temporary
//! file), so memory stays bounded whatever the number of visits. The device and the bureau
//! call the same functions over the same tables, so both give the same rows.

use crate::error::{DbContext, Error, Result};
use crate::projection::{self, FROM_VISITS};
use crate::store::ReportFilter;
use crate::{review, targets};
use fieldlog_domain::{Area, Lang, ReviewState, Visit};
use rusqlite::{Connection, OptionalExtension};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use std::io::Write;
use std::path::Path;

/// The ledger's columns: header (with units) and width in characters.
pub const COLUMNS: [(&str, f64); 20] = [
    ("序号", 6.0),
    ("活动日期", 11.0),
    ("区县", 10.0),
    ("学校", 24.0),
    ("学校类别", 9.0),
    ("活动形式", 18.0),
    ("主题", 24.0),
    ("课程", 20.0),
    ("课时", 8.0),
    ("主讲人", 12.0),
    ("学生(人)", 9.0),
    ("教师(人)", 9.0),
    ("其他(人)", 9.0),
    ("受众合计(人次)", 14.0),
    ("赠书(册)", 9.0),
    ("器材(套)", 9.0),
    ("照片(张)", 9.0),
    ("录入人", 12.0),
    ("审核状态", 12.0),
    ("备注", 30.0),
];

/// One cell: text or a whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Number(u64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => n.to_string(),
        }
    }
}

/// Calls `row` with each counted visit's cells, in date order, as the ledger shows them.
pub fn ledger_rows(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    mut row: impl FnMut(Vec<Cell>) -> Result<()>,
) -> Result<u64> {
    let sql = format!(
        "SELECT coalesce(v.effective, v.record), coalesce(s.district, ''), coalesce(s.name, ''),
                s.area, v.review,
                (SELECT json_extract(record, '$.title') FROM courses WHERE id = v.course),
                (SELECT json_extract(record, '$.sessions') FROM courses WHERE id = v.course),
                {SESSION_NUMBER}
         {FROM_VISITS} AND v.duplicate_of IS NULL
         ORDER BY v.date, v.created_at, v.id"
    );
    let mut stmt = conn.prepare(&sql).db(path)?;
    let mut rows = stmt.query(projection::filter_params(filter)).db(path)?;
    let mut n = 0;
    while let Some(r) = rows.next().db(path)? {
        let record: String = r.get(0).db(path)?;
        let Ok(visit) = serde_json::from_str::<Visit>(&record) else {
            continue;
        };
        let area: Option<String> = r.get(3).db(path)?;
        let state: String = r.get(4).db(path)?;
        let title: Option<String> = r.get(5).db(path)?;
        let planned: Option<i64> = r.get(6).db(path)?;
        let number: Option<i64> = r.get(7).db(path)?;
        let session = match (visit.fields.course, number, planned) {
            (Some(_), Some(n), Some(p)) => format!("{n}/{p}"),
            (Some(_), Some(n), None) => n.to_string(),
            _ => String::new(),
        };
        n += 1;
        row(cells(
            n,
            &visit,
            r.get(1).db(path)?,
            r.get(2).db(path)?,
            area.as_deref(),
            &state,
            (title.unwrap_or_default(), session),
        ))?;
    }
    Ok(n)
}

/// A visit's session number in its course: its place among the course's counted sessions
/// (the order `course::sessions` numbers them in), whatever the filter.
const SESSION_NUMBER: &str = "CASE WHEN v.course IS NULL THEN NULL ELSE
    (SELECT count(*) FROM visits w
     WHERE w.course = v.course AND w.deleted = 0 AND w.duplicate_of IS NULL
       AND (w.date, w.created_at, w.id) <= (v.date, v.created_at, v.id)) END";

fn cells(
    n: u64,
    visit: &Visit,
    district: String,
    school: String,
    area: Option<&str>,
    state: &str,
    (course, session): (String, String),
) -> Vec<Cell> {
    let zh = Lang::ZhCn;
    let f = &visit.fields;
    let activities: Vec<&str> = f.activities.iter().map(|a| a.label(zh)).collect();
    let label = |area: Option<&str>| {
        area.and_then(|a| Area::parse(a).ok())
            .map_or("", |a| a.label(zh))
    };
    let review = ReviewState::parse(state).map_or("", |s| s.label(zh));
    vec![
        Cell::Number(n),
        Cell::Text(f.date.to_string()),
        Cell::Text(district),
        Cell::Text(school),
        Cell::Text(label(area).to_string()),
        Cell::Text(activities.join("、")),
        Cell::Text(f.topic.clone()),
        Cell::Text(course),
        Cell::Text(session),
        Cell::Text(f.presenters.clone()),
        Cell::Number(f.audience.students.into()),
        Cell::Number(f.audience.teachers.into()),
        Cell::Number(f.audience.others.into()),
        Cell::Number(visit.audience_total()),
        Cell::Number(f.donations.books.into()),
        Cell::Number(f.donations.kits.into()),
        Cell::Number(visit.photos.len() as u64),
        Cell::Text(visit.created_by.clone()),
        Cell::Text(review.to_string()),
        Cell::Text(f.notes.clone()),
    ]
}

/// Writes the ledger as CSV: a BOM, the header, one row per counted visit, calling
/// `progress` with the rows written so far. Returns the rows.
pub fn write_csv(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(out);
    out.write_all("\u{feff}".as_bytes()).map_err(io)?;
    let mut writer = csv::Writer::from_writer(out);
    let csv_error = |e: csv::Error| io(std::io::Error::other(e));
    writer
        .write_record(COLUMNS.iter().map(|(h, _)| *h))
        .map_err(csv_error)?;
    let mut written = 0;
    let n = ledger_rows(conn, path, filter, |cells| {
        writer
            .write_record(cells.iter().map(Cell::text))
            .map_err(csv_error)?;
        written += 1;
        progress(written);
        Ok(())
    })?;
    writer.flush().map_err(io)?;
    Ok(n)
}

/// Writes the ledger workbook to `file`: 工作台账 (the rows), 汇总 (the report and the
/// targets of the years the filter covers), 审核记录 (every decision, its time at
/// `offset` from UTC, the caller's time zone), calling `progress` with the ledger rows
/// written so far. Returns the rows.
pub fn write_xlsx(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    file: &Path,
    offset: chrono::FixedOffset,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let xlsx = |e: XlsxError| Error::Io {
        path: file.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let mut workbook = Workbook::new();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        workbook.set_tempdir(dir).map_err(xlsx)?;
    }
    let header = Format::new().set_bold().set_background_color("DDEBF7");
    let rows = {
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?;
        sheet.set_name("工作台账").map_err(xlsx)?;
        print_setup(sheet).map_err(xlsx)?;
        write_header(sheet, &COLUMNS, &header).map_err(xlsx)?;
        let mut r = 0u32;
        let n = ledger_rows(conn, path, filter, |cells| {
            r += 1;
            write_cells(sheet, r, &cells).map_err(xlsx)?;
            progress(u64::from(r));
            Ok(())
        })?;
        sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
        sheet
            .autofilter(0, 0, r.max(1), (COLUMNS.len() - 1) as u16)
            .map_err(xlsx)?;
        n
    };
    {
        let sheet = workbook.add_worksheet().set_name("汇总").map_err(xlsx)?;
        print_setup(sheet).map_err(xlsx)?;
        summary(conn, path, filter, sheet, &header).map_err(|e| match e {
            SummaryError::Xlsx(e) => xlsx(e),
            SummaryError::Store(e) => e,
        })?;
    }
    {
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?;
        sheet.set_name("审核记录").map_err(xlsx)?;
        print_setup(sheet).map_err(xlsx)?;
        let columns = [
            ("时间", 17.0),
            ("协调员", 12.0),
            ("设备", 14.0),
            ("决定", 12.0),
            ("记录", 38.0),
            ("内容", 64.0),
            ("说明", 30.0),
        ];
        write_header(sheet, &columns, &header).map_err(xlsx)?;
        for (i, d) in review::all_decisions(conn, path)?.iter().enumerate() {
            let subject = d
                .visit
                .map(|v| v.to_string())
                .or(d.school.map(|s| s.to_string()))
                .unwrap_or_default();
            let cells = [
                Cell::Text(local_time(d.at, offset)),
                Cell::Text(d.member.clone()),
                Cell::Text(d.device.clone()),
                Cell::Text(d.kind.label(Lang::ZhCn).to_string()),
                Cell::Text(subject),
                Cell::Text(d.describe(Lang::ZhCn)),
                Cell::Text(d.note.clone()),
            ];
            write_cells(sheet, i as u32 + 1, &cells).map_err(xlsx)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    }
    workbook.save(file).map_err(xlsx)?;
    Ok(rows)
}

/// The courses export's columns. Counts only: no roster name ever goes into a file.
pub const COURSE_COLUMNS: [(&str, f64); 13] = [
    ("序号", 6.0),
    ("课程", 24.0),
    ("主题", 18.0),
    ("团队", 12.0),
    ("区县", 10.0),
    ("学校", 24.0),
    ("学校类别", 9.0),
    ("计划课时", 9.0),
    ("已上课时", 9.0),
    ("未上课时", 9.0),
    ("平均到课(人)", 12.0),
    ("开课日期", 11.0),
    ("结课日期", 11.0),
];

/// One row per course whose school is in the filter's district: sessions held in the
/// filter's period, planned, still to hold, and the average student count of those held.
pub fn course_rows(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
) -> Result<Vec<Vec<Cell>>> {
    let zh = Lang::ZhCn;
    let mut rows = Vec::new();
    for summary in crate::course::summaries(conn, path)? {
        let (district, area): (Option<String>, Option<String>) = conn
            .prepare_cached("SELECT district, area FROM schools WHERE id = ?1")
            .db(path)?
            .query_row([summary.course.fields.school.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .db(path)?
            .unwrap_or_default();
        if filter
            .district
            .as_ref()
            .is_some_and(|d| district.as_deref() != Some(d.as_str()))
        {
            continue;
        }
        let held: Vec<_> = summary
            .sessions
            .iter()
            .filter(|s| filter.from.is_none_or(|from| s.date >= from))
            .filter(|s| filter.to.is_none_or(|to| s.date <= to))
            .collect();
        let students: u64 = held.iter().map(|s| u64::from(s.students)).sum();
        let average = match held.len() {
            0 => String::new(),
            n => format!("{:.1}", students as f64 / n as f64),
        };
        let f = &summary.course.fields;
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        rows.push(vec![
            Cell::Number(rows.len() as u64 + 1),
            Cell::Text(f.title.clone()),
            Cell::Text(f.theme.clone()),
            Cell::Text(summary.course.team.to_string()),
            Cell::Text(district.unwrap_or_default()),
            Cell::Text(summary.school_name.clone()),
            Cell::Text(
                area.as_deref()
                    .and_then(|a| Area::parse(a).ok())
                    .map_or("", |a| a.label(zh))
                    .to_string(),
            ),
            Cell::Number(u64::from(summary.planned)),
            Cell::Number(held.len() as u64),
            Cell::Number(u64::from(summary.planned).saturating_sub(held.len() as u64)),
            Cell::Text(average),
            Cell::Text(date(f.start)),
            Cell::Text(date(f.end)),
        ]);
    }
    Ok(rows)
}

/// Writes the courses workbook (one sheet, 系列课程); returns the rows.
pub fn write_courses_xlsx(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    file: &Path,
) -> Result<u64> {
    let xlsx = |e: XlsxError| Error::Io {
        path: file.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let rows = course_rows(conn, path, filter)?;
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold().set_background_color("DDEBF7");
    let sheet = workbook
        .add_worksheet()
        .set_name("系列课程")
        .map_err(xlsx)?;
    print_setup(sheet).map_err(xlsx)?;
    write_header(sheet, &COURSE_COLUMNS, &header).map_err(xlsx)?;
    for (i, cells) in rows.iter().enumerate() {
        write_cells(sheet, i as u32 + 1, cells).map_err(xlsx)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    workbook.save(file).map_err(xlsx)?;
    Ok(rows.len() as u64)
}

/// Printed as bureaus file it: A4 landscape, one page wide, the first row on every page.
fn print_setup(sheet: &mut Worksheet) -> std::result::Result<(), XlsxError> {
    sheet
        .set_paper_size(9)
        .set_landscape()
        .set_print_fit_to_pages(1, 0)
        .set_repeat_rows(0, 0)?;
    Ok(())
}

fn write_header(
    sheet: &mut Worksheet,
    columns: &[(&str, f64)],
    format: &Format,
) -> std::result::Result<(), XlsxError> {
    for (c, (title, width)) in columns.iter().enumerate() {
        sheet.set_column_width(c as u16, *width)?;
        sheet.write_string_with_format(0, c as u16, *title, format)?;
    }
    Ok(())
}

fn write_cells(
    sheet: &mut Worksheet,
    row: u32,
    cells: &[Cell],
) -> std::result::Result<(), XlsxError> {
    for (c, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Text(t) => sheet.write_string(row, c as u16, t)?,
            Cell::Number(n) => sheet.write_number(row, c as u16, *n as f64)?,
        };
    }
    Ok(())
}

enum SummaryError {
    Xlsx(XlsxError),
    Store(Error),
}

impl From<XlsxError> for SummaryError {
    fn from(e: XlsxError) -> Self {
        SummaryError::Xlsx(e)
    }
}

impl From<Error> for SummaryError {
    fn from(e: Error) -> Self {
        SummaryError::Store(e)
    }
}

/// The 汇总 sheet: the figures (label, value) and the targets (one row each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub figures: Vec<Vec<Cell>>,
    pub targets: Vec<Vec<Cell>>,
}

/// The 汇总 sheet's rows: each figure, then each target of the years the filter covers.
pub fn summary_rows(conn: &Connection, path: &Path, filter: &ReportFilter) -> Result<Summary> {
    let r = projection::report(conn, path, filter)?;
    let figures = [
        ("走访次数(次)", r.visits),
        ("覆盖学校(所)", r.schools_reached),
        ("乡村学校(所)", r.rural_schools),
        ("城区学校(所)", r.urban_schools),
        ("受众人数(人次)", r.audience),
        ("讲座(场)", r.lectures),
        ("乡村学校讲座(场)", r.rural_lectures),
        ("赠书(册)", r.books),
        ("器材(套)", r.kits),
        ("覆盖区县(个)", r.districts_covered),
        ("培训教师(人)", r.teachers_trained),
        ("合并的重复记录(条)", r.duplicates_merged),
        ("已核实(条)", r.verified_visits),
        ("未核实(条)", r.unverified_visits),
        ("完成的系列课程(门)", r.courses_completed),
        ("课程课时(次)", r.course_sessions),
    ]
    .into_iter()
    .map(|(label, n)| vec![Cell::Text(label.into()), Cell::Number(n)])
    .collect();
    let years: Vec<i32> = match (filter.from, filter.to) {
        (Some(from), Some(to)) => {
            (chrono::Datelike::year(&from)..=chrono::Datelike::year(&to)).collect()
        }
        _ => Vec::new(),
    };
    let zh = Lang::ZhCn;
    let mut goals = Vec::new();
    for t in targets::progress(conn, path, None, filter.district.as_ref())? {
        if !years.is_empty() && !years.contains(&t.year) {
            continue;
        }
        let share = matches!(
            t.key,
            fieldlog_domain::TargetKey::RuralLectureShare | fieldlog_domain::TargetKey::PairingRate
        );
        let show = |x: f64| {
            if share {
                format!("{:.1}%", x * 100.0)
            } else {
                format!("{x}")
            }
        };
        goals.push(vec![
            Cell::Text(t.key.label(zh).into()),
            Cell::Number(u64::try_from(t.year).unwrap_or(0)),
            Cell::Text(t.district.map(|d| d.to_string()).unwrap_or("全区域".into())),
            Cell::Text(match t.goal {
                fieldlog_domain::Goal::All => "全部".into(),
                fieldlog_domain::Goal::Number(n) => show(n),
            }),
            Cell::Text(show(t.current)),
            Cell::Text(t.numerator.map(|n| n.to_string()).unwrap_or_default()),
            Cell::Text(t.denominator.map(|n| n.to_string()).unwrap_or_default()),
            Cell::Text(if t.met { "已达成" } else { "未达成" }.into()),
            Cell::Text(
                t.missing_districts
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
        ]);
    }
    Ok(Summary {
        figures,
        targets: goals,
    })
}

fn summary(
    conn: &Connection,
    path: &Path,
    filter: &ReportFilter,
    sheet: &mut Worksheet,
    header: &Format,
) -> std::result::Result<(), SummaryError> {
    let Summary {
        figures,
        targets: goals,
    } = summary_rows(conn, path, filter)?;
    write_header(sheet, &[("项目", 20.0), ("数值", 12.0)], header)?;
    let mut row = 1u32;
    for cells in &figures {
        write_cells(sheet, row, cells)?;
        row += 1;
    }
    row += 1;
    let columns = [
        ("目标", 20.0),
        ("年度", 12.0),
        ("区县", 12.0),
        ("目标值", 10.0),
        ("当前值", 10.0),
        ("分子", 8.0),
        ("分母", 8.0),
        ("是否达成", 10.0),
        ("未覆盖区县", 30.0),
    ];
    for (c, (title, width)) in columns.iter().enumerate() {
        if c >= 2 {
            sheet.set_column_width(c as u16, *width)?;
        }
        sheet.write_string_with_format(row, c as u16, *title, header)?;
    }
    for cells in &goals {
        row += 1;
        write_cells(sheet, row, cells)?;
    }
    Ok(())
}

fn local_time(ms: i64, offset: chrono::FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| {
            t.with_timezone(&offset)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}
