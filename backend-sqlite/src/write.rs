//! Appending a batch in one SQLite transaction, checked as Message DB
//! checks it: the write lock first (`BEGIN IMMEDIATE`, one writer at a
//! time, so global positions follow commit order), then the expected
//! version, then each id in turn.

use chrono::{SubsecRound, Utc};
use message_store::stream_name::category_of;
use message_store::{Error, ExpectedVersion, NewMessage, Result, StreamName};
use sqlx::{Connection, SqliteConnection};

use crate::error::sql;
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
    let category = category_of(stream.as_str());
    let hash = rows::cardinal_hash(stream);
    let mut position = version.map_or(0, |v| v + 1);
    let mut last_global_position = 0;
    for message in messages {
        let inserted = sqlx::query(INSERT)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&time)
            .bind(stream.as_str())
            .bind(&message.message_type)
            .bind(message.data.to_string())
            .bind(message.metadata.to_json().map(|m| m.to_string()))
            .bind(message.id.hyphenated().to_string())
            .bind(category)
            .bind(hash)
            .bind(rows::correlation_category(&message.metadata))
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(done) => {
                last_global_position = u64::try_from(done.last_insert_rowid()).unwrap_or(0);
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                // The stream's (name, position) cannot clash under the write
                // lock: only the id can.
                return Err(Error::DuplicateMessageId { id: message.id });
            }
            Err(other) => return Err(sql(other)),
        }
        position += 1;
    }
    tx.commit().await.map_err(sql)?;
    Ok(Written {
        last_position: position - 1,
        last_global_position,
    })
}
