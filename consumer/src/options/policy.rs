//! How a failing handler is retried ([`RetryPolicy`]) and what a consumer
//! does with a message its handlers still fail on ([`FailurePolicy`]).

use std::time::Duration;

use message_store::Result;

use super::invalid;

/// How a failing handler is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Five attempts, back-off from 100 ms doubling up to 10 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many attempts per message (at least 1: no retry).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The first back-off; each retry doubles it up to `max` (at least `initial`).
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// The attempt limit.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The first back-off.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The longest back-off.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// Checks the policy: at least one attempt, and a first back-off no
    /// longer than the longest.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(invalid(
                "max_attempts",
                "a handler needs at least one attempt",
            ));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(invalid(
                "backoff",
                "the initial back-off exceeds the maximum",
            ));
        }
        Ok(())
    }

    /// The wait before attempt `attempt + 1`, after `attempt` failures (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What a consumer does with a message its handler still fails on after the last retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Stop the consumer with [`Error::HandlerFailed`](crate::Error::HandlerFailed); the message is
    /// delivered again when the consumer restarts (Eventide's behaviour).
    #[default]
    Stop,
    /// Write the message to the consumer's parked stream
    /// (`{category}:parked-{consumer id}`) with the error in its metadata, and
    /// go on. Needs a consumer id. Later messages of the parked message's
    /// stream are handled before it: see
    /// [parking and per-stream order](crate#parking-and-per-stream-order).
    Park,
}
