//! Mapping PostgreSQL errors to the core `Error`, structurally: SQLSTATE plus
//! constraint name or Message DB's message prefix.

use message_store::{ConflictReason, Error, ExpectedVersion, NameProblem};
use sqlx::postgres::PgDatabaseError;
use uuid::Uuid;

use crate::retry::classify;

/// Failures specific to this backend, carried as the source of `Error::Backend`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The database has no Message DB schema (or it is not reachable on the search path).
    #[error("database `{database}` has no Message DB: {detail}; install it with Message DB's install.sh or PostgresStore::install")]
    MissingMessageDb {
        /// The database connected to.
        database: String,
        /// What the server said.
        detail: String,
    },
    /// The installed Message DB is a version this crate cannot serve.
    #[error("Message DB {found} is installed, but message-store-postgres needs {needed}; update the database with Message DB's update.sh")]
    UnsupportedVersion {
        /// The version the database reports.
        found: String,
        /// What we need.
        needed: &'static str,
    },
    /// The role lacks a privilege it needs.
    #[error("the role `{role}` lacks a privilege: {detail}")]
    PermissionDenied {
        /// The role connected as.
        role: String,
        /// What the server said.
        detail: String,
    },
    /// A row could not be decoded.
    #[error("cannot decode column `{column}`: {problem}")]
    Decode {
        /// The column.
        column: &'static str,
        /// What was wrong.
        problem: String,
    },
    /// No connection could be opened; `source` says why (refused, unknown
    /// host, TLS, authentication, a missing database).
    #[error("cannot connect to PostgreSQL at {at}: {source}")]
    Connect {
        /// `host:port/database as role`.
        at: String,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// Opening a connection took longer than the connect timeout (the pool's
    /// `acquire_timeout`): the server did not answer.
    #[error("cannot connect to PostgreSQL at {at}: no answer within {timeout:?} (the connect timeout: the pool's acquire_timeout)")]
    ConnectTimeout {
        /// `host:port/database as role`.
        at: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// [`PostgresStore::within`](crate::PostgresStore::within) was given a
    /// connection with no transaction open.
    #[error("PostgresStore::within needs a connection inside a transaction: pass `&mut *tx` for a transaction begun with sqlx (`pool.begin()` or `conn.begin()`)")]
    NotInTransaction,
    /// The connection pool does not put `message_store` on the search path.
    #[error("the connection's search_path ({search_path}) does not include message_store, which Message DB's functions need; build the pool from PostgresStore::connect_options")]
    SearchPath {
        /// The search path found.
        search_path: String,
    },
}

impl From<PostgresError> for Error {
    fn from(error: PostgresError) -> Self {
        Error::backend(error)
    }
}

/// Parses `Wrong expected version: <e> (Stream: <stream>, Stream Version: <v>)`
/// into (e, stream, v). The stream name may itself contain anything, so the
/// version is taken from the end.
pub(crate) fn parse_wrong_expected_version(message: &str) -> Option<(i64, String, i64)> {
    let rest = message.strip_prefix("Wrong expected version: ")?;
    let (expected, rest) = rest.split_once(" (Stream: ")?;
    let rest = rest.strip_suffix(')')?;
    let (stream, actual) = rest.rsplit_once(", Stream Version: ")?;
    Some((
        expected.parse().ok()?,
        stream.to_owned(),
        actual.parse().ok()?,
    ))
}

/// Parses the id out of a unique-violation detail: `Key (id)=(<uuid>) already exists.`
pub(crate) fn parse_duplicate_id(detail: &str) -> Option<Uuid> {
    let rest = detail.strip_prefix("Key (id)=(")?;
    let (id, _) = rest.split_once(')')?;
    Uuid::parse_str(id).ok()
}

/// What a write was doing, to fill the error's fields.
pub(crate) struct WriteContext<'a> {
    pub(crate) stream: &'a str,
    pub(crate) expected: ExpectedVersion,
    /// Whether its last attempt sent the statement.
    pub(crate) sent: bool,
}

/// Maps a failed call to the core error.
pub(crate) fn map_error(error: sqlx::Error, write: Option<&WriteContext<'_>>) -> Error {
    let written_to = write.map(|w| (w.stream, w.sent));
    let Some(database) = error.as_database_error() else {
        return classify(error, written_to);
    };
    let code = database.code().unwrap_or_default().into_owned();
    let message = database.message().to_owned();
    match code.as_str() {
        "P0001" => {
            if let Some((_, stream, actual)) = parse_wrong_expected_version(&message) {
                let expected = write.map_or(ExpectedVersion::Any, |w| w.expected);
                let stream = write.map_or(stream, |w| w.stream.to_owned());
                return Error::WrongExpectedVersion {
                    stream,
                    expected,
                    actual: crate::convert::version_from_bigint(actual),
                };
            }
            if let Some(name) = message.strip_prefix("Must be a stream name: ") {
                return Error::NotAStream {
                    name: name.to_owned(),
                };
            }
            if let Some(name) = message.strip_prefix("Must be a category: ") {
                return Error::InvalidCategory {
                    name: name.to_owned(),
                    problem: NameProblem::ContainsDash,
                };
            }
            if let Some(rest) =
                message.strip_prefix("Correlation must be a category (Correlation: ")
            {
                return Error::InvalidCorrelation {
                    correlation: rest.trim_end_matches(')').to_owned(),
                    problem: NameProblem::ContainsDash,
                };
            }
            classify(error, written_to)
        }
        "23505" if database.constraint() == Some("messages_id") => {
            let detail = database
                .try_downcast_ref::<PgDatabaseError>()
                .and_then(PgDatabaseError::detail)
                .and_then(parse_duplicate_id);
            match detail {
                Some(id) => Error::DuplicateMessageId { id },
                None => classify(error, written_to),
            }
        }
        _ => classify(error, written_to),
    }
}

/// Maps a failure inside a unit of work, whose transaction it ended: a
/// deadlock, a lock timeout or a serialization failure is a
/// [`Error::Conflict`]; a broken connection lost the uncommitted unit, so
/// it is transient (never an unknown outcome); the rest as [`map_error`].
pub(crate) fn unit_error(error: sqlx::Error, stream: Option<(&str, ExpectedVersion)>) -> Error {
    let reason = match error.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("40P01") => Some(ConflictReason::Deadlock),
        Some("55P03") => Some(ConflictReason::LockTimeout),
        Some("40001") => Some(ConflictReason::Serialization),
        _ => None,
    };
    if let Some(reason) = reason {
        return Error::Conflict {
            reason,
            source: Some(Box::new(error)),
        };
    }
    let write = stream.map(|(stream, expected)| WriteContext {
        stream,
        expected,
        sent: false,
    });
    map_error(error, write.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrong_expected_version() {
        assert_eq!(
            parse_wrong_expected_version(
                "Wrong expected version: 5 (Stream: account-1, Stream Version: 2)"
            ),
            Some((5, "account-1".to_owned(), 2))
        );
        assert_eq!(
            parse_wrong_expected_version(
                "Wrong expected version: -1 (Stream: account-3, Stream Version: 0)"
            ),
            Some((-1, "account-3".to_owned(), 0))
        );
        assert_eq!(
            parse_wrong_expected_version(
                "Wrong expected version: 0 (Stream: account-3, Stream Version: -1)"
            ),
            Some((0, "account-3".to_owned(), -1))
        );
        assert_eq!(
            parse_wrong_expected_version(
                "Wrong expected version: 12345 (Stream: odd (Stream: x, Stream Version: 9)-1, Stream Version: 67890)"
            ),
            Some((12345, "odd (Stream: x, Stream Version: 9)-1".to_owned(), 67890))
        );
        assert_eq!(
            parse_wrong_expected_version("Must be a category: a-1"),
            None
        );
        assert_eq!(
            parse_wrong_expected_version(
                "Wrong expected version: x (Stream: a-1, Stream Version: 2)"
            ),
            None
        );
    }

    #[test]
    fn parses_duplicate_id_detail() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_duplicate_id(&format!("Key (id)=({id}) already exists.")),
            Some(id)
        );
        assert_eq!(
            parse_duplicate_id("Key (stream_name, \"position\")=(a-1, 0) already exists."),
            None
        );
    }
}
