//! Subscriptions: options, and the generic implementation backends share.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::consumer_group::ConsumerGroup;
use crate::error::{printable, Error, NameProblem, Result};
use crate::ext::MessageStoreExt;
use crate::message::{Message, NewMessage};
use crate::read::{BatchSize, CategoryRead};
use crate::store::{MessageStore, Subscription};
use crate::stream_name::{Category, StreamName};
use crate::version::ExpectedVersion;

/// The message type of a position record, as Eventide writes it.
pub const POSITION_RECORDED: &str = "Recorded";
/// The message type Eventide used for position records before mid-2018; still read.
pub const POSITION_UPDATED_LEGACY: &str = "Updated";

/// Where a subscription starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartPosition {
    /// At the last committed position (inclusive), else at the beginning.
    #[default]
    Committed,
    /// At the first message of the category, ignoring any committed position.
    Beginning,
    /// At this global position (inclusive), ignoring any committed position.
    At(u64),
    /// After the category's last message at the time the subscription opens:
    /// only new messages are delivered.
    End,
}

/// Options of a subscription, with Eventide's defaults: batch size 1000,
/// poll interval 100 ms, no consumer id, start at the committed position.
///
/// Setters never fail; opening the subscription (or starting a consumer)
/// checks the options once and refuses bad ones with
/// [`Error::InvalidOption`] or [`Error::InvalidCorrelation`].
///
/// ```
/// use std::time::Duration;
/// use message_store::{ConsumerGroup, SubscribeOptions};
/// let options = SubscribeOptions::new()
///     .with_consumer_id("projector")
///     .with_batch_size(500)
///     .with_poll_interval(Duration::from_millis(50));
/// assert_eq!(options.consumer_id(), Some("projector"));
/// options.validate()?;
/// # Ok::<(), message_store::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeOptions {
    consumer_id: Option<String>,
    start: StartPosition,
    batch_size: BatchSize,
    consumer_group: Option<ConsumerGroup>,
    correlation: Option<String>,
    poll_interval: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            consumer_id: None,
            start: StartPosition::Committed,
            batch_size: BatchSize::DEFAULT,
            consumer_group: None,
            correlation: None,
            poll_interval: Duration::from_millis(100),
        }
    }
}

impl SubscribeOptions {
    /// Eventide's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the consumer; its position is kept in `{category}:position-{id}`.
    /// Required for consumer-group members and whenever two consumers read
    /// one category. Must not be empty or contain NUL.
    pub fn with_consumer_id(mut self, id: impl Into<String>) -> Self {
        self.consumer_id = Some(id.into());
        self
    }

    /// Where to start reading.
    pub fn with_start(mut self, start: StartPosition) -> Self {
        self.start = start;
        self
    }

    /// How many messages one read fetches at most: a count of at least 1.
    pub fn with_batch_size(mut self, batch_size: impl Into<BatchSize>) -> Self {
        self.batch_size = batch_size.into();
        self
    }

    /// Reads only this consumer-group member's streams (needs a consumer id).
    pub fn with_consumer_group(mut self, group: ConsumerGroup) -> Self {
        self.consumer_group = Some(group);
        self
    }

    /// Reads only messages correlated with this category (see
    /// [`CategoryRead::with_correlation`]).
    pub fn with_correlation(mut self, category: impl Into<String>) -> Self {
        self.correlation = Some(category.into());
        self
    }

    /// How long to wait before reading again when caught up and no wake-up
    /// arrives; must be positive.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The consumer id, if set.
    pub fn consumer_id(&self) -> Option<&str> {
        self.consumer_id.as_deref()
    }

    /// The start position.
    pub fn start(&self) -> StartPosition {
        self.start
    }

    /// The batch size.
    pub fn batch_size(&self) -> BatchSize {
        self.batch_size
    }

    /// The consumer-group filter, if any.
    pub fn consumer_group(&self) -> Option<ConsumerGroup> {
        self.consumer_group
    }

    /// The correlation filter, if any.
    pub fn correlation(&self) -> Option<&str> {
        self.correlation.as_deref()
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The category read these options describe, starting at `position`.
    pub fn category_read(&self, position: u64) -> CategoryRead {
        let mut read = CategoryRead::new()
            .with_position(position)
            .with_batch_size(self.batch_size);
        if let Some(correlation) = &self.correlation {
            read = read.with_correlation(correlation.clone());
        }
        if let Some(group) = self.consumer_group {
            read = read.with_consumer_group(group);
        }
        read
    }

    /// Checks every option, as opening a subscription does: the consumer id
    /// (not empty, no NUL), the batch size (a count of at least 1), the poll
    /// interval (positive), the correlation (a category), and that a
    /// consumer-group member has a consumer id.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.consumer_id {
            let problem = if id.is_empty() {
                Some(NameProblem::Empty)
            } else if id.contains('\0') {
                Some(NameProblem::ContainsNul)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(invalid(
                    "consumer_id",
                    format!("`{}`: {problem}", printable(id)),
                ));
            }
        }
        if !matches!(self.batch_size, BatchSize::Limit(n) if n >= 1) {
            return Err(invalid(
                "batch_size",
                "a subscription's batch size must be a count of at least 1".to_owned(),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(invalid(
                "poll_interval",
                "the poll interval must be positive".to_owned(),
            ));
        }
        self.category_read(0).validate()?;
        if self.consumer_group.is_some() && self.consumer_id.is_none() {
            return Err(invalid(
                "consumer_id",
                "a consumer-group member needs a consumer id, or the members would share one position stream".to_owned(),
            ));
        }
        Ok(())
    }
}

fn invalid(option: &'static str, problem: String) -> Error {
    Error::InvalidOption { option, problem }
}

/// What a position stream holds: its last committed position and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommittedPosition {
    /// The last recorded global position, if any.
    pub position: Option<u64>,
    /// The position stream's version, to append the next record after it.
    pub version: Option<u64>,
}

/// Reads the last committed position of a position stream. Accepts
/// Eventide's `Recorded` and legacy `Updated` records.
pub async fn read_committed_position(
    store: &(impl MessageStore + ?Sized),
    position_stream: &StreamName,
) -> Result<CommittedPosition> {
    let Some(last) = store.last_message(position_stream).await? else {
        return Ok(CommittedPosition::default());
    };
    let version = Some(last.position);
    // Usually the last record is a position; if something else was appended
    // after it, look for the last position record rather than start over.
    let record = if is_position_record(&last) {
        Some(last)
    } else {
        match store
            .last_message_of_type(position_stream, POSITION_RECORDED)
            .await?
        {
            Some(recorded) => Some(recorded),
            None => {
                store
                    .last_message_of_type(position_stream, POSITION_UPDATED_LEGACY)
                    .await?
            }
        }
    };
    let position = match record {
        Some(record) => Some(recorded_position(&record)?),
        None => None,
    };
    Ok(CommittedPosition { position, version })
}

fn is_position_record(message: &Message) -> bool {
    message.message_type == POSITION_RECORDED || message.message_type == POSITION_UPDATED_LEGACY
}

fn recorded_position(record: &Message) -> Result<u64> {
    #[derive(serde::Deserialize)]
    struct Recorded {
        position: u64,
    }
    Ok(record.decode::<Recorded>()?.position)
}

/// The message that records a committed position.
pub fn position_record(global_position: u64) -> NewMessage {
    NewMessage::new(POSITION_RECORDED, json!({ "position": global_position }))
}

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
    /// The position stream's version after our last record: a commit expects
    /// it, so a second consumer writing the same stream is detected.
    position_version: Option<u64>,
    /// The record of a commit whose outcome is unknown (the call failed), so a
    /// retry of the same position sends the very same record.
    pending_record: Option<(u64, Uuid)>,
    /// The highest position a commit may record: the last delivered
    /// message's, or the position already recorded when the subscription opened.
    committable: Option<u64>,
    cursor: u64,
    wake: Option<watch::Receiver<u64>>,
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
        let cursor = match options.start {
            StartPosition::Beginning => 1,
            StartPosition::At(position) => position.max(1),
            StartPosition::End => store
                .category_head(category)
                .await?
                .map_or(1, |head| head + 1),
            StartPosition::Committed => committed.position.unwrap_or(1).max(1),
        };
        Ok(StoreSubscription {
            store,
            category: category.clone(),
            options,
            position_stream,
            position_version: committed.version,
            pending_record: None,
            committable: committed.position,
            cursor,
            wake,
        })
    }

    /// The stream this subscription commits its position to.
    pub fn position_stream(&self) -> &StreamName {
        &self.position_stream
    }

    async fn wait(&mut self) {
        let interval = self.options.poll_interval;
        match &mut self.wake {
            Some(wake) => {
                if let Ok(Err(_closed)) = tokio::time::timeout(interval, wake.changed()).await {
                    // The store is gone; fall back to polling.
                    self.wake = None;
                    tokio::time::sleep(interval).await;
                }
            }
            None => tokio::time::sleep(interval).await,
        }
    }
}

#[async_trait]
impl<S: MessageStore> Subscription for StoreSubscription<S> {
    async fn next_batch(&mut self) -> Result<Vec<Message>> {
        loop {
            if let Some(wake) = &mut self.wake {
                // Anything written after this point wakes the wait below.
                wake.borrow_and_update();
            }
            let read = self.options.category_read(self.cursor);
            let batch = self.store.read_category(&self.category, read).await?;
            if let Some(last) = batch.last() {
                self.cursor = last.global_position + 1;
                self.committable = self.committable.max(Some(last.global_position));
                return Ok(batch);
            }
            self.wait().await;
        }
    }

    /// Appends a position record, expecting the position stream to be as this
    /// subscription left it; if another consumer wrote to it meanwhile, fails
    /// with [`Error::PositionStreamInUse`] rather than let the two overwrite
    /// each other's positions and skip messages. A position past the last
    /// delivered message fails with [`Error::CommitAhead`].
    async fn commit(&mut self, global_position: u64) -> Result<()> {
        if Some(global_position) > self.committable {
            return Err(Error::CommitAhead {
                stream: self.position_stream.as_str().to_owned(),
                position: global_position,
                delivered: self.committable,
            });
        }
        let expected = ExpectedVersion::from_version(self.position_version);
        let id = match self.pending_record {
            Some((position, id)) if position == global_position => id,
            _ => Uuid::new_v4(),
        };
        self.pending_record = Some((global_position, id));
        let record = vec![position_record(global_position).with_id(id)];
        match self
            .store
            .write(&self.position_stream, record, expected)
            .await
        {
            Ok(version) => {
                self.position_version = Some(version);
                self.pending_record = None;
                Ok(())
            }
            Err(Error::WrongExpectedVersion { actual, .. }) => {
                // If an earlier attempt of this very record landed although its
                // reply was lost, the stream ends with it; anything else means
                // another consumer writes here.
                let last = self.store.last_message(&self.position_stream).await?;
                self.pending_record = None;
                match last {
                    Some(last) if last.id == id => {
                        self.position_version = actual;
                        Ok(())
                    }
                    _ => Err(Error::PositionStreamInUse {
                        stream: self.position_stream.as_str().to_owned(),
                    }),
                }
            }
            Err(other) => Err(other),
        }
    }

    fn position(&self) -> u64 {
        self.cursor
    }
}
