//! For backends that give units of work PostgreSQL's locking in process
//! (the memory store, SQLite): the open units, the category locks they
//! hold, the message ids they are writing, their pending messages, and
//! which unit waits for which.
//!
//! A lock is keyed as Message DB keys its advisory lock, by `hash_64` of the
//! category, so categories whose hashes collide share one, as they do there.
//! A unit holds each lock it took, and each id it wrote, until it ends.

use std::collections::HashMap;

use uuid::Uuid;

use crate::stream_name::Category;

/// Identifies an open unit of work.
pub type UnitId = u64;

/// The lock key of a category: Message DB's `hash_64(category)`.
pub fn lock_key(category: &str) -> i64 {
    crate::hash_64(category)
}

/// The distinct lock keys of `categories`, in the one order every unit
/// takes them (so that units locking up front never deadlock).
pub fn lock_order(categories: &[Category]) -> Vec<i64> {
    let mut keys: Vec<i64> = categories.iter().map(|c| lock_key(c.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A message a unit wrote and has not committed.
pub trait PendingMessage {
    /// Its id, which no other writer may use while the unit is open.
    fn id(&self) -> Uuid;
}

/// The open units of one store, their locks, ids and pending messages `M`.
pub struct Units<M> {
    last: UnitId,
    open: HashMap<UnitId, Pending<M>>,
    /// Lock key -> the unit holding it.
    locks: HashMap<i64, UnitId>,
    /// Message id -> the unit that wrote it.
    ids: HashMap<Uuid, UnitId>,
}

impl<M> Default for Units<M> {
    fn default() -> Self {
        Units {
            last: 0,
            open: HashMap::new(),
            locks: HashMap::new(),
            ids: HashMap::new(),
        }
    }
}

/// What an open unit holds.
struct Pending<M> {
    /// Its writes, in global-position order.
    messages: Vec<M>,
    locks: Vec<i64>,
    /// Ids reserved without a message (see [`Units::reserve`]).
    reserved: Vec<Uuid>,
    /// The unit it waits for, while it waits.
    waiting_for: Option<UnitId>,
}

impl<M: PendingMessage> Units<M> {
    /// Opens a unit.
    pub fn open(&mut self) -> UnitId {
        self.last += 1;
        let pending = Pending {
            messages: Vec::new(),
            locks: Vec::new(),
            reserved: Vec::new(),
            waiting_for: None,
        };
        self.open.insert(self.last, pending);
        self.last
    }

    /// True when no unit is open, so nothing can stand in a write's way.
    pub fn none_open(&self) -> bool {
        self.open.is_empty()
    }

    /// The pending messages of `unit` (none for a unit not open, or for `None`).
    pub fn messages(&self, unit: Option<UnitId>) -> &[M] {
        unit.and_then(|u| self.open.get(&u))
            .map_or(&[], |p| p.messages.as_slice())
    }

    /// The unit holding the lock `key`, other than `me`.
    pub fn lock_held(&self, key: i64, me: Option<UnitId>) -> Option<UnitId> {
        self.locks.get(&key).copied().filter(|&h| Some(h) != me)
    }

    /// The unit that wrote `id` and has not ended.
    pub fn id_holder(&self, id: &Uuid) -> Option<UnitId> {
        self.ids.get(id).copied()
    }

    /// Gives `unit` the lock `key` (free, or its own already).
    pub fn lock(&mut self, unit: UnitId, key: i64) {
        if self.locks.insert(key, unit).is_none() {
            if let Some(pending) = self.open.get_mut(&unit) {
                pending.locks.push(key);
            }
        }
    }

    /// Reserves `ids` for `unit` (a plain write in flight, which has no
    /// pending messages), until it ends.
    pub fn reserve(&mut self, unit: UnitId, ids: &[Uuid]) {
        let Some(pending) = self.open.get_mut(&unit) else {
            return;
        };
        for &id in ids {
            if self.ids.insert(id, unit).is_none() {
                pending.reserved.push(id);
            }
        }
    }

    /// Adds written messages to `unit`, reserving their ids.
    pub fn add(&mut self, unit: UnitId, messages: Vec<M>) {
        let Some(pending) = self.open.get_mut(&unit) else {
            return;
        };
        for message in &messages {
            self.ids.insert(message.id(), unit);
        }
        pending.messages.extend(messages);
    }

    /// Ends `unit`: releases its locks and ids and hands back its messages.
    pub fn end(&mut self, unit: UnitId) -> Vec<M> {
        let Some(pending) = self.open.remove(&unit) else {
            return Vec::new();
        };
        for key in &pending.locks {
            self.locks.remove(key);
        }
        for message in &pending.messages {
            self.ids.remove(&message.id());
        }
        for id in &pending.reserved {
            self.ids.remove(id);
        }
        pending.messages
    }

    /// Records that `unit` waits for `holder`; false, recording nothing, when
    /// `holder` waits (perhaps through others) for `unit`: a deadlock.
    pub fn wait(&mut self, unit: UnitId, holder: UnitId) -> bool {
        let mut next = Some(holder);
        // A chain visits each open unit at most once: the graph has no
        // cycle, since a wait that would close one is refused here.
        for _ in 0..=self.open.len() {
            match next {
                Some(u) if u == unit => return false,
                Some(u) => next = self.open.get(&u).and_then(|p| p.waiting_for),
                None => break,
            }
        }
        if let Some(pending) = self.open.get_mut(&unit) {
            pending.waiting_for = Some(holder);
        }
        true
    }

    /// `unit` waits no longer.
    pub fn stop_waiting(&mut self, unit: UnitId) {
        if let Some(pending) = self.open.get_mut(&unit) {
            pending.waiting_for = None;
        }
    }
}

/// What a step that may have to wait for another unit found.
pub enum Step<T> {
    /// It was done.
    Done(T),
    /// It must wait for this unit (or plain write) to end, then run again.
    Wait(UnitId),
}

/// One run of a waiting step, as [`until_free`] sees it.
pub enum Attempt<T> {
    /// It was done.
    Done(T),
    /// It waits for the next release announced on this receiver (taken
    /// under the same lock the releases are sent under).
    Wait(tokio::sync::watch::Receiver<u64>),
}

impl<M: PendingMessage> Units<M> {
    /// Turns a step's outcome into an [`Attempt`]: a wait of `me` (a unit,
    /// or `None` for a plain write) for `holder` is recorded, or refused
    /// with a deadlock when `holder` waits for `me`; the receiver is taken
    /// from `released` now, so no release after this call is missed.
    pub fn attempt<T>(
        &mut self,
        step: Step<T>,
        me: Option<UnitId>,
        released: &tokio::sync::watch::Sender<u64>,
    ) -> crate::Result<Attempt<T>> {
        match step {
            Step::Done(done) => Ok(Attempt::Done(done)),
            Step::Wait(holder) => {
                if let Some(me) = me {
                    if !self.wait(me, holder) {
                        return Err(conflict(crate::ConflictReason::Deadlock));
                    }
                }
                Ok(Attempt::Wait(released.subscribe()))
            }
        }
    }
}

/// Runs `attempt` (which locks the store's units itself, see
/// [`Units::attempt`]) until it is done, waiting for a release between
/// runs, at most `timeout` in all (then a lock-timeout conflict).
/// `stop_waiting` runs after every wait, also when the wait is dropped.
pub async fn until_free<T>(
    timeout: Option<std::time::Duration>,
    mut attempt: impl FnMut() -> crate::Result<Attempt<T>>,
    stop_waiting: impl Fn(),
) -> crate::Result<T> {
    struct Waiting<F: Fn()>(F);
    impl<F: Fn()> Drop for Waiting<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
    loop {
        let mut released = match attempt()? {
            Attempt::Done(done) => return Ok(done),
            Attempt::Wait(released) => released,
        };
        let _waiting = Waiting(&stop_waiting);
        match deadline {
            None => released.changed().await.ok(),
            Some(deadline) => tokio::time::timeout_at(deadline, released.changed())
                .await
                .map_err(|_| conflict(crate::ConflictReason::LockTimeout))?
                .ok(),
        };
    }
}

/// A conflict of units of work, for `reason`.
pub fn conflict(reason: crate::ConflictReason) -> crate::Error {
    crate::Error::Conflict {
        reason,
        source: None,
    }
}
