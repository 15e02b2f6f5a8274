//! A running fleet instance's handle and what it reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::handle::ConsumerHealth;
use message_store::{Category, MessageStore, SubscribeOptions};

/// One bucket this instance runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketHealth {
    /// The generation of the claim it holds the bucket by.
    pub generation: u64,
    /// The bucket's consumer: position, handled, committed, errors.
    pub consumer: ConsumerHealth,
}

/// What a fleet instance reports, for a service's health endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetHealth {
    /// This instance's id.
    pub instance: String,
    /// True until the instance stopped.
    pub running: bool,
    /// The live instances it saw at its last tick, itself included.
    pub members: Vec<String>,
    /// The buckets it runs now, by bucket.
    pub buckets: BTreeMap<u32, BucketHealth>,
    /// Heartbeats written.
    pub renewals: u64,
    /// Heartbeats that failed.
    pub renewal_failures: u64,
    /// Times its lease ran out before it could renew (it stopped its buckets).
    pub expiries: u64,
    /// Buckets claimed that nobody held before (new, or released).
    pub claims: u64,
    /// Buckets claimed from an instance whose lease had run out.
    pub takeovers: u64,
    /// Buckets it gave up and released.
    pub releases: u64,
    /// Buckets taken from it (a refused commit, or a later claim seen).
    pub losses: u64,
    /// Position commits the store refused because another instance had
    /// claimed the bucket since (this instance was a stale owner).
    pub refused_commits: u64,
    /// Messages handled by all its buckets since start, including buckets it
    /// no longer runs.
    pub handled: u64,
    /// The last error seen (a heartbeat, a claim, a bucket).
    pub last_error: Option<String>,
}

/// What the instance and its buckets share with the handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) health: Mutex<FleetHealth>,
    pub(crate) buckets: Mutex<BTreeMap<u32, RunningBucket>>,
    /// The fleet's metrics (the consumer id's, not a bucket's).
    pub(crate) meters: message_store::backend::meter::ConsumerMeters,
}

/// A running bucket's generation and its consumer's health.
type RunningBucket = (u64, Arc<Mutex<ConsumerHealth>>);

impl Shared {
    pub(crate) fn update(&self, f: impl FnOnce(&mut FleetHealth)) {
        f(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Counts a lease change of `kind` (claim, takeover, release, loss).
    pub(crate) fn lease_changed(&self, kind: &'static str) {
        self.meters.lease_changed(kind);
    }

    pub(crate) fn register(
        &self,
        bucket: u32,
        generation: u64,
        health: Arc<Mutex<ConsumerHealth>>,
    ) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(bucket, (generation, health));
    }

    /// Forgets a bucket that stopped, adding what it handled to the total
    /// (`accumulate`; a plain consumer's one health already counts every
    /// generation of its bucket).
    pub(crate) fn unregister(&self, bucket: u32, accumulate: bool) {
        let removed = self
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&bucket);
        if let Some((_, health)) = removed.filter(|_| accumulate) {
            let handled = health
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .handled;
            self.update(|h| h.handled += handled);
        }
    }

    pub(crate) fn snapshot(&self) -> FleetHealth {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        for (bucket, (generation, consumer)) in buckets.iter() {
            let consumer = consumer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            health.handled += consumer.handled;
            health.buckets.insert(
                *bucket,
                BucketHealth {
                    generation: *generation,
                    consumer,
                },
            );
        }
        health
    }
}

/// A running fleet instance. Dropping the handle does not stop it; call
/// [`FleetHandle::shutdown`] to stop gracefully.
#[derive(Debug)]
pub struct FleetHandle {
    pub(crate) token: CancellationToken,
    pub(crate) task: JoinHandle<Result<FleetHealth>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) instance: String,
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// Each bucket's reads (its consumer group), for counting its lag.
    pub(crate) reads: Vec<SubscribeOptions>,
}

impl FleetHandle {
    /// This instance's id in the fleet.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The token that stops the instance when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Stops gracefully: each bucket finishes its message in flight and
    /// records its position (within the consumer's shutdown deadline) and
    /// is released, and the instance leaves the fleet, so the others take
    /// its buckets over at once. Returns the final health, or
    /// [`Error::ShutdownDeadline`](crate::Error::ShutdownDeadline) when a
    /// bucket's handler or position write had to be dropped.
    pub async fn shutdown(self) -> Result<FleetHealth> {
        self.token.cancel();
        self.join().await
    }

    /// Waits until the instance stops: shut down through its token, or
    /// stopped by a handler failure under
    /// [`FailurePolicy::Stop`](crate::FailurePolicy::Stop) (it released its
    /// buckets first) or by a fleet that counts its buckets differently.
    pub async fn join(self) -> Result<FleetHealth> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(message_store::Error::backend(join).into()),
        }
    }

    /// Stops at once, as a crash would: no position recorded, nothing
    /// released, no `Left`; the others take its buckets over once its lease
    /// runs out.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// True once the instance stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// A snapshot of the instance's health.
    pub fn health(&self) -> FleetHealth {
        self.shared.snapshot()
    }

    /// The lag of each bucket this instance runs: how many messages of the
    /// bucket it would still handle up to the category's head now (see
    /// [`ConsumerHandle::lag`](crate::ConsumerHandle::lag), whose cost
    /// each bucket's count has).
    pub async fn lag(&self) -> Result<BTreeMap<u32, u64>> {
        let mut lags = BTreeMap::new();
        for (bucket, health) in self.health().buckets {
            let read = &self.reads[bucket as usize];
            let lag = crate::lag::lag(self.store.as_ref(), &self.category, read, &health.consumer)
                .await?;
            lags.insert(bucket, lag);
        }
        Ok(lags)
    }
}
