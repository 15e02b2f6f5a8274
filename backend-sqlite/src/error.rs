//! This backend's failures, and how they become [`message_store::Error`]s.

use message_store::Error;

/// What can go wrong in the SQLite backend itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The driver or SQLite failed.
    #[error("sqlite: {0}")]
    Sql(#[from] sqlx::Error),
    /// The file holds a schema newer than this version of the library knows.
    #[error("the store's schema is version {found}; this library knows up to version {supported}")]
    NewerSchema {
        /// The version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest version this library can open.
        supported: i64,
    },
    /// A stored row could not be read back.
    #[error("column {column} of a stored message: {problem}")]
    Decode {
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl SqliteError {
    /// True when SQLite was busy or locked (another process writes): the
    /// same call succeeds later.
    fn is_busy(&self) -> bool {
        match self {
            SqliteError::Sql(sqlx::Error::Database(db)) => {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes included.
                let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
                matches!(code & 0xff, 5 | 6)
            }
            SqliteError::Sql(sqlx::Error::PoolTimedOut) => true,
            _ => false,
        }
    }
}

impl From<SqliteError> for Error {
    fn from(error: SqliteError) -> Self {
        if error.is_busy() {
            Error::transient(error)
        } else {
            Error::backend(error)
        }
    }
}

/// A driver failure as a store error.
pub(crate) fn sql(error: sqlx::Error) -> Error {
    SqliteError::Sql(error).into()
}
