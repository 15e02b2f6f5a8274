//! The columns of rows in PostgreSQL's binary format, whose types the
//! first row of their result showed to be Message DB's (text, bigint,
//! timestamp): text is its UTF-8 bytes, a bigint 8 big-endian bytes, a
//! timestamp the microseconds since 2000-01-01 as a bigint. Read straight
//! from their bytes, skipping sqlx's per-value type dispatch.

use chrono::{DateTime, Utc};
use message_store::{JsonData, Message, Metadata, StreamName};
use sqlx::postgres::PgRow;
use sqlx::{Row, ValueRef};
use uuid::Uuid;

use crate::convert::position_from_bigint;
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

/// Decodes one row as [`super::decode_with`] does.
pub(super) fn decode(row: &PgRow, previous: Option<&StreamName>) -> Result<Message, PostgresError> {
    let id = required(text(row, 0, "id")?, "id")?;
    let stream_name = required(text(row, 1, "stream_name")?, "stream_name")?;
    let message_type = required(text(row, 2, "type")?, "type")?;
    let micros = bigint(row, 7, "time")?;
    let time = micros
        .checked_add(POSTGRES_EPOCH_MICROS)
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| problem("time", format!("{micros} is out of range")))?;
    Ok(Message {
        id: Uuid::parse_str(id).map_err(|e| problem("id", e))?,
        stream_name: match previous {
            Some(name) if name.as_str() == stream_name => name.clone(),
            _ => StreamName::new(stream_name).map_err(|e| problem("stream_name", e))?,
        },
        message_type: message_type.to_owned(),
        position: position_from_bigint(bigint(row, 3, "position")?, "position")?,
        global_position: position_from_bigint(
            bigint(row, 4, "global_position")?,
            "global_position",
        )?,
        data: match text(row, 5, "data")? {
            Some(text) => JsonData::from_stored_text(text),
            None => JsonData::from_value(serde_json::Value::Null),
        },
        metadata: match text(row, 6, "metadata")? {
            Some(text) => Metadata::from_stored_text(text),
            None => Metadata::default(),
        },
        time,
    })
}
