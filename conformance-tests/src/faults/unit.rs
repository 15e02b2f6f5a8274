//! The units of work a [`FailingStore`] opens: their calls pass through to
//! the inner store's unit, and their commits take the faults armed for
//! [`Operation::Commit`](super::Operation::Commit): a commit refused (not
//! carried out) or a commit whose reply is lost (carried out).

use std::fmt;

use async_trait::async_trait;
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, OpenUnit, Result,
    StreamName, StreamRead, UnitOfWork, UnitState,
};

use super::{FailingStore, InjectedFault, Operation};

/// A unit of work of the inner store, with injectable commit faults.
pub(super) struct FailingUnit {
    pub(super) inner: Box<dyn OpenUnit>,
    pub(super) store: FailingStore,
}

impl fmt::Debug for FailingUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailingUnit")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl UnitOfWork for FailingUnit {
    async fn write(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.inner.write(stream, messages, expected).await
    }

    async fn read_stream(
        &mut self,
        stream: &StreamName,
        options: StreamRead,
    ) -> Result<Vec<Message>> {
        self.inner.read_stream(stream, options).await
    }

    async fn read_category(
        &mut self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        self.inner.read_category(category, options).await
    }

    async fn read_last_message(
        &mut self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        self.inner.read_last_message(stream, message_type).await
    }

    async fn stream_version(&mut self, stream: &StreamName) -> Result<Option<u64>> {
        self.inner.stream_version(stream).await
    }

    async fn lock_categories(&mut self, categories: &[Category]) -> Result<()> {
        self.inner.lock_categories(categories).await
    }

    fn backend(&mut self) -> Option<&mut (dyn std::any::Any + Send)> {
        self.inner.backend()
    }
}

#[async_trait]
impl OpenUnit for FailingUnit {
    async fn commit(&mut self) -> Result<()> {
        if self.inner.state() == UnitState::Open {
            if let Err(error) = self.store.check(Operation::Commit).await {
                // Refused: nothing of the unit is stored.
                self.inner.rollback().await?;
                return Err(error);
            }
        }
        self.inner.commit().await?;
        if self.store.lose_commit_reply() {
            // Stored, but the caller cannot know.
            return Err(Error::CommitOutcomeUnknown {
                source: Box::new(InjectedFault(Operation::Commit)),
            });
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        self.inner.rollback().await
    }

    fn unit(&mut self) -> &mut dyn UnitOfWork {
        self
    }

    fn state(&self) -> UnitState {
        self.inner.state()
    }
}
