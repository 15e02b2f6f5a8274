//! # message-store
//!
//! Traits and types for event-sourced and message-driven services on a
//! [Message DB](https://github.com/message-db/message-db)-compatible store.
//!
//! Application code is written against [`MessageStore`] and [`Subscription`];
//! unit tests run it on the in-memory backend (`message-store-memory`) and
//! production on PostgreSQL with Message DB (`message-store-postgres`). Both
//! backends follow Message DB's semantics and return the same [`Error`] for
//! the same cause:
//!
//! * stream names with Message DB's grammar ([`StreamName`], [`Category`]);
//! * appends with an [`ExpectedVersion`], atomic batches, caller-chosen ids;
//! * stream reads, category reads with correlation and [`ConsumerGroup`] filters;
//! * subscriptions that resume from a position stored in the store itself,
//!   compatible with Eventide's consumers.
//!
//! ```
//! use message_store::{Category, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = message_store_memory::MemoryStore::new();
//! let account = StreamName::new("account-123")?;
//!
//! store.write_one(&account, NewMessage::new("Opened", json!({"owner": "Ada"})), ExpectedVersion::NoStream).await?;
//! let version = store.write_one(&account, NewMessage::new("Deposited", json!({"amount": 10})), ExpectedVersion::Exact(0)).await?;
//! assert_eq!(version, 1);
//!
//! // A writer that expected an older version is refused.
//! let stale = store.write_one(&account, NewMessage::new("Deposited", json!({"amount": 5})), ExpectedVersion::Exact(0)).await;
//! assert!(stale.unwrap_err().is_wrong_expected_version());
//!
//! let messages = store.read_stream_to_end(&account).await?;
//! assert_eq!(messages.len(), 2);
//! assert_eq!(messages[1].data["amount"], 10);
//! # Ok(())
//! # }
//! ```

pub mod consumer;
mod consumer_group;
mod data;
mod error;
mod ext;
mod message;
mod metadata;
mod names;
pub mod paging;
pub mod prelude;
mod read;
mod store;
pub mod stream_name;
pub mod subscription;
mod version;

pub use consumer_group::{hash_64, member_of, ConsumerGroup, MAX_CONSUMER_GROUP_SIZE};
pub use data::{JsonData, UnreadableJson};
pub use error::{ConsumerGroupProblem, Error, ErrorKind, NameProblem, Result};
pub use ext::MessageStoreExt;
pub use message::{validate_write, Message, NewMessage, TypedMessage};
pub use metadata::{Metadata, MAX_JSON_DEPTH};
pub use names::{IntoCategory, IntoStreamName};
pub use read::{BatchSize, CategoryRead, StreamRead};
pub use store::{MessageStore, Subscription};
pub use stream_name::{Category, StreamName, MAX_STREAM_NAME_LEN};
pub use subscription::{CommittedPosition, StartPosition, StoreSubscription, SubscribeOptions};
pub use version::ExpectedVersion;

/// Re-exported so callers can build message data, ids and times, and consume
/// paged reads (`futures`), without naming the same dependencies.
pub use chrono;
pub use futures;
pub use serde_json;
pub use uuid;
