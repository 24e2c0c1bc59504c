//! The primitive rules every form shares: bounded counts, trimmed bounded text, plausible dates.

use crate::error::{Field, FieldError, Reason};
use chrono::{Days, NaiveDate};

/// The largest count any audience or donation field accepts.
pub const MAX_COUNT: i64 = 100_000;
/// No visit is dated before this day.
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(date) => date,
    None => panic!("2000-01-01 is a valid date"),
};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_LINE_CHARS: usize = 200;
pub const MAX_NOTES_CHARS: usize = 4000;

/// A count in `0..=MAX_COUNT`.
pub fn count(field: Field, value: i64) -> Result<u32, FieldError> {
    if (0..=MAX_COUNT).contains(&value) {
        Ok(value as u32)
    } else {
        Err(FieldError::new(
            field,
            Reason::OutOfRange {
                min: 0,
                max: MAX_COUNT,
            },
        ))
    }
}

/// A count typed as text, e.g. from `--set audience.students=40`.
pub fn parse_count(field: Field, given: &str) -> Result<i64, FieldError> {
    given.trim().parse::<i64>().map_err(|_| {
        FieldError::new(
            field,
            Reason::NotANumber {
                given: given.trim().to_string(),
            },
        )
    })
}

/// Trimmed text of at most `max` characters; empty is refused when `required`.
pub fn text(field: Field, value: &str, max: usize, required: bool) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(FieldError::new(field, Reason::Required));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(field, Reason::TooLong { max }));
    }
    Ok(trimmed.to_string())
}

/// A `YYYY-MM-DD` date from 2000-01-01 up to one day after `today`.
pub fn date(given: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let latest = today.checked_add_days(Days::new(1)).unwrap_or(today);
    date_until(Field::Date, given, latest)
}

/// A `YYYY-MM-DD` date of `field` from 2000-01-01 up to `latest`.
pub fn date_until(field: Field, given: &str, latest: NaiveDate) -> Result<NaiveDate, FieldError> {
    let given = given.trim();
    if given.is_empty() {
        return Err(FieldError::new(field, Reason::Required));
    }
    let date = NaiveDate::parse_from_str(given, "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            Reason::InvalidDate {
                given: given.to_string(),
            },
        )
    })?;
    if date > latest {
        return Err(FieldError::new(
            field,
            Reason::TooFarInFuture {
                latest: latest.to_string(),
            },
        ));
    }
    if date < EARLIEST_DATE {
        return Err(FieldError::new(
            field,
            Reason::TooEarly {
                earliest: EARLIEST_DATE.to_string(),
            },
        ));
    }
    Ok(date)
}
