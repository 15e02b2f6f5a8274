//! Exactly-once handling: each message in its own unit of work, in which
//! the handlers write their effects and the runtime then writes the
//! consumer's position, so both commit or neither does.
//!
//! - A handler failure rolls the unit back; a retry runs every handler of
//!   the message again in a fresh unit.
//! - A failure to begin, to record the position or to commit is the
//!   backend's: the unit is lost, so the message is handled again (after
//!   the backend delay), and that does not count as a handler attempt.
//! - The position record expects the position stream's version, so
//!   another writer of it (a second consumer, or a fleet instance that took
//!   the bucket over) makes the unit fail with `PositionStreamInUse`
//!   before anything commits, and the consumer stops.
//! - A commit whose reply was lost is resolved by reading the position
//!   stream back: it ends with this unit's record, or the unit did not
//!   commit and the message is handled again.
//! - A parked message's copy is written in the unit that records the
//!   position past it.

use message_store::{ExpectedVersion, Message, OpenUnit, UnitOptions};

use crate::error::Result;
use crate::parked;
use crate::runtime::{pause, Runner};

/// How running a message's handlers in a unit ended.
enum Handled {
    /// They succeeded in `unit`, after `failures` failed attempts.
    Done {
        unit: Box<dyn OpenUnit>,
        failures: u32,
        last_error: Option<String>,
    },
    /// They still failed after the last attempt.
    Failed {
        attempts: u32,
        error: crate::HandlerError,
    },
    /// Shutdown was asked for while waiting to try again.
    Cancelled,
}

impl Runner {
    /// Handles one message exactly once (see the module docs). `Ok(false)`:
    /// shutdown was asked for before it was handled.
    pub(crate) async fn handle_in_unit(&mut self, message: &Message) -> Result<bool> {
        let mut failures = 0;
        loop {
            let recorded = match self.run_handlers(message).await {
                Handled::Cancelled => return Ok(false),
                Handled::Failed { attempts, error } => {
                    return self.give_up(message, attempts, error).await;
                }
                Handled::Done {
                    unit,
                    failures,
                    last_error,
                } => self
                    .record(unit, message)
                    .await
                    .map(|()| (failures, last_error)),
            };
            match recorded {
                Ok((failures, last_error)) => {
                    self.update(|h| {
                        h.handled += 1;
                        h.failed_attempts += u64::from(failures);
                        if last_error.is_some() {
                            h.last_error = last_error;
                        }
                    });
                    self.handled(message);
                    return Ok(true);
                }
                Err(error @ message_store::Error::PositionStreamInUse { .. }) => {
                    return Err(error.into())
                }
                Err(error) => {
                    let recording = "recording the position";
                    if !self.backend_failed(&mut failures, recording, &error).await {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Runs the handlers in a fresh unit until they succeed, under the
    /// retry policy; a unit that cannot be begun is waited out.
    async fn run_handlers(&mut self, message: &Message) -> Handled {
        let (mut attempts, mut failures, mut begin_failures) = (0, 0, 0);
        let mut last_error = None;
        loop {
            let mut unit = match self.store.begin(UnitOptions::new()).await {
                Ok(unit) => unit,
                Err(error) => {
                    let beginning = "beginning a unit";
                    if !self
                        .backend_failed(&mut begin_failures, beginning, &error)
                        .await
                    {
                        return Handled::Cancelled;
                    }
                    continue;
                }
            };
            attempts += 1;
            let run = self
                .handlers
                .run_in_unit(message, unit.unit(), self.options.handler_timeout);
            match crate::fleet::with_lease(self.lease.clone(), run).await {
                Ok(()) => {
                    return Handled::Done {
                        unit,
                        failures,
                        last_error,
                    }
                }
                Err(error) => {
                    drop(unit); // rolls the attempt's effects back
                    failures += 1;
                    if attempts >= self.options.retry.max_attempts() {
                        return Handled::Failed {
                            attempts: failures,
                            error,
                        };
                    }
                    last_error = Some(error.to_string());
                    if !pause(&self.token, self.options.retry.delay_after(attempts)).await {
                        return Handled::Cancelled;
                    }
                }
            }
        }
    }

    /// Writes the position record last into `unit` and commits it.
    async fn record(
        &mut self,
        mut unit: Box<dyn OpenUnit>,
        message: &Message,
    ) -> message_store::Result<()> {
        let pending = self
            .subscription
            .commit_in(unit.unit(), message.global_position)
            .await?;
        match unit.commit().await {
            Ok(()) => {
                self.subscription.committed(pending);
                Ok(())
            }
            Err(lost) if lost.is_outcome_unknown() => {
                let mut failures = 0;
                loop {
                    match self.subscription.landed(&pending).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => return Err(lost),
                        Err(error) => {
                            if !self.backend_failed(&mut failures, "", &error).await {
                                return Err(lost);
                            }
                        }
                    }
                }
            }
            Err(other) => Err(other),
        }
    }

    /// The handlers failed for good: stop, or park the message in the unit
    /// that records the position past it.
    async fn give_up(
        &mut self,
        message: &Message,
        attempts: u32,
        error: crate::HandlerError,
    ) -> Result<bool> {
        let error = self.failed_for_good(message, attempts, error)?;
        let consumer_id = self
            .options
            .subscription
            .consumer_id()
            .expect("validated: Park needs a consumer id")
            .to_owned();
        let stream = self.category.parked_stream(&consumer_id)?;
        let copy = parked::parked_copy(message, &consumer_id, error.to_string(), attempts);
        let (mut with_copy, mut failures) = (true, 0);
        loop {
            let parked = async {
                let mut unit = self.store.begin(UnitOptions::new()).await?;
                if with_copy {
                    unit.write(&stream, vec![copy.clone()], ExpectedVersion::Any)
                        .await?;
                }
                self.record(unit, message).await
            }
            .await;
            match parked {
                Ok(()) => break,
                // Parked by an earlier run whose position did not commit.
                Err(message_store::Error::DuplicateMessageId { .. }) => with_copy = false,
                Err(error @ message_store::Error::PositionStreamInUse { .. }) => {
                    return Err(error.into())
                }
                Err(error) => {
                    if !self.backend_failed(&mut failures, "parking", &error).await {
                        return Ok(false);
                    }
                }
            }
        }
        self.update(|h| h.parked += 1);
        self.handled(message);
        Ok(true)
    }

    /// Notes a handled message whose position its unit recorded.
    pub(crate) fn handled(&self, message: &Message) {
        self.update(|h| {
            h.last_handled = Some(message.global_position);
            h.last_message_time = Some(message.time);
            h.committed = Some(message.global_position);
        });
    }
}
