//! Testing an application's handlers under at-least-once delivery, without
//! a store or a clock: [`Redelivery`] gives the handlers a list of
//! messages the way production can (a crash between handling and recording,
//! a message twice, a retry after the handler's effects, a bucket moving to
//! another instance, a restart from an older position), and compares what
//! they built with a clean run that handled each message once.
//!
//! The application says what it builds through [`Simulated`]: a fresh
//! state (its database; kept across the consumer's restarts), a consumer
//! over it (built again at every restart, so instance-local caches are
//! lost as they would be), and the outcome to compare. Schedules come from
//! a seed, so a failure is reproduced by its seed and index; a
//! [`Schedule`] is plain data, so a property-testing library can generate
//! schedules itself and shrink a failing one to a few steps: generate a
//! `Vec<Step>`, run it with [`Redelivery::run`] and compare with the clean
//! run's outcome (`run(&[], ..)`); a failure shrinks to its one fault
//! (`consumer/tests/simulate.rs` does this with proptest).
//!
//! Handlers run one at a time, in delivery order, with retries but no
//! back-off; a message that fails every attempt stops the run with the
//! handler's error, or is skipped under [`FailurePolicy::Park`], as the
//! runtime parks it. Positions are recorded every
//! `position_update_interval` handled messages, and a new instance resumes
//! at the recorded one (inclusive), as the runtime does. Exactly-once
//! handlers (units of work) are not simulated.

mod schedule;

use std::fmt::{self, Debug};

use async_trait::async_trait;
use chrono::Utc;
use message_store::{Message, NewMessage, StreamName};

use crate::error::{Error, Result};
use crate::handlers::Outcome;
use crate::{Consumer, FailurePolicy};

pub use schedule::{Schedule, Step};

/// What an application's handlers build, for [`Redelivery`].
#[async_trait]
pub trait Simulated: Send + Sync {
    /// What the handlers write to and keep across restarts.
    type State: Send + Sync;
    /// What is compared between runs (read back from the state).
    type Outcome: PartialEq + Debug + Send;

    /// A fresh state for one run.
    async fn state(&self) -> Self::State;

    /// One instance of the consumer, its handlers over `state`.
    fn consumer(&self, state: &Self::State) -> Consumer;

    /// What the handlers built.
    async fn outcome(&self, state: &Self::State) -> Self::Outcome;
}

/// Runs handlers under seeded redelivery schedules (see the module docs).
#[derive(Debug, Clone)]
pub struct Redelivery {
    messages: Vec<Message>,
    seed: u64,
    schedules: usize,
}

impl Redelivery {
    /// The messages to deliver, in this (global) order; stream and global
    /// positions are given as a store would give them.
    pub fn new(messages: impl IntoIterator<Item = (StreamName, NewMessage)>) -> Self {
        let mut versions: std::collections::HashMap<StreamName, u64> = Default::default();
        let time = Utc::now();
        let messages = messages
            .into_iter()
            .zip(1u64..)
            .map(|((stream, new), global_position)| {
                let version = versions.entry(stream.clone()).or_insert(0);
                let position = *version;
                *version += 1;
                Message {
                    id: new.id,
                    stream_name: stream,
                    message_type: new.message_type,
                    position,
                    global_position,
                    data: message_store::JsonData::from_value(new.data),
                    metadata: new.metadata,
                    time,
                }
            })
            .collect();
        Redelivery {
            messages,
            seed: 0,
            schedules: 100,
        }
    }

    /// The seed of the schedules (default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many schedules [`check`](Redelivery::check) runs (default 100).
    pub fn with_schedules(mut self, schedules: usize) -> Self {
        self.schedules = schedules;
        self
    }

    /// The messages, as the handlers get them.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The `index`-th schedule of the seed: the one a report names.
    pub fn schedule(&self, index: usize) -> Schedule {
        let seed = self
            .seed
            .wrapping_add(u64::try_from(index).unwrap_or(u64::MAX));
        schedule::Seeded::new(seed).schedule(self.messages.len())
    }

    /// Runs the clean schedule, then each seeded one, and reports which
    /// ended in another outcome. Fails if a handler fails for good on a
    /// message (after its retries), in any run.
    pub async fn check<A: Simulated>(&self, app: &A) -> Result<Report<A::Outcome>> {
        let clean = self.run(&[], app).await?;
        let mut failures = Vec::new();
        for index in 0..self.schedules {
            let schedule = self.schedule(index);
            let outcome = self.run(&schedule, app).await?;
            if outcome != clean {
                failures.push(Failure {
                    index,
                    schedule,
                    outcome,
                });
            }
        }
        Ok(Report {
            seed: self.seed,
            runs: self.schedules,
            clean,
            failures,
        })
    }

    /// Runs one schedule on a fresh state and returns the outcome. The
    /// empty schedule is the clean run.
    pub async fn run<A: Simulated>(&self, schedule: &[Step], app: &A) -> Result<A::Outcome> {
        let state = app.state().await;
        let consumer = app.consumer(&state);
        if consumer.handlers.transactional() {
            return Err(Error::Store(message_store::Error::InvalidOption {
                option: "simulate",
                problem: "exactly-once handlers (units of work) are not simulated yet".to_owned(),
            }));
        }
        let mut run = Run::new(consumer, &self.messages);
        for step in schedule {
            match *step {
                Step::Next => run.next(1).await?,
                Step::Retry => run.next(2).await?,
                Step::Again => run.again().await?,
                Step::Crash => run.restart(app.consumer(&state), run.recorded),
                Step::Move => {
                    let handed_over = run.last.or(run.recorded);
                    run.restart(app.consumer(&state), handed_over);
                }
                Step::Rewind(back) => {
                    let from = run.cursor.checked_sub(back.max(1));
                    run.restart(app.consumer(&state), from);
                }
            }
        }
        while run.cursor < run.messages.len() {
            run.next(1).await?;
        }
        Ok(app.outcome(&state).await)
    }
}

/// One run's delivery state.
struct Run<'a> {
    consumer: Consumer,
    /// The messages of the consumer's category that its filters give it.
    messages: Vec<&'a Message>,
    /// The index of the next message to deliver.
    cursor: usize,
    /// The index of the last message handled.
    last: Option<usize>,
    /// The index of the last message whose position was recorded.
    recorded: Option<usize>,
    since_record: u64,
}

impl<'a> Run<'a> {
    fn new(consumer: Consumer, all: &'a [Message]) -> Self {
        let read = consumer.options.subscription.category_read(1);
        let messages = all
            .iter()
            .filter(|m| m.stream_name.category() == consumer.category.as_str())
            .filter(|m| read.matches(m.stream_name.as_str(), m.metadata.correlation()))
            .collect();
        Run {
            consumer,
            messages,
            cursor: 0,
            last: None,
            recorded: None,
            since_record: 0,
        }
    }

    /// Delivers the next message `times` times (a retry after effects).
    async fn next(&mut self, times: u32) -> Result<()> {
        let Some(index) = (self.cursor < self.messages.len()).then_some(self.cursor) else {
            return Ok(());
        };
        for _ in 0..times {
            self.deliver(index).await?;
        }
        self.cursor += 1;
        self.last = Some(index);
        self.since_record += 1;
        if self.since_record >= self.consumer.options.position_update_interval {
            self.recorded = Some(index);
            self.since_record = 0;
        }
        Ok(())
    }

    async fn again(&mut self) -> Result<()> {
        match self.last {
            Some(index) => self.deliver(index).await,
            None => Ok(()),
        }
    }

    /// A new instance resuming at `from` (inclusive, as a recorded
    /// position is), or at the start.
    fn restart(&mut self, consumer: Consumer, from: Option<usize>) {
        self.consumer = consumer;
        self.cursor = from.unwrap_or(0);
        self.recorded = from;
        // The new instance has handled nothing yet.
        self.last = None;
        self.since_record = 0;
    }

    async fn deliver(&self, index: usize) -> Result<()> {
        let message = self.messages[index];
        let options = &self.consumer.options;
        let outcome = self
            .consumer
            .handlers
            .dispatch(message, &options.retry, options.handler_timeout, |_| {
                Box::pin(async { true })
            })
            .await;
        match outcome {
            Outcome::Handled { .. } | Outcome::Cancelled => Ok(()),
            // Parked, as the runtime parks it, and the next one handled.
            Outcome::Failed { .. } if options.on_failure == FailurePolicy::Park => Ok(()),
            Outcome::Failed { attempts, error } => Err(Error::HandlerFailed {
                category: self.consumer.category.as_str().to_owned(),
                stream: message.stream_name.as_str().to_owned(),
                position: message.position,
                global_position: message.global_position,
                message_type: message.message_type.clone(),
                attempts,
                source: error,
            }),
        }
    }
}

/// What [`Redelivery::check`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<T> {
    /// The seed of the schedules.
    pub seed: u64,
    /// How many schedules ran.
    pub runs: usize,
    /// The outcome of the clean run.
    pub clean: T,
    /// The schedules that ended in another outcome.
    pub failures: Vec<Failure<T>>,
}

/// A schedule whose outcome differs from the clean run's.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<T> {
    /// Its index under the report's seed ([`Redelivery::schedule`]).
    pub index: usize,
    /// Its steps.
    pub schedule: Schedule,
    /// What the handlers built under it.
    pub outcome: T,
}

impl<T> Report<T> {
    /// True when every schedule ended as the clean run did.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl<T: Debug> fmt::Display for Report<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            return write!(
                f,
                "all {} schedules (seed {}) ended as the clean run: {:?}",
                self.runs, self.seed, self.clean
            );
        }
        let first = &self.failures[0];
        write!(
            f,
            "{} of {} schedules (seed {}) ended otherwise than the clean run.\n\
             clean run: {:?}\nschedule {}: {:?}\nended with: {:?}",
            self.failures.len(),
            self.runs,
            self.seed,
            self.clean,
            first.index,
            first.schedule,
            first.outcome
        )
    }
}
