//! Fleet instances that fail: one crashes (its buckets move once its lease
//! runs out, nothing is lost), one pauses (its lease runs out while a
//! handler runs, and its late commit is refused).

use std::sync::Arc;

use message_store::{MessageStore, MessageStoreExt};
use message_store_consumer::fleet::CLAIMED;
use message_store_consumer::HandlerResult;
use tokio::sync::Notify;

use super::*;
use crate::faults::FailingStore;

/// Three instances on 6 buckets; one is aborted with no shutdown. Its
/// buckets are taken over within two lease durations, no message is
/// lost, and the duplicates come only from its unrecorded window.
pub async fn crashed_fleet_instance_loses_nothing(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let interval = 10;
    let first_half = write_streams(store.as_ref(), &category, 60, 5).await;
    let log = Log::default();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let instance = logging(&category, &log, interval)
            .start_fleet(store.clone(), fleet(6))
            .await
            .unwrap();
        instances.push(instance);
    }
    wait_handled(&log, first_half).await;
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;
    let crashed = instances.pop().unwrap();
    let its_buckets = crashed.health().buckets.len();
    crashed.abort();
    let aborted_at = Instant::now();
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;
    let moved_in = aborted_at.elapsed();
    // Its last heartbeat was at most a third of a lease before the abort;
    // the others claim at their first tick past one lease after it: within
    // a lease and two ticks, to which a loaded test machine adds some.
    assert!(moved_in < LEASE * 3, "moved in {moved_in:?}");
    // More messages, for the streams of every bucket.
    for id in 0..60 {
        store
            .write_one(
                stream(&category, &id.to_string()),
                numbered("Numbered", 5),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    wait_handled(&log, first_half + 60).await;
    let duplicates = duplicates_in_order(&log);
    generations(&log);
    let mut takeovers = 0;
    for instance in instances {
        let health = instance.shutdown().await.unwrap();
        takeovers += health.takeovers;
    }
    println!(
        "crash: {} messages, 1 crash, {its_buckets} buckets moved in {moved_in:?}, {takeovers} takeovers, {duplicates} duplicates, 0 lost",
        first_half + 60
    );
    assert_eq!(takeovers, its_buckets as u64);
    // Only what it handled after its last recorded position comes again:
    // fewer than `interval` messages per bucket it held.
    assert!(
        (duplicates as u64) < its_buckets as u64 * interval,
        "{duplicates} duplicates from {its_buckets} buckets"
    );
}

/// An instance pauses (its store calls hang) while a handler runs; its
/// lease runs out and another instance claims the bucket and delivers
/// again from the last recorded position. When the paused one resumes,
/// its handler finishes but its commit is refused, and it stops handling
/// the bucket.
pub async fn paused_fleet_instance_late_commit_is_refused(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let account = stream(&category, "1");
    for n in 0..5 {
        store
            .write_one(&account, numbered("Numbered", n), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let log = Log::default();
    let paused_store = FailingStore::new(store.clone());
    let gate = Arc::new(Notify::new());
    let pausing = {
        let log = log.clone();
        let paused_store = paused_store.clone();
        let gate = gate.clone();
        Consumer::new(category.clone())
            .with_options(consumer_options(1))
            .on_any(move |message: Message| {
                let (log, paused_store, gate) = (log.clone(), paused_store.clone(), gate.clone());
                async move {
                    let lease = current_lease().unwrap();
                    if message.position == 2 {
                        // The process stops here: no store call, no renewal.
                        paused_store.pause();
                        gate.notified().await;
                    }
                    log.0.lock().unwrap().push(Handling {
                        instance: lease.instance,
                        bucket: lease.bucket,
                        generation: lease.generation,
                        stream: message.stream_name.to_string(),
                        position: message.position,
                        at: Instant::now(),
                    });
                    HandlerResult::Ok(())
                }
            })
    };
    let paused = pausing
        .start_fleet(paused_store.clone(), fleet(1))
        .await
        .unwrap();
    wait_until("the first instance reaches position 2", || {
        log.entries().len() == 2
    })
    .await;
    let other = logging(&category, &log, 1)
        .start_fleet(store.clone(), fleet(1))
        .await
        .unwrap();
    wait_until("the other instance has handled the stream's end", || {
        log.entries()
            .iter()
            .any(|h| h.instance == other.instance() && h.position == 4)
    })
    .await;
    let position_stream = category.position_stream(Some("workers")).unwrap();
    let before_resume = store.read_stream_to_end(&position_stream).await.unwrap();

    paused_store.resume();
    gate.notify_one();
    wait_until("the paused instance finishes position 2", || {
        log.entries()
            .iter()
            .any(|h| h.instance == paused.instance() && h.position == 2)
    })
    .await;
    wait_until("its late commit is refused", || {
        paused.health().refused_commits == 1
    })
    .await;
    let health = paused.health();
    assert!(health.losses >= 1, "{health:?}");
    assert!(health.buckets.is_empty(), "it stopped handling: {health:?}");
    // Nothing the paused instance tried landed: the stream is as the other left it,
    // apart from the other's own later records.
    let after = store.read_stream_to_end(&position_stream).await.unwrap();
    assert_eq!(after[..before_resume.len()], before_resume[..]);
    let claims: Vec<_> = after.iter().filter(|m| m.message_type == CLAIMED).collect();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[1].data["instance"], other.instance());
    // The other delivered again from the last position recorded before its
    // claim: the paused instance recorded position 1 (interval 1).
    let others: Vec<u64> = log
        .entries()
        .iter()
        .filter(|h| h.instance == other.instance())
        .map(|h| h.position)
        .collect();
    assert_eq!(others, [1, 2, 3, 4]);
    println!(
        "pause: 5 messages, 1 takeover, 1 refused commit, {} duplicates, 0 lost",
        duplicates_in_order(&log)
    );
    other.shutdown().await.unwrap();
    paused.shutdown().await.unwrap();
}
