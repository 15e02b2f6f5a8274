//! Recording the consumer loop's position. It records without waiting for
//! the write, one write at a time, so records land in the order of the
//! positions. A record is only ever of a message whose handlers finished,
//! a failed write is written again with retries, and the last one is
//! awaited when the loop ends ([`Runner::commit_on_close`]).

use std::sync::PoisonError;

use crate::error::Result;
use crate::runtime::Runner;

impl Runner {
    /// Records `global_position` (a handled message's): in the background
    /// once the write before it settled, or, for consumers whose handlers
    /// record positions in their units of work (which must see the
    /// position stream as every write left it), right away.
    pub(crate) async fn record_soon(&mut self, global_position: u64) -> Result<()> {
        self.settle().await?;
        if self.handlers.transactional() {
            return self.commit(global_position).await;
        }
        match self.subscription.commit_detached(global_position)? {
            Some(write) => {
                // The health shows it as soon as it lands, idle or not.
                let (health, progress) = (self.health.clone(), self.progress.clone());
                let writing = tokio::spawn(async move {
                    let written = write.await;
                    if written.is_ok() {
                        let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
                        health.committed = health.committed.max(Some(global_position));
                        drop(health);
                        progress.send_modify(|changes| *changes = changes.wrapping_add(1));
                    }
                    written
                });
                self.background = Some((global_position, writing));
                Ok(())
            }
            None => self.commit(global_position).await,
        }
    }

    /// Waits for the background write, if any: a landed one shows in the
    /// health; a failed one is written again, in the foreground, with the
    /// retries of [`Runner::commit`]; a second consumer on the position
    /// stream is fatal, as it is there.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self.finish_background().await? {
            Some((position, failure)) => {
                self.update(|h| {
                    h.last_error = Some(format!("recording the position failed: {failure}"))
                });
                self.commit(position).await
            }
            None => Ok(()),
        }
    }

    /// Waits for the background write, if any. Landed: it shows in the
    /// health. Refused because another consumer writes the position stream:
    /// that error. Failed otherwise: its position and why.
    async fn finish_background(&mut self) -> Result<Option<(u64, String)>> {
        let Some((position, writing)) = self.background.take() else {
            return Ok(None);
        };
        let failure = match writing.await {
            Ok(Ok(())) => {
                self.update(|h| h.committed = Some(position));
                return Ok(None);
            }
            Ok(Err(error @ message_store::Error::PositionStreamInUse { .. })) => {
                return Err(error.into())
            }
            Ok(Err(error)) => error.to_string(),
            Err(join) => join.to_string(),
        };
        Ok(Some((position, failure)))
    }

    /// Records the position, retrying while the backend fails; a second
    /// consumer on the same position stream is fatal.
    pub(crate) async fn commit(&mut self, global_position: u64) -> Result<()> {
        let mut failures = 0;
        loop {
            match self.subscription.commit(global_position).await {
                Ok(()) => {
                    self.update(|h| h.committed = Some(global_position));
                    return Ok(());
                }
                Err(error @ message_store::Error::PositionStreamInUse { .. }) => {
                    return Err(error.into())
                }
                Err(error) => {
                    let recording = "recording the position";
                    if !self.backend_failed(&mut failures, recording, &error).await {
                        // Shutting down: the closing commit tries again.
                        return Ok(());
                    }
                }
            }
        }
    }

    /// At the end, records the last handled position if it is not recorded yet
    /// (a few quick attempts; shutdown must not hang on a dead backend).
    pub(crate) async fn commit_on_close(&mut self) -> Result<()> {
        // A write that failed is settled below: the last handled recorded.
        self.finish_background().await?;
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
                Err(message_store::Error::PositionStreamInUse { .. }) => break,
                Err(_) => tokio::time::sleep(self.backend_delay(attempt)).await,
            }
        }
        Ok(outcome?)
    }
}
