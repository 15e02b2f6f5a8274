//! Decoding the `message_store.message` rows every reader returns.

use chrono::{NaiveDateTime, TimeZone, Utc};
use message_store::{JsonData, Message, Metadata, StreamName};
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

/// How a row's columns are read: `Checked` compares each column's SQL type
/// with the Rust type first; `Trusted` skips that for the rows of a result
/// whose first row passed it (every row of a result has the same types;
/// the decoding itself still fails cleanly on malformed values).
#[derive(Clone, Copy)]
enum Columns {
    Checked,
    Trusted,
}

impl Columns {
    fn get<'r, T>(
        self,
        row: &'r PgRow,
        index: usize,
        name: &'static str,
    ) -> Result<T, PostgresError>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Columns::Checked => column(row, index, name),
            Columns::Trusted => row
                .try_get_unchecked(index)
                .map_err(|e| PostgresError::Decode {
                    column: name,
                    problem: e.to_string(),
                }),
        }
    }
}

/// Decodes one row into a message.
pub(crate) fn decode(row: &PgRow) -> Result<Message, PostgresError> {
    decode_with(row, Columns::Checked, None)
}

/// Decodes a row of one's own SQL into a [`Message`], as the store's reads
/// do (data and metadata another client stored never fail it; see
/// [`Message::check`]). Its first eight columns must be what Message DB's
/// readers return, in their order and types: `id`, `stream_name` and
/// `type` as text, `position` and `global_position` as bigint, `data` and
/// `metadata` as text, `time` as timestamp. Columns after them are left
/// for the caller. From the table itself that is
/// `SELECT id::text, stream_name, type, position, global_position,
/// data::text, metadata::text, time FROM message_store.messages`.
///
/// # Errors
/// [`PostgresError::Decode`], naming the column, when one is missing or of
/// another type, or holds no valid id, stream name or position.
pub fn message_from_row(row: &PgRow) -> Result<Message, PostgresError> {
    decode(row)
}

/// Decodes one row; `previous` is the stream name of the row before, shared
/// when this row has the same (every row of a stream read does).
fn decode_with(
    row: &PgRow,
    columns: Columns,
    previous: Option<&StreamName>,
) -> Result<Message, PostgresError> {
    let id: &str = columns.get(row, 0, "id")?;
    let stream_name: &str = columns.get(row, 1, "stream_name")?;
    let message_type: String = columns.get(row, 2, "type")?;
    let position: i64 = columns.get(row, 3, "position")?;
    let global_position: i64 = columns.get(row, 4, "global_position")?;
    let data: Option<&str> = columns.get(row, 5, "data")?;
    let metadata: Option<&str> = columns.get(row, 6, "metadata")?;
    let time: NaiveDateTime = columns.get(row, 7, "time")?;

    let decode_error =
        |column: &'static str, problem: String| PostgresError::Decode { column, problem };
    Ok(Message {
        id: Uuid::parse_str(id).map_err(|e| decode_error("id", e.to_string()))?,
        stream_name: match previous {
            Some(name) if name.as_str() == stream_name => name.clone(),
            _ => StreamName::new(stream_name)
                .map_err(|e| decode_error("stream_name", e.to_string()))?,
        },
        message_type,
        position: position_from_bigint(position, "position")?,
        global_position: position_from_bigint(global_position, "global_position")?,
        // Any JSON another client stored is read and never fails a page:
        // what a `Value` cannot hold is kept as unreadable (Message::check).
        data: match data {
            Some(text) => JsonData::from_stored_text(text),
            None => JsonData::from_value(serde_json::Value::Null),
        },
        metadata: match metadata {
            Some(text) => Metadata::from_stored_text(text),
            None => Metadata::default(),
        },
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
    let mut messages = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let columns = if index == 0 {
            Columns::Checked
        } else {
            Columns::Trusted
        };
        let previous = messages.last().map(|m: &Message| &m.stream_name);
        let message = decode_with(row, columns, previous)?;
        messages.push(message);
    }
    Ok(messages)
}
