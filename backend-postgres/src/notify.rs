//! Wake-ups from the NOTIFY trigger: one LISTEN connection per store, fanned
//! out to the subscriptions of each category.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "message_store";

#[derive(Deserialize)]
struct Payload {
    category: String,
    global_position: u64,
}

/// Per-category wake-up senders, and the listener task that feeds them.
#[derive(Default)]
pub(crate) struct Notifier {
    categories: Mutex<HashMap<String, watch::Sender<u64>>>,
    started: Mutex<bool>,
    health: Mutex<ListenerHealth>,
    /// Dropped with the notifier, which tells the listener task to stop.
    alive: Mutex<Option<watch::Sender<()>>>,
}

/// What the listener last saw, for a service to expose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerHealth {
    /// True while the LISTEN connection is up.
    pub connected: bool,
    /// How many times it (re)connected.
    pub connections: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

impl Notifier {
    /// A receiver that changes whenever `category` is written (and whenever
    /// the listener reconnects, so subscriptions catch up). Starts the
    /// listener on first use, on the current Tokio runtime.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        pool: &PgPool,
        category: &str,
    ) -> watch::Receiver<u64> {
        {
            let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
            if !*started {
                *started = true;
                let (alive, stopped) = watch::channel(());
                *self.alive.lock().unwrap_or_else(PoisonError::into_inner) = Some(alive);
                tokio::spawn(listen(Arc::downgrade(self), pool.clone(), stopped));
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
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn wake(&self, category: &str, global_position: u64) {
        let mut categories = self
            .categories
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = categories.get(category) {
            if sender.receiver_count() == 0 {
                categories.remove(category);
            } else {
                sender.send_replace(global_position);
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
            sender.send_modify(|_| {});
        }
    }

    fn record(&self, update: impl FnOnce(&mut ListenerHealth)) {
        update(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Keeps a LISTEN connection up while the store lives; reconnects with
/// back-off and wakes every subscription after a gap, so a missed
/// notification costs at most one read.
async fn listen(notifier: Weak<Notifier>, pool: PgPool, mut stopped: watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = notifier.upgrade() else {
            return;
        };
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    strong.record(|h| {
                        h.connected = true;
                        h.connections += 1;
                    });
                    backoff = Duration::from_millis(50);
                    strong.wake_all();
                    drop(strong);
                    let outcome = tokio::select! {
                        _ = stopped.changed() => return,
                        outcome = receive(&notifier, &mut listener) => outcome,
                    };
                    if let Err(error) = outcome {
                        tracing::warn!(%error, "message store listener lost its connection");
                        if let Some(n) = notifier.upgrade() {
                            n.record(|h| {
                                h.connected = false;
                                h.last_error = Some(error);
                            });
                        }
                    }
                }
                Err(error) => strong.record(|h| h.last_error = Some(error.to_string())),
            },
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

/// Forwards notifications until the connection drops.
async fn receive(notifier: &Weak<Notifier>, listener: &mut PgListener) -> Result<(), String> {
    loop {
        let next = listener.try_recv().await;
        let Some(strong) = notifier.upgrade() else {
            return Ok(());
        };
        match next {
            // A payload without a category (the trigger leaves out names too
            // long for NOTIFY) or of another shape wakes every subscription.
            Ok(Some(notification)) => match serde_json::from_str::<Payload>(notification.payload())
            {
                Ok(payload) => strong.wake(&payload.category, payload.global_position),
                Err(_) => strong.wake_all(),
            },
            Ok(None) => return Err("the LISTEN connection was lost".to_owned()),
            Err(error) => return Err(error.to_string()),
        }
    }
}
