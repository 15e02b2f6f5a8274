//! Decoding the `message_store.message` rows every reader returns.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use futures::TryStreamExt;
use message_store::{JsonData, Message, Metadata, StreamName};
use sqlx::postgres::{PgArguments, PgConnection, PgRow, PgValueFormat, Postgres};
use sqlx::query::Query;
use sqlx::Row;
use uuid::Uuid;

use crate::convert::position_from_bigint;
use crate::error::PostgresError;

mod binary;

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

/// One row's columns as read off the wire, before they make a [`Message`].
pub(super) struct Raw<'r> {
    pub(super) id: &'r str,
    pub(super) stream_name: &'r str,
    pub(super) message_type: &'r str,
    pub(super) position: i64,
    pub(super) global_position: i64,
    pub(super) data: Option<&'r str>,
    pub(super) metadata: Option<&'r str>,
    pub(super) time: DateTime<Utc>,
}

impl Raw<'_> {
    /// The message; `previous` is the stream name of the row before, shared
    /// when this row has the same (every row of a stream read does).
    pub(super) fn message(self, previous: Option<&StreamName>) -> Result<Message, PostgresError> {
        let decode_error =
            |column: &'static str, problem: String| PostgresError::Decode { column, problem };
        Ok(Message {
            id: Uuid::parse_str(self.id).map_err(|e| decode_error("id", e.to_string()))?,
            stream_name: match previous {
                Some(name) if name.as_str() == self.stream_name => name.clone(),
                _ => StreamName::new(self.stream_name)
                    .map_err(|e| decode_error("stream_name", e.to_string()))?,
            },
            message_type: self.message_type.to_owned(),
            position: position_from_bigint(self.position, "position")?,
            global_position: position_from_bigint(self.global_position, "global_position")?,
            // Any JSON another client stored is read and never fails a page:
            // what a `Value` cannot hold is kept as unreadable (Message::check).
            data: match self.data {
                Some(text) => JsonData::from_stored_text(text),
                None => JsonData::from_value(serde_json::Value::Null),
            },
            metadata: match self.metadata {
                Some(text) => Metadata::from_stored_text(text),
                None => Metadata::default(),
            },
            time: self.time,
        })
    }
}

/// Decodes one row through sqlx's decoding (see [`Raw::message`] for
/// `previous`).
fn decode_with(
    row: &PgRow,
    columns: Columns,
    previous: Option<&StreamName>,
) -> Result<Message, PostgresError> {
    // Read in column order, so that an error names the first bad column.
    Raw {
        id: columns.get(row, 0, "id")?,
        stream_name: columns.get(row, 1, "stream_name")?,
        message_type: columns.get(row, 2, "type")?,
        position: columns.get(row, 3, "position")?,
        global_position: columns.get(row, 4, "global_position")?,
        data: columns.get(row, 5, "data")?,
        metadata: columns.get(row, 6, "metadata")?,
        time: Utc.from_utc_datetime(&columns.get::<NaiveDateTime>(row, 7, "time")?),
    }
    .message(previous)
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

/// Decodes the rows of one result in order: the first row's columns go
/// through sqlx's type checks; when they passed and the result came in
/// binary format (every prepared statement's does), the other rows are
/// read straight from their bytes ([`binary`]).
#[derive(Default)]
struct Decoder {
    binary: bool,
}

impl Decoder {
    /// Decodes `row`, the one after `previous` (`None` for the first).
    fn decode(
        &mut self,
        row: &PgRow,
        previous: Option<&Message>,
    ) -> Result<Message, PostgresError> {
        let Some(previous) = previous else {
            let message = decode_with(row, Columns::Checked, None)?;
            self.binary = row
                .try_get_raw(0)
                .is_ok_and(|value| value.format() == PgValueFormat::Binary);
            return Ok(message);
        };
        if self.binary {
            binary::raw(row)?.message(Some(&previous.stream_name))
        } else {
            decode_with(row, Columns::Trusted, Some(&previous.stream_name))
        }
    }
}

/// Decodes every row.
pub(crate) fn decode_all(rows: &[PgRow]) -> Result<Vec<Message>, PostgresError> {
    let mut messages = Vec::with_capacity(rows.len());
    let mut decoder = Decoder::default();
    for row in rows {
        let message = decoder.decode(row, messages.last())?;
        messages.push(message);
    }
    Ok(messages)
}

/// Runs `query`, decoding each row as it arrives, while the server may
/// still be finding the next (a plain statement sends its rows as it finds
/// them; a set-returning function, once it has all of them). The rows are
/// not kept. A row that cannot be decoded fails the read with
/// `sqlx::Error::Decode` holding its [`PostgresError`] (see
/// [`decode_failure`]). `capacity`: the rows expected at most.
pub(crate) async fn fetch_messages<'q>(
    conn: &mut PgConnection,
    query: Query<'q, Postgres, PgArguments>,
    capacity: usize,
) -> Result<Vec<Message>, sqlx::Error> {
    let mut rows = query.fetch(conn);
    let mut messages = Vec::with_capacity(capacity);
    let mut decoder = Decoder::default();
    while let Some(row) = rows.try_next().await? {
        let message = decoder
            .decode(&row, messages.last())
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        messages.push(message);
    }
    Ok(messages)
}

/// The decoding failure of [`fetch_messages`], or the error as it was.
pub(crate) fn decode_failure(error: sqlx::Error) -> Result<PostgresError, sqlx::Error> {
    match error {
        sqlx::Error::Decode(source) => match source.downcast::<PostgresError>() {
            Ok(failure) => Ok(*failure),
            Err(source) => Err(sqlx::Error::Decode(source)),
        },
        other => Err(other),
    }
}
