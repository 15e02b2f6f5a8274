//! Everything an application's everyday code needs, in one import:
//!
//! ```
//! use message_store::prelude::*;
//! ```
//!
//! It brings the store and unit-of-work traits, the names, messages and read options, and
//! the `futures` traits that consume
//! the crate's paged reads ([`MessageStore::category_messages`] and
//! [`MessageStore::stream_messages`] return a `BoxStream`):
//!
//! ```
//! use message_store::prelude::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = message_store_memory::MemoryStore::new();
//! let account = StreamName::new("account-1")?;
//! store.write_one(&account, NewMessage::new("Opened", json!({})), ExpectedVersion::NoStream).await?;
//! let mut pages = store.category_messages(&account.category(), CategoryRead::new());
//! while let Some(message) = pages.next().await {
//!     assert_eq!(message?.message_type, "Opened");
//! }
//! let all: Vec<Message> = store.stream_messages(&account, StreamRead::new()).try_collect().await?;
//! assert_eq!(all.len(), 1);
//! # Ok(())
//! # }
//! ```

pub use crate::{
    BatchSize, Category, CategoryRead, Error, ExpectedVersion, IntoCategory, IntoStreamName,
    Message, MessageStore, MessageStoreExt, Metadata, NewMessage, OpenUnit, Result, StartPosition,
    StreamName, StreamRead, SubscribeOptions, Subscription, TypedMessage, UnitOfWork, UnitOptions,
};
pub use futures::{StreamExt, TryStreamExt};
pub use serde_json::json;
