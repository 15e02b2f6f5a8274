//! The columns of rows in PostgreSQL's binary format, whose types the
//! first row of their result showed to be Message DB's (text, bigint,
//! timestamp): text is its UTF-8 bytes, a bigint 8 big-endian bytes, a
//! timestamp the microseconds since 2000-01-01 as a bigint. Read straight
//! from their bytes, skipping sqlx's per-value type dispatch.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Row, ValueRef};

use super::Raw;
use crate::error::PostgresError;

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn problem(column: &'static str, problem: impl ToString) -> PostgresError {
    PostgresError::Decode {
        column,
        problem: problem.to_string(),
    }
}

fn bytes<'r>(
    row: &'r PgRow,
    index: usize,
    column: &'static str,
) -> Result<Option<&'r [u8]>, PostgresError> {
    let value = row.try_get_raw(index).map_err(|e| problem(column, e))?;
    if value.is_null() {
        return Ok(None);
    }
    value.as_bytes().map(Some).map_err(|e| problem(column, e))
}

fn text<'r>(
    row: &'r PgRow,
    index: usize,
    column: &'static str,
) -> Result<Option<&'r str>, PostgresError> {
    match bytes(row, index, column)? {
        Some(bytes) => std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| problem(column, e)),
        None => Ok(None),
    }
}

fn bigint(row: &PgRow, index: usize, column: &'static str) -> Result<i64, PostgresError> {
    let bytes = bytes(row, index, column)?.ok_or_else(|| problem(column, "NULL"))?;
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| problem(column, format!("{} bytes for a bigint", bytes.len())))?;
    Ok(i64::from_be_bytes(bytes))
}

fn required<'r>(value: Option<&'r str>, column: &'static str) -> Result<&'r str, PostgresError> {
    value.ok_or_else(|| problem(column, "NULL"))
}

fn timestamp(micros: i64) -> Result<DateTime<Utc>, PostgresError> {
    micros
        .checked_add(POSTGRES_EPOCH_MICROS)
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| problem("time", format!("{micros} is out of range")))
}

/// One row's columns (see [`Raw::message`] for the message they make).
pub(super) fn raw(row: &PgRow) -> Result<Raw<'_>, PostgresError> {
    // Read in column order, so that an error names the first bad column.
    Ok(Raw {
        id: required(text(row, 0, "id")?, "id")?,
        stream_name: required(text(row, 1, "stream_name")?, "stream_name")?,
        message_type: required(text(row, 2, "type")?, "type")?,
        position: bigint(row, 3, "position")?,
        global_position: bigint(row, 4, "global_position")?,
        data: text(row, 5, "data")?,
        metadata: text(row, 6, "metadata")?,
        time: timestamp(bigint(row, 7, "time")?)?,
    })
}
