//! Fleet consumers' cases, and the log they share: every handling with
//! its instance, bucket, generation and time, so that each case can check
//! that nothing was lost, that per-stream order held, and that a bucket's
//! generation was handled by one instance.
//!
//! - `sharing`: instances that join and leave (four at once, a rolling
//!   deploy, a standby, options);
//! - `exactly_once`: handlers in units, buckets moving and a crash;
//! - `faults`: an instance that crashes;
//! - `stale`: an instance that pauses whole, one cut off from the store.
//!
//! Leases are short ([`LEASE`]), so takeovers happen within a second.

mod bridge;
mod exactly_once;
mod faults;
mod sharing;
mod stale;

pub use exactly_once::*;
pub use faults::*;
pub use sharing::*;
pub use stale::*;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{Category, ExpectedVersion, Message, MessageStore, SubscribeOptions};
use message_store_consumer::fleet::{current_lease, FleetHandle, FleetOptions};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult, RetryPolicy};
use tokio::time::Instant;

use crate::support::*;

/// The lease of the cases' fleets: short, so that takeovers come within a
/// second or two, and long enough that a tick a third of it late (a loaded
/// test machine) never makes an instance fence itself.
const LEASE: Duration = Duration::from_millis(900);

/// One message handled by one instance.
#[derive(Debug, Clone)]
struct Handling {
    instance: String,
    bucket: u32,
    generation: u64,
    stream: String,
    position: u64,
    at: Instant,
}

/// Every handling of a case, in the order they happened.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Handling>>>);

impl Log {
    /// Logs `message` as handled now, under the running handler's lease.
    fn record(&self, message: &Message) {
        let lease = current_lease().expect("a fleet handler runs under a lease");
        self.0.lock().unwrap().push(Handling {
            instance: lease.instance,
            bucket: lease.bucket,
            generation: lease.generation,
            stream: message.stream_name.to_string(),
            position: message.position,
            at: Instant::now(),
        });
    }

    fn entries(&self) -> Vec<Handling> {
        self.0.lock().unwrap().clone()
    }

    fn distinct(&self) -> usize {
        let entries = self.entries();
        let set: BTreeSet<_> = entries.iter().map(|h| (&h.stream, h.position)).collect();
        set.len()
    }
}

fn fleet(buckets: u32) -> FleetOptions {
    FleetOptions::new()
        .with_buckets(buckets)
        .with_lease_duration(LEASE)
}

fn consumer_options(position_update_interval: u64) -> ConsumerOptions {
    ConsumerOptions::new()
        .with_subscription(
            SubscribeOptions::new()
                .with_consumer_id("workers")
                .with_poll_interval(Duration::from_millis(10)),
        )
        .with_retry(
            RetryPolicy::new()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .with_backend_backoff(Duration::from_millis(50))
        .with_position_update_interval(position_update_interval)
        // The cases bound redeliveries by the interval: each record goes as
        // soon as the one before landed, not after a gap (which widens what
        // a crash redelivers by what is handled within it).
        .with_position_update_gap(Duration::ZERO)
        .with_shutdown_deadline(Duration::from_secs(5))
}

/// A fleet consumer that logs each handling with its lease.
fn logging(category: &Category, log: &Log, position_update_interval: u64) -> Consumer {
    let log = log.clone();
    Consumer::new(category.clone())
        .with_options(consumer_options(position_update_interval))
        .on_any(move |message: Message| {
            let log = log.clone();
            async move {
                log.record(&message);
                HandlerResult::Ok(())
            }
        })
}

/// Writes `per_stream` messages to each of `streams` streams, one batch per
/// stream; returns how many.
async fn write_streams(
    store: &dyn MessageStore,
    category: &Category,
    streams: u64,
    per_stream: u64,
) -> usize {
    for id in 0..streams {
        let messages = (0..per_stream).map(|n| numbered("Numbered", n)).collect();
        store
            .write(
                &stream(category, &id.to_string()),
                messages,
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    usize::try_from(streams * per_stream).expect("a test-sized count")
}

/// Appends one message `{"n": n}` to each of `streams` streams (written
/// by [`write_streams`]), one write each.
async fn append_to_streams(store: &dyn MessageStore, category: &Category, streams: u64, n: u64) {
    for id in 0..streams {
        store
            .write(
                &stream(category, &id.to_string()),
                vec![numbered("Numbered", n)],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
}

/// Checks per-stream order (each message is first handled after every
/// earlier message of its stream) and returns how many handlings were
/// duplicates.
fn duplicates_in_order(log: &Log) -> usize {
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0;
    for handling in log.entries() {
        let expected = next.entry(handling.stream.clone()).or_insert(0);
        match handling.position.cmp(expected) {
            std::cmp::Ordering::Equal => *expected += 1,
            std::cmp::Ordering::Less => duplicates += 1,
            std::cmp::Ordering::Greater => panic!(
                "{} position {} handled before position {} ever was: {handling:?}",
                handling.stream, handling.position, expected
            ),
        }
    }
    duplicates
}

/// Checks that every (bucket, generation) was handled by one instance,
/// and returns the generations per bucket.
fn generations(log: &Log) -> BTreeMap<u32, BTreeSet<u64>> {
    let mut owners: BTreeMap<(u32, u64), BTreeSet<String>> = BTreeMap::new();
    for handling in log.entries() {
        owners
            .entry((handling.bucket, handling.generation))
            .or_default()
            .insert(handling.instance);
    }
    let mut per_bucket: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for ((bucket, generation), instances) in owners {
        assert_eq!(
            instances.len(),
            1,
            "bucket {bucket} generation {generation} was handled by {instances:?}"
        );
        per_bucket.entry(bucket).or_default().insert(generation);
    }
    per_bucket
}

async fn wait_handled(log: &Log, count: usize) {
    wait_until(&format!("{count} distinct messages are handled"), || {
        log.distinct() >= count
    })
    .await;
}

/// Waits until the running instances hold every bucket, each within one
/// of the others.
async fn wait_balanced(instances: &[&FleetHandle], buckets: usize) {
    wait_until("the buckets are balanced", || {
        let counts: Vec<usize> = instances.iter().map(|i| i.health().buckets.len()).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        counts.iter().sum::<usize>() == buckets && max - min <= 1
    })
    .await;
}
