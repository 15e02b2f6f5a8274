//! One instance of a fleet: its state, the loop that ticks, fences itself
//! when its renewals stop landing and reaps its buckets' tasks, and its
//! orderly exit. The tick itself is in `tick`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bucket::BucketEnd;
use super::handle::{FleetHealth, Shared};
use super::members::Members;
use super::options::FleetOptions;
use super::records::{self, BucketRecord};
use crate::error::{Error, Result};
use crate::handlers::Handlers;
use crate::options::ConsumerOptions;
use message_store::{Category, ExpectedVersion, MessageStore, NewMessage, StreamName};

/// A bucket this instance runs.
pub(super) struct Running {
    pub(super) generation: u64,
    pub(super) token: CancellationToken,
    /// Asked to stop (given up, lost or fenced); listed until its task ends.
    pub(super) stopping: bool,
    /// Seen claimed by another instance (counted as lost already).
    pub(super) lost: bool,
}

/// What an instance is started with.
pub(crate) struct Setup {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// The bucket consumers' options, by bucket.
    pub(crate) bucket_options: Vec<ConsumerOptions>,
    pub(crate) fleet: FleetOptions,
    pub(crate) instance: String,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: CancellationToken,
    /// Cancelled when the instance's loop is dropped unfinished (the
    /// handle's abort, a crash): a bucket loop still running on another
    /// thread then handles and records nothing more, as a crashed process
    /// would not (see `Runner::halt_if_crashed`).
    pub(crate) crash: CancellationToken,
    pub(crate) fleet_stream: StreamName,
    pub(crate) position_streams: Vec<StreamName>,
    pub(crate) members: Members,
    /// A plain consumer's handle's view of its one bucket.
    pub(crate) sink: Option<super::bucket::Sink>,
}

/// Everything one instance keeps.
pub(crate) struct Instance {
    pub(super) setup: Setup,
    pub(super) records: Vec<BucketRecord>,
    pub(super) running: BTreeMap<u32, Running>,
    pub(super) tasks: JoinSet<(u32, BucketEnd)>,
    /// Which bucket each task runs, for a task that ends by panic or abort.
    pub(super) task_buckets: HashMap<Id, u32>,
    /// When the last heartbeat that landed was sent.
    pub(super) renewed_at: Option<Instant>,
    /// Its renewals stopped landing: it stopped its buckets and claims
    /// nothing until one lands again; its heartbeats say it is not ready.
    pub(super) fenced: bool,
    /// It has planned at least once (and so may hold buckets).
    pub(super) planned: bool,
    pub(super) fatal: Option<Error>,
    /// A bucket's stop that ran past its deadline, reported at the end.
    pub(super) cut: Option<Error>,
    /// Until when its buckets' loops may start a message: its fence time.
    pub(super) lease_clock: super::fence::Fence,
}

impl Instance {
    pub(crate) fn new(setup: Setup) -> Self {
        Instance {
            records: vec![BucketRecord::default(); setup.position_streams.len()],
            setup,
            running: BTreeMap::new(),
            tasks: JoinSet::new(),
            task_buckets: HashMap::new(),
            renewed_at: None,
            fenced: false,
            planned: false,
            fatal: None,
            cut: None,
            lease_clock: super::fence::Fence::new(),
        }
    }

    pub(super) fn error(&self, what: &str, error: impl std::fmt::Display) {
        self.setup
            .shared
            .update(|h| h.last_error = Some(format!("{what}: {error}")));
    }

    pub(super) fn interval(&self) -> Duration {
        self.setup.fleet.heartbeat_interval()
    }

    /// When the buckets must stop taking messages: a heartbeat interval
    /// before the lease that others judge runs out, counted from the send
    /// of the last renewal that landed (they saw it no earlier).
    pub(super) fn fence_at(&self) -> Option<Instant> {
        let lease = self.setup.fleet.lease_duration();
        self.renewed_at.map(|at| at + lease - self.interval())
    }

    /// When whatever still runs is dropped: before others may take over.
    fn cut_at(&self) -> Option<Instant> {
        let lease = self.setup.fleet.lease_duration();
        self.renewed_at.map(|at| at + lease - self.interval() / 2)
    }

    /// True while the lease this instance last renewed leaves it time to act.
    pub(super) fn renewed_recently(&self) -> bool {
        !self.fenced && self.fence_at().is_some_and(|at| Instant::now() < at)
    }

    /// Ticks until shut down or stopped by a fatal error, then leaves.
    pub(crate) async fn run(mut self) -> Result<FleetHealth> {
        let _crash = self.setup.crash.clone().drop_guard();
        let interval = self.interval();
        let mut next = Instant::now();
        let token = self.setup.token.clone();
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        while self.fatal.is_none() {
            let holding = self.running.values().any(|r| !r.stopping);
            let fence_at = self.fence_at().filter(|_| holding).unwrap_or(far);
            let cut_at = self
                .cut_at()
                .filter(|_| self.fenced && !self.running.is_empty())
                .unwrap_or(far);
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                () = tokio::time::sleep_until(cut_at) => {
                    // Past the point others may claim: nothing may still run.
                    self.tasks.abort_all();
                    while let Some(ended) = self.tasks.join_next_with_id().await {
                        self.bucket_ended(ended);
                    }
                }
                () = tokio::time::sleep_until(fence_at) => self.fence(),
                Some(ended) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.bucket_ended(ended);
                    // Say so soon: the next holder waits for it.
                    next = next.min(Instant::now() + interval / 8);
                }
                () = tokio::time::sleep_until(next) => {
                    // At a fixed rate, and never past the next fence or cut
                    // (a slow or hung store must not hold the fencing up),
                    // nor past a lease while holding nothing.
                    let started = Instant::now();
                    let lease = self.setup.fleet.lease_duration();
                    let limit = (started + lease).min(fence_at).min(cut_at);
                    if tokio::time::timeout_at(limit, self.tick()).await.is_err() {
                        self.error("a tick", "cut short (the store is slow or unreachable)");
                    }
                    next = (started + interval).max(Instant::now());
                }
            }
        }
        self.leave().await;
        self.setup.shared.update(|h| h.running = false);
        match self.fatal.take().or(self.cut.take()) {
            Some(error) => Err(error),
            None => Ok(self.setup.shared.snapshot()),
        }
    }

    /// Stops every bucket: the lease others see is about to run out.
    fn fence(&mut self) {
        self.fenced = true;
        self.lease_clock.revoke();
        self.setup.shared.update(|h| h.expiries += 1);
        let held: Vec<u32> = self.running.keys().copied().collect();
        for bucket in held {
            self.stop(bucket);
        }
    }

    fn bucket_ended(&mut self, ended: std::result::Result<(Id, (u32, BucketEnd)), JoinError>) {
        let (id, bucket, end) = match ended {
            Ok((id, (bucket, end))) => (id, bucket, Some(end)),
            Err(join) => {
                if !join.is_cancelled() {
                    self.error("a bucket's task failed", &join);
                }
                let Some(&bucket) = self.task_buckets.get(&join.id()) else {
                    return;
                };
                (join.id(), bucket, None)
            }
        };
        self.task_buckets.remove(&id);
        let counted = self.running.remove(&bucket).is_some_and(|r| r.lost);
        match end {
            Some(BucketEnd::Stopped { cut: Some(cut) }) => {
                self.cut.get_or_insert(cut);
            }
            Some(BucketEnd::Stopped { cut: None }) => {}
            Some(BucketEnd::Lost { refused }) => {
                self.setup.shared.update(|h| {
                    h.refused_commits += u64::from(refused);
                    h.losses += u64::from(!counted);
                });
                if !counted {
                    self.setup.shared.lease_changed("loss");
                }
            }
            Some(BucketEnd::Failed(error)) => {
                self.fatal.get_or_insert(error);
            }
            // Aborted or panicked: nothing was released; its claim lapses
            // once the heartbeats leave the bucket out.
            None => self
                .setup
                .shared
                .unregister(bucket, self.setup.sink.is_none()),
        }
    }

    pub(super) fn stop(&mut self, bucket: u32) {
        if let Some(running) = self.running.get_mut(&bucket) {
            running.stopping = true;
            running.token.cancel();
        }
    }

    /// Stops every bucket (each drains and releases), then appends `Left`.
    async fn leave(&mut self) {
        let buckets: Vec<u32> = self.running.keys().copied().collect();
        for bucket in buckets {
            self.stop(bucket);
        }
        // Each bucket stops within the consumer's shutdown deadline; a
        // release stuck on a dead store is not waited for past a lease more.
        // Meanwhile the heartbeats go on, so that nobody takes a bucket over
        // while it finishes its message in flight; should they stop landing,
        // nothing runs past the point others may claim.
        let deadline = self.setup.bucket_options[0].shutdown_deadline();
        let bound = deadline + self.setup.fleet.lease_duration();
        let end = Instant::now() + bound;
        let interval = self.interval();
        let mut next = Instant::now() + interval;
        let mut drained = true;
        while !self.tasks.is_empty() {
            let cut_at = self.cut_at().unwrap_or(end).min(end);
            tokio::select! {
                biased;
                Some(ended) = self.tasks.join_next_with_id() => self.bucket_ended(ended),
                () = tokio::time::sleep_until(cut_at) => {
                    drained = false;
                    break;
                }
                () = tokio::time::sleep_until(next) => {
                    let started = Instant::now();
                    let limit = (started + interval).min(cut_at);
                    if tokio::time::timeout_at(limit, self.renew()).await.is_err() {
                        self.error("renewing while stopping", "cut short");
                    }
                    next = (started + interval).max(Instant::now());
                }
            }
        }
        if !drained {
            self.tasks.abort_all();
            while let Some(ended) = self.tasks.join_next_with_id().await {
                self.bucket_ended(ended);
            }
            self.cut.get_or_insert(Error::ShutdownDeadline {
                category: self.setup.category.as_str().to_owned(),
                deadline: bound,
                abandoned: None,
                handled: None,
                recorded: None,
            });
        }
        let left = NewMessage::new(
            records::LEFT,
            serde_json::json!({ "instance": self.setup.instance }),
        );
        let write =
            self.setup
                .store
                .write(&self.setup.fleet_stream, vec![left], ExpectedVersion::Any);
        match tokio::time::timeout(self.setup.fleet.lease_duration(), write).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => self.error("leaving the fleet", error),
            Err(_) => self.error("leaving the fleet", "timed out"),
        }
    }
}
