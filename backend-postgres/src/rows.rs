//! Decoding the `message_store.message` rows every reader returns.

use chrono::{NaiveDateTime, TimeZone, Utc};
use message_store::{Message, Metadata, StreamName};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::convert::position_from_bigint;
use crate::error::PostgresError;

fn column<'r, T>(row: &'r PgRow, index: usize, name: &'static str) -> Result<T, PostgresError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(index).map_err(|e| PostgresError::Decode {
        column: name,
        problem: e.to_string(),
    })
}

/// Decodes one row into a message.
pub(crate) fn decode(row: &PgRow) -> Result<Message, PostgresError> {
    let id: &str = column(row, 0, "id")?;
    let stream_name: String = column(row, 1, "stream_name")?;
    let message_type: String = column(row, 2, "type")?;
    let position: i64 = column(row, 3, "position")?;
    let global_position: i64 = column(row, 4, "global_position")?;
    let data: Option<&str> = column(row, 5, "data")?;
    let metadata: Option<&str> = column(row, 6, "metadata")?;
    let time: NaiveDateTime = column(row, 7, "time")?;

    let decode_error =
        |column: &'static str, problem: String| PostgresError::Decode { column, problem };
    Ok(Message {
        id: Uuid::parse_str(id).map_err(|e| decode_error("id", e.to_string()))?,
        stream_name: StreamName::new(stream_name)
            .map_err(|e| decode_error("stream_name", e.to_string()))?,
        message_type,
        position: position_from_bigint(position, "position")?,
        global_position: position_from_bigint(global_position, "global_position")?,
        data: match data {
            Some(text) => {
                serde_json::from_str(text).map_err(|e| decode_error("data", e.to_string()))?
            }
            None => serde_json::Value::Null,
        },
        // Any JSON another client stored is read; it never fails a whole page.
        metadata: Metadata::from_json_lenient(match metadata {
            Some(text) => Some(
                serde_json::from_str(text).map_err(|e| decode_error("metadata", e.to_string()))?,
            ),
            None => None,
        }),
        time: Utc.from_utc_datetime(&time),
    })
}

/// The position in column 3 (`position`) or 4 (`global_position`) of a row.
pub(crate) fn position(row: &PgRow, index: usize) -> Result<u64, PostgresError> {
    let name = if index == 3 {
        "position"
    } else {
        "global_position"
    };
    position_from_bigint(column(row, index, name)?, name)
}

/// Decodes every row.
pub(crate) fn decode_all(rows: &[PgRow]) -> Result<Vec<Message>, PostgresError> {
    rows.iter().map(decode).collect()
}
