//! For authors of backends: what every backend calls, so that all of them
//! refuse the same input with the same errors, page the same way and share
//! one subscription implementation. Application code does not need it.
//!
//! - [`validate_write`] and [`validate_stream_read`]: the checks every
//!   `write` and stream read run first.
//! - [`jsonb`]: numbers rewritten as PostgreSQL's jsonb returns them, for
//!   backends that store JSON as text.
//! - [`paging`]: the paged streams behind `stream_messages` and
//!   `category_messages`.
//! - [`trace`]: the spans every backend opens for its calls, and
//!   [`meter`]: the metrics the backends and the consumer runtime report.
//! - [`units`]: units of work's category locks, ids and pending messages
//!   kept in process, for backends without a server's locks.
//! - [`subscribe`]: what every backend's `MessageStore::subscribe` is, a
//!   [`StoreSubscription`] over the store woken by its `wake_ups`, with
//!   Eventide's position records ([`read_committed_position`],
//!   [`position_record`]).
//! - `BatchSize::as_usize`/`is_full` and `CategoryRead::matches`, hidden
//!   from the user's docs, slice and filter in memory as Message DB does.

use crate::error::Result;
use crate::store::{MessageStore, Subscription};
use crate::stream_name::Category;
use crate::subscription::SubscribeOptions;

pub use crate::message::validate_write;
pub use crate::read::validate_stream_read;
pub mod jsonb;
pub mod meter;
pub mod paging;
pub mod trace;
pub mod units;
pub use crate::subscription::{
    position_record, read_committed_position, CommittedPosition, StoreSubscription,
    POSITION_RECORDED, POSITION_UPDATED_LEGACY,
};

/// Opens a subscription to `category` on `store`: a [`StoreSubscription`]
/// over a clone of the store, woken by its
/// [`wake_ups`](MessageStore::wake_ups). Every backend's
/// [`MessageStore::subscribe`] is this call, so all subscribe alike.
pub async fn subscribe<S: MessageStore + Clone>(
    store: &S,
    category: &Category,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>> {
    let wake = store.wake_ups(category);
    let subscription = StoreSubscription::open(store.clone(), category, options, wake).await?;
    Ok(Box::new(subscription))
}
