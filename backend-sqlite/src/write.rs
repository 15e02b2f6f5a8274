//! Appending a batch in one SQLite transaction, checked as Message DB
//! checks it: the write lock first (`BEGIN IMMEDIATE`, one writer at a
//! time, so global positions follow commit order), then the expected
//! version, then each id in turn.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use message_store::stream_name::category_of;
use message_store::{Error, ExpectedVersion, Metadata, NewMessage, Result, StreamName};
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

const INSERT: &str = "INSERT INTO messages \
    (position, time, stream_name, type, data, metadata, id, category, cardinal_hash, correlation_category) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

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
    let time = rows::stored_time(Utc::now().trunc_subsecs(6));
    let mut position = version.map_or(0, |v| v + 1);
    let mut last_global_position = 0;
    for message in messages {
        let row = Row {
            stream,
            position,
            time: &time,
            message_type: &message.message_type,
            data: message.data.to_string(),
            metadata: message.metadata.to_json().map(|m| m.to_string()),
            id: message.id,
            meta: &message.metadata,
        };
        last_global_position = insert(&mut tx, row).await?;
        position += 1;
    }
    tx.commit().await.map_err(sql)?;
    Ok(Written {
        last_position: position - 1,
        last_global_position,
    })
}

/// One row to insert.
struct Row<'a> {
    stream: &'a StreamName,
    position: u64,
    time: &'a str,
    message_type: &'a str,
    data: String,
    metadata: Option<String>,
    id: Uuid,
    meta: &'a Metadata,
}

/// Inserts `row` with what reads filter on; its global position.
async fn insert(conn: &mut SqliteConnection, row: Row<'_>) -> Result<u64> {
    let inserted = sqlx::query(INSERT)
        .bind(i64::try_from(row.position).unwrap_or(i64::MAX))
        .bind(row.time)
        .bind(row.stream.as_str())
        .bind(row.message_type)
        .bind(row.data)
        .bind(row.metadata)
        .bind(row.id.hyphenated().to_string())
        .bind(category_of(row.stream.as_str()))
        .bind(rows::cardinal_hash(row.stream))
        .bind(rows::correlation_category(row.meta))
        .execute(conn)
        .await;
    match inserted {
        Ok(done) => Ok(u64::try_from(done.last_insert_rowid()).unwrap_or(0)),
        // The stream's (name, position) cannot clash under the write lock:
        // only the id can.
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(Error::DuplicateMessageId { id: row.id })
        }
        Err(other) => Err(sql(other)),
    }
}

/// Stores a unit's pending messages in one transaction, once no other
/// process has written its streams since it first did (`base`); the last
/// global position.
pub(crate) async fn store_unit(
    conn: &mut SqliteConnection,
    base: &HashMap<StreamName, Option<u64>>,
    pending: &[Pending],
    time: DateTime<Utc>,
) -> Result<u64> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sql)?;
    for (stream, version) in base {
        if read::stream_version(&mut tx, stream).await? != *version {
            return Err(crate::unit::moved_on());
        }
    }
    let time = rows::stored_time(time);
    let mut last = 0;
    for p in pending {
        let message = &p.message;
        let row = Row {
            stream: &message.stream_name,
            position: message.position,
            time: &time,
            message_type: &message.message_type,
            data: p.data.clone(),
            metadata: p.metadata.clone(),
            id: message.id,
            meta: &message.metadata,
        };
        last = insert(&mut tx, row).await?;
    }
    tx.commit().await.map_err(sql)?;
    Ok(last)
}
