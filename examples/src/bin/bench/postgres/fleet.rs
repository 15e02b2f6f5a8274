//! Fleet figures: throughput of 1, 2 and 4 instances whose handler takes
//! 1 ms of the instance's one worker, with the scaling factor over one
//! instance; and the time a crashed instance's buckets take to move.
//!
//! The worker is a lock each instance's handlers take turns at, held over
//! a 1 ms sleep: an instance that can do one message's work at a time, as
//! on a machine of its own. (Spinning the CPU instead measures this
//! machine's two cores, not the fleet: 1.37x for 2 instances, 1.34x for 4.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use message_store::{Category, ExpectedVersion, Message, MessageStore, SubscribeOptions};
use message_store_consumer::fleet::{FleetHandle, FleetOptions};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_postgres::PostgresStore;
use uuid::Uuid;

use crate::report::{median, rate, Figure};

const STREAMS: u64 = 200;
const PER_STREAM: u64 = 10;
const BUCKETS: u32 = 8;
const LEASE: Duration = Duration::from_secs(3);

/// The fleet figures.
pub(super) async fn run(store: &PostgresStore, runs: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut one = f64::NAN;
    for instances in [1usize, 2, 4] {
        let mut values = Vec::new();
        for _ in 0..runs {
            values.push(throughput(store, instances).await);
        }
        let mut figure = Figure::new(
            format!("fleet, {instances} instance(s), 1 ms handler each"),
            "postgres ours",
            "msg/s",
            values,
        );
        if instances == 1 {
            one = figure.median();
        } else {
            // The ratio is the scaling factor over one instance.
            figure = figure
                .reference("1 instance", one)
                .target(if instances == 2 { ">= 1.8x" } else { ">= 3.2x" });
        }
        figures.push(figure);
    }
    let mut takeovers = Vec::new();
    for _ in 0..runs {
        takeovers.push(takeover(store).await);
    }
    let bound = LEASE.as_secs_f64() * 5.0 / 3.0;
    println!(
        "fleet takeover after a crash: median {:.2} s with a {:.0} s lease (bound: lease + two ticks = {bound:.1} s)",
        median(&takeovers),
        LEASE.as_secs_f64()
    );
    figures.push(
        Figure::new(
            "fleet takeover after a crash, 3 s lease",
            "postgres ours",
            "s",
            takeovers,
        )
        .reference("lease + two ticks", bound)
        .lower_is_better()
        .target("<= 1x bound"),
    );
    figures
}

fn consumer(category: &Category, handled: &Arc<AtomicU64>) -> Consumer {
    // The instance's one worker: its buckets take turns at it.
    let worker = Arc::new(tokio::sync::Mutex::new(()));
    let handled = handled.clone();
    Consumer::new(category.clone())
        .with_options(
            ConsumerOptions::new().with_subscription(
                SubscribeOptions::new()
                    .with_consumer_id("bench")
                    .with_poll_interval(Duration::from_millis(20)),
            ),
        )
        .on_any(move |_message: Message| {
            let (worker, handled) = (worker.clone(), handled.clone());
            async move {
                let _busy = worker.lock().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                handled.fetch_add(1, Ordering::Relaxed);
                HandlerResult::Ok(())
            }
        })
}

async fn start(
    store: &PostgresStore,
    category: &Category,
    handled: &Arc<AtomicU64>,
    n: usize,
) -> Vec<FleetHandle> {
    let fleet = FleetOptions::new()
        .with_buckets(BUCKETS)
        .with_lease_duration(LEASE);
    let mut instances = Vec::new();
    for _ in 0..n {
        let instance = consumer(category, handled)
            .start_fleet(store.clone(), fleet.clone())
            .await
            .expect("start a fleet instance");
        instances.push(instance);
    }
    balanced(&instances).await;
    instances
}

async fn balanced(instances: &[FleetHandle]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<usize> = instances.iter().map(|i| i.health().buckets.len()).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        if counts.iter().sum::<usize>() == BUCKETS as usize && max - min <= 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet never balanced: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn write(store: &PostgresStore, category: &Category, round: u64) {
    for id in 0..STREAMS {
        let messages = (0..PER_STREAM)
            .map(|n| {
                message_store::NewMessage::new(
                    "Work",
                    serde_json::json!({ "n": round * PER_STREAM + n }),
                )
            })
            .collect();
        store
            .write(
                &category.stream(&id.to_string()).unwrap(),
                messages,
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
}

async fn wait_for(handled: &AtomicU64, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "the fleet stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Messages per second of `n` balanced instances, from the first write to
/// the last message handled.
async fn throughput(store: &PostgresStore, n: usize) -> f64 {
    let category = Category::new(format!("benchFleet{}", Uuid::new_v4().simple())).unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let instances = start(store, &category, &handled, n).await;
    let started = Instant::now();
    write(store, &category, 0).await;
    wait_for(&handled, STREAMS * PER_STREAM).await;
    let elapsed = started.elapsed();
    for instance in instances {
        instance.shutdown().await.unwrap();
    }
    rate(STREAMS * PER_STREAM, elapsed)
}

/// Seconds from aborting one of two instances to the other holding every bucket.
async fn takeover(store: &PostgresStore) -> f64 {
    let category = Category::new(format!("benchFleet{}", Uuid::new_v4().simple())).unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let mut instances = start(store, &category, &handled, 2).await;
    let crashed = instances.pop().unwrap();
    crashed.abort();
    let aborted = Instant::now();
    balanced(&instances).await;
    let elapsed = aborted.elapsed();
    for instance in instances {
        instance.shutdown().await.unwrap();
    }
    elapsed.as_secs_f64()
}
