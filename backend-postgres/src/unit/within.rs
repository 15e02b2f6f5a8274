//! [`Within`]: the store's writes and reads inside a transaction the caller
//! holds, so messages commit, or roll back, with the caller's own changes.

use std::fmt;

use message_store::backend::validate_write;
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, Result, StreamName,
    StreamRead, UnitOfWork, UnitState,
};
use sqlx::postgres::{PgConnection, PgTransactionManager};
use sqlx::TransactionManager;

use crate::error::unit_error;
use crate::{convert, rows, statements, PostgresError, PostgresStore};

/// A [`UnitOfWork`] on the caller's own sqlx transaction, from
/// [`PostgresStore::within`]: its writes become visible when the caller
/// commits the transaction, and vanish when the caller rolls it back.
///
/// The caller owns the transaction, so `Within` has no commit: it takes
/// Message DB's category locks as any write does, held until the caller
/// ends the transaction. A failed call aborts the caller's transaction on
/// the server (as any failed statement does); every later call through
/// this value is then refused with [`Error::UnitEnded`], and the caller
/// should roll the transaction back.
pub struct Within<'c> {
    conn: &'c mut PgConnection,
    persistent: bool,
    state: UnitState,
}

impl<'c> Within<'c> {
    pub(crate) fn new(store: &PostgresStore, conn: &'c mut PgConnection) -> Result<Within<'c>> {
        if PgTransactionManager::get_transaction_depth(conn) == 0 {
            return Err(PostgresError::NotInTransaction.into());
        }
        Ok(Within {
            conn,
            persistent: !store.inner.pooled,
            state: UnitState::Open,
        })
    }

    fn connection(&mut self) -> Result<(&mut PgConnection, bool)> {
        match self.state {
            UnitState::Open => Ok((&mut *self.conn, self.persistent)),
            state => Err(Error::UnitEnded { state }),
        }
    }

    /// The caller's commit is not seen here: its messages are not counted
    /// as sent.
    fn wrote(&mut self, _stream: &StreamName, _count: usize) {}

    async fn abort(&mut self, error: sqlx::Error, write: Option<(&str, ExpectedVersion)>) -> Error {
        self.state = UnitState::Aborted;
        if error.as_database_error().and_then(|d| d.code()).as_deref() == Some("25P02") {
            // The caller's transaction had failed before this call.
            return Error::UnitEnded {
                state: UnitState::Aborted,
            };
        }
        unit_error(error, write)
    }
}

super::calls::unit_calls!(Within<'_>);

impl fmt::Debug for Within<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Within")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
