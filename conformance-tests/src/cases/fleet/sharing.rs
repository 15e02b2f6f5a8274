//! Instances that join and leave a fleet: four sharing a category, a
//! rolling deploy, a standby behind a one-bucket fleet, and the options a
//! fleet refuses.

use std::sync::Arc;
use std::time::Duration;

use message_store::{ConsumerGroup, ErrorKind, MessageStore, MessageStoreExt, SubscribeOptions};
use message_store_consumer::fleet::{FleetHealth, FleetOptions, CLAIMED};
use message_store_consumer::{Error, ErrorKind::Store};

use super::*;

/// Four instances over 200 streams and 8 buckets: every message is
/// handled, per-stream order holds, each generation of a bucket has one
/// instance, and the buckets end up two per instance.
pub async fn fleet_of_four_shares_a_category(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let total = write_streams(store.as_ref(), &category, 200, 3).await;
    let log = Log::default();
    let mut instances = Vec::new();
    for _ in 0..4 {
        let instance = logging(&category, &log, 10)
            .start_fleet(store.clone(), fleet(8))
            .await
            .unwrap();
        instances.push(instance);
    }
    wait_handled(&log, total).await;
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 8).await;
    wait_until("every instance plans with all four", || {
        instances.iter().all(|i| i.health().members.len() == 4)
    })
    .await;
    for instance in &instances {
        let health = instance.health();
        assert_eq!(health.buckets.len(), 2, "{health:?}");
        // A bucket that moved last redelivers from its recorded position:
        // its lag reaches zero once the new holder is through that.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lag = instance.lag().await.unwrap();
            assert_eq!(
                lag.keys().collect::<Vec<_>>(),
                health.buckets.keys().collect::<Vec<_>>()
            );
            if lag.values().all(|&l| l == 0) {
                break;
            }
            assert!(Instant::now() < deadline, "still behind: {lag:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let duplicates = duplicates_in_order(&log);
    let generations = generations(&log);
    println!(
        "four instances: {total} messages, {} handlings, {duplicates} duplicates, generations per bucket {:?}",
        log.entries().len(),
        generations.values().map(BTreeSet::len).collect::<Vec<_>>()
    );
    let mut healths = Vec::new();
    for instance in instances {
        let health = instance.shutdown().await.unwrap();
        assert!(!health.running);
        healths.push(health);
    }
    let handled: u64 = healths.iter().map(|h| h.handled).sum();
    assert_eq!(handled, log.entries().len() as u64);
    refused_only_after_takeovers(&healths);
}

/// A rolling deploy: B starts while A runs, A stops, C starts, all while
/// messages are written. Nothing is lost, and a bucket's generations never
/// overlap in time: each handover waits for the last holder's drain.
pub async fn rolling_deploy_hands_buckets_over(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let log = Log::default();
    let writer = {
        let store = store.clone();
        let category = category.clone();
        tokio::spawn(async move {
            for round in 0..20u64 {
                for id in 0..10 {
                    store
                        .write_one(
                            stream(&category, &id.to_string()),
                            numbered("Numbered", round),
                            ExpectedVersion::Any,
                        )
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let start = || logging(&category, &log, 5).start_fleet(store.clone(), fleet(4));
    let a = start().await.unwrap();
    wait_balanced(&[&a], 4).await;
    let b = start().await.unwrap();
    wait_balanced(&[&a, &b], 4).await;
    let a_health = a.shutdown().await.unwrap();
    wait_balanced(&[&b], 4).await;
    let c = start().await.unwrap();
    wait_balanced(&[&b, &c], 4).await;
    writer.await.unwrap();
    wait_handled(&log, 200).await;
    let duplicates = duplicates_in_order(&log);
    let generations = generations(&log);
    // Per bucket, each generation's handlings end before the next one's begin.
    let entries = log.entries();
    for (bucket, list) in &generations {
        let span = |g: u64| {
            let times: Vec<Instant> = entries
                .iter()
                .filter(|h| h.bucket == *bucket && h.generation == g)
                .map(|h| h.at)
                .collect();
            (*times.iter().min().unwrap(), *times.iter().max().unwrap())
        };
        let list: Vec<u64> = list.iter().copied().collect();
        for pair in list.windows(2) {
            let (_, end) = span(pair[0]);
            let (begin, _) = span(pair[1]);
            assert!(
                end <= begin,
                "bucket {bucket}: generations {pair:?} overlap"
            );
        }
    }
    let handovers: usize = generations.values().map(|g| g.len() - 1).sum();
    println!(
        "rolling deploy: 200 messages, {} handlings, {duplicates} duplicates over {handovers} handovers; A released {}",
        entries.len(),
        a_health.releases
    );
    // A graceful handover redelivers at most the last recorded message.
    assert!(
        duplicates <= handovers,
        "{duplicates} duplicates, {handovers} handovers"
    );
    assert_eq!(a_health.releases, a_health.claims + a_health.takeovers);
    let mut healths = vec![a_health];
    for instance in [b, c] {
        healths.push(instance.shutdown().await.unwrap());
    }
    refused_only_after_takeovers(&healths);
}

/// Graceful handovers never leave a stale owner committing: a commit is
/// refused only after a takeover, and at most once per takeover. (A test
/// machine that stalls the runtime past a lease makes a live instance look
/// expired; the refused commit is then the fence doing its work.)
fn refused_only_after_takeovers(healths: &[FleetHealth]) {
    let refused: u64 = healths.iter().map(|h| h.refused_commits).sum();
    let takeovers: u64 = healths.iter().map(|h| h.takeovers).sum();
    assert!(
        refused <= takeovers,
        "{refused} refused commits, {takeovers} takeovers: {healths:#?}"
    );
}

/// With one bucket a fleet is a plain consumer with standbys: the second
/// instance waits, takes over when the first stops, and the position
/// stream is the plain consumer's.
pub async fn a_one_bucket_fleet_keeps_a_standby(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    write_streams(store.as_ref(), &category, 5, 4).await;
    let log = Log::default();
    let start = || logging(&category, &log, 1).start_fleet(store.clone(), fleet(1));
    let first = start().await.unwrap();
    wait_balanced(&[&first], 1).await;
    let standby = start().await.unwrap();
    wait_handled(&log, 20).await;
    wait_until("both see each other", || {
        first.health().members.len() == 2 && standby.health().members.len() == 2
    })
    .await;
    assert_eq!(first.health().buckets.len(), 1);
    assert!(standby.health().buckets.is_empty());
    assert!(log.entries().iter().all(|h| h.instance == first.instance()));
    first.shutdown().await.unwrap();
    write_streams(store.as_ref(), &category, 5, 1).await;
    wait_handled(&log, 20).await;
    wait_until("the standby handles what is new", || {
        log.entries()
            .iter()
            .any(|h| h.instance == standby.instance() && h.position == 4)
    })
    .await;
    let position_stream = category.position_stream(Some("workers")).unwrap();
    let claims: Vec<_> = store
        .read_stream_to_end(&position_stream)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message_type == CLAIMED)
        .collect();
    assert_eq!(
        claims.len(),
        2,
        "one claim each, in the plain position stream"
    );
    duplicates_in_order(&log);
    standby.shutdown().await.unwrap();
}

/// A fleet needs a consumer id, leaves the consumer group to its buckets,
/// checks its own options, and a newcomer counting its buckets differently
/// stops while the fleet at work goes on.
pub async fn fleet_options_are_checked(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let log = Log::default();
    let anonymous = logging(&category, &log, 1)
        .with_options(ConsumerOptions::new().with_subscription(SubscribeOptions::new()));
    let err = anonymous
        .start_fleet(store.clone(), fleet(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption), "{err}");
    let grouped = logging(&category, &log, 1).with_options(
        consumer_options(1).with_subscription(
            SubscribeOptions::new()
                .with_consumer_id("workers")
                .with_consumer_group(ConsumerGroup::new(0, 2).unwrap()),
        ),
    );
    let err = grouped
        .start_fleet(store.clone(), fleet(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption), "{err}");
    let err = logging(&category, &log, 1)
        .start_fleet(store.clone(), FleetOptions::new().with_buckets(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption), "{err}");

    let working = logging(&category, &log, 1)
        .start_fleet(store.clone(), fleet(4))
        .await
        .unwrap();
    wait_balanced(&[&working], 4).await;
    let newcomer = logging(&category, &log, 1)
        .start_fleet(store.clone(), fleet(3))
        .await
        .unwrap();
    let err = newcomer.join().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::FleetMismatch {
                theirs: 4,
                ours: 3,
                ..
            }
        ),
        "{err}"
    );
    write_streams(store.as_ref(), &category, 4, 2).await;
    wait_handled(&log, 8).await;
    let health = working.shutdown().await.unwrap();
    assert_eq!(
        health.members.len(),
        1,
        "the newcomer was never planned with"
    );
    assert_eq!(health.handled, 8);
}
