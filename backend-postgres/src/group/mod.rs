//! Group commit: concurrent plain writes to one store coalesced into one
//! transaction, so that many writers share one commit flush (and one hold
//! of each category's lock) instead of queueing for one each.
//!
//! - A write that finds no group running writes alone, at once, as it
//!   would without group commit: a lone writer pays nothing.
//! - Writes that arrive while one is running queue up. When it ends, a
//!   flushing task takes everything queued (up to [`MAX_GROUP_MESSAGES`])
//!   as one group, and so on until the queue is empty.
//! - Each call keeps its own expected version and its own errors (see
//!   [`plan`] and [`run`]); a call is acknowledged only after its group's
//!   commit.
//! - Units of work and [`PostgresStore::within`] keep their own
//!   transactions; only [`MessageStore::write`](message_store::MessageStore::write)
//!   is grouped.

mod optimistic;
mod plan;
mod run;
mod sql;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use message_store::{Error, ExpectedVersion, NewMessage, Result, StreamName};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::statements::Batch;
use crate::PostgresStore;

/// The most messages one group writes; a call with more writes alone.
pub const MAX_GROUP_MESSAGES: usize = 1000;

/// A store's queue of writes waiting for a group.
#[derive(Default)]
pub(crate) struct Committer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// A write or a flushing task is running: new writes queue. When it
    /// is false, the queue is empty.
    busy: bool,
}

/// A write waiting in the queue, or running in a group.
pub(crate) struct Queued {
    pub(crate) stream: StreamName,
    pub(crate) expected: ExpectedVersion,
    pub(crate) ids: Vec<Uuid>,
    pub(crate) batch: Batch,
    reply: oneshot::Sender<Reply>,
}

enum Reply {
    /// The call ran, with this outcome.
    Done(Result<u64>),
    /// The flushing task ended (its runtime shut down) before the call
    /// ran: nothing of it is stored.
    NotRun(Batch),
}

impl Queued {
    pub(crate) fn answer(self, result: Result<u64>) {
        // A caller that stopped waiting no longer needs the answer.
        self.reply.send(Reply::Done(result)).ok();
    }
}

impl Committer {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PostgresStore {
    /// This store with group commit on (the default) or off. Off, every
    /// [`write`](message_store::MessageStore::write) is its own
    /// statement and transaction, however many run at once.
    ///
    /// On, concurrent writes are coalesced: a write that finds the store
    /// writing already waits for that write to finish, then goes in one
    /// transaction with every write that queued meanwhile. What a caller
    /// can observe:
    /// - **Latency.** A lone writer's writes are unchanged. Under load, a
    ///   write waits for the group in flight and then for its own group's
    ///   commit: at most about two writes' time, in exchange for many
    ///   writes per commit flush.
    /// - **Outcomes.** Each call gets the result it would have had alone,
    ///   in the order the calls queued: its own position, its own
    ///   [`Error::WrongExpectedVersion`] or [`Error::DuplicateMessageId`];
    ///   another call's failure never fails it. When the group's
    ///   transaction fails as a whole (a deadlock with a unit of work, a
    ///   broken connection), each call is written again on its own, and
    ///   that outcome is its answer. When the commit's reply is lost,
    ///   each call the group wrote fails with [`Error::OutcomeUnknown`],
    ///   as a lone write would.
    /// - **Order.** A group's messages take global positions in queue
    ///   order, and a call's messages stay together.
    ///
    /// The setting belongs to this handle and its clones; other handles
    /// on the same pool keep theirs.
    pub fn with_group_commit(mut self, enabled: bool) -> Self {
        self.group = enabled.then(|| Arc::new(Committer::default()));
        self
    }

    /// True when this handle coalesces concurrent writes (see
    /// [`PostgresStore::with_group_commit`]).
    pub fn group_commit(&self) -> bool {
        self.group.is_some()
    }

    /// How many writes wait in this handle's queue for a group now (0
    /// with group commit off): a gauge of the write load's backlog.
    pub fn queued_writes(&self) -> usize {
        self.group
            .as_ref()
            .map_or(0, |committer| committer.state().queue.len())
    }

    /// Writes `messages` through the group committer when there is one.
    pub(crate) async fn write_messages(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let Some(committer) = self.group.clone() else {
            return self
                .write_alone(stream, &Batch::new(messages), expected)
                .await;
        };
        if messages.len() > MAX_GROUP_MESSAGES {
            return self
                .write_alone(stream, &Batch::new(messages), expected)
                .await;
        }
        let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
        let batch = Batch::new(messages);
        let answer = {
            let mut state = committer.state();
            if state.busy {
                let (reply, answer) = oneshot::channel();
                state.queue.push_back(Queued {
                    stream: stream.clone(),
                    expected,
                    ids,
                    batch,
                    reply,
                });
                Err(answer)
            } else {
                state.busy = true;
                Ok(batch)
            }
        };
        let answer = match answer {
            Ok(batch) => {
                let idle = Idle(&committer, self);
                let result = self.write_alone(stream, &batch, expected).await;
                drop(idle);
                return result;
            }
            Err(answer) => answer,
        };
        match answer.await {
            Ok(Reply::Done(result)) => result,
            Ok(Reply::NotRun(batch)) => self.write_alone(stream, &batch, expected).await,
            Err(_) => Err(Error::OutcomeUnknown {
                stream: stream.as_str().to_owned(),
                source: "the group commit task ended before it answered (its runtime shut down)"
                    .into(),
            }),
        }
    }
}

/// Held by a write running alone: when it ends (or is cancelled), the
/// writes that queued meanwhile get a flushing task, or the store is idle.
struct Idle<'a>(&'a Arc<Committer>, &'a PostgresStore);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        if state.queue.is_empty() {
            state.busy = false;
            return;
        }
        drop(state);
        start_flushing(self.1.clone(), self.0.clone());
    }
}

/// Spawns the task that flushes the queue, on the current runtime; with
/// none, tells the queued calls to write alone.
fn start_flushing(store: PostgresStore, committer: Arc<Committer>) {
    let flushing = Flushing {
        committer,
        emptied: false,
    };
    match tokio::runtime::Handle::try_current() {
        // Moved into the task: dropped with it, even unpolled.
        Ok(runtime) => drop(runtime.spawn(flush(store, flushing))),
        Err(_) => drop(flushing),
    }
}

/// Runs groups until the queue is empty.
async fn flush(store: PostgresStore, mut flushing: Flushing) {
    let mut last = 0;
    loop {
        refill(&flushing.committer, last).await;
        let group = {
            let mut state = flushing.committer.state();
            if state.queue.is_empty() {
                state.busy = false;
                flushing.emptied = true;
                return;
            }
            take_group(&mut state.queue)
        };
        last = group.len();
        run::run(&store, group).await;
    }
}

/// Waits, briefly, for the callers of the last group (`last` of them) to
/// queue their next writes: they were just answered, and a write that
/// found the store idle would go alone, one commit for one message, while
/// the rest queued behind it. Stops as soon as as many writes are queued,
/// or after [`REFILL`]; the store stays busy meanwhile, so arrivals queue.
async fn refill(committer: &Committer, last: usize) {
    if last < 2 {
        return;
    }
    let start = std::time::Instant::now();
    while committer.state().queue.len() < last && start.elapsed() < REFILL {
        tokio::task::yield_now().await;
    }
}

/// The longest [`refill`] waits: a small part of a commit's time.
const REFILL: std::time::Duration = std::time::Duration::from_micros(200);

/// The calls at the queue's head, up to [`MAX_GROUP_MESSAGES`] messages
/// (at least one call).
fn take_group(queue: &mut VecDeque<Queued>) -> Vec<Queued> {
    let mut group = Vec::new();
    let mut messages = 0;
    while let Some(next) = queue.front() {
        if !group.is_empty() && messages + next.batch.len() > MAX_GROUP_MESSAGES {
            break;
        }
        messages += next.batch.len();
        group.extend(queue.pop_front());
    }
    group
}

/// Owned by the flushing task: dropped before it emptied the queue (its
/// runtime shut down, or a panic), it frees the store and hands each
/// queued call back to its caller, to write alone.
struct Flushing {
    committer: Arc<Committer>,
    emptied: bool,
}

impl Drop for Flushing {
    fn drop(&mut self) {
        if self.emptied {
            return;
        }
        let queued: Vec<Queued> = {
            let mut state = self.committer.state();
            state.busy = false;
            state.queue.drain(..).collect()
        };
        for call in queued {
            call.reply.send(Reply::NotRun(call.batch)).ok();
        }
    }
}
