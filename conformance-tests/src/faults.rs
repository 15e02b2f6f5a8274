//! `FailingStore`: a decorator that injects backend failures (errors, lost
//! replies, calls that never return, a pause of every call) into chosen
//! operations, units of work's commits included, so retry and resume cases
//! run identically on every backend.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, MessageStore, NewMessage, OpenUnit,
    Result, StreamName, StreamRead, SubscribeOptions, Subscription, UnitOptions,
};
use tokio::sync::watch;

mod unit;

/// The operations a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `write`.
    Write,
    /// `read_stream`.
    ReadStream,
    /// `read_category`.
    ReadCategory,
    /// `last_message`.
    LastMessage,
    /// `stream_version`.
    StreamVersion,
    /// `category_head`.
    CategoryHead,
    /// `begin` (opening a unit of work; the unit's own calls pass through).
    Begin,
    /// A unit of work's `commit`: a failure refuses it (nothing is stored).
    Commit,
}

/// The error a fault injects.
#[derive(Debug)]
pub struct InjectedFault(pub Operation);

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault in {:?}", self.0)
    }
}

impl std::error::Error for InjectedFault {}

#[derive(Default)]
struct Faults {
    /// (operation, how many more calls of it fail)
    pending: Vec<(Operation, u32)>,
    /// How many more writes are applied and then reported as failed (a lost reply).
    lost_replies: u32,
    /// How many more unit commits are carried out and then reported as
    /// `CommitOutcomeUnknown`.
    lost_commit_replies: u32,
    /// (operation, how many more calls of it never return)
    stalls: Vec<(Operation, u32)>,
}

/// Wraps a store; calls pass through unless a fault is armed for them.
/// Subscriptions opened on it read through it, so read faults hit them too,
/// and are woken by the inner store's wake-ups.
#[derive(Clone)]
pub struct FailingStore {
    inner: Arc<dyn MessageStore>,
    faults: Arc<Mutex<Faults>>,
    injected: Arc<AtomicU64>,
    /// True once [`FailingStore::silence_wake_ups`] was called.
    silenced: Arc<std::sync::atomic::AtomicBool>,
    /// True once [`FailingStore::without_wake_ups`] was called.
    deaf: Arc<std::sync::atomic::AtomicBool>,
    /// How many calls of each operation reached this store.
    calls: Arc<Mutex<std::collections::HashMap<Operation, u64>>>,
    /// True while every call waits (see [`FailingStore::pause`]).
    paused: Arc<watch::Sender<bool>>,
}

impl FailingStore {
    /// Wraps `inner`, with no faults armed.
    pub fn new(inner: Arc<dyn MessageStore>) -> Self {
        FailingStore {
            inner,
            faults: Arc::default(),
            injected: Arc::default(),
            calls: Arc::default(),
            silenced: Arc::default(),
            deaf: Arc::default(),
            paused: Arc::new(watch::channel(false).0),
        }
    }

    /// The next `times` calls of `operation` fail with a backend error.
    pub fn fail_next(&self, operation: Operation, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .push((operation, times));
    }

    /// The next `times` calls of `operation` never return, as when the
    /// server stops answering (a paused instance, a lock never released).
    pub fn stall_next(&self, operation: Operation, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stalls
            .push((operation, times));
    }

    /// The next `times` writes are carried out, then reported as failed, as
    /// when the connection drops after the commit but before the reply.
    pub fn lose_next_write_replies(&self, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost_replies += times;
    }

    /// The next `times` commits of units of work are carried out, then
    /// reported as [`Error::CommitOutcomeUnknown`].
    pub fn lose_next_commit_replies(&self, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost_commit_replies += times;
    }

    fn lose_commit_reply(&self) -> bool {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if faults.lost_commit_replies > 0 {
            faults.lost_commit_replies -= 1;
            self.injected.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    fn lose_reply(&self) -> bool {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if faults.lost_replies > 0 {
            faults.lost_replies -= 1;
            self.injected.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    /// From now on every call through this store waits (calls already
    /// inside the inner store finish), as for a process that is stopped or
    /// cut off: until [`FailingStore::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Lets the calls waiting since [`FailingStore::pause`] go on.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// From now on this store reports its wake-ups as not live
    /// ([`MessageStore::wake_ups_live`]), as a store whose LISTEN connection
    /// is down: its subscriptions must poll at their poll interval.
    pub fn silence_wake_ups(&self) {
        self.silenced.store(true, Ordering::SeqCst);
    }

    /// From now on subscriptions opened through this store get no
    /// wake-ups at all: they poll, as they do on genuine Message DB.
    pub fn without_wake_ups(&self) {
        self.deaf.store(true, Ordering::SeqCst);
    }

    /// How many calls of `operation` were made through this store so far
    /// (a subscription's reads included).
    pub fn calls(&self, operation: Operation) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.get(&operation).copied().unwrap_or(0)
    }

    async fn check(&self, operation: Operation) -> Result<()> {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(operation)
            .or_default() += 1;
        let mut paused = self.paused.subscribe();
        // The sender lives as long as this store, so this cannot fail.
        let _ = paused.wait_for(|paused| !paused).await;
        if self.take(operation, |faults| &mut faults.stalls) {
            std::future::pending::<()>().await;
        }
        if self.take(operation, |faults| &mut faults.pending) {
            return Err(Error::transient(InjectedFault(operation)));
        }
        Ok(())
    }

    /// Takes one armed fault of `operation` from the list `which` picks.
    fn take(
        &self,
        operation: Operation,
        which: fn(&mut Faults) -> &mut Vec<(Operation, u32)>,
    ) -> bool {
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = which(&mut faults)
            .iter_mut()
            .find(|(op, n)| *op == operation && *n > 0)
        {
            entry.1 -= 1;
            self.injected.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        false
    }
}

impl fmt::Debug for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailingStore")
            .field("inner", &self.inner)
            .finish()
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (with injected faults)", self.inner)
    }
}

#[async_trait]
impl MessageStore for FailingStore {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.check(Operation::Write).await?;
        let written = self.inner.write(stream, messages, expected).await?;
        if self.lose_reply() {
            // Written, but the caller cannot know.
            return Err(Error::OutcomeUnknown {
                stream: stream.as_str().to_owned(),
                source: Box::new(InjectedFault(Operation::Write)),
            });
        }
        Ok(written)
    }

    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>> {
        self.check(Operation::ReadStream).await?;
        self.inner.read_stream(stream, options).await
    }

    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        self.check(Operation::ReadCategory).await?;
        self.inner.read_category(category, options).await
    }

    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        self.check(Operation::LastMessage).await?;
        self.inner.read_last_message(stream, message_type).await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        self.check(Operation::StreamVersion).await?;
        self.inner.stream_version(stream).await
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        self.check(Operation::CategoryHead).await?;
        self.inner.category_head(category).await
    }

    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
        self.check(Operation::Begin).await?;
        let inner = self.inner.begin(options).await?;
        Ok(Box::new(unit::FailingUnit {
            inner,
            store: self.clone(),
        }))
    }

    async fn subscribe(
        &self,
        category: &Category,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        message_store::backend::subscribe(self, category, options).await
    }

    fn wake_ups(&self, category: &Category) -> Option<watch::Receiver<u64>> {
        if self.deaf.load(Ordering::SeqCst) {
            return None;
        }
        self.inner.wake_ups(category)
    }

    fn wakes_subscriptions_on_write(&self) -> bool {
        !self.deaf.load(Ordering::SeqCst) && self.inner.wakes_subscriptions_on_write()
    }

    fn wake_ups_live(&self) -> bool {
        !self.silenced.load(Ordering::SeqCst) && self.inner.wake_ups_live()
    }
}
