//! The store's in-process locks: units of work hold their categories'
//! locks and their ids until they end (see `message_store::backend::units`),
//! and a plain write holds its category's lock while it writes, so it waits
//! for a unit holding it as it would on PostgreSQL. Releases are announced
//! on a watch, under the same mutex the waiters subscribe under.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use message_store::backend::units::{PendingMessage, UnitId, Units};
use message_store::{ConflictReason, Error, Message, Result};
use tokio::sync::watch;
use uuid::Uuid;

/// A message a unit wrote: as its reads show it, and as the commit stores it.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) message: Message,
    pub(crate) data: String,
    pub(crate) metadata: Option<String>,
}

impl PendingMessage for Pending {
    fn id(&self) -> Uuid {
        self.message.id
    }
}

/// What a locking step found.
pub(crate) enum Step<T> {
    Done(T),
    /// Another unit (or plain write) holds what it needs.
    Wait(UnitId),
}

pub(crate) struct Locks {
    units: Mutex<Units<Pending>>,
    released: watch::Sender<u64>,
}

impl Locks {
    pub(crate) fn new() -> Self {
        Locks {
            units: Mutex::new(Units::default()),
            released: watch::channel(0).0,
        }
    }

    pub(crate) fn units(&self) -> MutexGuard<'_, Units<Pending>> {
        self.units.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `attempt` until it need not wait, waiting for releases in
    /// between. For a unit (`unit`: its id and lock timeout), a wait that
    /// would close a cycle of units fails with a deadlock, and one past the
    /// timeout with a lock timeout.
    pub(crate) async fn until_free<T>(
        &self,
        unit: Option<(UnitId, Option<Duration>)>,
        mut attempt: impl FnMut(&mut Units<Pending>) -> Step<T>,
    ) -> Result<T> {
        let deadline = unit
            .and_then(|(_, timeout)| timeout)
            .map(|timeout| tokio::time::Instant::now() + timeout);
        loop {
            let mut released = {
                let mut units = self.units();
                let holder = match attempt(&mut units) {
                    Step::Done(done) => return Ok(done),
                    Step::Wait(holder) => holder,
                };
                if let Some((me, _)) = unit {
                    if !units.wait(me, holder) {
                        return Err(conflict(ConflictReason::Deadlock));
                    }
                }
                self.released.subscribe()
            };
            let _waiting = unit.map(|(me, _)| Waiting {
                locks: self,
                unit: me,
            });
            match deadline {
                None => released.changed().await.ok(),
                Some(deadline) => tokio::time::timeout_at(deadline, released.changed())
                    .await
                    .map_err(|_| conflict(ConflictReason::LockTimeout))?
                    .ok(),
            };
        }
    }

    /// Ends `unit`, handing back what it wrote, and wakes the waiters.
    pub(crate) fn end(&self, unit: UnitId) -> Vec<Pending> {
        let mut units = self.units();
        let pending = units.end(unit);
        self.released.send_modify(|n| *n = n.wrapping_add(1));
        pending
    }

    /// Takes `key` (a category's lock) for a plain write of `ids`, once no
    /// unit holds it or writes one of them; released when the hold drops.
    pub(crate) async fn hold(self: &Arc<Self>, key: i64, ids: &[Uuid]) -> Result<Hold> {
        let id = self
            .until_free(None, |units| {
                if let Some(holder) = units.lock_held(key, None) {
                    return Step::Wait(holder);
                }
                if let Some(holder) = ids.iter().find_map(|id| units.id_holder(id)) {
                    return Step::Wait(holder);
                }
                let me = units.open();
                units.lock(me, key);
                units.reserve(me, ids);
                Step::Done(me)
            })
            .await?;
        Ok(Hold {
            locks: self.clone(),
            id,
        })
    }
}

/// A plain write's hold on its category and ids; dropped, released.
pub(crate) struct Hold {
    locks: Arc<Locks>,
    id: UnitId,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.locks.end(self.id);
    }
}

pub(crate) fn conflict(reason: ConflictReason) -> Error {
    Error::Conflict {
        reason,
        source: None,
    }
}

/// While alive, its unit is waiting; dropped, it no longer is.
struct Waiting<'a> {
    locks: &'a Locks,
    unit: UnitId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.locks.units().stop_waiting(self.unit);
    }
}
