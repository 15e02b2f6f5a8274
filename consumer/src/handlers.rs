//! Handler registration and dispatch with retries.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;

use crate::options::RetryPolicy;
use message_store::{Message, TypedMessage, UnitOfWork};

/// What a handler returns when it fails; any error type converts into it.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A handler's result.
pub type HandlerResult = Result<(), HandlerError>;

/// The error a handler's panic counts as: the source of
/// [`Error::HandlerFailed`](crate::Error::HandlerFailed) when the last
/// attempt panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler panicked: {message}")]
pub struct HandlerPanicked {
    /// The panic's message (or a note that its payload was not a string).
    pub message: String,
}

/// The error an attempt that ran past
/// [`ConsumerOptions::handler_timeout`](crate::ConsumerOptions::handler_timeout)
/// counts as (it was dropped at that point).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler timed out after {after:?}")]
pub struct HandlerTimedOut {
    /// The timeout.
    pub after: Duration,
}

/// A handler's future, borrowing what it was given for `'u`.
pub type HandlerFuture<'u> = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'u>>;

type BoxFuture = HandlerFuture<'static>;
type PlainHandler = Arc<dyn Fn(Message) -> BoxFuture + Send + Sync>;
type UnitHandler =
    Arc<dyn for<'u> Fn(Message, &'u mut dyn UnitOfWork) -> HandlerFuture<'u> + Send + Sync>;

/// A handler, type-erased.
#[derive(Clone)]
enum Erased {
    /// Takes the message.
    Plain(PlainHandler),
    /// Takes the message and the unit of work it is handled in.
    InUnit(UnitHandler),
}

impl Erased {
    /// The handler's future for `message`, in `unit` when it has one.
    fn call<'u>(
        &self,
        message: Message,
        unit: Option<&'u mut dyn UnitOfWork>,
    ) -> HandlerFuture<'u> {
        match (self, unit) {
            (Erased::Plain(handler), _) => handler(message),
            (Erased::InUnit(handler), Some(unit)) => handler(message, unit),
            (Erased::InUnit(_), None) => {
                unreachable!("a consumer with unit handlers handles in units")
            }
        }
    }
}

/// The handlers of one consumer: per message type, in registration order,
/// and catch-alls for messages no typed handler takes.
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    typed: HashMap<String, Vec<Erased>>,
    catch_all: Vec<Erased>,
    /// Some handler takes a unit of work.
    transactional: bool,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<_> = self.typed.keys().collect();
        types.sort();
        f.debug_struct("Handlers")
            .field("types", &types)
            .field("catch_all", &self.catch_all.len())
            .finish()
    }
}

/// How dispatching one message ended.
pub(crate) enum Outcome {
    /// Every handler succeeded, after `failures` failed attempts; `last_error`
    /// is the error of the last of them.
    Handled {
        failures: u32,
        last_error: Option<String>,
    },
    /// A handler still failed after the last attempt.
    Failed { attempts: u32, error: HandlerError },
    /// Shutdown was asked for while waiting to retry.
    Cancelled,
}

impl Handlers {
    pub(crate) fn on<T, F, Fut>(&mut self, handler: F)
    where
        T: TypedMessage + DeserializeOwned + Send + 'static,
        F: Fn(T, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased = Erased::Plain(Arc::new(move |message: Message| {
            let handler = handler.clone();
            Box::pin(async move {
                let value: T = message.decode()?;
                handler(value, message).await
            })
        }));
        self.typed
            .entry(T::MESSAGE_TYPE.to_owned())
            .or_default()
            .push(erased);
    }

    pub(crate) fn on_in_unit<T, F>(&mut self, handler: F)
    where
        T: TypedMessage + DeserializeOwned + Send + 'static,
        F: for<'u> Fn(T, Message, &'u mut dyn UnitOfWork) -> HandlerFuture<'u>
            + Send
            + Sync
            + 'static,
    {
        let erased = Erased::InUnit(Arc::new(move |message: Message, unit| {
            match message.decode::<T>() {
                Ok(value) => handler(value, message, unit),
                Err(error) => Box::pin(std::future::ready(Err(error.into()))),
            }
        }));
        self.transactional = true;
        self.typed
            .entry(T::MESSAGE_TYPE.to_owned())
            .or_default()
            .push(erased);
    }

    pub(crate) fn on_any_in_unit<F>(&mut self, handler: F)
    where
        F: for<'u> Fn(Message, &'u mut dyn UnitOfWork) -> HandlerFuture<'u> + Send + Sync + 'static,
    {
        self.transactional = true;
        self.catch_all.push(Erased::InUnit(Arc::new(handler)));
    }

    /// True when some handler takes a unit of work: every message is then
    /// handled in one, which records the position too (exactly once).
    pub(crate) fn transactional(&self) -> bool {
        self.transactional
    }

    /// True when `message_type` has no handler at all.
    pub(crate) fn none_for(&self, message_type: &str) -> bool {
        self.for_type(message_type).is_empty()
    }

    /// Runs each of the message's handlers once, in order, in `unit`, up to
    /// the first failure (a panic, a timeout, unreadable data: as in
    /// [`Handlers::dispatch`]).
    pub(crate) async fn run_in_unit(
        &self,
        message: &Message,
        unit: &mut dyn UnitOfWork,
        timeout: Option<Duration>,
    ) -> HandlerResult {
        message.check().map_err(|e| Box::new(e) as HandlerError)?;
        for handler in self.for_type(&message.message_type) {
            attempt(|| handler.call(message.clone(), Some(&mut *unit)), timeout).await?;
        }
        Ok(())
    }

    pub(crate) fn on_any<F, Fut>(&mut self, handler: F)
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.catch_all.push(Erased::Plain(Arc::new(move |message| {
            Box::pin(handler(message))
        })));
    }

    fn for_type(&self, message_type: &str) -> &[Erased] {
        match self.typed.get(message_type) {
            Some(handlers) => handlers,
            None => &self.catch_all,
        }
    }

    /// Runs the message's handlers in order, retrying from the one that
    /// failed (handlers that already succeeded are not run again). A panic
    /// counts as a failure, and so does an attempt running past `timeout` and
    /// a message whose data or metadata cannot be read ([`Message::check`]):
    /// its handlers are not run.
    pub(crate) async fn dispatch(
        &self,
        message: &Message,
        retry: &RetryPolicy,
        timeout: Option<Duration>,
        mut wait: impl FnMut(Duration) -> Pin<Box<dyn Future<Output = bool> + Send>>,
    ) -> Outcome {
        let handlers = self.for_type(&message.message_type);
        let mut next = 0;
        let mut attempts = 0;
        let mut failures = 0;
        let mut last_error = None;
        while next < handlers.len() {
            attempts += 1;
            let result = match message.check() {
                // Data or metadata no handler can look at fails every attempt.
                Err(unreadable) => Err(Box::new(unreadable) as HandlerError),
                Ok(()) => attempt(|| handlers[next].call(message.clone(), None), timeout).await,
            };
            let error = match result {
                Ok(()) => {
                    next += 1;
                    attempts = 0;
                    continue;
                }
                Err(error) => error,
            };
            failures += 1;
            if attempts >= retry.max_attempts() {
                return Outcome::Failed {
                    attempts: failures,
                    error,
                };
            }
            last_error = Some(error.to_string());
            if !wait(retry.delay_after(attempts)).await {
                return Outcome::Cancelled;
            }
        }
        Outcome::Handled {
            failures,
            last_error,
        }
    }
}

/// Runs one attempt of a handler: a panic (building the future or in it)
/// and a run past `timeout` count as failures.
async fn attempt<'u>(
    handler: impl FnOnce() -> HandlerFuture<'u>,
    timeout: Option<Duration>,
) -> HandlerResult {
    let future = match std::panic::catch_unwind(AssertUnwindSafe(handler)) {
        Ok(future) => future,
        Err(panic) => return Err(panicked(&panic)),
    };
    let attempt = AssertUnwindSafe(future).catch_unwind();
    let result = match timeout {
        None => attempt.await,
        Some(after) => match tokio::time::timeout(after, attempt).await {
            Ok(result) => result,
            Err(_) => return Err(Box::new(HandlerTimedOut { after })),
        },
    };
    result.unwrap_or_else(|panic| Err(panicked(&panic)))
}

fn panicked(panic: &Box<dyn std::any::Any + Send>) -> HandlerError {
    Box::new(HandlerPanicked {
        message: panic_text(panic),
    })
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
