//! A running consumer's handle: shutdown, join, health and lag.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use message_store::BatchSize;
use message_store::Category;
use message_store::MessageStore;
use message_store::SubscribeOptions;

/// What a running consumer reports, for a service's health endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerHealth {
    /// True until the consumer stopped.
    pub running: bool,
    /// The global position it reads next.
    pub position: u64,
    /// The global position of the last message handled (or parked).
    pub last_handled: Option<u64>,
    /// The global position of the message whose handlers are running now
    /// (a value that stays put names a slow or stuck handler).
    pub in_flight: Option<u64>,
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

impl ConsumerHealth {
    /// The first global position the consumer has not dealt with: past the
    /// position it reads next and past whatever it handled.
    pub(crate) fn first_unhandled(&self) -> u64 {
        self.last_handled
            .map_or(self.position, |last| self.position.max(last + 1))
    }
}

/// A running consumer. Dropping the handle does not stop it; call
/// [`ConsumerHandle::shutdown`] (or cancel its token) to stop gracefully.
#[derive(Debug)]
pub struct ConsumerHandle {
    pub(crate) token: CancellationToken,
    pub(crate) run: Run,
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
    /// Changes whenever the consumer makes progress; closed when it stopped.
    pub(crate) progress: watch::Receiver<u64>,
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// The consumer's reads (its filters), for counting its lag.
    pub(crate) read: SubscribeOptions,
}

/// How the consumer runs.
#[derive(Debug)]
pub(crate) enum Run {
    /// Its loop, on a position stream held in this process only.
    Alone {
        task: JoinHandle<Result<ConsumerHealth>>,
        claim: crate::live::Claim,
    },
    /// A one-bucket fleet instance: it runs while it holds the lease, and
    /// stands by otherwise.
    Leased {
        task: JoinHandle<Result<crate::fleet::FleetHealth>>,
    },
}

impl ConsumerHandle {
    /// The token that stops the consumer when cancelled (for wiring to Ctrl-C
    /// or a service's shutdown).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Stops gracefully: the message in flight finishes, the position is
    /// recorded, and the final health is returned, within the
    /// [`shutdown_deadline`](crate::ConsumerOptions::shutdown_deadline).
    /// Past it, whatever still runs is dropped and the result is
    /// [`Error::ShutdownDeadline`], which says what was not recorded.
    pub async fn shutdown(self) -> Result<ConsumerHealth> {
        self.token.cancel();
        self.join().await
    }

    /// Waits until the consumer stops by itself (failure policy `Stop`) or
    /// is shut down through its token (then within its shutdown deadline,
    /// as [`ConsumerHandle::shutdown`]).
    pub async fn join(self) -> Result<ConsumerHealth> {
        let joined = match self.run {
            Run::Alone { task, .. } => task.await,
            Run::Leased { task } => match task.await {
                Ok(Ok(_)) => Ok(Ok(self
                    .health
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone())),
                Ok(Err(error)) => Ok(Err(error)),
                Err(join) => Err(join),
            },
        };
        let mut health =
            joined.map_err(|join| Error::from(message_store::Error::backend(join)))??;
        health.running = false;
        Ok(health)
    }

    /// Stops at once, without recording the position (as a crash would).
    /// Alone, the position stream is free for a new consumer right away;
    /// leased, a standby takes over once the lease runs out.
    pub fn abort(&self) {
        match &self.run {
            Run::Alone { task, claim } => {
                task.abort();
                claim.release();
            }
            Run::Leased { task } => task.abort(),
        }
    }

    /// True once the consumer stopped.
    pub fn is_finished(&self) -> bool {
        match &self.run {
            Run::Alone { task, .. } => task.is_finished(),
            Run::Leased { task } => task.is_finished(),
        }
    }

    /// A snapshot of the consumer's health. A standby (a consumer whose
    /// lease another instance holds) is running and has nothing in flight.
    pub fn health(&self) -> ConsumerHealth {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Run::Leased { .. } = self.run {
            health.running = !self.is_finished();
        }
        health
    }

    /// Resolves once the consumer has handled (or parked) every message
    /// there is for it at the time of the call: every message of the
    /// category up to its head then that its filters (consumer group,
    /// correlation) give it. Messages written later do not delay it. Fails
    /// with [`Error::ConsumerStopped`] if the consumer stops first.
    ///
    /// It checks with one read of at most one message, from just past the
    /// last handled message, each time the consumer makes progress.
    ///
    /// ```
    /// use message_store_consumer::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = message_store_memory::MemoryStore::new();
    /// for i in 0..3 {
    ///     store.write_one(format!("account-{i}"), NewMessage::new("Opened", json!({})), ExpectedVersion::Any).await?;
    /// }
    /// let consumer = Consumer::new(Category::new("account")?)
    ///     .on_any(|_message: Message| async { HandlerResult::Ok(()) });
    /// let handle = consumer.start(store).await?;
    /// handle.caught_up().await?;
    /// assert_eq!(handle.health().handled, 3);
    /// handle.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn caught_up(&self) -> Result<()> {
        let Some(head) = self.store.category_head(&self.category).await? else {
            return Ok(());
        };
        let mut progress = self.progress.clone();
        loop {
            progress.borrow_and_update();
            let from = self.health().first_unhandled();
            if from > head {
                return Ok(());
            }
            let read = self
                .read
                .category_read(from)
                .with_batch_size(BatchSize::Limit(1));
            let next = self.store.read_category(&self.category, read).await?;
            if next
                .first()
                .is_none_or(|message| message.global_position > head)
            {
                return Ok(());
            }
            if progress.changed().await.is_err() || !self.health().running {
                // Stopped: one last look at what it got to.
                let health = self.health();
                let done = health
                    .last_handled
                    .is_some_and(|last| last >= next[0].global_position);
                if done {
                    continue;
                }
                return Err(Error::ConsumerStopped {
                    category: self.category.as_str().to_owned(),
                    waiting_for: next[0].global_position,
                    last_error: health.last_error,
                });
            }
        }
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
        crate::lag::lag(
            self.store.as_ref(),
            &self.category,
            &self.read,
            &self.health(),
        )
        .await
    }
}
