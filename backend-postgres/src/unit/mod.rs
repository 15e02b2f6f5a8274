//! [`PgUnit`]: a unit of work as one PostgreSQL transaction, on a
//! connection leased from the store's warm set for the unit's life.
//!
//! - It begins `ISOLATION LEVEL READ COMMITTED` whatever the server's
//!   default: under REPEATABLE READ, Message DB's version check reads a
//!   snapshot, and a concurrent writer's commit would surface as a unique
//!   violation instead of a wrong expected version.
//! - Its calls are never retried on a fresh connection: the transaction,
//!   with the unit's earlier writes, lives on this one.
//! - The first failure aborts the unit, as PostgreSQL aborts the
//!   transaction; the rollback is sent at once, so the session's locks and
//!   (behind a pooler) its server connection are freed.
//! - Dropped open, it queues a rollback and returns its connection to the
//!   pool, whose release check sends it.

mod calls;
mod within;

use std::fmt;

use async_trait::async_trait;
use message_store::backend::{trace, validate_write};
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, OpenUnit, Result,
    StreamName, StreamRead, UnitOfWork, UnitOptions, UnitState,
};
use sqlx::postgres::{PgConnection, PgTransactionManager};
use sqlx::TransactionManager;

use crate::error::unit_error;
use crate::retry::{is_lost_reply, read_with_retry};
use crate::warm::Lease;
use crate::{convert, rows, statements, PostgresStore};

pub use within::Within;

/// A unit of work on a [`PostgresStore`].
pub(crate) struct PgUnit {
    /// Present while the unit is open.
    lease: Option<Lease>,
    /// Prepare statements under a name (directly) or unnamed (behind a pooler).
    persistent: bool,
    state: UnitState,
    /// The store's description, for `Debug`.
    at: String,
    /// Messages written per category, reported as sent at the commit.
    sent: Vec<(String, usize)>,
}

/// The statement that opens a unit's transaction (one simple query).
fn begin_statement(options: &UnitOptions) -> String {
    let mut statement = "BEGIN ISOLATION LEVEL READ COMMITTED".to_owned();
    if let Some(timeout) = options.lock_timeout() {
        let millis = timeout.as_millis().clamp(1, i32::MAX as u128);
        statement.push_str(&format!("; SET LOCAL lock_timeout = {millis}"));
    }
    statement
}

impl PgUnit {
    pub(crate) async fn begin(store: &PostgresStore, options: &UnitOptions) -> Result<PgUnit> {
        let statement = begin_statement(options);
        let lease = read_with_retry(store.attempts(), || async {
            let mut lease = store.inner.warm.lease().await?;
            let begun =
                PgTransactionManager::begin(&mut lease, Some(statement.clone().into())).await;
            match begun {
                Ok(()) => Ok(lease),
                Err(error) => {
                    let failed: std::result::Result<(), sqlx::Error> = Err(error);
                    lease.done(&failed);
                    failed.map(|()| unreachable!("begin failed"))
                }
            }
        })
        .await
        .map_err(|e| unit_error(e, None))?;
        Ok(PgUnit {
            lease: Some(lease),
            persistent: !store.inner.pooled,
            state: UnitState::Open,
            at: store.inner.description.clone(),
            sent: Vec::new(),
        })
    }

    /// The open unit's connection, or `UnitEnded`.
    fn connection(&mut self) -> Result<(&mut PgConnection, bool)> {
        match (&mut self.lease, self.state) {
            (Some(lease), UnitState::Open) => Ok((&mut **lease, self.persistent)),
            (_, state) => Err(Error::UnitEnded { state }),
        }
    }

    /// Commits: the unit's connection goes back to the store's warm set,
    /// or is closed when the commit failed.
    async fn commit_now(&mut self) -> Result<()> {
        self.connection()?;
        let mut lease = self
            .lease
            .take()
            .expect("an open unit holds its connection");
        match PgTransactionManager::commit(&mut lease).await {
            Ok(()) => {
                self.state = UnitState::Committed;
                lease.done(&Ok::<(), sqlx::Error>(()));
                for (category, count) in self.sent.drain(..) {
                    message_store::backend::meter::sent(crate::BACKEND, &category, count);
                }
                Ok(())
            }
            Err(error) => {
                self.state = UnitState::Aborted;
                // Whatever the server did, sqlx still counts the
                // transaction open: the connection cannot serve again.
                lease.discard();
                if is_lost_reply(&error) {
                    Err(Error::CommitOutcomeUnknown {
                        source: Box::new(error),
                    })
                } else {
                    Err(unit_error(error, None))
                }
            }
        }
    }

    fn wrote(&mut self, stream: &StreamName, count: usize) {
        let category = message_store::stream_name::category_of(stream.as_str());
        self.sent.push((category.to_owned(), count));
    }

    /// Aborts the unit after `error`: rolls the transaction back now, and
    /// keeps the connection for the store's next call when that worked.
    async fn abort(&mut self, error: sqlx::Error, write: Option<(&str, ExpectedVersion)>) -> Error {
        self.state = UnitState::Aborted;
        if let Some(mut lease) = self.lease.take() {
            let usable = !crate::retry::is_connection_error(&error);
            if usable && PgTransactionManager::rollback(&mut lease).await.is_ok() {
                lease.done(&Ok::<(), sqlx::Error>(()));
            } else {
                lease.discard();
            }
        }
        unit_error(error, write)
    }
}

calls::unit_calls!(PgUnit);

#[async_trait]
impl OpenUnit for PgUnit {
    async fn commit(&mut self) -> Result<()> {
        let span = trace::unit(crate::BACKEND, "commit");
        trace::call(span, trace::uncounted, self.commit_now()).await
    }

    async fn rollback(&mut self) -> Result<()> {
        match self.state {
            UnitState::Open => {}
            UnitState::Committed => {
                return Err(Error::UnitEnded {
                    state: UnitState::Committed,
                })
            }
            _ => return Ok(()),
        }
        self.state = UnitState::RolledBack;
        let mut lease = self
            .lease
            .take()
            .expect("an open unit holds its connection");
        match PgTransactionManager::rollback(&mut lease).await {
            Ok(()) => {
                lease.done(&Ok::<(), sqlx::Error>(()));
                Ok(())
            }
            Err(error) => {
                // The server rolls back a transaction whose session ends.
                lease.discard();
                if crate::retry::is_connection_error(&error) {
                    Ok(())
                } else {
                    Err(unit_error(error, None))
                }
            }
        }
    }

    fn unit(&mut self) -> &mut dyn UnitOfWork {
        self
    }

    fn state(&self) -> UnitState {
        self.state
    }
}

impl Drop for PgUnit {
    fn drop(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            // Sent by the pool's check of the returned connection.
            PgTransactionManager::start_rollback(&mut lease);
            drop(lease);
        }
    }
}

impl fmt::Debug for PgUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUnit")
            .field("at", &self.at)
            .field("state", &self.state)
            .finish()
    }
}
