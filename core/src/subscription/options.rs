//! [`SubscribeOptions`] and [`StartPosition`]: how a subscription reads, and
//! their checks.

use std::time::Duration;

use crate::consumer_group::ConsumerGroup;
use crate::error::{printable, Error, NameProblem, Result};
use crate::read::{BatchSize, CategoryRead};

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
    fallback_interval: Duration,
    idle_backoff: Option<Duration>,
}

/// The default [`SubscribeOptions::with_fallback_interval`]: 5 s.
pub const DEFAULT_FALLBACK_INTERVAL: Duration = Duration::from_secs(5);

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            consumer_id: None,
            start: StartPosition::Committed,
            batch_size: BatchSize::DEFAULT,
            consumer_group: None,
            correlation: None,
            poll_interval: Duration::from_millis(100),
            fallback_interval: DEFAULT_FALLBACK_INTERVAL,
            idle_backoff: None,
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
    ///
    /// After a full page the subscription reads on ahead while its consumer
    /// handles that page, until a short page: besides the page delivered,
    /// at most two more are in memory (one waiting, one being read).
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

    /// How long a caught-up subscription waits for a wake-up before it
    /// reads again anyway, while the store's wake-ups are live (see
    /// [`MessageStore::wake_ups_live`](crate::MessageStore::wake_ups_live));
    /// default [`DEFAULT_FALLBACK_INTERVAL`], never shorter than the poll
    /// interval. A write wakes the subscription at once either way: this
    /// bounds what a lost wake-up could delay. When the wake-ups stop (the
    /// LISTEN connection is down, or the schema sends none), the
    /// subscription reads every poll interval instead.
    pub fn with_fallback_interval(mut self, interval: Duration) -> Self {
        self.fallback_interval = interval;
        self
    }

    /// Backs polling off while the category stays quiet: after each read
    /// that found nothing the next poll waits twice as long, up to `max`,
    /// and the first message found brings it back to the poll interval. A
    /// message written to a quiet category then waits at most `max` to be
    /// read (unless a wake-up comes first), and an idle subscription reads
    /// about once per `max`. Off by default: polls keep the poll interval,
    /// as Eventide's do. For stores without wake-ups (genuine Message DB).
    pub fn with_idle_backoff(mut self, max: Duration) -> Self {
        self.idle_backoff = Some(max);
        self
    }

    /// The longest wait between polls of a quiet category: the idle
    /// backoff's limit, or the poll interval when there is none.
    pub fn idle_backoff(&self) -> Duration {
        self.idle_backoff
            .unwrap_or(self.poll_interval)
            .max(self.poll_interval)
    }

    /// The fallback interval.
    pub fn fallback_interval(&self) -> Duration {
        self.fallback_interval
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
        if self.fallback_interval.is_zero() {
            return Err(invalid(
                "fallback_interval",
                "the fallback interval must be positive".to_owned(),
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
