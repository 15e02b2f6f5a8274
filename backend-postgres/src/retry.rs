//! Which failures a call may be repeated after, and how they reach the
//! caller: retries on a fresh connection, and the classification into
//! [`Error::Transient`], [`Error::OutcomeUnknown`] and the rest.

use message_store::Error;

/// True for failures of the connection rather than of the statement: the
/// connection is gone (I/O, protocol) or the server ended the session
/// (SQLSTATE class 08, or 57P01-57P03 after pg_terminate_backend or a restart).
pub(crate) fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => database
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// True when the server ended the session (pg_terminate_backend, shutdown,
/// crash recovery) before our statement could commit: it reports this instead
/// of a result, and our writes are single autocommit statements, so nothing
/// was written and the write is safe to send again.
pub(crate) fn is_terminated_session(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if database.code().is_some_and(|code| matches!(code.as_ref(), "57P01" | "57P02" | "57P03")))
}

/// Runs a write, again while the server reports that it had ended the session
/// of the connection used (see [`is_terminated_session`]), at most `attempts`
/// times: after a server restart every idle connection in the pool is dead.
pub(crate) async fn write_with_retry<T, F, Fut>(
    attempts: u32,
    write: F,
) -> std::result::Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    retry(attempts, is_terminated_session, write).await
}

/// Runs a read, again while the connection it got turns out to be dead (the
/// pool does not ping before use), at most `attempts` times. Reads are safe to
/// repeat; writes only in the narrower case of [`write_with_retry`].
pub(crate) async fn read_with_retry<T, F, Fut>(
    attempts: u32,
    read: F,
) -> std::result::Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    retry(attempts, is_connection_error, read).await
}

async fn retry<T, F, Fut>(
    attempts: u32,
    retryable: fn(&sqlx::Error) -> bool,
    call: F,
) -> std::result::Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < attempts && retryable(&error) => {
                tracing::debug!(%error, attempt, "retrying on a fresh connection");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether the last attempt of a write got as far as sending its statement
/// (a connection was leased); until then a failure stored nothing.
#[derive(Debug, Default)]
pub(crate) struct Sent(std::sync::atomic::AtomicBool);

impl Sent {
    pub(crate) fn set(&self, sent: bool) {
        self.0.store(sent, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// True for a failure that passes: the connection broke or could not be
/// had in time, or the server gave up on the statement for a reason of the
/// moment (serialization failure 40001, deadlock 40P01, lock not available
/// 55P03, statement timeout 57014, a terminated session 57P0x, insufficient
/// resources such as too many connections, class 53).
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("57P0")
                || code.starts_with("53")
                || matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57014")
        }),
        _ => false,
    }
}

/// True when the connection broke without the server answering: after a
/// write was sent, its outcome is then unknown.
pub(crate) fn is_lost_reply(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|c| c.starts_with("08")),
        _ => false,
    }
}

/// The core error for a failure the server's answer does not explain
/// further: [`Error::OutcomeUnknown`] for a write (`written_to` its stream)
/// whose statement was sent and whose connection broke before the reply,
/// [`Error::Transient`] for any other failure that passes, else
/// [`Error::Backend`].
pub(crate) fn classify(error: sqlx::Error, written_to: Option<(&str, bool)>) -> Error {
    match written_to {
        Some((stream, true)) if is_lost_reply(&error) => Error::OutcomeUnknown {
            stream: stream.to_owned(),
            source: Box::new(error),
        },
        _ if is_transient(&error) => Error::transient(error),
        _ => Error::backend(error),
    }
}
