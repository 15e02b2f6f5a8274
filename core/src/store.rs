//! The two traits every backend implements.

use std::fmt::{Debug, Display};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::backend::paging::{self, RawPage};
use crate::error::Result;
use crate::message::{Message, NewMessage};
use crate::read::{CategoryRead, StreamRead};
use crate::stream_name::{Category, StreamName};
use crate::subscription::SubscribeOptions;
use crate::unit::{OpenUnit, UnitOfWork, UnitOptions};
use crate::version::ExpectedVersion;

/// A Message DB-compatible message store.
///
/// The required surface is small and takes validated names; conveniences
/// that take names as strings too (writing one message or a batch, typed
/// messages, reading a whole stream, the last message) live once in
/// [`MessageStoreExt`](crate::MessageStoreExt), which every store gets.
/// The trait is object-safe: `Arc<dyn MessageStore>` and `Box<dyn MessageStore>`
/// are stores too.
///
/// `Display` names the store's data, without secrets: two store values on
/// the same data (clones, or two connections to one database) display the
/// same, and stores on different data differently. The consumer runtime
/// relies on it to refuse a second consumer on a position stream in use.
#[async_trait]
pub trait MessageStore: Debug + Display + Send + Sync + 'static {
    /// Appends `messages` to `stream` atomically: all or none.
    ///
    /// `expected` applies to the first message; the rest follow it. Returns the
    /// stream position of the last message written. Fails with
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion),
    /// [`Error::DuplicateMessageId`](crate::Error::DuplicateMessageId) or a
    /// validation error, in which case nothing was written.
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64>;

    /// Reads a stream in position order from `options.position()` (inclusive).
    /// A category-shaped name (no `-`) is refused with
    /// [`Error::NotAStream`](crate::Error::NotAStream).
    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>>;

    /// Reads a category in global order from `options.position()` (inclusive),
    /// applying the correlation and consumer-group filters.
    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>>;

    /// The message with the highest position in the stream, optionally only
    /// among messages of `message_type`. Works on any stream name, including a
    /// category-shaped one, as Message DB's `get_last_stream_message` does.
    /// Application code usually calls
    /// [`MessageStoreExt::last_message`](crate::MessageStoreExt::last_message)
    /// or [`last_message_of_type`](crate::MessageStoreExt::last_message_of_type).
    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>>;

    /// The position of the stream's last message; `None` when it has none.
    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>>;

    /// The global position of the category's last message; `None` when it has
    /// none. Consumers use it to start at the end and to report their lag.
    async fn category_head(&self, category: &Category) -> Result<Option<u64>>;

    /// Opens a unit of work: writes to any number of streams that commit
    /// together or not at all, and reads that see them (see
    /// [`UnitOfWork`](crate::UnitOfWork) for its locks and how it ends).
    /// Dropping the unit without committing rolls it back.
    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>>;

    /// Opens a resumable, at-least-once feed of a category.
    ///
    /// Core builds every subscription the same way, from the backend's
    /// [`wake_ups`](MessageStore::wake_ups); a backend implements this as
    /// `message_store::backend::subscribe(self, category, options).await`.
    async fn subscribe(
        &self,
        category: &Category,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>>;

    /// A signal that changes whenever messages may have been written to
    /// `category` (its value is not read), which wakes caught-up
    /// subscriptions before their poll interval; `None` when the backend has
    /// none (subscriptions then poll). Decorators pass their inner store's on.
    fn wake_ups(&self, category: &Category) -> Option<watch::Receiver<u64>> {
        let _ = category;
        None
    }

    /// True when a caught-up subscription is woken by a write as soon as it
    /// commits; false when it finds new messages by polling at its poll
    /// interval (for example on a genuine Message DB schema, which has no
    /// notification trigger).
    fn wakes_subscriptions_on_write(&self) -> bool {
        false
    }

    /// True while [`wake_ups`](MessageStore::wake_ups) are being delivered
    /// (on PostgreSQL: while the LISTEN connection is up). A caught-up
    /// subscription then reads again only when woken, or after its
    /// [fallback interval](crate::SubscribeOptions::with_fallback_interval);
    /// otherwise every poll interval. A backend must wake every
    /// subscription whenever its wake-ups resume after a gap, since writes
    /// in the gap woke nobody. The default, false, is always safe.
    fn wake_ups_live(&self) -> bool {
        false
    }

    /// Every message of a stream from `options.position()` on, fetched in
    /// pages of `options.batch_size()` as the returned stream is consumed, the
    /// next page requested while the current one is handed out (see
    /// [`paging::pages`](crate::backend::paging::pages)). A backend may override it to overlap more, never to
    /// yield something else. The request for the next page is in flight
    /// while the stream is held: on a backend with a connection pool it holds
    /// a connection until the stream is polled again or dropped.
    fn stream_messages<'a>(
        &'a self,
        stream: &StreamName,
        options: StreamRead,
    ) -> BoxStream<'a, Result<Message>> {
        paging::stream_pages(
            stream,
            options,
            move |stream, read| async move {
                let page = self.read_stream(&stream, read).await?;
                Ok(RawPage::decoded(page, |m| m.position))
            },
            Ok,
        )
    }

    /// Every message of a category from `options.position()` on, with its
    /// filters, fetched in pages of `options.batch_size()` as the returned stream
    /// is consumed, the next page requested while the current one is handed
    /// out (see [`paging::pages`](crate::backend::paging::pages)). A backend may override it to overlap
    /// more, never to yield something else. As with
    /// [`MessageStore::stream_messages`], the next page's request holds a
    /// pooled connection while the stream is held.
    fn category_messages<'a>(
        &'a self,
        category: &Category,
        options: CategoryRead,
    ) -> BoxStream<'a, Result<Message>> {
        paging::category_pages(
            category,
            options,
            move |category, read| async move {
                let page = self.read_category(&category, read).await?;
                Ok(RawPage::decoded(page, |m| m.global_position))
            },
            Ok,
        )
    }
}

/// A resumable feed of one category in global order.
///
/// Delivery is at least once: after a restart, reading resumes at the last
/// committed global position (inclusive), so work done since the last commit
/// is delivered again.
#[async_trait]
pub trait Subscription: Debug + Send {
    /// The next batch of messages at or after the cursor, in global order;
    /// waits (for a wake-up from the store, else the poll interval) while there
    /// are none. Never returns an empty batch. Cancel-safe: if the future is
    /// dropped, nothing is consumed.
    async fn next_batch(&mut self) -> Result<Vec<Message>>;

    /// Records durably that everything up to and including `global_position`
    /// was handled. Call it only after the handlers succeeded. A position
    /// past the last delivered message (or, before any delivery, past the
    /// position already recorded) is refused with
    /// [`Error::CommitAhead`](crate::Error::CommitAhead), since a restart
    /// would then skip the messages in between.
    async fn commit(&mut self, global_position: u64) -> Result<()>;

    /// Starts recording `global_position` as [`commit`](Subscription::commit)
    /// does, as a future that finishes the write apart from this
    /// subscription (spawn it), so reading and handling go on meanwhile. A
    /// position past the last delivered message is refused at once. Start
    /// the next only once the previous one finished: records must land in
    /// order. `None` when this subscription cannot (then await `commit`).
    fn commit_detached(
        &mut self,
        global_position: u64,
    ) -> Result<Option<futures::future::BoxFuture<'static, Result<()>>>> {
        let _ = global_position;
        Ok(None)
    }

    /// Writes the record of `global_position` into `unit`, so that the
    /// position is recorded by the unit's commit, together with the
    /// unit's other effects (exactly-once handling). Write it last: it
    /// takes the lock of the position streams' category, which every
    /// consumer of the category shares, until the unit ends.
    ///
    /// Fails as [`commit`](Subscription::commit) does:
    /// [`Error::CommitAhead`](crate::Error::CommitAhead) before writing,
    /// [`Error::PositionStreamInUse`](crate::Error::PositionStreamInUse)
    /// when another writer moved the position stream on (the unit is then
    /// aborted: nothing of it may commit). Once the unit committed, pass
    /// the result to [`committed`](Subscription::committed); after
    /// [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown),
    /// ask [`landed`](Subscription::landed).
    async fn commit_in(
        &mut self,
        unit: &mut dyn UnitOfWork,
        global_position: u64,
    ) -> Result<PendingCommit>;

    /// Takes note that the unit holding `pending` committed.
    fn committed(&mut self, pending: PendingCommit);

    /// Whether the unit holding `pending` committed, for a commit whose
    /// reply was lost: true when the position stream ends with its record
    /// (then taken note of, as [`committed`](Subscription::committed) does).
    async fn landed(&mut self, pending: &PendingCommit) -> Result<bool>;

    /// The global position the next batch starts at.
    fn position(&self) -> u64;

    /// The last position recorded in the position stream, as far as this
    /// subscription knows: the one read when it opened, then each of its
    /// own commits. Reading resumes at it inclusive, so after a restart the
    /// message at it is delivered again; an exactly-once consumer skips it.
    fn recorded(&self) -> Option<u64>;
}

/// A position record written into a unit of work and not yet known to be
/// committed (see [`Subscription::commit_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommit {
    /// The global position it records.
    pub global_position: u64,
    /// The position stream's version once it is stored.
    pub version: u64,
    /// The record's message id.
    pub record: uuid::Uuid,
}

macro_rules! forward_store {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: MessageStore + ?Sized> MessageStore for $wrapper<T> {
            async fn write(
                &self,
                stream: &StreamName,
                messages: Vec<NewMessage>,
                expected: ExpectedVersion,
            ) -> Result<u64> {
                (**self).write(stream, messages, expected).await
            }

            async fn read_stream(
                &self,
                stream: &StreamName,
                options: StreamRead,
            ) -> Result<Vec<Message>> {
                (**self).read_stream(stream, options).await
            }

            async fn read_category(
                &self,
                category: &Category,
                options: CategoryRead,
            ) -> Result<Vec<Message>> {
                (**self).read_category(category, options).await
            }

            async fn read_last_message(
                &self,
                stream: &StreamName,
                message_type: Option<&str>,
            ) -> Result<Option<Message>> {
                (**self).read_last_message(stream, message_type).await
            }

            async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
                (**self).stream_version(stream).await
            }

            async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
                (**self).category_head(category).await
            }

            async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
                (**self).begin(options).await
            }

            async fn subscribe(
                &self,
                category: &Category,
                options: SubscribeOptions,
            ) -> Result<Box<dyn Subscription>> {
                (**self).subscribe(category, options).await
            }

            fn wake_ups(&self, category: &Category) -> Option<watch::Receiver<u64>> {
                (**self).wake_ups(category)
            }

            fn wakes_subscriptions_on_write(&self) -> bool {
                (**self).wakes_subscriptions_on_write()
            }

            fn wake_ups_live(&self) -> bool {
                (**self).wake_ups_live()
            }

            fn stream_messages<'a>(
                &'a self,
                stream: &StreamName,
                options: StreamRead,
            ) -> BoxStream<'a, Result<Message>> {
                (**self).stream_messages(stream, options)
            }

            fn category_messages<'a>(
                &'a self,
                category: &Category,
                options: CategoryRead,
            ) -> BoxStream<'a, Result<Message>> {
                (**self).category_messages(category, options)
            }
        }
    };
}

forward_store!(Arc);
forward_store!(Box);

#[async_trait]
impl<T: Subscription + ?Sized> Subscription for Box<T> {
    async fn next_batch(&mut self) -> Result<Vec<Message>> {
        (**self).next_batch().await
    }

    async fn commit(&mut self, global_position: u64) -> Result<()> {
        (**self).commit(global_position).await
    }

    fn commit_detached(
        &mut self,
        global_position: u64,
    ) -> Result<Option<futures::future::BoxFuture<'static, Result<()>>>> {
        (**self).commit_detached(global_position)
    }

    async fn commit_in(
        &mut self,
        unit: &mut dyn UnitOfWork,
        global_position: u64,
    ) -> Result<PendingCommit> {
        (**self).commit_in(unit, global_position).await
    }

    fn committed(&mut self, pending: PendingCommit) {
        (**self).committed(pending);
    }

    async fn landed(&mut self, pending: &PendingCommit) -> Result<bool> {
        (**self).landed(pending).await
    }

    fn position(&self) -> u64 {
        (**self).position()
    }

    fn recorded(&self) -> Option<u64> {
        (**self).recorded()
    }
}
