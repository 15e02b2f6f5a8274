//! One instance of a fleet: the tick that renews its heartbeat, reads the
//! fleet and the buckets, plans, and claims or gives up buckets; and its
//! orderly exit.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bucket::{self, BucketContext, BucketEnd};
use super::handle::{FleetHealth, Shared};
use super::members::Members;
use super::options::FleetOptions;
use super::plan;
use super::records::{self, BucketRecord, Heartbeat};
use super::Lease;
use crate::error::{Error, Result};
use crate::handlers::Handlers;
use crate::options::ConsumerOptions;
use message_store::{Category, ExpectedVersion, MessageStore, NewMessage, StreamName};

/// A bucket this instance runs.
struct Running {
    generation: u64,
    token: CancellationToken,
    /// Asked to stop (given up or lost); listed until its task ends.
    stopping: bool,
    /// Seen claimed by another instance (counted as lost already).
    lost: bool,
}

/// Everything one instance keeps.
pub(crate) struct Instance {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// The bucket consumers' options, by bucket.
    pub(crate) bucket_options: Vec<ConsumerOptions>,
    pub(crate) fleet: FleetOptions,
    pub(crate) instance: String,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: CancellationToken,
    pub(crate) fleet_stream: StreamName,
    pub(crate) position_streams: Vec<StreamName>,
    pub(crate) members: Members,
    pub(crate) records: Vec<BucketRecord>,
    running: BTreeMap<u32, Running>,
    tasks: JoinSet<(u32, BucketEnd)>,
    /// When the last heartbeat that landed was sent.
    renewed_at: Option<Instant>,
    /// It has planned at least once (and so may hold buckets).
    planned: bool,
    fatal: Option<Error>,
}

impl Instance {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<dyn MessageStore>,
        category: Category,
        bucket_options: Vec<ConsumerOptions>,
        fleet: FleetOptions,
        instance: String,
        handlers: Arc<Handlers>,
        shared: Arc<Shared>,
        token: CancellationToken,
        fleet_stream: StreamName,
        position_streams: Vec<StreamName>,
        members: Members,
    ) -> Self {
        let records = vec![BucketRecord::default(); position_streams.len()];
        Instance {
            store,
            category,
            bucket_options,
            fleet,
            instance,
            handlers,
            shared,
            token,
            fleet_stream,
            position_streams,
            members,
            records,
            running: BTreeMap::new(),
            tasks: JoinSet::new(),
            renewed_at: None,
            planned: false,
            fatal: None,
        }
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) {
        self.shared
            .update(|h| h.last_error = Some(format!("{what}: {error}")));
    }

    /// Ticks until shut down or stopped by a fatal error, then leaves.
    pub(crate) async fn run(mut self) -> Result<FleetHealth> {
        let interval = self.fleet.heartbeat_interval();
        let mut next = Instant::now();
        let token = self.token.clone();
        while self.fatal.is_none() {
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                Some(ended) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.bucket_ended(ended);
                    // Say so soon: the next holder waits for it.
                    next = next.min(Instant::now() + interval / 8);
                }
                () = tokio::time::sleep_until(next) => {
                    // At a fixed rate: a slow tick must not space heartbeats out.
                    let started = Instant::now();
                    self.tick().await;
                    next = (started + interval).max(Instant::now());
                }
            }
        }
        self.leave().await;
        self.shared.update(|h| h.running = false);
        match self.fatal.take() {
            Some(error) => Err(error),
            None => Ok(self.shared.snapshot()),
        }
    }

    fn bucket_ended(
        &mut self,
        ended: std::result::Result<(u32, BucketEnd), tokio::task::JoinError>,
    ) {
        let (bucket, end) = match ended {
            Ok(ended) => ended,
            Err(join) => {
                self.error("a bucket's task failed", join);
                return;
            }
        };
        let counted = self.running.remove(&bucket).is_some_and(|r| r.lost);
        match end {
            BucketEnd::Stopped => {}
            BucketEnd::Lost { refused } => self.shared.update(|h| {
                h.refused_commits += u64::from(refused);
                h.losses += u64::from(!counted);
            }),
            BucketEnd::Failed(error) => {
                self.fatal.get_or_insert(error);
            }
        }
    }

    fn stop(&mut self, bucket: u32) {
        if let Some(running) = self.running.get_mut(&bucket) {
            running.stopping = true;
            running.token.cancel();
        }
    }

    async fn tick(&mut self) {
        let sent = Instant::now();
        let id = Uuid::new_v4();
        let heartbeat = Heartbeat {
            instance: self.instance.clone(),
            buckets: self.fleet.buckets(),
            lease_ms: u64::try_from(self.fleet.lease_duration().as_millis()).unwrap_or(u64::MAX),
            running: self.running.keys().copied().collect(),
        };
        let written = self
            .store
            .write(
                &self.fleet_stream,
                vec![heartbeat.message().with_id(id)],
                ExpectedVersion::Any,
            )
            .await;
        match written {
            Ok(_) => {
                self.renewed_at = Some(sent);
                self.shared.update(|h| h.renewals += 1);
            }
            Err(error) => {
                self.shared.update(|h| h.renewal_failures += 1);
                self.error("renewing the heartbeat", error);
            }
        }
        let expired = self
            .renewed_at
            .is_none_or(|at| at.elapsed() > self.fleet.lease_duration());
        if expired {
            // Others may take the buckets over now: stop handling them.
            let held: Vec<u32> = self
                .running
                .iter()
                .filter(|(_, r)| !r.stopping)
                .map(|(b, _)| *b)
                .collect();
            if !held.is_empty() {
                self.shared.update(|h| h.expiries += 1);
            }
            for bucket in held {
                self.stop(bucket);
            }
            return;
        }
        if let Err(error) = self.members.observe(self.store.as_ref(), id).await {
            return self.error("reading the fleet", error);
        }
        let lease = self.fleet.lease_duration();
        // A newcomer that counts differently stops before it claims
        // anything; the instances already at work leave it out.
        let mismatch = self.members.mismatch(self.fleet.buckets(), lease);
        if let Some((instance, theirs)) = mismatch.filter(|_| !self.planned) {
            self.fatal = Some(Error::FleetMismatch {
                fleet: self.fleet_stream.as_str().to_owned(),
                instance,
                theirs,
                ours: self.fleet.buckets(),
            });
            return;
        }
        // A few at a time: a tick must stay well inside a heartbeat interval.
        let store = self.store.as_ref();
        let mut reads = Vec::with_capacity(self.records.len());
        for (stream, cached) in self.position_streams.iter().zip(&self.records) {
            reads.push(records::read_bucket(store, stream, cached));
        }
        let read: Vec<_> = futures::stream::iter(reads).buffered(4).collect().await;
        for (bucket, read) in read.into_iter().enumerate() {
            match read {
                Ok(record) => self.records[bucket] = record,
                Err(error) => return self.error("reading a bucket's claims", error),
            }
        }
        // A bucket claimed by someone since this instance claimed it is lost.
        let lost: Vec<u32> = self
            .running
            .iter()
            .filter(|(b, r)| {
                !r.stopping
                    && self.records[**b as usize]
                        .claim
                        .as_ref()
                        .is_some_and(|c| c.generation > r.generation)
            })
            .map(|(b, _)| *b)
            .collect();
        for bucket in lost {
            self.shared.update(|h| h.losses += 1);
            if let Some(running) = self.running.get_mut(&bucket) {
                running.lost = true;
            }
            self.stop(bucket);
        }
        self.plan_and_act().await;
    }

    async fn plan_and_act(&mut self) {
        let lease = self.fleet.lease_duration();
        let live = self
            .members
            .live(&self.instance, self.fleet.buckets(), lease);
        self.planned = true;
        let holders: Vec<Option<String>> = (0..self.fleet.buckets())
            .map(|bucket| {
                if self.running.contains_key(&bucket) {
                    return Some(self.instance.clone());
                }
                let claim = self.records[bucket as usize].claim.as_ref()?;
                (claim.instance != self.instance && self.members.holds(claim, bucket, lease))
                    .then(|| claim.instance.clone())
            })
            .collect();
        let target = plan::assign(&live, &holders);
        self.shared.update(|h| h.members = live.clone());
        let give_up: Vec<u32> = self
            .running
            .iter()
            .filter(|(b, r)| !r.stopping && target[**b as usize] != self.instance)
            .map(|(b, _)| *b)
            .collect();
        for bucket in give_up {
            self.stop(bucket);
        }
        for bucket in 0..self.fleet.buckets() {
            let index = bucket as usize;
            if target[index] == self.instance && holders[index].is_none() {
                self.claim(bucket).await;
            }
        }
    }

    async fn claim(&mut self, bucket: u32) {
        let index = bucket as usize;
        let record = self.records[index].clone();
        let stream = &self.position_streams[index];
        let claimed =
            records::claim(self.store.as_ref(), stream, record.version, &self.instance).await;
        let (generation, resumes) = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return, // someone wrote first; the next tick sees who
            Err(error) => return self.error("claiming a bucket", error),
        };
        let taken_over = record
            .claim
            .as_ref()
            .is_some_and(|c| c.instance != self.instance);
        self.shared.update(|h| {
            if taken_over {
                h.takeovers += 1;
            } else {
                h.claims += 1;
            }
        });
        let token = CancellationToken::new();
        let context = BucketContext {
            store: self.store.clone(),
            category: self.category.clone(),
            options: self.bucket_options[index].clone(),
            handlers: self.handlers.clone(),
            shared: self.shared.clone(),
            position_stream: stream.clone(),
            lease: Lease {
                bucket,
                buckets: self.fleet.buckets(),
                generation,
                instance: self.instance.clone(),
            },
            resumes,
        };
        let run = bucket::run(context, token.clone());
        self.tasks.spawn(async move { (bucket, run.await) });
        self.running.insert(
            bucket,
            Running {
                generation,
                token,
                stopping: false,
                lost: false,
            },
        );
    }

    /// Stops every bucket (each drains and releases), then appends `Left`.
    async fn leave(&mut self) {
        let buckets: Vec<u32> = self.running.keys().copied().collect();
        for bucket in buckets {
            self.stop(bucket);
        }
        // Each bucket stops within the consumer's shutdown deadline; a
        // release stuck on a dead store is not waited for past a lease more.
        let bound = self.bucket_options[0].shutdown_deadline() + self.fleet.lease_duration();
        let drained = tokio::time::timeout(bound, async {
            while let Some(ended) = self.tasks.join_next().await {
                self.bucket_ended(ended);
            }
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
            self.error(
                "leaving the fleet",
                "buckets still stopping at the deadline were dropped",
            );
        }
        let left = NewMessage::new(
            records::LEFT,
            serde_json::json!({ "instance": self.instance }),
        );
        let write = self
            .store
            .write(&self.fleet_stream, vec![left], ExpectedVersion::Any);
        match tokio::time::timeout(self.fleet.lease_duration(), write).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => self.error("leaving the fleet", error),
            Err(_) => self.error("leaving the fleet", "timed out"),
        }
    }
}
