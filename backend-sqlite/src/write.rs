//! Appending in one SQLite transaction, checked as Message DB checks a
//! write: the write lock first (`BEGIN IMMEDIATE`, one writer at a time,
//! so global positions follow commit order), then the expected version,
//! then each id in turn. A batch is one multi-row `INSERT` per thousand
//! messages; when one fails on a duplicate id, the ids are looked at one
//! by one to name the first duplicate, as Message DB's one-by-one insert
//! would.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use message_store::stream_name::category_of;
use message_store::{Category, Error, ExpectedVersion, NewMessage, Result, StreamName};
use sqlx::{Connection, SqliteConnection};
use uuid::Uuid;

use crate::error::sql;
use crate::locks::Pending;
use crate::read;
use crate::rows;

/// Where a write ended.
pub(crate) struct Written {
    pub(crate) last_position: u64,
    pub(crate) last_global_position: u64,
}

const COLUMNS: &str = "(position, time, stream_name, type, data, metadata, id, category, \
    cardinal_hash, correlation_category)";

/// Rows per statement: ten values each, well under SQLite's limit on
/// bound values.
const ROWS_PER_INSERT: usize = 1000;

/// One row to insert.
struct Row<'a> {
    stream: &'a StreamName,
    position: u64,
    message_type: &'a str,
    data: String,
    metadata: Option<String>,
    id: Uuid,
    /// The category its correlation filter compares.
    correlation: Option<&'a str>,
}

/// Writes `messages` (validated, their numbers as jsonb keeps them) to
/// `stream`, or nothing.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    stream: &StreamName,
    messages: &[NewMessage],
    expected: ExpectedVersion,
) -> Result<Written> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sql)?;
    let version = read::stream_version(&mut tx, stream).await?;
    if !expected.matches(version) {
        return Err(Error::WrongExpectedVersion {
            stream: stream.as_str().to_owned(),
            expected,
            actual: version,
        });
    }
    let first = version.map_or(0, |v| v + 1);
    let rows: Vec<Row<'_>> = messages
        .iter()
        .zip(first..)
        .map(|(message, position)| Row {
            stream,
            position,
            message_type: &message.message_type,
            data: message.data.to_string(),
            metadata: message.metadata.to_json().map(|m| m.to_string()),
            id: message.id,
            correlation: rows::correlation_category(&message.metadata),
        })
        .collect();
    let time = rows::stored_time(Utc::now().trunc_subsecs(6));
    let last_global_position = insert(&mut tx, &rows, &time).await?;
    tx.commit().await.map_err(sql)?;
    Ok(Written {
        last_position: first + rows.len() as u64 - 1,
        last_global_position,
    })
}

/// Inserts `rows`, with what reads filter on; the last global position.
async fn insert(conn: &mut SqliteConnection, rows: &[Row<'_>], time: &str) -> Result<u64> {
    let mut last = 0;
    for (index, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
        let mut statement = format!("INSERT INTO messages {COLUMNS} VALUES ");
        // Anonymous `?`s: sqlx looks up each numbered one's name, and
        // SQLite finds a name by scanning them all (quadratic in a batch).
        for index in 0..chunk.len() {
            statement.push_str(if index == 0 { "" } else { ", " });
            statement.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
        let mut query = sqlx::query(&statement);
        for row in chunk {
            query = query
                .bind(i64::try_from(row.position).unwrap_or(i64::MAX))
                .bind(time)
                .bind(row.stream.as_str())
                .bind(row.message_type)
                .bind(row.data.as_str())
                .bind(row.metadata.as_deref())
                .bind(row.id.hyphenated().to_string())
                .bind(category_of(row.stream.as_str()))
                .bind(rows::cardinal_hash(row.stream))
                .bind(row.correlation);
        }
        match query.execute(&mut *conn).await {
            Ok(done) => last = u64::try_from(done.last_insert_rowid()).unwrap_or(0),
            // The streams' (name, position) cannot clash under the write
            // lock: only an id can.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                // The earlier statements' rows are in the transaction: the
                // duplicate is in this one.
                return Err(first_duplicate(conn, &rows[index * ROWS_PER_INSERT..]).await);
            }
            Err(other) => return Err(sql(other)),
        }
    }
    Ok(last)
}

/// The error naming the first of `rows` whose id is stored already (ids
/// repeated within one write are refused before it reaches SQL).
async fn first_duplicate(conn: &mut SqliteConnection, rows: &[Row<'_>]) -> Error {
    for row in rows {
        match read::has_id(conn, row.id).await {
            Ok(true) => return Error::DuplicateMessageId { id: row.id },
            Ok(_) => {}
            Err(error) => return error.into(),
        }
    }
    Error::backend("a unique index refused the write, yet no id is a duplicate")
}

/// What a unit's commit checks no other process has written since the
/// unit saw it: its streams' versions and its locked categories' heads.
pub(crate) struct Unchanged<'a> {
    pub(crate) streams: &'a HashMap<StreamName, Option<u64>>,
    pub(crate) categories: &'a HashMap<Category, Option<u64>>,
}

/// Stores a unit's pending messages in one transaction, once nothing in
/// `unchanged` changed; the last global position.
pub(crate) async fn store_unit(
    conn: &mut SqliteConnection,
    unchanged: Unchanged<'_>,
    pending: &[Pending],
    time: DateTime<Utc>,
) -> Result<u64> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sql)?;
    for (category, head) in unchanged.categories {
        if read::category_head(&mut tx, category).await? != *head {
            return Err(crate::unit::moved_on());
        }
    }
    for (stream, version) in unchanged.streams {
        if read::stream_version(&mut tx, stream).await? != *version {
            return Err(crate::unit::moved_on());
        }
    }
    let rows: Vec<Row<'_>> = pending
        .iter()
        .map(|p| Row {
            stream: &p.message.stream_name,
            position: p.message.position,
            message_type: &p.message.message_type,
            data: p.data.clone(),
            metadata: p.metadata.clone(),
            id: p.message.id,
            correlation: rows::correlation_category(&p.message.metadata),
        })
        .collect();
    let last = insert(&mut tx, &rows, &rows::stored_time(time)).await?;
    tx.commit().await.map_err(sql)?;
    Ok(last)
}
