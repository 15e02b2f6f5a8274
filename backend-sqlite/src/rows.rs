//! Stored rows to [`Message`]s and back: the columns every read selects,
//! a page of them as one JSON value and its decoding (every read decodes
//! this way), the time format, and what a write stores beside Message
//! DB's columns.

use chrono::{DateTime, NaiveDateTime, Utc};
use message_store::stream_name::category_of;
use message_store::{JsonData, Message, Metadata, StreamName};
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

/// A page as one JSON array of [`COLUMNS`] arrays (see [`page_sql`]):
/// one value handed over by the driver instead of one row per message.
/// Text columns come as JSON strings, so whatever another client stored in
/// `data` or `metadata` reads as it does row by row.
type PageRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// `select` (a query of [`COLUMNS`]) as one JSON array, in `order`.
pub(crate) fn page_sql(select: &str, order: &str) -> String {
    format!("SELECT json_group_array(json_array({COLUMNS}) ORDER BY {order}) FROM ({select})")
}

/// The messages of a page read with [`page_sql`].
pub(crate) fn decode_page(text: &str) -> Result<Vec<Message>, SqliteError> {
    let rows: Vec<PageRow> = serde_json::from_str(text).map_err(|e| decode_error("page", e))?;
    let mut messages = Vec::with_capacity(rows.len());
    for (global_position, position, time, stream_name, message_type, data, metadata, id) in rows {
        let time = NaiveDateTime::parse_from_str(&time, TIME_FORMAT)
            .map_err(|e| decode_error("time", e))?
            .and_utc();
        let unsigned = |value: i64, column| {
            u64::try_from(value).map_err(|_| decode_error(column, format!("negative: {value}")))
        };
        let stream_name = match messages.last() {
            Some(Message {
                stream_name: previous,
                ..
            }) if previous.as_str() == stream_name => previous.clone(),
            _ => StreamName::new(stream_name).map_err(|e| decode_error("stream_name", e))?,
        };
        messages.push(Message {
            id: Uuid::parse_str(&id).map_err(|e| decode_error("id", e))?,
            stream_name,
            message_type,
            position: unsigned(position, "position")?,
            global_position: unsigned(global_position, "global_position")?,
            data: match data {
                Some(text) => JsonData::from_stored_text(text),
                None => JsonData::from_value(serde_json::Value::Null),
            },
            metadata: metadata
                .as_deref()
                .map(Metadata::from_stored_text)
                .unwrap_or_default(),
            time,
        });
    }
    Ok(messages)
}
