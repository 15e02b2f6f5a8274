//! Subscriptions: the generic implementation every backend shares, over
//! its options (`options`) and Eventide's position streams (`position`).

mod options;
mod position;
mod read_ahead;
mod recording;

use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::ext::MessageStoreExt;
use crate::message::Message;
use crate::store::{MessageStore, PendingCommit, Subscription};
use crate::stream_name::{Category, StreamName};
use crate::unit::UnitOfWork;
use crate::version::ExpectedVersion;

pub use options::{StartPosition, SubscribeOptions, DEFAULT_FALLBACK_INTERVAL};
pub use position::{
    position_record, read_committed_position, CommittedPosition, POSITION_RECORDED,
    POSITION_UPDATED_LEGACY,
};

/// A subscription over any [`MessageStore`]: reads the category page by page,
/// waits for a wake-up signal or the poll interval when caught up, and keeps
/// its position in an Eventide-compatible position stream in the same store.
///
/// Backends hand it a [`watch::Receiver`] whose value changes whenever a
/// message that may concern the category is written; without one it polls.
#[derive(Debug)]
pub struct StoreSubscription<S> {
    store: S,
    category: Category,
    options: SubscribeOptions,
    position_stream: StreamName,
    /// What the commits know of the position stream (shared with commits
    /// running apart, see [`Subscription::commit_detached`]).
    recording: recording::Shared,
    /// The highest position a commit may record: the last delivered
    /// message's, or the position already recorded when the subscription opened.
    committable: Option<u64>,
    cursor: u64,
    wake: Option<watch::Receiver<u64>>,
    /// How long the next poll waits: the poll interval, doubled after each
    /// read that found nothing up to the idle backoff's limit.
    next_poll: Duration,
    /// The next page, read while the last one is handled (after a full one).
    ahead: Option<read_ahead::ReadAhead>,
}

impl<S: MessageStore> StoreSubscription<S> {
    /// Validates the options, reads the committed position and opens the feed.
    pub async fn open(
        store: S,
        category: &Category,
        options: SubscribeOptions,
        wake: Option<watch::Receiver<u64>>,
    ) -> Result<Self> {
        options.validate()?;
        let position_stream = category.position_stream(options.consumer_id())?;
        let committed = read_committed_position(&store, &position_stream).await?;
        let cursor = match options.start() {
            StartPosition::Beginning => 1,
            StartPosition::At(position) => position.max(1),
            StartPosition::End => store
                .category_head(category)
                .await?
                .map_or(1, |head| head + 1),
            StartPosition::Committed => committed.position.unwrap_or(1).max(1),
        };
        let options_poll = options.poll_interval();
        Ok(StoreSubscription {
            store,
            category: category.clone(),
            options,
            position_stream,
            recording: std::sync::Arc::new(std::sync::Mutex::new(recording::Recording {
                version: committed.version,
                pending: None,
                recorded: committed.position,
            })),
            committable: committed.position,
            cursor,
            wake,
            next_poll: options_poll,
            ahead: None,
        })
    }

    /// The stream this subscription commits its position to.
    pub fn position_stream(&self) -> &StreamName {
        &self.position_stream
    }

    /// Refuses a position past the last delivered message.
    fn check_committable(&self, global_position: u64) -> Result<()> {
        if Some(global_position) > self.committable {
            return Err(Error::CommitAhead {
                stream: self.position_stream.as_str().to_owned(),
                position: global_position,
                delivered: self.committable,
            });
        }
        Ok(())
    }

    /// Marks the wake-ups seen before a read: anything written after this
    /// point wakes the wait that follows a read finding nothing.
    fn mark_wake(&mut self) {
        if let Some(wake) = &mut self.wake {
            wake.borrow_and_update();
        }
    }

    /// Waits until woken, or for the next poll (the poll interval, backed
    /// off while reads find nothing); the fallback interval instead while
    /// the store's wake-ups are live.
    async fn wait(&mut self) {
        let poll = self.next_poll;
        // Never shorter than the poll interval: the backoff's limit is not.
        self.next_poll = (poll * 2).min(self.options.idle_backoff());
        let interval = if self.wake.is_some() && self.store.wake_ups_live() {
            self.options.fallback_interval().max(poll)
        } else {
            poll
        };
        match &mut self.wake {
            Some(wake) => {
                if let Ok(Err(_closed)) = tokio::time::timeout(interval, wake.changed()).await {
                    // The store is gone; fall back to polling.
                    self.wake = None;
                    tokio::time::sleep(poll).await;
                }
            }
            None => tokio::time::sleep(interval).await,
        }
    }
}

#[async_trait]
impl<S: MessageStore + Clone> Subscription for StoreSubscription<S> {
    async fn next_batch(&mut self) -> Result<Vec<Message>> {
        loop {
            let read_ahead = match &mut self.ahead {
                Some(ahead) => ahead.next(self.cursor).await,
                None => None,
            };
            let batch = match read_ahead {
                // Only a page of messages is taken as read: an empty page or
                // a failure is as old as the read ahead, so the subscription
                // reads again for itself before it waits or reports it.
                Some(Ok(page)) if !page.is_empty() => page,
                _ => {
                    self.ahead = None;
                    self.mark_wake();
                    let read = self.options.category_read(self.cursor);
                    self.store.read_category(&self.category, read).await?
                }
            };
            if let Some(last) = batch.last() {
                self.next_poll = self.options.poll_interval();
                self.cursor = last.global_position + 1;
                self.committable = self.committable.max(Some(last.global_position));
                let limit = self.options.batch_size().limit();
                let full = limit.is_some_and(|limit| batch.len() as u64 >= limit);
                if !full {
                    self.ahead = None;
                } else if self.ahead.is_none() {
                    self.mark_wake();
                    self.ahead = Some(read_ahead::ReadAhead::start(
                        &self.store,
                        &self.category,
                        &self.options,
                        self.cursor,
                    ));
                }
                return Ok(batch);
            }
            self.ahead = None;
            self.wait().await;
        }
    }

    /// Appends a position record, expecting the position stream to be as this
    /// subscription left it; if another consumer wrote to it meanwhile, fails
    /// with [`Error::PositionStreamInUse`] rather than let the two overwrite
    /// each other's positions and skip messages. A position past the last
    /// delivered message fails with [`Error::CommitAhead`].
    async fn commit(&mut self, global_position: u64) -> Result<()> {
        self.check_committable(global_position)?;
        recording::record(
            &self.store,
            &self.position_stream,
            &self.recording,
            global_position,
        )
        .await
    }

    fn commit_detached(
        &mut self,
        global_position: u64,
    ) -> Result<Option<BoxFuture<'static, Result<()>>>> {
        self.check_committable(global_position)?;
        let (store, stream) = (self.store.clone(), self.position_stream.clone());
        let shared = self.recording.clone();
        Ok(Some(Box::pin(async move {
            recording::record(&store, &stream, &shared, global_position).await
        })))
    }

    async fn commit_in(
        &mut self,
        unit: &mut dyn UnitOfWork,
        global_position: u64,
    ) -> Result<PendingCommit> {
        self.check_committable(global_position)?;
        let expected = ExpectedVersion::from_version(recording::lock(&self.recording).version);
        let record = Uuid::new_v4();
        let message = position_record(global_position).with_id(record);
        match unit
            .write(&self.position_stream, vec![message], expected)
            .await
        {
            Ok(version) => Ok(PendingCommit {
                global_position,
                version,
                record,
            }),
            Err(Error::WrongExpectedVersion { .. }) => Err(Error::PositionStreamInUse {
                stream: self.position_stream.as_str().to_owned(),
            }),
            Err(other) => Err(other),
        }
    }

    fn committed(&mut self, pending: PendingCommit) {
        let mut state = recording::lock(&self.recording);
        state.version = Some(pending.version);
        state.recorded = Some(pending.global_position);
    }

    async fn landed(&mut self, pending: &PendingCommit) -> Result<bool> {
        let last = self.store.last_message(&self.position_stream).await?;
        let landed = last.is_some_and(|last| last.id == pending.record);
        if landed {
            let mut state = recording::lock(&self.recording);
            state.version = Some(pending.version);
            state.recorded = Some(pending.global_position);
        }
        Ok(landed)
    }

    fn position(&self) -> u64 {
        self.cursor
    }

    fn recorded(&self) -> Option<u64> {
        recording::lock(&self.recording).recorded
    }
}
