//! Keeps the connections the store just used checked out of the pool for a
//! moment, so that back-to-back calls skip sqlx's release ping.
//!
//! sqlx's pool tests every connection it gets back (a Sync message and a
//! wait for ReadyForQuery) before another caller may have it. For a store
//! whose calls are one statement each, that is a second round trip per call:
//! measured, single writes ran at ~0.75x of pgbench calling the same function.
//! A connection whose statement completed, successfully or with a database
//! error, is in a known state, so the store parks it here instead and hands
//! it to its next call. The pool stays the one source of connections and of
//! their limits:
//! - a call that ended any other way (cancelled, I/O or protocol failure)
//!   gives its connection back to the pool, which tests or closes it;
//! - a parked connection goes back to the pool after [`IDLE_LIMIT`] unused,
//!   and any connection after [`HOLD_LIMIT`] out of it (so the pool's
//!   lifetime and idle rules still apply);
//! - when the pool is at its size limit with nothing idle, a connection goes
//!   straight back to the pool, where a waiting caller may be queued.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Postgres;

/// How long a parked connection waits for the store's next call.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(1);
/// How long a connection may stay out of the pool, parked or in use.
pub(crate) const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// The connections the store holds between calls.
pub(crate) struct Warm {
    pool: PgPool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Most recently parked last.
    parked: Vec<Parked>,
    /// The task returning idle connections to the pool, while it runs. (A
    /// store used from several runtimes may outlive the one it ran on.)
    reaper: Option<tokio::task::JoinHandle<()>>,
}

struct Parked {
    conn: PoolConnection<Postgres>,
    /// When it left the pool.
    taken: Instant,
    /// When it was parked.
    parked: Instant,
}

impl Warm {
    pub(crate) fn new(pool: PgPool) -> Arc<Warm> {
        Arc::new(Warm {
            pool,
            state: Mutex::new(State::default()),
        })
    }

    /// A connection for one call: the most recently parked one, or one from the pool.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, sqlx::Error> {
        let parked = self.lock().parked.pop();
        let (conn, taken) = match parked {
            Some(p) if !self.pool.is_closed() => (p.conn, p.taken),
            _ => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(Lease {
            warm: Arc::clone(self),
            conn: Some(conn),
            taken,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state holds no invariant a panic could break half-way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks a connection whose last statement completed, or lets it go back to the pool.
    fn park(self: &Arc<Self>, conn: PoolConnection<Postgres>, taken: Instant) {
        let now = Instant::now();
        let saturated = self.pool.size() >= self.pool.options().get_max_connections()
            && self.pool.num_idle() == 0;
        if self.pool.is_closed() || saturated || now.duration_since(taken) >= HOLD_LIMIT {
            return; // dropping it returns it to the pool
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut state = self.lock();
        state.parked.push(Parked {
            conn,
            taken,
            parked: now,
        });
        if state
            .reaper
            .as_ref()
            .is_none_or(|reaper| reaper.is_finished())
        {
            state.reaper = Some(runtime.spawn(reap(Arc::downgrade(self))));
        }
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        // Dropping a pooled connection spawns its return to the pool, which
        // needs a runtime; without one (a store dropped after its runtime),
        // the connections are detached and their sockets simply closed.
        if tokio::runtime::Handle::try_current().is_err() {
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            for parked in state.parked.drain(..) {
                drop(parked.conn.detach());
            }
        }
    }
}

/// Returns connections parked longer than [`IDLE_LIMIT`] to the pool, until none is parked.
async fn reap(warm: Weak<Warm>) {
    loop {
        tokio::time::sleep(IDLE_LIMIT).await;
        let Some(warm) = warm.upgrade() else { return };
        let idle = {
            let mut state = warm.lock();
            let now = Instant::now();
            let closed = warm.pool.is_closed();
            // Parked in order, so the idle ones are a prefix.
            let stale = state
                .parked
                .iter()
                .take_while(|p| closed || now.duration_since(p.parked) >= IDLE_LIMIT)
                .count();
            let idle: Vec<Parked> = state.parked.drain(..stale).collect();
            let done = state.parked.is_empty();
            if done {
                state.reaper = None;
            }
            (idle, done)
        };
        let (idle, done) = idle;
        drop(idle); // back to the pool, outside the lock
        if done {
            return;
        }
    }
}

/// A connection lent to one call. [`Lease::done`] parks it for the next call;
/// dropped without that (cancelled or failed), it goes back to the pool.
pub(crate) struct Lease {
    warm: Arc<Warm>,
    conn: Option<PoolConnection<Postgres>>,
    taken: Instant,
}

impl Lease {
    /// Ends the call: parks the connection unless `result` says it is broken.
    pub(crate) fn done<T>(mut self, result: &Result<T, sqlx::Error>) {
        let reusable = match result {
            Ok(_) => true,
            // The server refused the statement and carries on with the session.
            Err(error @ sqlx::Error::Database(_)) => !crate::is_connection_error(error),
            Err(_) => false,
        };
        if let Some(mut conn) = self.conn.take() {
            if reusable {
                self.warm.park(conn, self.taken);
            } else {
                conn.close_on_drop();
            }
        }
    }
}

impl Deref for Lease {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("a lease holds its connection")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a lease holds its connection")
    }
}
