//! [`MemoryUnit`]: a unit of work on the memory store, with PostgreSQL's
//! semantics. Its writes are pending in the store's state (see `units`),
//! visible to its own reads only, until the commit stores them in one
//! transition.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use message_store::backend::{meter, trace, validate_write};
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, OpenUnit, Result,
    StreamName, StreamRead, UnitOfWork, UnitOptions, UnitState,
};

use crate::MemoryStore;
use message_store::backend::jsonb;
use message_store::backend::units::{lock_order, UnitId};

/// A unit of work on a [`MemoryStore`]; dropped open, it rolls back.
pub(crate) struct MemoryUnit {
    store: MemoryStore,
    id: UnitId,
    state: UnitState,
    lock_timeout: Option<Duration>,
    /// Messages written per category, reported as sent at the commit.
    sent: Vec<(String, usize)>,
}

impl MemoryUnit {
    pub(crate) fn open(store: MemoryStore, options: &UnitOptions) -> MemoryUnit {
        let id = store.inner.write_state().units.open();
        MemoryUnit {
            store,
            id,
            state: UnitState::Open,
            lock_timeout: options.lock_timeout(),
            sent: Vec::new(),
        }
    }

    /// Refuses a call once the unit has ended.
    fn check_open(&self) -> Result<()> {
        match self.state {
            UnitState::Open => Ok(()),
            state => Err(Error::UnitEnded { state }),
        }
    }

    /// Ends the unit in `state`, storing its writes for `Committed`.
    fn end(&mut self, state: UnitState) {
        self.store
            .inner
            .end_unit(self.id, state == UnitState::Committed);
        self.state = state;
    }

    fn read<T>(&self, f: impl FnOnce(&crate::State, UnitId) -> T) -> Result<T> {
        self.check_open()?;
        Ok(self.store.read_state(|state| f(state, self.id)))
    }
}

#[async_trait]
impl UnitOfWork for MemoryUnit {
    async fn write(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.check_open()?;
        let call = trace::unit_write(crate::BACKEND, stream.as_str(), &messages);
        let count = messages.len();
        trace::call(call, trace::uncounted, async move {
            validate_write(stream, &messages)?;
            let mut messages = messages;
            jsonb::as_stored(&mut messages);
            let id = self.id;
            let written = self
                .store
                .inner
                .until_done(Some((id, self.lock_timeout)), |state| {
                    state.append(stream, &mut messages, expected, Some(id))
                })
                .await;
            match written {
                Ok(written) => {
                    let category = message_store::stream_name::category_of(stream.as_str());
                    self.sent.push((category.to_owned(), count));
                    Ok(written.last_position)
                }
                Err(error) => {
                    // As PostgreSQL aborts a transaction at its first error.
                    self.end(UnitState::Aborted);
                    Err(error)
                }
            }
        })
        .await
    }

    async fn read_stream(
        &mut self,
        stream: &StreamName,
        options: StreamRead,
    ) -> Result<Vec<Message>> {
        self.check_open()?;
        message_store::backend::validate_stream_read(stream)?;
        self.read(|state, unit| state.read_stream(stream, &options, Some(unit)))
    }

    async fn read_category(
        &mut self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        self.check_open()?;
        options.validate()?;
        self.read(|state, unit| state.read_category(category, &options, Some(unit)))
    }

    async fn read_last_message(
        &mut self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        self.read(|state, unit| state.last_message(stream, message_type, Some(unit)))
    }

    async fn stream_version(&mut self, stream: &StreamName) -> Result<Option<u64>> {
        self.read(|state, unit| state.stream_version(stream.as_str(), Some(unit)))
    }

    async fn lock_categories(&mut self, categories: &[Category]) -> Result<()> {
        self.check_open()?;
        let keys = lock_order(categories);
        let id = self.id;
        let locked = self
            .store
            .inner
            .until_done(Some((id, self.lock_timeout)), |state| {
                Ok(state.lock(&keys, id))
            })
            .await;
        if locked.is_err() {
            self.end(UnitState::Aborted);
        }
        locked
    }
}

#[async_trait]
impl OpenUnit for MemoryUnit {
    async fn commit(&mut self) -> Result<()> {
        let span = trace::unit(crate::BACKEND, "commit");
        trace::call(span, trace::uncounted, async {
            self.check_open()?;
            self.end(UnitState::Committed);
            for (category, count) in self.sent.drain(..) {
                meter::sent(crate::BACKEND, &category, count);
            }
            Ok(())
        })
        .await
    }

    async fn rollback(&mut self) -> Result<()> {
        match self.state {
            UnitState::Open => self.end(UnitState::RolledBack),
            UnitState::Committed => {
                return Err(Error::UnitEnded {
                    state: UnitState::Committed,
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn unit(&mut self) -> &mut dyn UnitOfWork {
        self
    }

    fn state(&self) -> UnitState {
        self.state
    }
}

impl Drop for MemoryUnit {
    fn drop(&mut self) {
        if self.state == UnitState::Open {
            self.end(UnitState::RolledBack);
        }
    }
}

impl fmt::Debug for MemoryUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUnit")
            .field("store", &self.store.to_string())
            .field("state", &self.state)
            .finish()
    }
}
