//! Recording the consumer loop's position without waiting for it. One
//! task writes the records, one at a time, so they land in the order of
//! the positions. A record asked for while one is being written waits in
//! the task's slot, where a newer one replaces it: the task writes only
//! the latest, so a consumer that handles faster than a write lands never
//! waits, and its records never fall further behind than one write. While
//! records are asked for faster than
//! [`position_update_gap`](crate::ConsumerOptions::with_position_update_gap),
//! the task waits out the gap before it writes the newest, so catching up
//! commits a record per gap rather than one per round trip; a flush (the
//! loop read a short page, so it has caught up, or it is stopping) ends the
//! wait. A catch-up that ends on a full page is recorded when the gap has
//! passed.
//!
//! A fleet bucket's loop (a standby consumer's too) coalesces the same
//! way: what stops a stale owner is its lease by its own clock, looked at
//! before every message (see `fleet::fence`), and the store's refusal of
//! its next record, seen before the first message after the reply.
//!
//! A loop that ends without waiting for its records (aborted, cut at the
//! shutdown deadline) leaves the task to finish: the record being written,
//! and the newest waiting, still land, at most a write and the gap later.
//! Stopping them would redeliver more after an abort; a fleet's fence
//! refuses them once another instance owns the bucket.
//!
//! A record is only ever of a message whose handlers finished; a failed
//! write is written again, in the foreground with retries, at the same
//! position (a newer one waiting is dropped, recorded at the next
//! interval or at the end); the last record is awaited when the loop ends
//! ([`Runner::commit_on_close`]) and whenever the loop has caught up
//! ([`Runner::settle`]), so a refusal (another consumer on the position
//! stream) is seen before the loop idles.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::Result;
use crate::runtime::Runner;

/// The task writing records, and its slot for the next one.
pub(crate) struct Background {
    /// Ends with the position of its last write and how that went.
    task: JoinHandle<(u64, message_store::Result<()>)>,
    next: Arc<Mutex<Next>>,
    /// Cuts short the task's wait for the gap between records.
    flush: Arc<Notify>,
}

#[derive(Default)]
struct Next {
    /// The record to write after the current one.
    write: Option<(u64, BoxFuture<'static, message_store::Result<()>>)>,
    /// The task took its last record: a new one needs a new task.
    closed: bool,
    /// The newest position handed to the task.
    asked: u64,
}

impl Background {
    /// True once the task ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Hands `write` to the running task; false when it has ended.
    fn queue(&self, position: u64, write: BoxFuture<'static, message_store::Result<()>>) -> bool {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.closed {
            return false;
        }
        // A record not yet started is superseded: dropped unrun.
        next.write = Some((position, write));
        next.asked = position;
        true
    }
}

impl Runner {
    /// Records `global_position` (a handled message's): in the background,
    /// or, for consumers whose handlers record positions in their units of
    /// work (which must see the position stream as every write left it),
    /// right away.
    pub(crate) async fn record_soon(&mut self, global_position: u64) -> Result<()> {
        if self.handlers.transactional() {
            self.settle().await?;
            return self.commit(global_position).await;
        }
        if let Some(background) = self.background.as_ref().filter(|b| !b.is_finished()) {
            if let Some(write) = self.subscription.commit_detached(global_position)? {
                if background.queue(global_position, write) {
                    return Ok(());
                }
            }
        }
        self.settle().await?;
        match self.subscription.commit_detached(global_position)? {
            Some(write) => {
                self.background = Some(self.spawn_writer(global_position, write));
                Ok(())
            }
            None => self.commit(global_position).await,
        }
    }

    /// Starts the task that writes `write` (the record of `position`) and
    /// then whatever waits in its slot.
    fn spawn_writer(
        &self,
        position: u64,
        write: BoxFuture<'static, message_store::Result<()>>,
    ) -> Background {
        let next = Arc::new(Mutex::new(Next {
            asked: position,
            ..Next::default()
        }));
        // The health shows each record as soon as it lands, idle or not.
        let (health, progress, slot) = (self.health.clone(), self.progress.clone(), next.clone());
        let flush = Arc::new(Notify::new());
        let (gap, last, woken) = (
            self.options.position_update_gap,
            self.last_record.clone(),
            flush.clone(),
        );
        let task = tokio::spawn(async move {
            let (mut position, mut write) = (position, write);
            loop {
                // A gap too long for the clock waits for a flush alone.
                let due = lock(&last).map(|started| started.checked_add(gap));
                if let Some(due) = due.filter(|due| due.is_none_or(|due| due > Instant::now())) {
                    // Records asked for faster than the gap: the newest
                    // due waits out the rest of it (or a flush), replacing
                    // older ones meanwhile.
                    let wait = async {
                        match due {
                            Some(due) => tokio::time::sleep_until(due).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = wait => {}
                        () = woken.notified() => {}
                    }
                    if let Some(newer) = lock(&slot).write.take() {
                        (position, write) = newer;
                    }
                }
                *lock(&last) = Some(Instant::now());
                let written = write.await;
                let mut next = lock(&slot);
                if written.is_err() {
                    // Written again as it was: a retry of the same position
                    // recognises its own record if the reply was lost.
                    next.closed = true;
                    next.write = None;
                    return (position, written);
                }
                let following = next.write.take();
                next.closed = following.is_none();
                drop(next);
                {
                    let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
                    health.committed = health.committed.max(Some(position));
                }
                progress.send_modify(|changes| *changes = changes.wrapping_add(1));
                match following {
                    Some((p, w)) => (position, write) = (p, w),
                    None => return (position, written),
                }
            }
        });
        Background { task, next, flush }
    }

    /// Waits for the background writes, if any: a landed one shows in the
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

    /// Waits for the background writes, if any. Landed: they show in the
    /// health. Refused because another consumer writes the position stream:
    /// that error. Failed otherwise: the position to record again, and why.
    async fn finish_background(&mut self) -> Result<Option<(u64, String)>> {
        let Some(mut background) = self.background.take() else {
            return Ok(None);
        };
        // What waits out the gap is written now.
        background.flush.notify_one();
        let failure = match (&mut background.task).await {
            Ok((position, Ok(()))) => {
                self.update(|h| h.committed = h.committed.max(Some(position)));
                return Ok(None);
            }
            Ok((_, Err(error @ message_store::Error::PositionStreamInUse { .. }))) => {
                return Err(error.into())
            }
            Ok((position, Err(error))) => (position, error.to_string()),
            Err(join) => {
                // The task panicked: record the newest position asked for.
                let next = background
                    .next
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (next.asked, join.to_string())
            }
        };
        Ok(Some(failure))
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

/// When the last record's write started, kept from one writing task to the
/// next, for the gap between records.
pub(crate) type LastRecord = Arc<Mutex<Option<Instant>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
