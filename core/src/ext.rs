//! Conveniences every store gets, written once so backends cannot drift.

use async_trait::async_trait;
use futures::stream::TryStreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::message::{Message, NewMessage, TypedMessage};
use crate::read::StreamRead;
use crate::store::MessageStore;
use crate::stream_name::StreamName;
use crate::version::ExpectedVersion;

/// Conveniences on top of [`MessageStore`], implemented for every store
/// (including `dyn MessageStore`).
#[async_trait]
pub trait MessageStoreExt: MessageStore {
    /// Writes one message; returns its stream position.
    async fn write_one(
        &self,
        stream: &StreamName,
        message: NewMessage,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.write(stream, vec![message], expected).await
    }

    /// Serializes `value` as a message of its [`TypedMessage`] type and writes it.
    async fn write_typed<T>(
        &self,
        stream: &StreamName,
        value: &T,
        expected: ExpectedVersion,
    ) -> Result<u64>
    where
        T: TypedMessage + Serialize + Sync,
    {
        self.write(stream, vec![NewMessage::typed(value)?], expected)
            .await
    }

    /// Reads a whole stream, page by page, into memory.
    async fn read_stream_to_end(&self, stream: &StreamName) -> Result<Vec<Message>> {
        self.stream_messages(stream, StreamRead::new())
            .try_collect()
            .await
    }
}

impl<T: MessageStore + ?Sized> MessageStoreExt for T {}
