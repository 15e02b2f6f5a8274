//! # message-store
//!
//! Event-sourced and message-driven services on a
//! [Message DB](https://github.com/message-db/message-db)-compatible store:
//! write messages to streams, read them back, and consume categories with
//! a runtime that records its position in the store. Application code is
//! written against [`MessageStore`]; unit tests run it on the in-memory
//! backend (`message-store-memory`), production on PostgreSQL
//! (`message-store-postgres`, over genuine Message DB or our compatible
//! schema). Both follow Message DB's semantics and return the same
//! [`Error`] for the same cause.
//!
//! ## Write and read
//!
//! ```
//! use message_store::prelude::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = message_store_memory::MemoryStore::new();
//!
//! // Optimistic concurrency: each write says what it expects the stream's version to be.
//! store.write_one("account-123", NewMessage::new("Opened", json!({"owner": "Ada"})), ExpectedVersion::NoStream).await?;
//! let deposit = NewMessage::new("Deposited", json!({"amount": 10}))
//!     .with_metadata(Metadata::try_from(json!({"correlationStreamName": "transfer-9"}))?);
//! assert_eq!(store.write_one("account-123", deposit, ExpectedVersion::Exact(0)).await?, 1);
//!
//! // A writer that expected an older version is refused.
//! let stale = store.write_one("account-123", NewMessage::new("Deposited", json!({"amount": 5})), ExpectedVersion::Exact(0)).await;
//! assert!(stale.unwrap_err().is_wrong_expected_version());
//!
//! let messages = store.read_stream_to_end("account-123").await?;
//! assert_eq!(messages[1].data["amount"], 10);
//! let version = store.stream_version(&StreamName::new("account-123")?).await?;
//! assert_eq!(ExpectedVersion::from(version), ExpectedVersion::Exact(1));
//! # Ok(())
//! # }
//! ```
//!
//! ## Consume
//!
//! The consumer runtime, in the `message-store-consumer` crate, handles a
//! category's messages in order, at least once, retries or parks what
//! fails, and records its position in the store (Eventide's
//! `{category}:position-{id}`), so a restart resumes:
//!
//! ```
//! use message_store::prelude::*;
//! use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store_consumer::Result<()> {
//! #[derive(serde::Deserialize)]
//! struct Deposited { amount: u64 }
//! impl TypedMessage for Deposited { const MESSAGE_TYPE: &'static str = "Deposited"; }
//!
//! let store = message_store_memory::MemoryStore::new();
//! for (account, amount) in [("account-1", 3), ("account-2", 7)] {
//!     store.write_one(account, NewMessage::new("Deposited", json!({"amount": amount})), ExpectedVersion::Any).await?;
//! }
//!
//! let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let counted = total.clone();
//! let consumer = Consumer::new(Category::new("account")?)
//!     .with_options(ConsumerOptions::new().with_subscription(SubscribeOptions::new().with_consumer_id("totals")))
//!     .on(move |deposit: Deposited, _message: Message| {
//!         let counted = counted.clone();
//!         async move {
//!             counted.fetch_add(deposit.amount, std::sync::atomic::Ordering::SeqCst);
//!             HandlerResult::Ok(())
//!         }
//!     });
//! let handle = consumer.start(store.clone()).await?;
//! handle.caught_up().await?; // everything written so far is handled
//! assert_eq!(total.load(std::sync::atomic::Ordering::SeqCst), 10);
//! handle.shutdown().await?; // records the position
//! # Ok(())
//! # }
//! ```
//!
//! ## What the store guarantees
//!
//! * stream names with Message DB's grammar ([`StreamName`], [`Category`]);
//! * appends with an [`ExpectedVersion`], atomic batches, caller-chosen ids;
//! * stream reads, category reads with correlation and [`ConsumerGroup`] filters;
//! * subscriptions that resume from a position stored in the store itself,
//!   compatible with Eventide's consumers.
//!
//! [`prelude`] imports the everyday names; [`backend`] holds what backend
//! authors need and applications do not.

pub mod backend;
mod consumer_group;
mod data;
mod error;
mod ext;
mod message;
mod metadata;
mod names;
pub mod prelude;
mod read;
mod store;
pub mod stream_name;
mod subscription;
mod unit;
mod version;

#[doc(inline)]
pub use consumer_group::{hash_64, member_of, ConsumerGroup, MAX_CONSUMER_GROUP_SIZE};
#[doc(inline)]
pub use data::{JsonData, UnreadableJson};
#[doc(inline)]
pub use error::{ConsumerGroupProblem, Error, ErrorKind, NameProblem, Result};
#[doc(inline)]
pub use ext::MessageStoreExt;
#[doc(inline)]
pub use message::{Message, NewMessage, TypedMessage};
#[doc(inline)]
pub use metadata::{Metadata, MAX_JSON_DEPTH};
#[doc(inline)]
pub use names::{IntoCategory, IntoStreamName};
#[doc(inline)]
pub use read::{BatchSize, CategoryRead, StreamRead};
#[doc(inline)]
pub use store::{MessageStore, PendingCommit, Subscription};
#[doc(inline)]
pub use stream_name::{Category, StreamName, MAX_STREAM_NAME_LEN};
#[doc(inline)]
pub use subscription::{StartPosition, SubscribeOptions, DEFAULT_FALLBACK_INTERVAL};
#[doc(inline)]
pub use unit::{ConflictReason, OpenUnit, UnitOfWork, UnitOptions, UnitState, UNIT_ATTEMPTS};
#[doc(inline)]
pub use version::ExpectedVersion;

/// Re-exported so callers can build message data, ids and times, and consume
/// paged reads (`futures`), without naming the same dependencies.
pub use chrono;
pub use futures;
pub use serde_json;
pub use uuid;
