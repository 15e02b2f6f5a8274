//! Stored rows to [`Message`]s and back: the columns every read selects,
//! the time format, and what a write stores beside Message DB's columns.

use chrono::{DateTime, NaiveDateTime, Utc};
use message_store::stream_name::category_of;
use message_store::{JsonData, Message, Metadata, StreamName};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::SqliteError;

/// The columns every read selects, in [`decode`]'s order.
pub(crate) const COLUMNS: &str =
    "global_position, position, time, stream_name, type, data, metadata, id";

/// How `time` is stored: UTC, to the microsecond, sortable as text.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// A write's time as stored.
pub(crate) fn stored_time(time: DateTime<Utc>) -> String {
    time.format(TIME_FORMAT).to_string()
}

/// The consumer-group hash of a stream (`None` without an id), as
/// Message DB computes it from the cardinal id.
pub(crate) fn cardinal_hash(stream: &StreamName) -> Option<i64> {
    stream.cardinal_id().map(message_store::hash_64)
}

/// The category a correlation filter compares, from the metadata's
/// `correlationStreamName`.
pub(crate) fn correlation_category(metadata: &Metadata) -> Option<&str> {
    metadata.correlation().map(category_of)
}

fn decode_error(column: &'static str, problem: impl ToString) -> SqliteError {
    SqliteError::Decode {
        column,
        problem: problem.to_string(),
    }
}

fn position(row: &SqliteRow, index: usize, column: &'static str) -> Result<u64, SqliteError> {
    let value: i64 = row.try_get(index)?;
    u64::try_from(value).map_err(|_| decode_error(column, format!("negative: {value}")))
}

/// One row of [`COLUMNS`] as a message.
pub(crate) fn decode(row: &SqliteRow) -> Result<Message, SqliteError> {
    let time: &str = row.try_get(2)?;
    let stream_name: &str = row.try_get(3)?;
    let data: Option<&str> = row.try_get(5)?;
    let metadata: Option<&str> = row.try_get(6)?;
    let id: &str = row.try_get(7)?;
    let time = NaiveDateTime::parse_from_str(time, TIME_FORMAT)
        .map_err(|e| decode_error("time", e))?
        .and_utc();
    Ok(Message {
        id: Uuid::parse_str(id).map_err(|e| decode_error("id", e))?,
        stream_name: StreamName::new(stream_name).map_err(|e| decode_error("stream_name", e))?,
        message_type: row.try_get(4)?,
        position: position(row, 1, "position")?,
        global_position: position(row, 0, "global_position")?,
        data: match data {
            Some(text) => JsonData::from_stored_text(text),
            None => JsonData::from_value(serde_json::Value::Null),
        },
        metadata: metadata.map(Metadata::from_stored_text).unwrap_or_default(),
        time,
    })
}

/// Every row, decoded.
pub(crate) fn decode_all(rows: &[SqliteRow]) -> Result<Vec<Message>, SqliteError> {
    rows.iter().map(decode).collect()
}
