//! # message-store-memory
//!
//! [`MemoryStore`]: the [`MessageStore`] contract in process, with Message
//! DB's semantics and the same errors as the Postgres backend, so application
//! tests can run on it and production on Message DB without a difference.
//!
//! ```
//! use message_store::{ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName};
//! use message_store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> message_store::Result<()> {
//! let store = MemoryStore::new();
//! let stream = StreamName::new("account-1")?;
//! let position = store
//!     .write_one(&stream, NewMessage::new("Opened", serde_json::json!({})), ExpectedVersion::NoStream)
//!     .await?;
//! assert_eq!(position, 0);
//! assert_eq!(store.stream_version(&stream).await?, Some(0));
//! # Ok(())
//! # }
//! ```

mod state;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use message_store::backend::{self, validate_write};
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, MessageStore, NewMessage, Result,
    StreamName, StreamRead, SubscribeOptions, Subscription,
};
use serde_json::Value;
use tokio::sync::watch;

use state::State;

/// An in-process message store. Cloning is cheap and shares the same
/// messages; every clone sees every write.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this store's data from another's in its `Display` (clones share it).
    instance: u64,
    state: RwLock<State>,
    /// Carries the last global position written, to wake subscriptions.
    written: watch::Sender<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let (written, _) = watch::channel(0);
        MemoryStore {
            inner: Arc::new(Inner {
                instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                state: RwLock::new(State::default()),
                written,
            }),
        }
    }

    /// How many messages the store holds.
    pub fn len(&self) -> usize {
        self.read_state(|state| state.len())
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f(&state)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("messages", &self.len())
            .finish()
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in-memory message store #{}", self.inner.instance)
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        validate_write(stream, &messages)?;
        let mut messages = messages;
        for message in &mut messages {
            as_jsonb_returns(&mut message.data);
            for map in [
                &mut message.metadata.properties,
                &mut message.metadata.local_properties,
                &mut message.metadata.other,
            ] {
                map.values_mut().for_each(as_jsonb_returns);
            }
        }
        let written = {
            let mut state = self
                .inner
                .state
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            state.append(stream, messages, expected)?
        };
        self.inner
            .written
            .send_replace(written.last_global_position);
        Ok(written.last_position)
    }

    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>> {
        if stream.is_category() {
            return Err(Error::NotAStream {
                name: stream.as_str().to_owned(),
            });
        }
        Ok(self.read_state(|state| state.read_stream(stream, &options)))
    }

    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        options.validate()?;
        Ok(self.read_state(|state| state.read_category(category, &options)))
    }

    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        Ok(self.read_state(|state| state.last_message(stream, message_type)))
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        Ok(self.read_state(|state| state.stream_version(stream.as_str())))
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        Ok(self.read_state(|state| state.category_head(category)))
    }

    async fn subscribe(
        &self,
        category: &Category,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        backend::subscribe(self, category, options).await
    }

    fn wake_ups(&self, _category: &Category) -> Option<watch::Receiver<u64>> {
        Some(self.inner.written.subscribe())
    }

    fn wakes_subscriptions_on_write(&self) -> bool {
        true
    }
}

/// Rewrites the numbers of `value` as PostgreSQL's jsonb gives them back,
/// so reads agree with Message DB. jsonb keeps a number's decimal digits,
/// not its notation, and has no negative zero. serde_json writes a float of
/// 1e16 or more in exponent form with its shortest digits (2^60 is
/// `1.152921504606847e18`), which jsonb returns as those digits spelled out
/// (`1152921504606847000`): a client reads that back as an integer when it
/// fits one (u64, or i64 when negative). `-0.0` comes back as `0.0`. Every
/// other number reads back as written.
fn as_jsonb_returns(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            let text = number.to_string();
            if text == "-0.0" {
                *value = Value::from(0.0);
            } else if let Some(integer) = spelled_out(&text) {
                *value = integer;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_jsonb_returns),
        Value::Object(map) => map.values_mut().for_each(as_jsonb_returns),
        _ => {}
    }
}

/// `1.5e16` as the integer `15000000000000000`, when it is a whole number
/// written with a positive exponent and fits a u64 (or an i64, negative).
fn spelled_out(text: &str) -> Option<Value> {
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: usize = exponent.trim_start_matches('+').parse().ok()?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let zeros = exponent.checked_sub(fraction.len())?;
    let digits = format!("{sign}{whole}{fraction}{}", "0".repeat(zeros));
    if sign.is_empty() {
        digits.parse::<u64>().ok().map(Value::from)
    } else {
        digits.parse::<i64>().ok().map(Value::from)
    }
}
