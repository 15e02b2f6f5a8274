//! Wake-ups from the NOTIFY trigger: one LISTEN connection per store, of
//! its own (outside the store's pool, so it never takes a connection the
//! store's calls need), fanned out to the subscriptions of each category.
//!
//! The listener task runs on the runtime of the subscription that started
//! it; when it is gone (that runtime ended), the next subscription starts it
//! again, and until then its health says it is not connected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "message_store";

/// The trigger's payload: `{"category": ...}` (earlier versions of the
/// trigger also sent a `global_position`, which is ignored).
#[derive(Deserialize)]
struct Payload {
    category: String,
}

/// Per-category wake-up senders, and the listener task that feeds them.
pub(crate) struct Notifier {
    /// Where the LISTEN connection connects (the store's pool's options).
    options: PgConnectOptions,
    /// How long connecting it may take.
    connect_timeout: Duration,
    categories: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// The listener task, while one was started.
    task: Mutex<Option<JoinHandle<()>>>,
    health: Mutex<ListenerHealth>,
    /// Dropped with the notifier, which tells the listener task to stop.
    alive: watch::Sender<()>,
}

/// What the listener last saw, for a service to expose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerHealth {
    /// True while the LISTEN connection is up and its task runs.
    pub connected: bool,
    /// How many times it connected (the first time included).
    pub connections: u64,
    /// How many times its task was started (again after its runtime ended).
    pub starts: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

impl Notifier {
    pub(crate) fn new(options: PgConnectOptions, connect_timeout: Duration) -> Self {
        Notifier {
            options,
            connect_timeout,
            categories: Mutex::default(),
            task: Mutex::default(),
            health: Mutex::default(),
            alive: watch::channel(()).0,
        }
    }

    /// A receiver that changes whenever `category` is written (and whenever
    /// the listener reconnects, so subscriptions catch up). Starts the
    /// listener on the current Tokio runtime when it is not running.
    pub(crate) fn subscribe(self: &Arc<Self>, category: &str) -> watch::Receiver<u64> {
        {
            let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
            if task.as_ref().is_none_or(JoinHandle::is_finished) {
                self.record(|h| h.starts += 1);
                let stopped = self.alive.subscribe();
                *task = Some(tokio::spawn(listen(Arc::downgrade(self), stopped)));
            }
        }
        let mut categories = self
            .categories
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        categories
            .entry(category.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    pub(crate) fn health(&self) -> ListenerHealth {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.as_ref().is_none_or(JoinHandle::is_finished) {
            health.connected = false;
        }
        health
    }

    fn wake(&self, category: &str) {
        let mut categories = self
            .categories
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = categories.get(category) {
            if sender.receiver_count() == 0 {
                categories.remove(category);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    fn wake_all(&self) {
        let mut categories = self
            .categories
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        categories.retain(|_, sender| sender.receiver_count() > 0);
        for sender in categories.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn record(&self, update: impl FnOnce(&mut ListenerHealth)) {
        update(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// A LISTEN connection of its own: a pool of one, outside the store's.
    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(self.connect_timeout)
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

/// Marks the listener disconnected however its task ends (also when its
/// runtime drops it).
struct Disconnected(Weak<Notifier>);

impl Drop for Disconnected {
    fn drop(&mut self) {
        if let Some(notifier) = self.0.upgrade() {
            notifier.record(|h| h.connected = false);
            // Subscriptions fall back to polling until it runs again.
            notifier.wake_all();
        }
    }
}

/// Keeps a LISTEN connection up while the store lives; reconnects with
/// back-off and wakes every subscription after a gap, so a missed
/// notification costs at most one read. Ends when the notifier is dropped.
async fn listen(notifier: Weak<Notifier>, mut stopped: watch::Receiver<()>) {
    let _disconnected = Disconnected(notifier.clone());
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = notifier.upgrade() else {
            return;
        };
        let connected = tokio::select! {
            _ = stopped.changed() => return,
            connected = strong.connect() => connected,
        };
        match connected {
            Ok(mut listener) => {
                strong.record(|h| {
                    h.connected = true;
                    h.connections += 1;
                });
                backoff = Duration::from_millis(50);
                strong.wake_all();
                drop(strong);
                let error = tokio::select! {
                    _ = stopped.changed() => return,
                    error = receive(&notifier, &mut listener) => error,
                };
                let Some(error) = error else { return };
                tracing::warn!(%error, "message store listener lost its connection");
                if let Some(n) = notifier.upgrade() {
                    n.record(|h| {
                        h.connected = false;
                        h.last_error = Some(error);
                    });
                }
            }
            Err(error) => strong.record(|h| {
                h.connected = false;
                h.last_error = Some(error.to_string());
            }),
        }
        if let Some(n) = notifier.upgrade() {
            n.wake_all();
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Forwards notifications until the connection fails for good (returns the
/// error) or the notifier is dropped (returns `None`). When sqlx reports a
/// lost connection it has already connected again and listens anew; the
/// same listener goes on, after waking every subscription for what the gap
/// may have missed.
async fn receive(notifier: &Weak<Notifier>, listener: &mut PgListener) -> Option<String> {
    loop {
        let next = listener.try_recv().await;
        let strong = notifier.upgrade()?;
        match next {
            // A payload without a category (the trigger leaves out names too
            // long for NOTIFY) or of another shape wakes every subscription.
            Ok(Some(notification)) => match serde_json::from_str::<Payload>(notification.payload())
            {
                Ok(payload) => strong.wake(&payload.category),
                Err(_) => strong.wake_all(),
            },
            Ok(None) => {
                tracing::info!("message store listener reconnected");
                message_store::backend::meter::listener_reconnected(crate::BACKEND);
                strong.record(|h| {
                    h.connected = true;
                    h.connections += 1;
                });
                strong.wake_all();
            }
            Err(error) => return Some(error.to_string()),
        }
    }
}
