//! The store's in-process locks: units of work hold their categories'
//! locks and their ids until they end (see `message_store::backend::units`),
//! and a plain write holds its category's lock while it writes, so it waits
//! for a unit holding it as it would on PostgreSQL. Releases are announced
//! on a watch, under the same mutex the waiters subscribe under.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use message_store::backend::units::{self, PendingMessage, Step, UnitId, Units};
use message_store::{Message, Result};
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
        let me = unit.map(|(me, _)| me);
        units::until_free(
            unit.and_then(|(_, timeout)| timeout),
            || {
                let mut units = self.units();
                let step = attempt(&mut units);
                units.attempt(step, me, &self.released)
            },
            || {
                if let Some(me) = me {
                    self.units().stop_waiting(me);
                }
            },
        )
        .await
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
