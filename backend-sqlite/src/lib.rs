//! # message-store-sqlite
//!
//! [`SqliteStore`]: the [`MessageStore`] contract on one SQLite file, with
//! Message DB's semantics and the same errors as the other backends, for
//! small services, edge deployments and command-line tools that want a
//! durable store without a server.
//!
//! ```
//! use message_store::{ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName};
//! use message_store_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = SqliteStore::open_temporary().await?;
//! let stream = StreamName::new("account-1")?;
//! let position = store
//!     .write_one(&stream, NewMessage::new("Opened", serde_json::json!({})), ExpectedVersion::NoStream)
//!     .await?;
//! assert_eq!(position, 0);
//! assert_eq!(store.stream_version(&stream).await?, Some(0));
//! # Ok(())
//! # }
//! ```
//!
//! ## Storage
//! The file is in WAL mode: readers never wait for the writer. One write
//! runs at a time (`BEGIN IMMEDIATE`), so global positions are in commit
//! order. Each row stores, beside Message DB's columns, what Message DB
//! computes when it reads (the category, the consumer-group hash of the
//! cardinal id, the correlation's category), so category, correlation and
//! consumer-group reads are index scans that hash nothing. The schema is
//! created on the first open and carries a version (`PRAGMA user_version`,
//! [`SCHEMA_VERSION`]); a file with a newer one is refused.
//!
//! Durability is [`Durability::Full`] by default: a write returns once its
//! commit is synced. [`Durability::Normal`] syncs at checkpoints instead.
//!
//! ## Units of work
//! A unit takes its categories' locks in this process, keeps its writes
//! pending and stores them in one transaction at the commit (see the
//! `unit` module). Its own reads show its messages at the global
//! positions the commit gives them if nothing else commits first; another
//! commit in between moves them on. If another process wrote one of the
//! unit's streams or locked categories since the unit saw it, the commit
//! fails with a transient serialization conflict and stores nothing.
//!
//! ## What differs from PostgreSQL
//! Global positions have no gaps: a write refused for a duplicate id, or
//! rolled back, burns none (Message DB's sequence does). A plain write
//! waits for a unit holding one of its ids before it checks its expected
//! version.
//!
//! ## Wake-ups
//! A write through a store wakes that store's subscriptions (and its
//! clones') at once. Writes by another process sharing the file are found
//! by polling, at each subscription's poll interval.

mod error;
mod locks;
mod read;
mod rows;
mod schema;
mod unit;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use message_store::backend::units::lock_key;
use message_store::backend::{self, jsonb, trace, validate_stream_read, validate_write};
use message_store::stream_name::category_of;
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, MessageStore, NewMessage, OpenUnit,
    Result, StreamName, StreamRead, SubscribeOptions, Subscription, UnitOptions,
};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{watch, Mutex};

pub use error::SqliteError;
pub use schema::{Durability, SCHEMA_VERSION};

/// The `message_store.backend` of this backend's spans.
const BACKEND: &str = "sqlite";

/// How a store file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    durability: Durability,
    busy_timeout: Duration,
    readers: u32,
    single_process: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            single_process: false,
        }
    }
}

impl SqliteOptions {
    /// The defaults: [`Durability::Full`], a 5 s wait for another
    /// process's write, 4 read connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// When a commit is on disk (see [`Durability`]).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a write waits while another process writes the file before
    /// it fails with a transient error.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether this process is the only one writing the file (default
    /// false). Then every write wakes the subscriptions waiting for it, so
    /// a caught-up subscription reads only when woken, or after its
    /// [fallback interval](message_store::SubscribeOptions::with_fallback_interval),
    /// instead of polling every poll interval for other processes' writes.
    pub fn with_single_process(mut self, single_process: bool) -> Self {
        self.single_process = single_process;
        self
    }

    /// How many connections read at once (at least 1).
    pub fn with_readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }
}

/// A message store on one SQLite file. Cloning is cheap and shares the
/// connections; every clone sees every write and is woken by it.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    reads: SqlitePool,
    /// The one connection this store writes through. Every transaction on
    /// it runs in a task of its own, which ends it (commit or roll back)
    /// even when the caller stops waiting.
    writer: Arc<Mutex<SqliteConnection>>,
    /// Units of work's category locks, and plain writes'.
    locks: Arc<locks::Locks>,
    /// Carries the last global position written, to wake subscriptions.
    written: watch::Sender<u64>,
    /// No other process writes the file (see [`SqliteOptions::with_single_process`]).
    single_process: bool,
    /// Delete the file when the last clone goes (see [`SqliteStore::open_temporary`]).
    temporary: bool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the store at `path` with the default
    /// [`SqliteOptions`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating it if missing) the store at `path`.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        Self::open_file(path.as_ref(), &options, false).await
    }

    /// A store on a new file in the system's temporary directory, deleted
    /// when the last clone of the store is dropped: for tests.
    pub async fn open_temporary() -> Result<Self> {
        Self::open_temporary_with(SqliteOptions::default().with_durability(Durability::Normal))
            .await
    }

    /// [`open_temporary`](SqliteStore::open_temporary) with `options`.
    pub async fn open_temporary_with(options: SqliteOptions) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "message-store-{}.sqlite",
            uuid::Uuid::new_v4().simple()
        ));
        Self::open_file(&path, &options, true).await
    }

    async fn open_file(path: &Path, options: &SqliteOptions, temporary: bool) -> Result<Self> {
        let connect = schema::connect_options(path, options.durability, options.busy_timeout);
        let mut writer = SqliteConnection::connect_with(&connect)
            .await
            .map_err(error::sql)?;
        schema::prepare(&mut writer).await?;
        let reads = SqlitePoolOptions::new()
            .max_connections(options.readers)
            .connect_with(connect)
            .await
            .map_err(error::sql)?;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                reads,
                writer: Arc::new(Mutex::new(writer)),
                locks: Arc::new(locks::Locks::new()),
                written: watch::channel(0).0,
                single_process: options.single_process,
                temporary,
            }),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.inner.reads.acquire().await.map_err(error::sql)
    }

    /// A plain write: validated, stored, subscribers woken.
    async fn append(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        validate_write(stream, &messages)?;
        let mut messages = messages;
        jsonb::as_stored(&mut messages);
        let key = lock_key(category_of(stream.as_str()));
        let ids: Vec<uuid::Uuid> = messages.iter().map(|m| m.id).collect();
        // Held while it writes: units of work see it as PostgreSQL's
        // writers see a write_message holding the category's lock.
        let hold = self.inner.locks.hold(key, &ids).await?;
        let (store, stream) = (self.clone(), stream.clone());
        let task = tokio::spawn(async move {
            let written = {
                let mut writer = store.inner.writer.clone().lock_owned().await;
                write::append(&mut writer, &stream, &messages, expected).await?
            };
            drop(hold);
            store
                .inner
                .written
                .send_replace(written.last_global_position);
            Ok(written.last_position)
        });
        task.await.map_err(Error::backend)?
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.temporary {
            // Open connections keep an unlinked file alive until they close.
            for suffix in ["", "-wal", "-shm"] {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl fmt::Display for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite message store at {}", self.inner.path.display())
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let call = trace::write(BACKEND, stream.as_str(), &messages);
        trace::call(
            call,
            trace::uncounted,
            self.append(stream, messages, expected),
        )
        .await
    }

    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>> {
        let span = trace::read(BACKEND, "read_stream", stream.as_str());
        trace::call(span, trace::counted, async {
            validate_stream_read(stream)?;
            Ok(read::stream(&mut *self.reader().await?, stream, &options).await?)
        })
        .await
    }

    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        let span = trace::read(BACKEND, "read_category", category.as_str());
        trace::call(span, trace::counted, async {
            options.validate()?;
            Ok(read::category(&mut *self.reader().await?, category, &options).await?)
        })
        .await
    }

    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        let span = trace::read(BACKEND, "read_last_message", stream.as_str());
        trace::call(span, trace::present, async {
            Ok(read::last(&mut *self.reader().await?, stream, message_type).await?)
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "stream_version", stream.as_str());
        trace::call(span, trace::uncounted, async {
            Ok(read::stream_version(&mut *self.reader().await?, stream).await?)
        })
        .await
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "category_head", category.as_str());
        trace::call(span, trace::uncounted, async {
            Ok(read::category_head(&mut *self.reader().await?, category).await?)
        })
        .await
    }

    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
        trace::call(trace::unit(BACKEND, "begin"), trace::uncounted, async {
            let unit: Box<dyn OpenUnit> = Box::new(unit::SqliteUnit::open(self.clone(), &options));
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

    fn wake_ups(&self, _category: &Category) -> Option<watch::Receiver<u64>> {
        Some(self.inner.written.subscribe())
    }

    fn wakes_subscriptions_on_write(&self) -> bool {
        self.inner.single_process
    }

    fn wake_ups_live(&self) -> bool {
        self.inner.single_process
    }
}
