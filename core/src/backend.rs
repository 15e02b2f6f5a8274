//! For authors of backends: what every backend calls, so that all of them
//! refuse the same input with the same errors, page the same way and share
//! one subscription implementation. Application code does not need it.
//!
//! - [`validate_write`]: the checks every `write` runs first.
//! - [`paging`]: the paged streams behind `stream_messages` and
//!   `category_messages`.
//! - [`StoreSubscription`]: a subscription over any store, with Eventide's
//!   position records ([`read_committed_position`], [`position_record`]).
//! - `BatchSize::as_usize`/`is_full` and `CategoryRead::matches`, hidden
//!   from the user's docs, slice and filter in memory as Message DB does.

pub use crate::message::validate_write;
pub mod paging;
pub use crate::subscription::{
    position_record, read_committed_position, CommittedPosition, StoreSubscription,
    POSITION_RECORDED, POSITION_UPDATED_LEGACY,
};
