//! The consumer loop, its handle and its health.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::handlers::{Handlers, Outcome};
use crate::consumer::options::{ConsumerOptions, FailurePolicy};
use crate::consumer::parked;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::store::{MessageStore, Subscription};
use crate::stream_name::Category;
use crate::subscription::SubscribeOptions;
use futures::StreamExt;

/// What a running consumer reports, for a service's health endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerHealth {
    /// True until the consumer stopped.
    pub running: bool,
    /// The global position it reads next.
    pub position: u64,
    /// The global position of the last message handled (or parked).
    pub last_handled: Option<u64>,
    /// The global position last recorded in the position stream.
    pub committed: Option<u64>,
    /// When the last handled message was written.
    pub last_message_time: Option<DateTime<Utc>>,
    /// Messages handled successfully since start.
    pub handled: u64,
    /// Handler attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Messages parked since start.
    pub parked: u64,
    /// The last error seen (handler, backend or position store).
    pub last_error: Option<String>,
}

/// A running consumer. Dropping the handle does not stop it; call
/// [`ConsumerHandle::shutdown`] (or cancel its token) to stop gracefully.
#[derive(Debug)]
pub struct ConsumerHandle {
    pub(crate) token: CancellationToken,
    pub(crate) task: JoinHandle<Result<ConsumerHealth>>,
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// The consumer's reads (its filters), for counting its lag.
    pub(crate) read: SubscribeOptions,
}

impl ConsumerHandle {
    /// The token that stops the consumer when cancelled (for wiring to Ctrl-C
    /// or a service's shutdown).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Stops gracefully: the message in flight finishes, the position is
    /// recorded, and the final health is returned.
    pub async fn shutdown(self) -> Result<ConsumerHealth> {
        self.token.cancel();
        self.join().await
    }

    /// Waits until the consumer stops by itself (failure policy `Stop`) or
    /// is shut down through its token.
    pub async fn join(self) -> Result<ConsumerHealth> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(Error::backend(join)),
        }
    }

    /// Stops at once, without recording the position (as a crash would).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// True once the consumer stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// A snapshot of the consumer's health.
    pub fn health(&self) -> ConsumerHealth {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many messages the consumer would still handle: those written
    /// after the last one it handled that its filters (consumer group,
    /// correlation) give it, up to the category's last message now. 0 when
    /// caught up, also when the newest messages are another member's.
    ///
    /// It counts by reading those messages with the consumer's filters, so
    /// it is cheap for a consumer near the head and costs a read of the
    /// backlog otherwise: poll it as often as a backlog may be read.
    pub async fn lag(&self) -> Result<u64> {
        let Some(head) = self.store.category_head(&self.category).await? else {
            return Ok(0);
        };
        let health = self.health();
        // Everything before the position it reads next is done, and so is
        // whatever it handled.
        let from = health
            .last_handled
            .map_or(health.position, |last| health.position.max(last + 1));
        if from > head {
            return Ok(0);
        }
        let mut ahead = self
            .store
            .category_messages(&self.category, self.read.category_read(from));
        let mut count = 0;
        while let Some(message) = ahead.next().await {
            if message?.global_position > head {
                break;
            }
            count += 1;
        }
        Ok(count)
    }
}

/// Everything the loop needs.
pub(crate) struct Runner {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    pub(crate) options: ConsumerOptions,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) subscription: Box<dyn Subscription>,
    pub(crate) token: CancellationToken,
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
}

/// Sleeps unless cancelled first; false when cancelled.
pub(crate) async fn pause(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

impl Runner {
    fn update(&self, f: impl FnOnce(&mut ConsumerHealth)) {
        f(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn backend_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        Duration::from_millis(50)
            .saturating_mul(1u32 << doublings)
            .min(self.options.backend_backoff)
    }

    /// The loop: read a batch, handle it message by message in global order,
    /// record the position every `position_update_interval` messages; on
    /// shutdown finish the message in flight and record the position.
    pub(crate) async fn run(mut self) -> Result<ConsumerHealth> {
        let result = self.consume().await;
        let closing = self.commit_on_close().await;
        self.update(|h| h.running = false);
        let health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        result.and(closing).map(|()| health)
    }

    async fn consume(&mut self) -> Result<()> {
        let mut read_failures = 0;
        let mut since_commit = 0u64;
        loop {
            let next = tokio::select! {
                biased;
                () = self.token.cancelled() => return Ok(()),
                next = self.subscription.next_batch() => next,
            };
            let batch = match next {
                Ok(batch) => {
                    read_failures = 0;
                    batch
                }
                Err(error) => {
                    read_failures += 1;
                    self.update(|h| h.last_error = Some(error.to_string()));
                    if !pause(&self.token, self.backend_delay(read_failures)).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            for message in batch {
                if self.token.is_cancelled() {
                    return Ok(());
                }
                if !self.handle(&message).await? {
                    return Ok(());
                }
                since_commit += 1;
                if since_commit >= self.options.position_update_interval {
                    self.commit(message.global_position).await?;
                    since_commit = 0;
                }
            }
            let position = self.subscription.position();
            self.update(|h| h.position = position);
        }
    }

    /// Handles one message under the failure policy. `Ok(false)`: shutdown
    /// was asked for before it was handled.
    async fn handle(&mut self, message: &Message) -> Result<bool> {
        let token = self.token.clone();
        let outcome = self
            .handlers
            .dispatch(message, &self.options.retry, |delay| {
                let token = token.clone();
                Box::pin(async move { pause(&token, delay).await })
            })
            .await;
        match outcome {
            Outcome::Handled {
                failures,
                last_error,
            } => {
                self.update(|h| {
                    h.handled += 1;
                    h.failed_attempts += u64::from(failures);
                    if last_error.is_some() {
                        h.last_error = last_error;
                    }
                });
            }
            Outcome::Cancelled => return Ok(false),
            Outcome::Failed { attempts, error } => {
                self.update(|h| {
                    h.failed_attempts += u64::from(attempts);
                    h.last_error = Some(error.to_string());
                });
                match self.options.on_failure {
                    FailurePolicy::Stop => {
                        return Err(Error::HandlerFailed {
                            category: self.category.as_str().to_owned(),
                            stream: message.stream_name.as_str().to_owned(),
                            position: message.position,
                            global_position: message.global_position,
                            message_type: message.message_type.clone(),
                            attempts,
                            source: error,
                        })
                    }
                    FailurePolicy::Park => {
                        if !self.park(message, error.to_string(), attempts).await? {
                            return Ok(false);
                        }
                        self.update(|h| h.parked += 1);
                    }
                }
            }
        }
        self.update(|h| {
            h.last_handled = Some(message.global_position);
            h.last_message_time = Some(message.time);
        });
        Ok(true)
    }

    /// Parks the message, retrying the write while the backend fails.
    async fn park(&mut self, message: &Message, error: String, attempts: u32) -> Result<bool> {
        let consumer_id = self
            .options
            .subscription
            .id()
            .expect("validated: Park needs a consumer id");
        let stream = self.category.parked_stream(consumer_id)?;
        let copy = parked::parked_copy(message, consumer_id, error, attempts);
        let mut failures = 0;
        loop {
            match parked::park(self.store.as_ref(), &stream, copy.clone()).await {
                Ok(()) => return Ok(true),
                Err(error) => {
                    failures += 1;
                    self.update(|h| h.last_error = Some(format!("parking failed: {error}")));
                    if !pause(&self.token, self.backend_delay(failures)).await {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Records the position, retrying while the backend fails; a second
    /// consumer on the same position stream is fatal.
    async fn commit(&mut self, global_position: u64) -> Result<()> {
        let mut failures = 0;
        loop {
            match self.subscription.commit(global_position).await {
                Ok(()) => {
                    self.update(|h| h.committed = Some(global_position));
                    return Ok(());
                }
                Err(error @ Error::PositionStreamInUse { .. }) => return Err(error),
                Err(error) => {
                    failures += 1;
                    self.update(|h| {
                        h.last_error = Some(format!("recording the position failed: {error}"))
                    });
                    if !pause(&self.token, self.backend_delay(failures)).await {
                        // Shutting down: the closing commit tries again.
                        return Ok(());
                    }
                }
            }
        }
    }

    /// At the end, records the last handled position if it is not recorded yet
    /// (a few quick attempts; shutdown must not hang on a dead backend).
    async fn commit_on_close(&mut self) -> Result<()> {
        let (last, committed) = {
            let h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            (h.last_handled, h.committed)
        };
        let Some(last) = last.filter(|&last| Some(last) != committed) else {
            return Ok(());
        };
        let mut outcome = Ok(());
        for attempt in 1..=3 {
            outcome = self.subscription.commit(last).await;
            match &outcome {
                Ok(()) => {
                    self.update(|h| h.committed = Some(last));
                    break;
                }
                Err(Error::PositionStreamInUse { .. }) => break,
                Err(_) => tokio::time::sleep(self.backend_delay(attempt)).await,
            }
        }
        outcome
    }
}

/// Spawns the loop.
pub(crate) fn spawn(runner: Runner) -> JoinHandle<Result<ConsumerHealth>> {
    tokio::spawn(runner.run())
}
