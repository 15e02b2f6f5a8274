//! Conveniences every store gets, written once so backends cannot drift.
//! They take names as anything [`IntoStreamName`] or [`IntoCategory`] (the
//! validated type or a string, validated when the call runs, with the same
//! typed errors), while
//! [`MessageStore`] itself keeps typed names and stays object-safe.

use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::TryStreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::message::{Message, NewMessage, TypedMessage};
use crate::names::{IntoCategory, IntoStreamName};
use crate::read::{CategoryRead, StreamRead};
use crate::store::MessageStore;
#[cfg(doc)]
use crate::stream_name::StreamName;
use crate::unit::{UnitOfWork, UnitOptions};
use crate::version::ExpectedVersion;

/// Conveniences on top of [`MessageStore`], implemented for every store
/// (including `dyn MessageStore`).
///
/// ```
/// use message_store::prelude::*;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> message_store::Result<()> {
/// let store = message_store_memory::MemoryStore::new();
/// store.write_one("account-1", NewMessage::new("Opened", json!({})), ExpectedVersion::NoStream).await?;
/// let batch = vec![NewMessage::new("Deposited", json!({"amount": 5})), NewMessage::new("Deposited", json!({"amount": 7}))];
/// assert_eq!(store.write_batch("account-1", batch, ExpectedVersion::Exact(0)).await?, 2);
/// let last = store.last_message("account-1").await?.unwrap();
/// assert_eq!(last.data["amount"], 7);
/// let opened = store.last_message_of_type("account-1", "Opened").await?.unwrap();
/// assert_eq!(opened.position, 0);
/// assert_eq!(store.read_stream_to_end("account-1").await?.len(), 3);
/// assert_eq!(store.read_category_to_end("account").await?.len(), 3);
/// // A bad name is the same typed error StreamName::new gives.
/// assert!(store.write_one("", NewMessage::new("T", json!({})), ExpectedVersion::Any).await.is_err());
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait MessageStoreExt: MessageStore {
    /// Writes one message; returns its stream position.
    async fn write_one<S: IntoStreamName + Send>(
        &self,
        stream: S,
        message: NewMessage,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let stream = stream.into_stream_name()?;
        self.write(&stream, vec![message], expected).await
    }

    /// Writes `messages` atomically (see [`MessageStore::write`]); returns
    /// the stream position of the last one.
    async fn write_batch<S: IntoStreamName + Send>(
        &self,
        stream: S,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let stream = stream.into_stream_name()?;
        self.write(&stream, messages, expected).await
    }

    /// Serializes `value` as a message of its [`TypedMessage`] type and writes it.
    async fn write_typed<S, T>(
        &self,
        stream: S,
        value: &T,
        expected: ExpectedVersion,
    ) -> Result<u64>
    where
        S: IntoStreamName + Send,
        T: TypedMessage + Serialize + Sync,
    {
        let stream = stream.into_stream_name()?;
        self.write(&stream, vec![NewMessage::typed(value)?], expected)
            .await
    }

    /// Reads a whole stream, page by page, into memory.
    async fn read_stream_to_end<S: IntoStreamName + Send>(
        &self,
        stream: S,
    ) -> Result<Vec<Message>> {
        let stream = stream.into_stream_name()?;
        self.stream_messages(&stream, StreamRead::new())
            .try_collect()
            .await
    }

    /// Reads a whole category, page by page, into memory, in global order
    /// (for tests, tools and small categories; consumers page instead).
    async fn read_category_to_end<C: IntoCategory + Send>(
        &self,
        category: C,
    ) -> Result<Vec<Message>> {
        let category = category.into_category()?;
        self.category_messages(&category, CategoryRead::new())
            .try_collect()
            .await
    }

    /// The stream's last message (highest position), if it has any.
    async fn last_message<S: IntoStreamName + Send>(&self, stream: S) -> Result<Option<Message>> {
        let stream = stream.into_stream_name()?;
        self.read_last_message(&stream, None).await
    }

    /// Runs `work` in a unit of work and commits it, running it again in a
    /// fresh unit, up to [`UNIT_ATTEMPTS`](crate::UNIT_ATTEMPTS) times in
    /// all, while it fails with an error that passes
    /// ([`Error::is_transient`](crate::Error::is_transient): a
    /// [`Conflict`](crate::Error::Conflict) such as a deadlock, or a lost
    /// connection). Any other error, from `work` or the commit, is returned
    /// and the unit rolled back. `work` may run more than once, so keep
    /// its effects inside the unit.
    ///
    /// ```
    /// use message_store::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> message_store::Result<()> {
    /// let store = message_store_memory::MemoryStore::new();
    /// let (from, to) = (StreamName::new("account-1")?, StreamName::new("account-2")?);
    /// store
    ///     .in_unit(UnitOptions::new(), |unit| {
    ///         let (from, to) = (from.clone(), to.clone());
    ///         Box::pin(async move {
    ///             unit.write(&from, vec![NewMessage::new("Debited", json!({"amount": 5}))], ExpectedVersion::Any).await?;
    ///             unit.write(&to, vec![NewMessage::new("Credited", json!({"amount": 5}))], ExpectedVersion::Any).await?;
    ///             Ok(())
    ///         })
    ///     })
    ///     .await?;
    /// assert_eq!(store.read_category_to_end("account").await?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    async fn in_unit<T, F>(&self, options: UnitOptions, mut work: F) -> Result<T>
    where
        T: Send,
        F: for<'u> FnMut(&'u mut dyn UnitOfWork) -> BoxFuture<'u, Result<T>> + Send,
    {
        let mut attempt = 1;
        loop {
            let outcome: Result<T> = async {
                let mut unit = self.begin(options.clone()).await?;
                let value = work(unit.unit()).await?;
                unit.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(error) if error.is_transient() && attempt < crate::UNIT_ATTEMPTS => {
                    // Staggered, so two units that conflicted do not meet again.
                    let pause = 5u64 << attempt.min(6);
                    let jitter = uuid::Uuid::new_v4().as_bytes()[0] % 8;
                    let pause = Duration::from_millis(pause + u64::from(jitter));
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The stream's last message of `message_type`, if it has one.
    async fn last_message_of_type<S: IntoStreamName + Send>(
        &self,
        stream: S,
        message_type: &str,
    ) -> Result<Option<Message>> {
        let stream = stream.into_stream_name()?;
        self.read_last_message(&stream, Some(message_type)).await
    }
}

impl<T: MessageStore + ?Sized> MessageStoreExt for T {}
