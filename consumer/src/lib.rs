//! The consumer runtime: drives any [`Subscription`](message_store::Subscription)
//! into handlers, in global order, at least once.
//!
//! What lives where: `message-store` holds the traits, the types and the
//! subscription machinery (a [`Subscription`](message_store::Subscription)
//! reads a category from a position and records positions); this crate
//! holds everything that runs handlers on top of one, so it can grow
//! without a breaking release of the trait crate. `use
//! message_store_consumer::prelude::*` brings both crates' everyday names.
//!
//! * Handlers are registered per message type (decoded through serde) with
//!   [`Consumer::on`], plus catch-alls with [`Consumer::on_any`]; they are
//!   async closures that may hold application state (capture an `Arc`).
//! * The position is recorded Eventide's way (`{category}:position[-{id}]`,
//!   `Recorded`, `{"position": N}`) every `position_update_interval` messages
//!   and at shutdown, **only after** the handlers of those messages succeeded.
//!   The write runs in the background while the next messages are handled
//!   (one at a time, in order; one asked for while another is in flight
//!   replaces any waiting, so only the newest is written next; a failed
//!   one is written again; they are awaited whenever the consumer catches
//!   up and at shutdown; once another instance has taken a fleet bucket
//!   over, the store refuses the old owner's records),
//!   so a crash may leave the record of the latest intervals unwritten: more is delivered again, nothing is skipped. On restart, reading resumes at the recorded position (inclusive): the
//!   last recorded message and anything after it are delivered again.
//! * A failing handler (an error, a panic, an attempt running past the
//!   optional [`handler_timeout`](ConsumerOptions::handler_timeout), or a
//!   message whose data or metadata cannot be read) is retried with
//!   exponential back-off; after the last attempt the consumer stops with
//!   [`Error::HandlerFailed`] or parks the message
//!   in `{category}:parked-{id}` and goes on ([`FailurePolicy`]). Parked
//!   messages can be listed ([`parked_messages`]), replayed
//!   ([`Consumer::replay_parked`]) or purged ([`purge_parked`], [`parked_to_purge`] for a dry run).
//! * Backend failures (a dropped connection) are retried forever with
//!   back-off; the consumer resumes where it was.
//! * [`ConsumerHandle::shutdown`] finishes the message in flight and records
//!   the position, within the
//!   [`shutdown_deadline`](ConsumerOptions::shutdown_deadline); past it,
//!   it drops what still runs and returns
//!   [`Error::ShutdownDeadline`], saying what
//!   was not recorded; [`ConsumerHandle::health`] and [`ConsumerHandle::lag`]
//!   report progress, and [`ConsumerHandle::caught_up`] resolves once
//!   everything there is has been handled ([`Consumer::run_until_caught_up`]
//!   handles what is there and stops: batch jobs and tests).
//! * [`Consumer::start_fleet`] runs one instance of a **fleet**: any number
//!   of instances sharing the category's buckets, which move between them
//!   by themselves, with positions a stale owner cannot overwrite (the
//!   [`fleet`] module has the protocol).
//!
//! ## Idempotent handlers
//!
//! Delivery is at least once, so a handler must tolerate seeing a message
//! again. Every [`Message`] carries its `global_position` (unique and
//! increasing within the category) and its stream `position`; the usual
//! pattern is to store, with the state a handler changes, the last global
//! position it applied, and skip messages at or below it.
//!
//! That guard holds for redeliveries but not for replays of parked
//! messages: a parked message keeps its global position, and by the time it
//! is replayed the consumer has applied messages past it, so the guard would
//! skip it for good. [`is_replay`] tells a handler that a message comes from
//! [`Consumer::replay_parked`]; apply a replay unless it was applied before
//! (a replay can run twice too, if the process dies before it is marked), by
//! keeping the global positions of applied replays with the state.
//!
//! Writes with an [`ExpectedVersion`](message_store::ExpectedVersion) are the other
//! safety net: a handler that re-runs writes against a version that has
//! already moved on and gets `WrongExpectedVersion` instead of a duplicate.
//!
//! ```
//! use std::collections::{BTreeSet, HashMap};
//! use std::sync::{Arc, Mutex};
//! use message_store_consumer::{is_replay, Consumer, HandlerResult};
//! use message_store::{Category, Message, TypedMessage};
//!
//! #[derive(serde::Deserialize)]
//! struct Deposited { amount: u64 }
//! impl TypedMessage for Deposited { const MESSAGE_TYPE: &'static str = "Deposited"; }
//!
//! /// Per account: the balance, the last global position applied in order,
//! /// and the global positions of the replays applied since.
//! #[derive(Default)]
//! struct Balance { amount: u64, last: u64, replays: BTreeSet<u64> }
//!
//! type Balances = Arc<Mutex<HashMap<String, Balance>>>;
//!
//! fn consumer(balances: Balances) -> message_store::Result<Consumer> {
//!     Ok(Consumer::new(Category::new("account")?).on(move |deposit: Deposited, message: Message| {
//!         let balances = balances.clone();
//!         async move {
//!             let mut balances = balances.lock().unwrap();
//!             let balance = balances.entry(message.stream_name.to_string()).or_default();
//!             let position = message.global_position;
//!             // Apply it and remember it, in one step, unless it was applied.
//!             if is_replay(&message) {
//!                 if balance.replays.insert(position) {
//!                     balance.amount += deposit.amount;
//!                 }
//!             } else if position > balance.last {
//!                 balance.amount += deposit.amount;
//!                 balance.last = position;
//!             }
//!             HandlerResult::Ok(())
//!         }
//!     }))
//! }
//! ```
//!
//! ## Exactly once
//!
//! A consumer with a handler registered through [`Consumer::on_in_unit`]
//! (or [`Consumer::on_any_in_unit`]) handles each message in its own unit
//! of work ([`message_store::UnitOfWork`]). The handlers write their
//! effects through the unit: messages, or on PostgreSQL the application's
//! own tables through the unit's connection
//! (`message_store_postgres::connection`). The runtime then writes the
//! consumer's position record into the same unit, last, and commits: the
//! effects and the position are stored together or not at all. After a
//! crash at any point the consumer resumes after the last committed
//! message, so each message's effects in the unit are applied exactly
//! once. Effects outside the unit (an email, an HTTP call, a plain
//! handler) are still at least once.
//!
//! - **Where the position lives.** In the consumer's usual position stream,
//!   `{category}:position[-{consumer id}]`, as Eventide's `Recorded`
//!   records, one per handled message (the position update interval does
//!   not apply), so Eventide's tools read it as ever.
//! - **Contention.** Every position stream of a category is in the
//!   category `{category}:position`, and a write takes its category's lock
//!   until the unit ends. All exactly-once consumers of one category (and
//!   all buckets of a fleet) therefore take turns at that lock for the
//!   time from their position write to their commit: one round trip plus
//!   the commit. The position is written last to keep that short; the
//!   handlers' own writes happen before it, under their own categories'
//!   locks.
//! - **Cost.** Each message is a transaction of its own: on PostgreSQL
//!   `BEGIN`, the handlers' statements, the position write and `COMMIT`,
//!   with a commit flush per message. The benchmark (`bench --only units`)
//!   measured one exactly-once consumer with one write per message at
//!   880 msg/s, 0.50x the same handler at least once (1749 msg/s, its
//!   position recorded every 100 messages).
//! - **Stale writers.** The position record expects the position
//!   stream's version. If another writer moved it on (a second consumer
//!   under the same id, or a fleet instance that took the bucket over),
//!   the unit fails before anything commits, its effects roll back, and
//!   the consumer (or bucket) stops with `PositionStreamInUse`.
//! - **Retries.** A handler failure rolls the unit back; the retry runs
//!   every handler of the message again in a fresh unit. A backend
//!   failure while recording the position or committing does the same,
//!   after the backend delay. A commit whose reply was lost is resolved by
//!   reading the position stream back.
//!
//! ## Parking and per-stream order
//!
//! [`FailurePolicy::Park`] gives up per-stream order for the stream of a
//! parked message: the consumer goes on, so later messages of that stream
//! are handled before the parked one, which is handled (if ever) when it is
//! replayed. Use it where that is acceptable: handlers whose effects commute
//! (counters, sets, notifications), or whose later messages do not depend on
//! the earlier ones. Where a stream's order matters (a state machine, a
//! balance that must not go negative), keep [`FailurePolicy::Stop`] (the
//! default) and fix the cause, or have the handler refuse a stream's later
//! messages while one of its messages is parked ([`parked_messages`] lists
//! them) and replay them all in order.

mod background;
mod error;
mod exactly_once;
pub mod fleet;
mod group;
mod handle;
mod handlers;
mod lag;
mod live;
mod options;
mod parked;
mod runtime;
pub mod simulate;

use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use handle::{ConsumerHandle, ConsumerHealth};
pub use handlers::{HandlerError, HandlerFuture, HandlerPanicked, HandlerResult, HandlerTimedOut};
pub use options::{
    ConsumerOptions, FailurePolicy, RetryPolicy, DEFAULT_POSITION_UPDATE_GAP,
    DEFAULT_SHUTDOWN_DEADLINE,
};
pub use parked::{
    is_replay, parked_messages, parked_to_purge, purge_parked, ParkedFrom, ParkedMessage,
    PARKED_FROM, PURGED, REPLAYED,
};

pub use error::{Error, ErrorKind, Result};
pub use group::group_member_id;
use handlers::Handlers;
use message_store::backend::meter::ConsumerMeters;
use message_store::Category;
use message_store::MessageStore;
use message_store::{Message, TypedMessage, UnitOfWork};
pub use parked::ReplayReport;

/// A consumer of one category: its handlers and options. Build it, then
/// [`start`](Consumer::start) it on a store.
#[derive(Debug, Clone)]
pub struct Consumer {
    category: Category,
    options: ConsumerOptions,
    handlers: Handlers,
}

impl Consumer {
    /// A consumer of `category` with Eventide's default options and no handlers.
    pub fn new(category: Category) -> Self {
        Consumer {
            category,
            options: ConsumerOptions::default(),
            handlers: Handlers::default(),
        }
    }

    /// Sets the options.
    pub fn with_options(mut self, options: ConsumerOptions) -> Self {
        self.options = options;
        self
    }

    /// Handles messages of `T`'s type, decoded into `T`. A decode failure
    /// counts as a handler failure. Several handlers of one type run in
    /// registration order.
    pub fn on<T, F, Fut>(mut self, handler: F) -> Self
    where
        T: TypedMessage + DeserializeOwned + Send + 'static,
        F: Fn(T, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.handlers.on::<T, F, Fut>(handler);
        self
    }

    /// Handles every message no typed handler takes.
    pub fn on_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.handlers.on_any(handler);
        self
    }

    /// Handles messages of `T`'s type in a unit of work, which the handler
    /// writes its effects through: messages, or on PostgreSQL its own
    /// tables through the unit's connection
    /// (`message_store_postgres::connection`). A consumer with such a
    /// handler handles every message exactly once: each in its own unit,
    /// which records the consumer's position last, so the effects and the
    /// position commit together, and a message whose unit did not commit
    /// is handled again in a fresh one. A retry after a failure rolls the
    /// unit back and runs all of the message's handlers again (plain ones
    /// too, whose effects outside the unit are at least once). See the
    /// crate docs, "Exactly once".
    ///
    /// ```
    /// use message_store_consumer::prelude::*;
    /// # #[derive(serde::Deserialize)] struct Deposited { amount: u64 }
    /// # impl message_store::TypedMessage for Deposited { const MESSAGE_TYPE: &'static str = "Deposited"; }
    /// # fn consumer() -> message_store::Result<Consumer> {
    /// let consumer = Consumer::new(Category::new("account")?).on_in_unit(
    ///     |deposit: Deposited, message: Message, unit: &mut dyn UnitOfWork| {
    ///         Box::pin(async move {
    ///             let totals = StreamName::new(format!("totals-{}", message.stream_name.id().unwrap_or("none")))?;
    ///             let event = NewMessage::new("Counted", json!({ "amount": deposit.amount }));
    ///             unit.write(&totals, vec![event], ExpectedVersion::Any).await?;
    ///             HandlerResult::Ok(())
    ///         })
    ///     },
    /// );
    /// # Ok(consumer)
    /// # }
    /// ```
    pub fn on_in_unit<T, F>(mut self, handler: F) -> Self
    where
        T: TypedMessage + DeserializeOwned + Send + 'static,
        F: for<'u> Fn(T, Message, &'u mut dyn UnitOfWork) -> HandlerFuture<'u>
            + Send
            + Sync
            + 'static,
    {
        self.handlers.on_in_unit::<T, F>(handler);
        self
    }

    /// Handles every message no typed handler takes, in a unit of work, as
    /// [`Consumer::on_in_unit`] does.
    pub fn on_any_in_unit<F>(mut self, handler: F) -> Self
    where
        F: for<'u> Fn(Message, &'u mut dyn UnitOfWork) -> HandlerFuture<'u> + Send + Sync + 'static,
    {
        self.handlers.on_any_in_unit(handler);
        self
    }

    /// The consumer's category.
    pub fn category(&self) -> &Category {
        &self.category
    }

    /// Validates the options and starts consuming on the current Tokio
    /// runtime. Invalid options are returned here.
    ///
    /// A consumer with an id holds its position stream through a lease in
    /// the store (a one-bucket [fleet], with the
    /// [`lease_duration`](ConsumerOptions::with_lease_duration)): a second
    /// instance under the same id, in this process or another, waits as a
    /// standby (running, handling nothing) and takes over when the first
    /// shuts down, or once its lease runs out when it dies. Its handle's
    /// [`health`](ConsumerHandle::health), [`lag`](ConsumerHandle::lag) and
    /// [`caught_up`](ConsumerHandle::caught_up) follow whichever instance
    /// works: a standby's `caught_up` waits until it has taken over.
    ///
    /// Without an id, or with [`with_standby(false)`](ConsumerOptions::with_standby),
    /// it opens the subscription here (a failure to open is returned) and
    /// runs at once. A second such consumer on the same position stream in
    /// this process on the same store is refused with
    /// [`message_store::Error::PositionStreamInUse`]; one in another process is
    /// stopped with that error at its first position write.
    pub async fn start<S: MessageStore>(self, store: S) -> Result<ConsumerHandle> {
        self.options.validate()?;
        let store: Arc<dyn MessageStore> = Arc::new(store);
        if self.options.standby && self.options.subscription.consumer_id().is_some() {
            return self.start_leased(store).await;
        }
        let position_stream = self
            .category
            .position_stream(self.options.subscription.consumer_id())?;
        let claim = live::Claim::take(store.as_ref(), &position_stream)?;
        let subscription = store
            .subscribe(&self.category, self.options.subscription.clone())
            .await?;
        let health = Arc::new(Mutex::new(ConsumerHealth {
            running: true,
            position: subscription.position(),
            ..ConsumerHealth::default()
        }));
        let token = CancellationToken::new();
        let read = self.options.subscription.clone();
        let (progress, watching) = tokio::sync::watch::channel(0);
        let meters = ConsumerMeters::new(
            self.options.subscription.consumer_id(),
            self.category.as_str(),
        );
        let task = runtime::spawn(runtime::Runner {
            store: store.clone(),
            category: self.category.clone(),
            options: self.options,
            handlers: Arc::new(self.handlers),
            subscription,
            token: token.clone(),
            health: health.clone(),
            progress,
            claim: Some(claim.clone()),
            lease: None,
            fence: None,
            crash: None,
            meters,
            background: None,
            last_record: Default::default(),
        });
        Ok(ConsumerHandle {
            token,
            run: handle::Run::Alone { task, claim },
            health,
            progress: watching,
            store,
            category: self.category,
            read,
        })
    }

    /// Starts the consumer as the one bucket of a fleet under its id.
    async fn start_leased(self, store: Arc<dyn MessageStore>) -> Result<ConsumerHandle> {
        let health = Arc::new(Mutex::new(ConsumerHealth {
            running: true,
            ..ConsumerHealth::default()
        }));
        let (progress, watching) = tokio::sync::watch::channel(0);
        let sink = fleet::Sink {
            health: health.clone(),
            progress,
        };
        let fleet = self.options.standby_fleet();
        let category = self.category.clone();
        let read = self.options.subscription.clone();
        let running = self.launch(store.clone(), fleet, Some(sink)).await?;
        Ok(ConsumerHandle {
            token: running.token,
            run: handle::Run::Leased { task: running.task },
            health,
            progress: watching,
            store,
            category,
            read,
        })
    }

    /// Starts the consumer, lets it handle everything there is for it now
    /// (see [`ConsumerHandle::caught_up`]), shuts it down (recording the
    /// position) and returns its final health: a batch job, or a test's
    /// "process what was written".
    pub async fn run_until_caught_up<S: MessageStore>(self, store: S) -> Result<ConsumerHealth> {
        let handle = self.start(store).await?;
        match handle.caught_up().await {
            Ok(()) => handle.shutdown().await,
            Err(Error::ConsumerStopped { .. }) => handle.join().await,
            Err(other) => {
                handle.shutdown().await.ok();
                Err(other)
            }
        }
    }
}

/// Everything an application's consumer code needs, in one import: the
/// store's [`message_store::prelude`] and this crate's entry points. Its
/// `Error` and `Result` are this crate's, which `?` fills from store calls
/// as well as from the runtime's.
pub mod prelude {
    pub use crate::{
        Consumer, ConsumerHandle, ConsumerHealth, ConsumerOptions, Error, FailurePolicy,
        HandlerResult, Result, RetryPolicy,
    };
    pub use message_store::prelude::*;
}
