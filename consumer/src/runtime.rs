//! The consumer loop: reading, handling under the failure policy, recording
//! the position, and stopping within the shutdown deadline.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use message_store::backend::meter::ConsumerMeters;
use message_store::backend::trace;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::handle::ConsumerHealth;
use crate::handlers::{Handlers, Outcome};
use crate::options::{ConsumerOptions, FailurePolicy};
use crate::parked;
use message_store::Category;
use message_store::Message;
use message_store::{MessageStore, Subscription};

/// Everything the loop needs.
pub(crate) struct Runner {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    pub(crate) options: ConsumerOptions,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) subscription: Box<dyn Subscription>,
    pub(crate) token: CancellationToken,
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
    /// Bumped whenever the consumer makes progress (a message handled or
    /// parked, a position recorded, an error, caught up, stopped), for
    /// [`ConsumerHandle::caught_up`](crate::ConsumerHandle::caught_up);
    /// bookkeeping such as the message in flight changes the health silently.
    pub(crate) progress: tokio::sync::watch::Sender<u64>,
    /// The hold on the position stream in this process, released when the
    /// loop ends (fleet buckets are held through the store instead).
    pub(crate) claim: Option<crate::live::Claim>,
    /// The fleet bucket this loop runs, for the handlers' `current_lease`.
    pub(crate) lease: Option<std::sync::Arc<crate::fleet::Lease>>,
    /// A fleet bucket's: cancelled when its instance crashed (see
    /// [`Runner::halt_if_crashed`]).
    pub(crate) crash: Option<CancellationToken>,
    /// A fleet bucket's: its instance's lease by its own clock, looked at
    /// before every message (see [`crate::fleet::FenceView`]).
    pub(crate) fence: Option<crate::fleet::FenceView>,
    /// The consumer's metrics.
    pub(crate) meters: ConsumerMeters,
    /// The task writing positions in the background.
    pub(crate) background: Option<crate::background::Background>,
    /// When the last of those writes started.
    pub(crate) last_record: crate::background::LastRecord,
}

/// Sleeps unless cancelled first; false when cancelled.
pub(crate) async fn pause(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

impl Runner {
    /// Changes the health and tells those waiting for progress.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ConsumerHealth)) {
        self.note(f);
        // A wake-up costs more than the rest of a message's bookkeeping, so
        // only while a `caught_up` waits (it holds a receiver besides the
        // handle's). It takes its receiver before it looks at the health,
        // and this looks after changing it: one of the two sees the other.
        if self.progress.receiver_count() > 1 {
            self.progress
                .send_modify(|changes| *changes = changes.wrapping_add(1));
        }
    }

    /// Changes the health without waking those waiting for progress: for
    /// what they do not wait for (the message in flight), since a wake-up
    /// per message costs more than the rest of the loop's bookkeeping.
    pub(crate) fn note(&self, f: impl FnOnce(&mut ConsumerHealth)) {
        f(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Counts a backend failure and shows it in the health (`what`
    /// failed); the returned future waits the backend delay and is false
    /// when shutdown was asked for meanwhile.
    pub(crate) fn backend_failed(
        &self,
        failures: &mut u32,
        what: &str,
        error: &dyn std::fmt::Display,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        *failures += 1;
        let text = if what.is_empty() {
            error.to_string()
        } else {
            format!("{what} failed: {error}")
        };
        self.update(|h| h.last_error = Some(text));
        let (token, delay) = (self.token.clone(), self.backend_delay(*failures));
        async move { pause(&token, delay).await }
    }

    pub(crate) fn backend_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        Duration::from_millis(50)
            .saturating_mul(1u32 << doublings)
            .min(self.options.backend_backoff)
    }

    /// The loop: read a batch, handle it message by message in global order,
    /// record the position every `position_update_interval` messages; on
    /// shutdown finish the message in flight and record the position, all
    /// within the shutdown deadline.
    pub(crate) async fn run(mut self) -> Result<ConsumerHealth> {
        let deadline = self.options.shutdown_deadline;
        let token = self.token.clone();
        let asked_at = OnceLock::new();
        // The message in flight gets four fifths of the deadline, the
        // closing position write what is left.
        let grace = async {
            token.cancelled().await;
            let _ = asked_at.set(Instant::now());
            tokio::time::sleep(deadline - deadline / 5).await;
        };
        let (result, mut cut) = tokio::select! {
            biased;
            result = crate::lag::while_sampling(self.lag_sampler(), self.consume()) => (result, false),
            () = grace => (Ok(()), true),
        };
        let abandoned = self.health().in_flight;
        let end = asked_at.get().copied().unwrap_or_else(Instant::now) + deadline;
        let closing = match tokio::time::timeout_at(end, self.commit_on_close()).await {
            Ok(closing) => closing,
            Err(_) => {
                cut = true;
                Ok(())
            }
        };
        self.update(|h| {
            h.running = false;
            h.in_flight = None;
        });
        // Free for a restart as soon as the caller learns this one stopped.
        if let Some(claim) = &self.claim {
            claim.release();
        }
        let health = self.health();
        result.and(closing)?;
        if cut {
            return Err(Error::ShutdownDeadline {
                category: self.category.as_str().to_owned(),
                deadline,
                abandoned,
                handled: health.last_handled,
                recorded: health.committed,
            });
        }
        Ok(health)
    }

    fn health(&self) -> ConsumerHealth {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
                    if !self.backend_failed(&mut read_failures, "", &error).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            let full = self
                .options
                .subscription
                .batch_size()
                .limit()
                .is_some_and(|limit| batch.len() as u64 >= limit);
            for message in batch {
                self.halt_if_crashed().await;
                if self.background.as_ref().is_some_and(|b| b.is_finished()) {
                    self.settle().await?;
                }
                if self.token.is_cancelled() {
                    return Ok(());
                }
                if let Some(fence) = &mut self.fence {
                    // Past its lease (a pause): nothing starts until a
                    // renewal lands, or the instance fences and stops it.
                    if !fence.hold(&self.token).await {
                        return Ok(());
                    }
                }
                if !self.handle(&message).await? {
                    return Ok(());
                }
                if self.handlers.transactional() && self.recorded(message.global_position) {
                    since_commit = 0; // by the message's unit of work
                    continue;
                }
                since_commit += 1;
                if since_commit >= self.options.position_update_interval {
                    self.record_soon(message.global_position).await?;
                    since_commit = 0;
                }
            }
            if !full {
                // Caught up: the records land (or fail) before the loop idles.
                self.settle().await?;
            }
            let position = self.subscription.position();
            self.update(|h| h.position = position);
        }
    }

    /// Stops for good once the fleet instance running this bucket crashed
    /// (its loop was dropped: an abort). This task is being aborted too,
    /// but a loop that was running on another thread at that moment would
    /// otherwise go on until its next wait, handling and recording what it
    /// read; waiting here hands it to the abort at once.
    async fn halt_if_crashed(&mut self) {
        if self
            .crash
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            std::future::pending::<()>().await;
        }
    }

    /// Handles one message under the failure policy. `Ok(false)`: shutdown
    /// was asked for before it was handled. While it runs the message is
    /// `in_flight` (and stays so if this is dropped at the deadline).
    async fn handle(&mut self, message: &Message) -> Result<bool> {
        // Two clock reads cost a fifth of the loop's bookkeeping: only
        // when the duration is reported.
        let started = self.meters.is_reporting().then(std::time::Instant::now);
        let before = self.attempt_counts(Some(message.global_position));
        let span = trace::process(self.options.subscription.consumer_id(), message);
        // Without a subscriber the span is none: no need to enter it.
        let handled = if span.is_disabled() {
            self.handle_in_flight(message).await
        } else {
            let inner = span.clone();
            self.handle_in_flight(message).instrument(inner).await
        };
        // Cleared already with the progress it made, unless it made none.
        let after = self.attempt_counts(None);
        let failed = after.0 - before.0;
        // A parked message's attempts all failed; a handled one's last did not.
        let succeeded = u64::from(after.1 == before.1);
        if let (Ok(true), Some(started)) = (&handled, started) {
            self.meters
                .handled(started.elapsed(), failed, succeeded == 0);
        }
        match &handled {
            Ok(true) => span.record("message_store.attempts", failed + succeeded),
            Ok(false) => span.record("message_store.attempts", failed),
            Err(error) => {
                span.record("error.type", tracing::field::debug(error.kind()));
                span.record("otel.status_code", "ERROR")
            }
        };
        handled
    }

    /// The failed attempts and parked messages so far, noting `in_flight`
    /// as the message in flight (one lock for both).
    fn attempt_counts(&self, in_flight: Option<u64>) -> (u64, u64) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.in_flight = in_flight;
        (health.failed_attempts, health.parked)
    }

    /// True when the position recorded is `global_position`'s.
    fn recorded(&self, global_position: u64) -> bool {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.committed == Some(global_position)
    }

    async fn handle_in_flight(&mut self, message: &Message) -> Result<bool> {
        if self.handlers.transactional() && !self.handlers.none_for(&message.message_type) {
            if Some(message.global_position) <= self.subscription.recorded() {
                // Its unit committed; the resume delivers it again.
                self.handled(message);
                return Ok(true);
            }
            return self.handle_in_unit(message).await;
        }
        let token = &self.token;
        let dispatch = self.handlers.dispatch(
            message,
            &self.options.retry,
            self.options.handler_timeout,
            |delay| {
                let token = token.clone();
                Box::pin(async move { pause(&token, delay).await })
            },
        );
        let outcome = crate::fleet::with_lease(self.lease.clone(), dispatch).await;
        match outcome {
            Outcome::Handled {
                failures,
                last_error,
            } => {
                // One update for the whole of the common case.
                self.update(|h| {
                    h.handled += 1;
                    h.failed_attempts += u64::from(failures);
                    if last_error.is_some() {
                        h.last_error = last_error;
                    }
                    h.in_flight = None;
                    h.last_handled = Some(message.global_position);
                    h.last_message_time = Some(message.time);
                });
                return Ok(true);
            }
            Outcome::Cancelled => return Ok(false),
            Outcome::Failed { attempts, error } => {
                let error = self.failed_for_good(message, attempts, error)?;
                if !self.park(message, error.to_string(), attempts).await? {
                    return Ok(false);
                }
                self.update(|h| {
                    h.parked += 1;
                    h.in_flight = None;
                    h.last_handled = Some(message.global_position);
                    h.last_message_time = Some(message.time);
                });
            }
        }
        Ok(true)
    }

    /// Notes in the health that the handlers failed for good; under
    /// [`FailurePolicy::Stop`] gives the consumer's error, else hands the
    /// handler's error back for parking.
    pub(crate) fn failed_for_good(
        &self,
        message: &Message,
        attempts: u32,
        error: crate::HandlerError,
    ) -> Result<crate::HandlerError> {
        self.update(|h| {
            h.failed_attempts += u64::from(attempts);
            h.last_error = Some(error.to_string());
        });
        match self.options.on_failure {
            FailurePolicy::Park => Ok(error),
            FailurePolicy::Stop => Err(Error::HandlerFailed {
                category: self.category.as_str().to_owned(),
                stream: message.stream_name.as_str().to_owned(),
                position: message.position,
                global_position: message.global_position,
                message_type: message.message_type.clone(),
                attempts,
                source: error,
            }),
        }
    }

    /// Parks the message, retrying the write while the backend fails.
    async fn park(&mut self, message: &Message, error: String, attempts: u32) -> Result<bool> {
        let consumer_id = self
            .options
            .subscription
            .consumer_id()
            .expect("validated: Park needs a consumer id");
        let stream = self.category.parked_stream(consumer_id)?;
        let copy = parked::parked_copy(message, consumer_id, error, attempts);
        let mut failures = 0;
        loop {
            match parked::park(self.store.as_ref(), &stream, copy.clone()).await {
                Ok(()) => return Ok(true),
                Err(error) => {
                    if !self.backend_failed(&mut failures, "parking", &error).await {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// Spawns the loop.
pub(crate) fn spawn(runner: Runner) -> JoinHandle<Result<ConsumerHealth>> {
    tokio::spawn(runner.run())
}
