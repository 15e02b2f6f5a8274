//! Keeps the connections the store just used checked out of the pool for a
//! moment, so that back-to-back calls skip sqlx's release ping.
//!
//! sqlx's pool tests every connection it gets back (a Sync message and a
//! wait for ReadyForQuery) before another caller may have it. For a store
//! whose calls are one statement each, that is a second round trip per call:
//! measured, single writes ran at ~0.75x of pgbench calling the same function.
//! A connection whose statement completed, successfully or refused by the
//! server with the session going on, is in a known state, so the store parks
//! it here instead and hands it to its next call. The pool stays the one
//! source of connections and of their limits:
//! - a connection that failed (I/O, protocol, a FATAL report) is closed; a
//!   call that ended any other way (cancelled, a client-side error) gives its
//!   connection back to the pool, which tests it;
//! - a parked connection goes back to the pool after [`IDLE_LIMIT`] unused,
//!   and any connection after [`HOLD_LIMIT`] out of it (so the pool's
//!   lifetime and idle rules still apply);
//! - when the pool is at its size limit with nothing idle, a connection goes
//!   straight back to the pool, where a waiting caller may be queued.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgSeverity};
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
        let (parked, idle) = {
            let mut state = self.lock();
            let idle = state.take_idle(Instant::now(), self.pool.is_closed());
            (state.parked.pop(), idle)
        };
        drop(idle); // back to the pool, outside the lock
        let (conn, taken) = match parked {
            Some(p) => (p.conn, p.taken),
            None => (self.pool.acquire().await?, Instant::now()),
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
        let saturated = self.pool.size() >= self.pool.options().get_max_connections()
            && self.pool.num_idle() == 0;
        if self.pool.is_closed() || saturated || taken.elapsed() >= HOLD_LIMIT {
            return; // dropping it returns it to the pool
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let idle = {
            let mut state = self.lock();
            let now = Instant::now();
            let idle = state.take_idle(now, false);
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
            idle
        };
        drop(idle);
    }
}

impl State {
    /// Takes the connections parked [`IDLE_LIMIT`] or longer (all of them
    /// when `all`), to be dropped back into the pool outside the lock.
    fn take_idle(&mut self, now: Instant, all: bool) -> Vec<Parked> {
        // Parked in time order (each push reads the clock under the lock),
        // so the idle ones are a prefix.
        let stale = self
            .parked
            .iter()
            .take_while(|p| all || now.duration_since(p.parked) >= IDLE_LIMIT)
            .count();
        self.parked.drain(..stale).collect()
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        // Dropping a pooled connection spawns its return to the pool, which
        // needs a runtime. Without one (a store dropped after its runtime
        // ended), a throwaway runtime takes those tasks and drops them
        // unrun: the sockets close and the pool counts the connections gone.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if state.parked.is_empty() || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let parked = std::mem::take(&mut state.parked);
        match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => {
                let _entered = runtime.enter();
                drop(parked);
            }
            // Cannot happen short of resource exhaustion; leaking beats a
            // panic in a destructor.
            Err(_) => std::mem::forget(parked),
        }
    }
}

/// Returns connections to the pool once parked [`IDLE_LIMIT`], until none is parked.
async fn reap(warm: Weak<Warm>) {
    let mut wake = Instant::now() + IDLE_LIMIT;
    loop {
        tokio::time::sleep_until(wake.into()).await;
        let Some(warm) = warm.upgrade() else { return };
        let (idle, next) = {
            let mut state = warm.lock();
            let idle = state.take_idle(Instant::now(), warm.pool.is_closed());
            // Sleep until the oldest connection still parked turns idle.
            let next = state.parked.first().map(|p| p.parked + IDLE_LIMIT);
            if next.is_none() {
                state.reaper = None;
            }
            (idle, next)
        };
        drop(idle); // back to the pool, outside the lock
        match next {
            Some(next) => wake = next,
            None => return,
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
    /// Ends the call: parks the connection when its statement completed
    /// (successfully, or refused by the server with the session going on);
    /// closes it when the connection or the session failed; otherwise (a
    /// client-side error such as a decoding one) gives it back to the pool,
    /// which tests it.
    pub(crate) fn done<T>(mut self, result: &Result<T, sqlx::Error>) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match result {
            Ok(_) => self.warm.park(conn, self.taken),
            Err(error @ sqlx::Error::Database(database)) => {
                if crate::retry::is_connection_error(error) || ends_session(database.as_ref()) {
                    conn.close_on_drop();
                } else {
                    self.warm.park(conn, self.taken);
                }
            }
            Err(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)) => {
                conn.close_on_drop();
            }
            Err(_) => {} // dropped: back to the pool, which tests it
        }
    }
}

impl Lease {
    /// Ends the call closing the connection, whose state is not known.
    pub(crate) fn discard(mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

/// True for a FATAL or PANIC report: the server ended the session whatever
/// its SQLSTATE (for example 40001 on a hot standby in conflict with recovery).
fn ends_session(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .try_downcast_ref::<PgDatabaseError>()
        .is_some_and(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic))
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
