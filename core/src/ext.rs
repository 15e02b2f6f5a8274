//! Conveniences every store gets, written once so backends cannot drift.
//! They take names as anything [`IntoStreamName`] or [`IntoCategory`] (the
//! validated type or a string, validated when the call runs, with the same
//! typed errors), while
//! [`MessageStore`] itself keeps typed names and stays object-safe.

use async_trait::async_trait;
use futures::stream::TryStreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::message::{Message, NewMessage, TypedMessage};
use crate::names::{IntoCategory, IntoStreamName};
use crate::read::{CategoryRead, StreamRead};
use crate::store::MessageStore;
#[cfg(doc)]
use crate::stream_name::StreamName;
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
