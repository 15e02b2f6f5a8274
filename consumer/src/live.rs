//! The consumers running in this process, by store and position stream, so
//! that starting a second consumer on a position stream a live one uses is
//! refused at `start()` instead of failing at its first commit.
//!
//! A store is known by its `Display`, which names its data (a PostgreSQL
//! store its server and database, a memory store its instance): two store
//! values on the same data are the same store here. Consumers in other
//! processes are not seen; a second one there is stopped at its first
//! commit with `PositionStreamInUse`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use message_store::MessageStore;
use message_store::StreamName;
use message_store::{Error, Result};

type Key = (String, String);

fn live() -> &'static Mutex<HashMap<Key, u64>> {
    static LIVE: OnceLock<Mutex<HashMap<Key, u64>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

/// A running consumer's hold on its position stream; released when the
/// last clone is dropped, or at once by [`Claim::release`].
#[derive(Debug, Clone)]
pub(crate) struct Claim(Arc<Held>);

#[derive(Debug)]
struct Held {
    key: Key,
    id: u64,
}

impl Claim {
    /// Claims `position_stream` of `store`, or says who has it.
    pub(crate) fn take(store: &dyn MessageStore, position_stream: &StreamName) -> Result<Claim> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let key = (store.to_string(), position_stream.as_str().to_owned());
        let mut live = live().lock().unwrap_or_else(PoisonError::into_inner);
        if live.contains_key(&key) {
            return Err(Error::PositionStreamInUse {
                stream: position_stream.as_str().to_owned(),
            });
        }
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        live.insert(key.clone(), id);
        Ok(Claim(Arc::new(Held { key, id })))
    }

    /// Releases the claim now (a consumer aborted), whoever else holds it.
    pub(crate) fn release(&self) {
        self.0.release();
    }
}

impl Held {
    fn release(&self) {
        let mut live = live().lock().unwrap_or_else(PoisonError::into_inner);
        // Only this claim's entry: a consumer started since keeps its own.
        if live.get(&self.key) == Some(&self.id) {
            live.remove(&self.key);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}
