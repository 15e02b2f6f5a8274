//! # message-store-memory
//!
//! [`MemoryStore`]: the [`MessageStore`] contract in process, with Message
//! DB's semantics and the same errors as the Postgres backend, so application
//! tests can run on it and production on Message DB without a difference.
//!
//! ```
//! use message_store::{ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName};
//! use message_store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = MemoryStore::new();
//! let stream = StreamName::new("account-1")?;
//! let position = store
//!     .write_one(&stream, NewMessage::new("Opened", serde_json::json!({})), ExpectedVersion::NoStream)
//!     .await?;
//! assert_eq!(position, 0);
//! assert_eq!(store.stream_version(&stream).await?, Some(0));
//! # Ok(())
//! # }
//! ```

mod state;
mod stored;
mod unit;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use message_store::backend::{self, jsonb, trace, validate_write};
use message_store::{
    Category, CategoryRead, ExpectedVersion, Message, MessageStore, NewMessage, OpenUnit, Result,
    StreamName, StreamRead, SubscribeOptions, Subscription, UnitOptions,
};
use tokio::sync::watch;

use message_store::backend::units::UnitId;
use message_store::backend::units::{self, Step};
use state::State;
use unit::MemoryUnit;

/// The `message_store.backend` of this backend's spans.
const BACKEND: &str = "memory";

/// An in-process message store. Cloning is cheap and shares the same
/// messages; every clone sees every write.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this store's data from another's in its `Display` (clones share it).
    instance: u64,
    state: RwLock<State>,
    /// Carries the last global position written, to wake subscriptions.
    written: watch::Sender<u64>,
    /// Changes whenever a unit of work ends, to wake the writes waiting for it.
    released: watch::Sender<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let (written, _) = watch::channel(0);
        let (released, _) = watch::channel(0);
        MemoryStore {
            inner: Arc::new(Inner {
                instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                state: RwLock::new(State::default()),
                written,
                released,
            }),
        }
    }

    /// How many messages the store holds.
    pub fn len(&self) -> usize {
        self.read_state(|state| state.len())
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f(&state)
    }
}

impl MemoryStore {
    /// A plain write: validated, stored once nothing blocks it, subscribers woken.
    async fn append(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        validate_write(stream, &messages)?;
        let mut messages = messages;
        jsonb::as_stored(&mut messages);
        let written = self
            .inner
            .until_done(None, |state| {
                state.append(stream, &mut messages, expected, None)
            })
            .await?;
        self.inner
            .written
            .send_replace(written.last_global_position);
        Ok(written.last_position)
    }
}

impl Inner {
    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `attempt` under the state lock until it need not wait for an
    /// open unit of work, waiting outside the lock for units to end. For a
    /// unit's own write (`unit`: its id and lock timeout), a wait that would
    /// close a cycle of units waiting for each other fails with a deadlock,
    /// and one longer than the timeout with a lock timeout.
    async fn until_done<T>(
        &self,
        unit: Option<(UnitId, Option<std::time::Duration>)>,
        mut attempt: impl FnMut(&mut State) -> Result<Step<T>>,
    ) -> Result<T> {
        let me = unit.map(|(me, _)| me);
        units::until_free(
            unit.and_then(|(_, timeout)| timeout),
            || {
                let mut state = self.write_state();
                let step = attempt(&mut state)?;
                // Subscribed under the lock every release is sent under.
                state.units.attempt(step, me, &self.released)
            },
            || {
                if let Some(me) = me {
                    self.write_state().units.stop_waiting(me);
                }
            },
        )
        .await
    }

    /// Ends a unit of work, storing its writes when `commit`, and wakes
    /// whoever waits for it (and, for a commit, the subscriptions).
    fn end_unit(&self, unit: UnitId, commit: bool) {
        let last = {
            let mut state = self.write_state();
            let last = state.end_unit(unit, commit);
            self.released.send_modify(|n| *n = n.wrapping_add(1));
            last
        };
        if let Some(last) = last {
            self.written.send_replace(last);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("messages", &self.len())
            .finish()
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in-memory message store #{}", self.inner.instance)
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        if trace::quiet() {
            // Nothing listens: the in-process append without the wrapping.
            return self.append(stream, messages, expected).await;
        }
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
            message_store::backend::validate_stream_read(stream)?;
            Ok(self.read_state(|state| state.read_stream(stream, &options, None)))
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
            Ok(self.read_state(|state| state.read_category(category, &options, None)))
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
            Ok(self.read_state(|state| state.last_message(stream, message_type, None)))
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "stream_version", stream.as_str());
        trace::call(span, trace::uncounted, async {
            Ok(self.read_state(|state| state.stream_version(stream.as_str(), None)))
        })
        .await
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        let span = trace::read(BACKEND, "category_head", category.as_str());
        trace::call(span, trace::uncounted, async {
            Ok(self.read_state(|state| state.category_head(category)))
        })
        .await
    }

    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
        trace::call(trace::unit(BACKEND, "begin"), trace::uncounted, async {
            let unit: Box<dyn OpenUnit> = Box::new(MemoryUnit::open(self.clone(), &options));
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
        true
    }

    fn wake_ups_live(&self) -> bool {
        true // every commit sends them, in process
    }
}
