//! # message-store-postgres
//!
//! [`PostgresStore`]: the [`MessageStore`] traits over
//! [Message DB](https://github.com/message-db/message-db) 1.3 on PostgreSQL,
//! through its public SQL functions (and, for a consumer-group member whose
//! group our installer indexed, that function's query itself: see
//! [`InstallOptions::with_consumer_group_index`]). It works on a database installed by
//! Message DB's own scripts (even as the functions-only `message_store`
//! role), and [`PostgresStore::install`] sets up a compatible schema itself.
//!
//! * A batch write is one statement, one round trip, one transaction.
//! * Concurrent writes share transactions (group commit), each call with
//!   its own outcome; see [`PostgresStore::with_group_commit`].
//! * Errors map to the same [`Error`](message_store::Error) variants the memory backend returns.
//! * Subscriptions wake on `NOTIFY` when our schema's trigger is installed,
//!   and poll otherwise.
//!
//! ```no_run
//! use message_store::{ExpectedVersion, MessageStoreExt, NewMessage, StreamName};
//! use message_store_postgres::PostgresStore;
//!
//! # async fn example() -> message_store::Result<()> {
//! let store = PostgresStore::connect("postgres://message_store@localhost/message_store").await?;
//! let stream = StreamName::new("account-123")?;
//! store.write_one(&stream, NewMessage::new("Opened", serde_json::json!({})), ExpectedVersion::NoStream).await?;
//! # Ok(())
//! # }
//! ```

mod connect;
mod convert;
mod error;
mod group;
mod install;
mod member;
mod notify;
mod pooler;
mod reads;
mod retry;
mod rows;
mod statements;
mod unit;
mod warm;
mod write;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use message_store::backend::paging;
use message_store::backend::{self, trace, validate_write};
use message_store::{
    Category, CategoryRead, ExpectedVersion, Message, MessageStore, NewMessage, OpenUnit, Result,
    StreamName, StreamRead, SubscribeOptions, Subscription, UnitOfWork, UnitOptions,
};
use reads::raw_page;
use sqlx::postgres::PgConnection;
use sqlx::postgres::PgPool;
use tokio::sync::watch;

pub use connect::DEFAULT_CONNECT_TIMEOUT;
pub use error::PostgresError;
pub use group::MAX_GROUP_MESSAGES;
pub use install::{InstallOptions, InstallOutcome, MAX_INDEXED_GROUP_SIZE};
pub use notify::{ListenerHealth, CHANNEL as NOTIFY_CHANNEL};
pub use rows::message_from_row;
pub use sqlx;
pub use unit::Within;

use error::map_error;
use notify::Notifier;
use pooler::leased;
use retry::read_with_retry;
use warm::Warm;

/// The `message_store.backend` of this backend's spans.
const BACKEND: &str = "postgres";

/// The Message DB versions this backend serves: 1.3 and later 1.x.
pub const SUPPORTED_VERSIONS: &str = "Message DB 1.3.0 or a later 1.x";

/// A message store on PostgreSQL with Message DB. Cloning is cheap and
/// shares the connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    /// Present with group commit on (see [`PostgresStore::with_group_commit`]).
    group: Option<Arc<group::Committer>>,
}

struct Inner {
    pool: PgPool,
    /// Connections kept between calls (see [`warm`]).
    warm: Arc<Warm>,
    /// Where we are connected, without credentials.
    description: String,
    /// The version `message_store_version()` reported.
    version: String,
    /// Present when the schema has our NOTIFY trigger (and no pooler
    /// stands between: `LISTEN` needs a session).
    notifier: Option<Arc<Notifier>>,
    /// Behind a transaction-mode pooler (see [`pooler`]).
    pooled: bool,
    /// Which consumer-group members' indexes exist (see [`member`]).
    members: member::MemberIndexes,
}

impl PostgresStore {
    /// Installs a Message DB 1.3.0-compatible schema into the database `pool`
    /// connects to (see [`InstallOptions`]); leaves an existing genuine Message
    /// DB untouched. Idempotent.
    pub async fn install(pool: &PgPool, options: &InstallOptions) -> Result<InstallOutcome> {
        install::install(pool, options).await
    }

    /// How often a call may meet a dead pooled connection: once per
    /// connection the pool may hold, plus the fresh one.
    fn attempts(&self) -> u32 {
        self.inner.pool.options().get_max_connections() + 1
    }

    /// The pool, for queries of your own.
    ///
    /// The store keeps the connection of a completed call out of the pool for
    /// its next call, until it has been unused for a second (never when the
    /// pool is at its limit with nothing idle). So: closing the pool while the
    /// store lives may wait that long; the pool's `before_acquire` and
    /// `after_release` hooks run only when a connection goes through the
    /// pool, not for each store call; and a connection may exceed the pool's
    /// `max_lifetime` by up to a minute (the longest the store keeps one).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The Message DB version the database reports.
    pub fn message_db_version(&self) -> &str {
        &self.inner.version
    }

    /// True when the schema notifies writes, so subscriptions need not poll.
    pub fn has_notifications(&self) -> bool {
        self.inner.notifier.is_some()
    }

    /// The store's writes and reads on a transaction the caller holds,
    /// committed or rolled back with the caller's own changes (pass
    /// `&mut *tx` for a `sqlx::Transaction`). Refused with
    /// [`PostgresError::NotInTransaction`] for a connection with no
    /// transaction begun through sqlx. Statements are prepared as the
    /// store's own are: named, unless the store was opened behind a
    /// pooler, so give a connection of the same kind. See [`Within`].
    ///
    /// ```no_run
    /// use message_store::{ExpectedVersion, NewMessage, StreamName, UnitOfWork};
    /// # async fn example(store: message_store_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE orders SET placed = true WHERE id = $1").bind(7).execute(&mut *tx).await?;
    /// let stream = StreamName::new("order-7")?;
    /// store
    ///     .within(&mut *tx)?
    ///     .write(&stream, vec![NewMessage::new("Placed", serde_json::json!({}))], ExpectedVersion::Any)
    ///     .await?;
    /// tx.commit().await?; // the row and the event, or neither
    /// # Ok(())
    /// # }
    /// ```
    pub fn within<'c>(&self, conn: &'c mut PgConnection) -> Result<Within<'c>> {
        Within::new(self, conn)
    }

    /// The state of the LISTEN connection, when notifications are in use.
    pub fn listener_health(&self) -> Option<ListenerHealth> {
        self.inner.notifier.as_ref().map(|n| n.health())
    }
}

/// The connection of a unit of work this backend opened, for the caller's
/// own queries in the unit's transaction (`None` for another backend's
/// unit, or one that has ended). Do not end the transaction on it: commit
/// or roll back through the unit.
pub fn connection(unit: &mut dyn UnitOfWork) -> Option<&mut PgConnection> {
    unit.backend()?.downcast_mut::<PgConnection>()
}

fn version_supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(Some(1)), Some(Some(minor))) if minor >= 3)
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("at", &self.inner.description)
            .field("message_db_version", &self.inner.version)
            .field("notifications", &self.has_notifications())
            .finish()
    }
}

impl fmt::Display for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.description)
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let span = trace::write(BACKEND, stream.as_str(), &messages);
        trace::call(span, trace::uncounted, async move {
            validate_write(stream, &messages)?;
            self.write_messages(stream, messages, expected).await
        })
        .await
    }

    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>> {
        let rows = self.stream_rows(stream, &options).await?;
        Ok(rows::decode_all(&rows)?)
    }

    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        self.category_messages_now(category, &options).await
    }

    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        let span = trace::read(BACKEND, "read_last_message", stream.as_str());
        trace::call(span, trace::present, async {
            let row = read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| statements::read_last(
                    conn,
                    persistent,
                    stream,
                    message_type
                ))
            })
            .await
            .map_err(|e| map_error(e, None))?;
            Ok(row.as_ref().map(rows::decode).transpose()?)
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "stream_version", stream.as_str());
        trace::call(span, trace::uncounted, async {
            let version = read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| statements::stream_version(
                    conn, persistent, stream
                ))
            })
            .await
            .map_err(|e| map_error(e, None))?;
            Ok(version.and_then(convert::version_from_bigint))
        })
        .await
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "category_head", category.as_str());
        trace::call(span, trace::uncounted, async {
            let head = read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| statements::category_head(
                    conn, persistent, category
                ))
            })
            .await
            .map_err(|e| map_error(e, None))?;
            Ok(head
                .map(|gp| convert::position_from_bigint(gp, "global_position"))
                .transpose()?)
        })
        .await
    }

    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
        let span = trace::unit(BACKEND, "begin");
        trace::call(span, trace::uncounted, async {
            let unit: Box<dyn OpenUnit> = Box::new(unit::PgUnit::begin(self, &options).await?);
            Ok(unit)
        })
        .await
    }

    async fn subscribe(
        &self,
        category: &Category,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        backend::subscribe(self, category, options).await
    }

    fn wake_ups(&self, category: &Category) -> Option<watch::Receiver<u64>> {
        let notifier = self.inner.notifier.as_ref()?;
        Some(notifier.subscribe(category.as_str()))
    }

    fn wakes_subscriptions_on_write(&self) -> bool {
        self.has_notifications()
    }

    fn wake_ups_live(&self) -> bool {
        self.inner
            .notifier
            .as_ref()
            .is_some_and(|notifier| notifier.health().connected)
    }

    // The paged reads fetch rows and decode them apart, so the request for
    // the next page goes out before this one is decoded: the server reads
    // page k+1 while page k is decoded.
    fn stream_messages<'a>(
        &'a self,
        stream: &StreamName,
        options: StreamRead,
    ) -> BoxStream<'a, Result<Message>> {
        paging::stream_pages(
            stream,
            options,
            move |stream, read| async move { raw_page(self.stream_rows(&stream, &read).await?, 3) },
            |rows| Ok(rows::decode_all(&rows)?),
        )
    }

    fn category_messages<'a>(
        &'a self,
        category: &Category,
        options: CategoryRead,
    ) -> BoxStream<'a, Result<Message>> {
        paging::category_pages(
            category,
            options,
            move |category, read| async move {
                raw_page(self.category_rows(&category, &read).await?, 4)
            },
            |rows| Ok(rows::decode_all(&rows)?),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions() {
        assert!(version_supported("1.3.0"));
        assert!(version_supported("1.4.2"));
        assert!(!version_supported("1.2.4"));
        assert!(!version_supported("2.0.0"));
        assert!(!version_supported("garbage"));
    }
}
