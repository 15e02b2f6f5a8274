//! Consumer options, with Eventide's defaults where it has them: the
//! consumer's own here, how failing handlers are retried and what is done
//! with a message that still fails in `policy`.

use std::time::Duration;

use message_store::SubscribeOptions;
use message_store::{Error, Result};

mod policy;

pub use policy::{FailurePolicy, RetryPolicy};

/// A consumer's options.
///
/// ```
/// use std::time::Duration;
/// use message_store_consumer::{ConsumerOptions, FailurePolicy, RetryPolicy};
/// use message_store::SubscribeOptions;
/// let options = ConsumerOptions::new()
///     .with_subscription(SubscribeOptions::new().with_consumer_id("projector"))
///     .with_position_update_interval(50)
///     .with_retry(RetryPolicy::new().with_max_attempts(3))
///     .with_failure_policy(FailurePolicy::Park)
///     .with_handler_timeout(Duration::from_secs(30));
/// assert_eq!(options.failure_policy(), FailurePolicy::Park);
/// options.validate()?;
/// # Ok::<(), message_store::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerOptions {
    pub(crate) subscription: SubscribeOptions,
    pub(crate) position_update_interval: u64,
    pub(crate) position_update_gap: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) on_failure: FailurePolicy,
    pub(crate) backend_backoff: Duration,
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) shutdown_deadline: Duration,
    pub(crate) standby: bool,
    pub(crate) lease_duration: Duration,
    pub(crate) instance_id: Option<String>,
    pub(crate) lag_interval: Duration,
    pub(crate) lag_exact_up_to: u64,
}

/// The default [`ConsumerOptions::shutdown_deadline`]: 25 s, inside the 30 s
/// a container orchestrator usually waits before killing a process.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(25);

/// The default [`ConsumerOptions::position_update_gap`]: 10 ms.
pub const DEFAULT_POSITION_UPDATE_GAP: Duration = Duration::from_millis(10);

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            subscription: SubscribeOptions::default(),
            position_update_interval: 100,
            position_update_gap: DEFAULT_POSITION_UPDATE_GAP,
            retry: RetryPolicy::default(),
            on_failure: FailurePolicy::Stop,
            backend_backoff: Duration::from_secs(5),
            handler_timeout: None,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
            standby: true,
            lease_duration: crate::fleet::DEFAULT_LEASE_DURATION,
            instance_id: None,
            lag_interval: Duration::from_secs(10),
            lag_exact_up_to: 10_000,
        }
    }
}

impl ConsumerOptions {
    /// Eventide's defaults: batch size 1000, poll interval 100 ms, position
    /// recorded every 100 messages; five attempts, then stop.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subscription's options: consumer id, start position, batch size,
    /// poll interval, consumer group, correlation.
    pub fn with_subscription(mut self, options: SubscribeOptions) -> Self {
        self.subscription = options;
        self
    }

    /// Record the position after this many handled messages (at least 1),
    /// and at shutdown.
    pub fn with_position_update_interval(mut self, messages: u64) -> Self {
        self.position_update_interval = messages;
        self
    }

    /// The least time from the start of one position record to the next
    /// while a consumer handles faster than that (catching up). Each record
    /// is a write the server commits: a consumer catching up at hundreds of
    /// thousands of messages a second would otherwise write one as soon as
    /// the last landed, several hundred a second. Within the gap the newest
    /// record due waits, replacing older ones; what is handled is recorded
    /// at most one write and this gap later than without it. The record
    /// written when the consumer stops, or reads a short page (it has caught
    /// up), does not wait; a catch-up ending on a full page is recorded once
    /// the gap has passed. The cost: a crash redelivers what was handled
    /// since the last record landed, which the gap lengthens by what is
    /// handled within it (catching up, thousands of messages for 10 ms).
    /// Default [`DEFAULT_POSITION_UPDATE_GAP`]; zero writes each record as
    /// soon as the last landed, keeping a crash's redeliveries near the
    /// position update interval.
    pub fn with_position_update_gap(mut self, gap: Duration) -> Self {
        self.position_update_gap = gap;
        self
    }

    /// How failing handlers are retried.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// What happens after the last retry.
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }

    /// The longest wait between attempts to reach a failing backend (the
    /// consumer retries forever, doubling from 50 ms up to this).
    pub fn with_backend_backoff(mut self, max: Duration) -> Self {
        self.backend_backoff = max;
        self
    }

    /// The longest one attempt of a handler may take; past it the attempt is
    /// dropped and counts as a failure ([`HandlerTimedOut`](crate::HandlerTimedOut)),
    /// so the retry and failure policies apply. Unset by default (no limit).
    ///
    /// The attempt is stopped at its next `.await`: a handler that blocks
    /// its thread (synchronous I/O, a long computation) cannot be stopped and
    /// belongs in `tokio::task::spawn_blocking`.
    pub fn with_handler_timeout(mut self, limit: Duration) -> Self {
        self.handler_timeout = Some(limit);
        self
    }

    /// How long stopping may take, from the moment shutdown is asked for
    /// ([`ConsumerHandle::shutdown`](crate::ConsumerHandle::shutdown)
    /// or its token) or the consumer stops by itself: four fifths of it for
    /// the message in flight, the rest for recording the position. Past it
    /// the consumer gives up and reports what was not recorded
    /// ([`Error::ShutdownDeadline`](crate::Error::ShutdownDeadline)). Default [`DEFAULT_SHUTDOWN_DEADLINE`].
    pub fn with_shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// Whether [`Consumer::start`](crate::Consumer::start) of a consumer
    /// with an id holds its position stream through a lease (on by
    /// default): a second instance under the same id then waits as a
    /// standby and takes over when the first stops, or once its lease runs
    /// out when it dies. Off: it starts at once, as Eventide's consumers
    /// do, and a second instance elsewhere handles the same messages until
    /// one of them commits and the other stops with `PositionStreamInUse`.
    pub fn with_standby(mut self, standby: bool) -> Self {
        self.standby = standby;
        self
    }

    /// The standby lease's duration (default
    /// [`DEFAULT_LEASE_DURATION`](crate::fleet::DEFAULT_LEASE_DURATION), at
    /// least 30 ms): how long a consumer that died keeps its position stream
    /// before a standby takes over (a graceful shutdown hands over at once).
    pub fn with_lease_duration(mut self, lease: Duration) -> Self {
        self.lease_duration = lease;
        self
    }

    /// This instance's id under the standby lease (default: a fresh UUID
    /// per start). Give each deployed instance a stable one of its own (a
    /// host or pod name): restarted after a crash under the same id, it
    /// resumes at once instead of waiting for its own lease to run out. Two
    /// live instances must never share one.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// How often the consumer samples its lag for the
    /// [`LAG`](message_store::backend::meter::LAG) gauge (default 10 s),
    /// while metrics are [enabled](message_store::backend::meter::enable).
    /// A sample reads the category from the first message not handled yet,
    /// up to [`with_lag_exact_up_to`](Self::with_lag_exact_up_to) messages:
    /// two short queries when caught up.
    pub fn with_lag_interval(mut self, interval: Duration) -> Self {
        self.lag_interval = interval;
        self
    }

    /// How many messages a lag sample counts one by one (default 10,000).
    /// A longer backlog is estimated from what was counted: the share of
    /// the global positions counted that were this consumer's, carried on
    /// to the category's head. That is exact when the category is written
    /// at an even mix with the rest of the store, and close otherwise.
    pub fn with_lag_exact_up_to(mut self, messages: u64) -> Self {
        self.lag_exact_up_to = messages;
        self
    }

    /// How often the lag gauge is sampled.
    pub fn lag_interval(&self) -> Duration {
        self.lag_interval
    }

    /// How many messages a lag sample counts before it estimates.
    pub fn lag_exact_up_to(&self) -> u64 {
        self.lag_exact_up_to
    }

    /// The instance id under the standby lease, if one was set.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// The one-bucket fleet a consumer with an id runs as under its lease.
    pub(crate) fn standby_fleet(&self) -> crate::fleet::FleetOptions {
        let fleet = crate::fleet::FleetOptions::new()
            .with_buckets(1)
            .with_lease_duration(self.lease_duration);
        match &self.instance_id {
            Some(id) => fleet.with_instance_id(id.clone()),
            None => fleet,
        }
    }

    /// Whether a consumer with an id stands by behind a live one.
    pub fn standby(&self) -> bool {
        self.standby
    }

    /// The standby lease's duration.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// The subscription's options.
    pub fn subscription(&self) -> &SubscribeOptions {
        &self.subscription
    }

    /// How often the position is recorded, in handled messages.
    pub fn position_update_interval(&self) -> u64 {
        self.position_update_interval
    }

    /// The least time between two background position records.
    pub fn position_update_gap(&self) -> Duration {
        self.position_update_gap
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.on_failure
    }

    /// The longest wait between attempts to reach a failing backend.
    pub fn backend_backoff(&self) -> Duration {
        self.backend_backoff
    }

    /// The handler timeout, if set.
    pub fn handler_timeout(&self) -> Option<Duration> {
        self.handler_timeout
    }

    /// The shutdown deadline.
    pub fn shutdown_deadline(&self) -> Duration {
        self.shutdown_deadline
    }

    /// Checks every option, as [`Consumer::start`](crate::Consumer::start)
    /// does: the subscription's, the retry policy's, and the rules between them.
    pub fn validate(&self) -> Result<()> {
        self.subscription.validate()?;
        self.retry.validate()?;
        if self.position_update_interval == 0 {
            return Err(invalid(
                "position_update_interval",
                "must be at least 1 message",
            ));
        }
        if self.handler_timeout == Some(Duration::ZERO) {
            return Err(invalid("handler_timeout", "must be longer than zero"));
        }
        if self.shutdown_deadline.is_zero() {
            return Err(invalid("shutdown_deadline", "must be longer than zero"));
        }
        if self.lag_interval.is_zero() {
            return Err(invalid("lag_interval", "must be longer than zero"));
        }
        if self.lag_exact_up_to == 0 {
            return Err(invalid("lag_exact_up_to", "must be at least 1 message"));
        }
        self.standby_fleet().validate()?;
        if self.on_failure == FailurePolicy::Park && self.subscription.consumer_id().is_none() {
            return Err(invalid(
                "consumer_id",
                "parking failed messages needs a consumer id to name the parked stream",
            ));
        }
        Ok(())
    }
}

fn invalid(option: &'static str, problem: &str) -> Error {
    Error::InvalidOption {
        option,
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests;
