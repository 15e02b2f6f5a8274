//! Units of work: writes to any number of streams that become visible
//! together at commit, or not at all.
//!
//! [`MessageStore::begin`](crate::MessageStore::begin) opens one. On
//! PostgreSQL it is one database transaction; the memory store gives it the
//! same semantics, including the locks:
//!
//! - Each write takes its category's lock, as Message DB's `write_message`
//!   does, and the unit holds it until it ends. Every other writer of that
//!   category, plain or in a unit, waits meanwhile; readers do not. So keep
//!   units short, and give [`UnitOptions::with_lock_timeout`] where a wait
//!   must be bounded.
//! - Reads in a unit see the unit's own writes and everything committed;
//!   nobody else sees the unit's writes before it commits.
//! - A failed write (a wrong expected version, a duplicate id, a lost
//!   connection) aborts the unit, as an error aborts a PostgreSQL
//!   transaction: nothing of it is stored, and every later call on it fails
//!   with [`Error::UnitEnded`](crate::Error::UnitEnded). Input refused before
//!   it is sent (an invalid name, an empty batch) leaves the unit open.
//! - Dropping an open unit rolls it back.
//!
//! Two units that write two categories in opposite orders wait for each
//! other: one of them fails with [`Error::Conflict`](crate::Error::Conflict)
//! ([`ConflictReason::Deadlock`]) and is rolled back, and running it again
//! succeeds ([`Error::is_transient`](crate::Error::is_transient)). A unit
//! that knows its categories up front avoids this with
//! [`UnitOfWork::lock_categories`], which takes the locks in one shared
//! order. One that picks its next category from what it read cannot (a
//! transaction's locks are held to its end), and relies on the conflict.

use std::fmt::{self, Debug};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::message::{Message, NewMessage};
use crate::read::{CategoryRead, StreamRead};
use crate::stream_name::{Category, StreamName};
use crate::version::ExpectedVersion;

/// How many times [`MessageStoreExt::in_unit`](crate::MessageStoreExt::in_unit)
/// runs a unit of work that keeps failing with an error that passes.
pub const UNIT_ATTEMPTS: u32 = 5;

/// How a unit of work is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitOptions {
    lock_timeout: Option<Duration>,
}

impl UnitOptions {
    /// No lock timeout: a write waits for its category's lock as long as
    /// another unit holds it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds each wait for a lock held by another unit (a category's, or a
    /// message id another unit is writing). A wait that runs out fails the
    /// write with [`Error::Conflict`](crate::Error::Conflict)
    /// ([`ConflictReason::LockTimeout`]) and aborts the unit. On PostgreSQL
    /// this is `SET LOCAL lock_timeout`, in whole milliseconds (at least 1).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout.max(Duration::from_millis(1)));
        self
    }

    /// The lock timeout, if any.
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }
}

/// The calls a unit of work takes, as consumers' handlers receive it.
///
/// The same reads and writes as [`MessageStore`](crate::MessageStore), with
/// the same validation and errors, on `&mut self`: a unit is one sequence of
/// calls, on PostgreSQL one connection.
#[async_trait]
pub trait UnitOfWork: Debug + Send {
    /// Appends `messages` to `stream` as part of the unit, checking
    /// `expected` against the stream as the unit sees it (its own writes
    /// included). Returns the position of the last message written. A wrong
    /// expected version or a duplicate id aborts the unit.
    async fn write(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64>;

    /// Reads a stream as [`MessageStore::read_stream`](crate::MessageStore::read_stream)
    /// does, the unit's own writes included.
    async fn read_stream(
        &mut self,
        stream: &StreamName,
        options: StreamRead,
    ) -> Result<Vec<Message>>;

    /// Reads a category as [`MessageStore::read_category`](crate::MessageStore::read_category)
    /// does, the unit's own writes included.
    async fn read_category(
        &mut self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>>;

    /// The stream's last message (of `message_type`, if given), the unit's
    /// own writes included.
    async fn read_last_message(
        &mut self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>>;

    /// The stream's version as the unit sees it.
    async fn stream_version(&mut self, stream: &StreamName) -> Result<Option<u64>>;

    /// Takes the locks of `categories` now, in one order every unit shares
    /// (by lock key, Message DB's `hash_64` of the category), instead of
    /// at each category's first write. Units that lock every category they
    /// will write up front never deadlock, whatever order they write in.
    /// A category locked already (by this call or a write) is skipped.
    /// Waits, and fails, as a write does.
    async fn lock_categories(&mut self, categories: &[Category]) -> Result<()>;

    /// What the backend offers beyond this trait, for its own crate to
    /// downcast: the PostgreSQL backend hands out the unit's connection this
    /// way (`message_store_postgres::connection`). `None` by default.
    fn backend(&mut self) -> Option<&mut (dyn std::any::Any + Send)> {
        None
    }
}

/// A unit of work as [`MessageStore::begin`](crate::MessageStore::begin)
/// returns it: a [`UnitOfWork`] that its owner ends.
#[async_trait]
pub trait OpenUnit: UnitOfWork {
    /// Makes every write of the unit visible at once and releases its locks.
    ///
    /// Fails with [`Error::UnitEnded`](crate::Error::UnitEnded) when the unit
    /// was committed, rolled back or aborted before, and with
    /// [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown)
    /// when the connection broke with the commit sent.
    async fn commit(&mut self) -> Result<()>;

    /// Discards every write of the unit and releases its locks. Rolling back
    /// a unit that was rolled back or aborted already does nothing; after a
    /// commit it fails with [`Error::UnitEnded`](crate::Error::UnitEnded).
    async fn rollback(&mut self) -> Result<()>;

    /// The unit as a `&mut dyn UnitOfWork`, to hand to code that only reads
    /// and writes through it.
    fn unit(&mut self) -> &mut dyn UnitOfWork;

    /// Where the unit stands.
    fn state(&self) -> UnitState;
}

/// Where a unit of work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitState {
    /// Open: it takes reads and writes.
    Open,
    /// Committed: its writes are stored.
    Committed,
    /// Rolled back by its owner (or dropped): nothing of it is stored.
    RolledBack,
    /// Ended by a failure (a failed write, a conflict, a lost connection):
    /// nothing of it is stored.
    Aborted,
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitState::Open => "open",
            UnitState::Committed => "committed",
            UnitState::RolledBack => "rolled back",
            UnitState::Aborted => "aborted by an earlier failure",
        })
    }
}

/// Why concurrent work made a unit of work fail. The unit was rolled back;
/// running it again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictReason {
    /// It waited for a lock held by a unit that waited for one of its own.
    Deadlock,
    /// It waited for a lock longer than its
    /// [lock timeout](UnitOptions::with_lock_timeout).
    LockTimeout,
    /// The database could not order it with a concurrent transaction (a
    /// serialization failure).
    Serialization,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConflictReason::Deadlock => {
                "a deadlock: it waited for a lock held by a unit waiting for one of its own"
            }
            ConflictReason::LockTimeout => "a lock was not granted within its lock timeout",
            ConflictReason::Serialization => {
                "a serialization failure against a concurrent transaction"
            }
        })
    }
}
