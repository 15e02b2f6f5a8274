//! Parking: a poison message parked and replayed, parked messages purged,
//! and a replay applied by
//! the idempotent handler the consumer docs recommend.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use message_store::{ExpectedVersion, Message, MessageStore, TypedMessage};
use message_store_consumer::{
    is_replay, parked_messages, parked_to_purge, purge_parked, Consumer, FailurePolicy,
};
use serde::Deserialize;
use serde_json::json;

use crate::faults::{FailingStore, Operation};
use crate::support::*;

use super::*;

/// Handlers that fail on the numbers `fails` picks until made `healthy`,
/// and note each number they handle in `seen`.
#[derive(Default)]
struct Flaky {
    healthy: Arc<Mutex<bool>>,
    seen: Arc<Mutex<Vec<u64>>>,
}

impl Flaky {
    /// A consumer `id` of `category` parking after `attempts` failed tries.
    fn consumer(
        &self,
        category: &Category,
        id: &str,
        attempts: u32,
        fails: fn(u64) -> bool,
    ) -> Consumer {
        let (healthy, seen) = (self.healthy.clone(), self.seen.clone());
        Consumer::new(category.clone())
            .with_options(
                options(id)
                    .with_failure_policy(FailurePolicy::Park)
                    .with_retry(quick_retry(attempts)),
            )
            .on(move |value: Numbered, _message: Message| {
                let (healthy, seen) = (healthy.clone(), seen.clone());
                async move {
                    if fails(value.n) && !*healthy.lock().unwrap() {
                        return Err(format!("cannot handle {}", value.n).into());
                    }
                    seen.lock().unwrap().push(value.n);
                    Ok(())
                }
            })
    }
}

/// A poison message is parked after the configured attempts with the error, the attempt count
/// and its origin; the consumer goes on; the parked message can be listed and replayed.
pub async fn poison_message_is_parked_and_can_be_replayed(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let flaky = Flaky::default();
    let build = || flaky.consumer(&category, "parker", 2, |n| n == 2);
    let (healthy, seen) = (flaky.healthy.clone(), flaky.seen.clone());
    let handle = build().start(store.clone()).await.unwrap();
    wait_until("the others are handled", || seen.lock().unwrap().len() == 4).await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![0, 1, 3, 4],
        "the consumer went on past the poison message"
    );
    assert_eq!(health.parked, 1);

    let parked = parked_messages(store.as_ref(), &category, "parker")
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    let entry = &parked[0];
    assert_eq!(entry.message.data, json!({ "n": 2 }));
    assert_eq!(entry.message.position, 2);
    assert_eq!(entry.message.stream_name, stream(&category, "1"));
    assert_eq!(entry.parked_from.attempts, 2);
    assert!(entry.parked_from.error.contains("cannot handle 2"));
    assert!(!entry.replayed);

    *healthy.lock().unwrap() = true;
    let report = build().replay_parked(store.as_ref()).await.unwrap();
    assert_eq!(report.replayed, 1);
    assert!(report.still_failing.is_empty());
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 3, 4, 2]);
    let parked = parked_messages(store.as_ref(), &category, "parker")
        .await
        .unwrap();
    assert!(parked[0].replayed, "marked as replayed");
    let again = build().replay_parked(store.as_ref()).await.unwrap();
    assert_eq!(
        again.replayed, 0,
        "a replayed message is not replayed twice"
    );
}

/// A purged parked message is no longer waiting and is never replayed; the
/// others are; purging a position that holds no parked message is refused
/// and purges nothing.
pub async fn purged_parked_messages_are_never_replayed(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let flaky = Flaky::default();
    let build = || flaky.consumer(&category, "purger", 1, |n| n % 2 == 1);
    let (healthy, seen) = (flaky.healthy.clone(), flaky.seen.clone());
    let health = build().run_until_caught_up(store.clone()).await.unwrap();
    assert_eq!(health.parked, 2, "1 and 3 are parked");
    let parked = parked_messages(store.as_ref(), &category, "purger")
        .await
        .unwrap();
    let positions: Vec<u64> = parked.iter().map(|e| e.parked_position).collect();
    let unknown = purge_parked(store.as_ref(), &category, "purger", Some(&[99]))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, message_store::Error::InvalidOption { .. }),
        "{unknown:?}"
    );
    let would = parked_to_purge(store.as_ref(), &category, "purger", None)
        .await
        .unwrap();
    assert_eq!(would, parked, "a dry run names every waiting message");
    let purged = purge_parked(store.as_ref(), &category, "purger", Some(&positions[..1]))
        .await
        .unwrap();
    assert_eq!(purged, positions[..1]);
    let would = parked_to_purge(store.as_ref(), &category, "purger", Some(&positions))
        .await
        .unwrap();
    assert_eq!(
        would.iter().map(|e| e.parked_position).collect::<Vec<_>>(),
        positions[1..],
        "a purged message would not be purged again"
    );
    let parked = parked_messages(store.as_ref(), &category, "purger")
        .await
        .unwrap();
    assert!(parked[0].purged && !parked[0].waiting());
    assert!(parked[1].waiting(), "the other still waits");

    *healthy.lock().unwrap() = true;
    let report = build().replay_parked(store.as_ref()).await.unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![0, 2, 3],
        "1 was purged, 3 replayed"
    );
    let rest = purge_parked(store.as_ref(), &category, "purger", None)
        .await
        .unwrap();
    assert!(rest.is_empty(), "nothing waits any more: {rest:?}");
}

#[derive(Deserialize)]
struct Deposited {
    amount: u64,
}

impl TypedMessage for Deposited {
    const MESSAGE_TYPE: &'static str = "Deposited";
}

/// The state of the documented idempotent handler: the balance, the last
/// global position applied in order, the replays applied.
#[derive(Default)]
struct Balance {
    amount: u64,
    last: u64,
    replays: BTreeSet<u64>,
}

/// A deposit parked while the consumer went on past it (a later deposit of
/// the same account was applied) is applied by its replay under the pattern
/// the docs recommend, and exactly once: a replay that runs again because it
/// could not be marked (the process died, here the marking write failed) is
/// not applied twice.
pub async fn replay_is_applied_once_by_an_idempotent_handler(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    let deposits = [1, 10, 100]
        .map(|amount| message_store::NewMessage::new("Deposited", json!({ "amount": amount })));
    store
        .write(
            &stream(&category, "1"),
            deposits.to_vec(),
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let broken = Arc::new(Mutex::new(true));
    let balance = Arc::new(Mutex::new(Balance::default()));
    let replays_seen = Arc::new(Mutex::new(0));
    let build = || {
        let (broken, balance, replays_seen) =
            (broken.clone(), balance.clone(), replays_seen.clone());
        Consumer::new(category.clone())
            .with_options(
                options("ledger")
                    .with_failure_policy(FailurePolicy::Park)
                    .with_retry(quick_retry(1)),
            )
            .on(move |deposit: Deposited, message: Message| {
                let (broken, balance, replays_seen) =
                    (broken.clone(), balance.clone(), replays_seen.clone());
                async move {
                    if deposit.amount == 10 && *broken.lock().unwrap() {
                        return Err("the ledger is down".into());
                    }
                    let mut balance = balance.lock().unwrap();
                    let position = message.global_position;
                    if is_replay(&message) {
                        *replays_seen.lock().unwrap() += 1;
                        if balance.replays.insert(position) {
                            balance.amount += deposit.amount;
                        }
                    } else if position > balance.last {
                        balance.amount += deposit.amount;
                        balance.last = position;
                    }
                    Ok(())
                }
            })
    };
    let handle = build().start(store.clone()).await.unwrap();
    wait_until("the last deposit is applied", || {
        balance.lock().unwrap().amount == 101
    })
    .await;
    assert_eq!(handle.shutdown().await.unwrap().parked, 1);

    *broken.lock().unwrap() = false;
    let failing = FailingStore::new(store.clone());
    failing.fail_next(Operation::Write, 1);
    let lost = build().replay_parked(&failing).await;
    assert!(lost.is_err(), "marking the replay failed: {lost:?}");
    assert_eq!(
        balance.lock().unwrap().amount,
        111,
        "the replay was applied"
    );

    let report = build().replay_parked(store.as_ref()).await.unwrap();
    assert_eq!((report.replayed, report.still_failing.len()), (1, 0));
    assert_eq!(*replays_seen.lock().unwrap(), 2, "the replay ran twice");
    assert_eq!(balance.lock().unwrap().amount, 111, "and was applied once");
    let parked = parked_messages(store.as_ref(), &category, "ledger")
        .await
        .unwrap();
    assert!(parked[0].replayed);
    assert!(!is_replay(&parked[0].message), "a listing is not a replay");
}
