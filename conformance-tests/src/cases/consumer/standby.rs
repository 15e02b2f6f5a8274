//! A consumer with an id and its standby: the second instance handles
//! nothing while the first works, and takes over at a shutdown (after the
//! first's drain) or a crash (after the lease).

use std::sync::Arc;
use std::time::Duration;

use message_store::{ExpectedVersion, Message, MessageStore};
use message_store_consumer::{Consumer, HandlerResult};
use tokio::time::Instant;

use crate::faults::FailingStore;
use crate::support::*;

use super::*;

/// A category with one stream of three numbered messages.
async fn three_messages(
    store: &dyn MessageStore,
) -> (message_store::Category, message_store::StreamName) {
    let category = unique_category("account");
    let account = stream(&category, "1");
    store
        .write(&account, batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    (category, account)
}

/// Waits until `consumer` recorded the position of the last message it
/// handled (its records are written in the background, after handling).
async fn wait_recorded(consumer: &message_store_consumer::ConsumerHandle, who: &str) {
    wait_until(&format!("{who} recorded its last position"), || {
        let health = consumer.health();
        health.committed.is_some() && health.committed == health.last_handled
    })
    .await;
}

/// A second consumer with the same id, in this process or another (the
/// same data behind a `FailingStore`), waits as a standby: it handles
/// nothing while the first runs, takes over at once when the first shuts
/// down, and once the lease runs out when it crashes.
pub async fn second_consumer_with_the_same_id_stands_by(store: Arc<dyn MessageStore>) {
    let (category, account) = three_messages(store.as_ref()).await;
    let (first_seen, standby_seen, third_seen) =
        (Seen::default(), Seen::default(), Seen::default());
    let options = options("twin").with_position_update_interval(1);
    let first = recording(&category, options.clone(), &first_seen)
        .start(store.clone())
        .await
        .unwrap();
    first.caught_up().await.unwrap();
    let elsewhere = FailingStore::new(store.clone());
    let standby = recording(&category, options.clone(), &standby_seen)
        .start(elsewhere)
        .await
        .unwrap();
    store
        .write(&account, batch(3, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    first.caught_up().await.unwrap();
    // A lease and a half: a standby that did not stand by would have
    // handled by now.
    tokio::time::sleep(LEASE * 3 / 2).await;
    assert!(
        standby_seen.lock().unwrap().is_empty(),
        "the standby handled nothing"
    );
    let health = standby.health();
    assert!(health.running && health.handled == 0, "{health:?}");

    first.shutdown().await.unwrap();
    store
        .write(&account, batch(6, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    standby.caught_up().await.unwrap();
    let taken_over = numbers(&standby_seen.lock().unwrap());
    // From the last recorded position on (inclusive): message 5, then the new ones.
    assert_eq!(taken_over, [5, 6, 7]);

    let third = recording(&category, options, &third_seen)
        .start(store.clone())
        .await
        .unwrap();
    // Its record of 7 is written after 7 is handled, in the background:
    // crash it once that landed, so the resume point is known.
    wait_recorded(&standby, "the standby").await;
    standby.abort(); // a crash: the third waits for the lease
    store
        .write(&account, batch(8, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    third.caught_up().await.unwrap();
    // From the crashed one's last recorded position: 7 (or 8, had it
    // handled and recorded 8 before the abort took effect).
    let third_took = numbers(&third_seen.lock().unwrap());
    assert!(third_took == [7, 8] || third_took == [8], "{third_took:?}");
    assert_eq!(numbers(&first_seen.lock().unwrap()), [0, 1, 2, 3, 4, 5]);
    third.shutdown().await.unwrap();
}

/// A first consumer asked to stop while a slow handler runs (two and a
/// half leases long) goes on renewing its lease while it drains: the standby takes
/// nothing over until the first released it, then resumes at its last
/// recorded position.
pub async fn a_standby_waits_while_the_first_drains(store: Arc<dyn MessageStore>) {
    let (category, _) = three_messages(store.as_ref()).await;
    let options = options("drainer")
        .with_position_update_interval(1)
        .with_shutdown_deadline(Duration::from_secs(10));
    let first_done: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let first = {
        let first_done = first_done.clone();
        Consumer::new(category.clone())
            .with_options(options.clone())
            .on_any(move |message: Message| {
                let first_done = first_done.clone();
                async move {
                    if message.data["n"] == 2 {
                        tokio::time::sleep(LEASE * 5 / 2).await;
                        *first_done.lock().unwrap() = Some(Instant::now());
                    }
                    HandlerResult::Ok(())
                }
            })
            .start(store.clone())
            .await
            .unwrap()
    };
    wait_until("the slow message is in flight", || {
        first.health().in_flight.is_some() && first.health().handled == 2
    })
    .await;
    let standby_seen: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let standby = {
        let standby_seen = standby_seen.clone();
        Consumer::new(category.clone())
            .with_options(options)
            .on_any(move |message: Message| {
                let standby_seen = standby_seen.clone();
                async move {
                    let n = message.data["n"].as_u64().unwrap();
                    standby_seen.lock().unwrap().push((n, Instant::now()));
                    HandlerResult::Ok(())
                }
            })
            .start(store.clone())
            .await
            .unwrap()
    };
    let health = first.shutdown().await.unwrap();
    assert_eq!(health.handled, 3, "the slow message finished: {health:?}");
    standby.caught_up().await.unwrap();
    let finished = first_done
        .lock()
        .unwrap()
        .expect("the slow handler finished");
    let seen = standby_seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2]);
    assert!(
        seen[0].1 >= finished,
        "the standby took the slow message over while the first still ran it"
    );
    standby.shutdown().await.unwrap();
}

/// A consumer restarted after a crash under the same instance id (a host
/// or pod name) resumes at once: the lease it held is its own. (The lease
/// here is two minutes, past the case's patience: a fresh id would wait.)
pub async fn a_restart_under_the_same_instance_id_resumes_at_once(store: Arc<dyn MessageStore>) {
    let (category, account) = three_messages(store.as_ref()).await;
    let options = options("restarter")
        .with_position_update_interval(1)
        .with_lease_duration(Duration::from_secs(120))
        .with_instance_id("host-1");
    let (before, after) = (Seen::default(), Seen::default());
    let first = recording(&category, options.clone(), &before)
        .start(store.clone())
        .await
        .unwrap();
    first.caught_up().await.unwrap();
    // Handled is not yet recorded: the crash comes once the last
    // message's position is, so the restart's redelivery is known.
    wait_recorded(&first, "the first consumer").await;
    first.abort(); // a crash: the lease stays in the store
    let _ = first.join().await;
    store
        .write(&account, batch(3, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let restarted = recording(&category, options, &after)
        .start(store.clone())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), restarted.caught_up())
        .await
        .expect("the restart resumed without waiting for the lease")
        .unwrap();
    assert_eq!(numbers(&before.lock().unwrap()), [0, 1, 2]);
    assert_eq!(numbers(&after.lock().unwrap()), [2, 3, 4]);
    restarted.shutdown().await.unwrap();
}
