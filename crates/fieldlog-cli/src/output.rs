//! Turning results into what goes to stdout: aligned tables (CJK-width aware), local times,
//! and JSON.

use chrono::{DateTime, Local};
use comfy_table::{CellAlignment, Table, presets};
use serde::Serialize;

/// Text for people or JSON for scripts, whichever `--json` asked for.
pub fn emit<T: Serialize + ?Sized>(
    json: bool,
    data: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<String> {
    if json {
        Ok(serde_json::to_string(data)?)
    } else {
        Ok(text(data))
    }
}

/// Columns aligned by display width (a Chinese character takes two cells), no borders.
/// `right` lists the columns to right-align (numbers).
pub fn table(header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.to_vec());
    table.add_rows(rows);
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if right.contains(&index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A change timestamp (ms since the epoch) as local `YYYY-MM-DD HH:MM`.
pub fn local_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_chinese_by_display_width() {
        let out = table(
            &["名称", "n"],
            vec![
                vec!["南山小学".into(), "1".into()],
                vec!["ab".into(), "22".into()],
            ],
            &[1],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // The number column ends at the same display column on every row.
        let width = |s: &str| {
            s.chars()
                .map(|c| if c.is_ascii() { 1 } else { 2 })
                .sum::<usize>()
        };
        assert_eq!(width(lines[1]), width(lines[2]), "{out}");
        assert!(lines[2].ends_with("22"), "{out}");
    }
}
