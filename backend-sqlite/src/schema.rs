//! Opening a store file: the settings every connection gets (WAL, the
//! durability, how long to wait for another process's write) and the
//! schema, created on the first open and versioned in `PRAGMA
//! user_version` so a later release can migrate it.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

use crate::error::SqliteError;

/// The schema version this library creates and reads.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = include_str!("schema.sql");

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is synced before the write returns (`synchronous =
    /// FULL`): a written message survives a power cut. The default.
    #[default]
    Full,
    /// Commits are synced at WAL checkpoints (`synchronous = NORMAL`): a
    /// written message survives the process crashing, but a power cut can
    /// lose the last commits (never corrupt the file). Writes are faster.
    Normal,
}

/// The connection settings of one store file.
pub(crate) fn connect_options(
    path: &std::path::Path,
    durability: Durability,
    busy_timeout: Duration,
) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(busy_timeout)
}

/// Creates the schema if the file has none; refuses a newer one.
pub(crate) async fn prepare(conn: &mut SqliteConnection) -> Result<(), SqliteError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?;
    match found {
        0 => {
            sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
            sqlx::raw_sql(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                .execute(&mut *tx)
                .await?;
        }
        SCHEMA_VERSION => {}
        newer => {
            return Err(SqliteError::NewerSchema {
                found: newer,
                supported: SCHEMA_VERSION,
            })
        }
    }
    tx.commit().await?;
    Ok(())
}
