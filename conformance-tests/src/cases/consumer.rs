//! The consumer runtime under faults. Each case takes an owned store, since a
//! running consumer keeps one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::consumer::{
    parked_messages, Consumer, ConsumerHandle, ConsumerOptions, FailurePolicy, HandlerResult,
    RetryPolicy,
};
use message_store::{
    Category, ConsumerGroup, Error, ErrorKind, ExpectedVersion, Message, MessageStore,
    StartPosition, SubscribeOptions, TypedMessage,
};
use serde::Deserialize;
use serde_json::json;

use crate::faults::{FailingStore, Operation};
use crate::support::*;

type Seen = Arc<Mutex<Vec<Message>>>;

fn subscription(consumer_id: &str) -> SubscribeOptions {
    SubscribeOptions::new()
        .consumer_id(consumer_id)
        .unwrap()
        .poll_interval(Duration::from_millis(10))
        .unwrap()
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new()
        .max_attempts(attempts)
        .unwrap()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .unwrap()
}

fn options(consumer_id: &str) -> ConsumerOptions {
    ConsumerOptions::new()
        .subscription(subscription(consumer_id))
        .retry(quick_retry(3))
        .backend_backoff(Duration::from_millis(50))
}

/// A consumer that records every message it handles.
fn recording(category: &Category, options: ConsumerOptions, seen: &Seen) -> Consumer {
    let seen = seen.clone();
    Consumer::new(category.clone())
        .with_options(options)
        .on_any(move |message: Message| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(message);
                HandlerResult::Ok(())
            }
        })
}

async fn write_spread(
    store: &dyn MessageStore,
    category: &Category,
    streams: u64,
    per_stream: u64,
) {
    for round in 0..per_stream {
        for id in 0..streams {
            let n = round * 1000 + id;
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
}

fn global(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.global_position).collect()
}

/// A consumer killed after handling messages but before recording its position
/// loses nothing: the restarted consumer delivers every unrecorded message again.
pub async fn consumer_killed_before_recording_loses_nothing(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 5, 10).await;
    let all = store
        .read_category(&category, message_store::CategoryRead::new())
        .await
        .unwrap();
    let options = options("killed").position_update_interval(20).unwrap();

    let seen: Seen = Arc::default();
    let first = recording(&category, options.clone(), &seen)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("30 messages are handled", || {
        seen.lock().unwrap().len() >= 30
    })
    .await;
    first.abort(); // a crash: no closing commit
    let _ = first.join().await;
    // A position write the crashed task had already sent still lands on the
    // server; let it, as it would before a real process restarts (otherwise the
    // restarted consumer sees a foreign record and rightly refuses to share).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let position_stream = category.position_stream(Some("killed")).unwrap();
    let recorded_at_crash = store
        .last_message(&position_stream, None)
        .await
        .unwrap()
        .expect("a recorded position")
        .data["position"]
        .as_u64()
        .unwrap();

    let again: Seen = Arc::default();
    let second = recording(&category, options, &again)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("the restarted consumer reaches the end", || {
        again.lock().unwrap().last().map(|m| m.global_position)
            == all.last().map(|m| m.global_position)
    })
    .await;
    second.shutdown().await.unwrap();

    let first_run = seen.lock().unwrap().clone();
    let second_run = again.lock().unwrap().clone();
    assert_strictly_increasing(&global(&first_run), "first run's order");
    assert_strictly_increasing(&global(&second_run), "second run's order");
    let delivered: BTreeSet<u64> = global(&first_run)
        .into_iter()
        .chain(global(&second_run))
        .collect();
    assert_eq!(
        delivered,
        global(&all).into_iter().collect(),
        "every message handled at least once"
    );
    let records: BTreeSet<u64> = read_all(store.as_ref(), &position_stream)
        .await
        .iter()
        .map(|r| r.data["position"].as_u64().unwrap())
        .collect();
    let resumed_at = second_run[0].global_position;
    assert!(
        records.contains(&resumed_at) && resumed_at >= recorded_at_crash,
        "resumes at a recorded position (inclusive), at or after {recorded_at_crash}: {resumed_at}"
    );
    let last_first = first_run.last().unwrap().global_position;
    assert!(
        resumed_at <= last_first,
        "nothing is recorded before it is handled"
    );
    let redelivered = first_run.len() + second_run.len() - all.len();
    assert!(
        redelivered >= 1,
        "what was handled after the last record is delivered again"
    );
    println!(
        "fault summary (killed before recording): messages {}, kills 1, lost 0, duplicates {redelivered}",
        all.len()
    );
}

/// A handler that fails twice and then succeeds: the message is handled once
/// successfully, and every message in order.
pub async fn failing_handler_is_retried_and_order_is_kept(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 6), ExpectedVersion::Any)
        .await
        .unwrap();
    let succeeded: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failures_left = Arc::new(Mutex::new(2u32));
    let consumer = {
        let (succeeded, failures_left) = (succeeded.clone(), failures_left.clone());
        Consumer::new(category.clone())
            .with_options(options("retry"))
            .on_any(move |message: Message| {
                let (succeeded, failures_left) = (succeeded.clone(), failures_left.clone());
                async move {
                    let n = message.data["n"].as_u64().unwrap();
                    if n == 3 {
                        let mut left = failures_left.lock().unwrap();
                        if *left > 0 {
                            *left -= 1;
                            return Err("transient failure".into());
                        }
                    }
                    succeeded.lock().unwrap().push(n);
                    Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    wait_until("all six are handled", || {
        succeeded.lock().unwrap().len() == 6
    })
    .await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(*succeeded.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(health.failed_attempts, 2);
    assert_eq!(health.handled, 6);
}

/// A handler that panics is a failure under the policy, not a crash of the runtime.
pub async fn panicking_handler_is_retried_not_fatal(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    // Message 1 panics once inside the handler's future, message 2 once while
    // the handler builds its future: both are failures, retried.
    let panicked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let seen: Seen = Arc::default();
    let consumer = {
        let (panicked, seen) = (panicked.clone(), seen.clone());
        Consumer::new(category.clone())
            .with_options(options("panics"))
            .on_any(move |message: Message| {
                let (panicked, seen) = (panicked.clone(), seen.clone());
                if message.position == 2 && panicked.lock().unwrap().insert(2) {
                    panic!("handler bug before its future");
                }
                async move {
                    if message.position == 1 && panicked.lock().unwrap().insert(1) {
                        panic!("handler bug");
                    }
                    seen.lock().unwrap().push(message);
                    Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    wait_until("all three are handled", || seen.lock().unwrap().len() == 3).await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(health.failed_attempts, 2);
    assert!(health
        .last_error
        .unwrap()
        .contains("handler bug before its future"));
    assert_eq!(positions(&seen.lock().unwrap()), vec![0, 1, 2]);
}

#[derive(Debug, Deserialize)]
struct Numbered {
    n: u64,
}

impl TypedMessage for Numbered {
    const MESSAGE_TYPE: &'static str = "Numbered";
}

/// A poison message is parked after the configured attempts with the error, the attempt count
/// and its origin; the consumer goes on; the parked message can be listed and replayed.
pub async fn poison_message_is_parked_and_can_be_replayed(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let healthy = Arc::new(Mutex::new(false));
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let build = || {
        let (healthy, seen) = (healthy.clone(), seen.clone());
        Consumer::new(category.clone())
            .with_options(
                options("parker")
                    .on_failure(FailurePolicy::Park)
                    .retry(quick_retry(2)),
            )
            .on(move |value: Numbered, _message: Message| {
                let (healthy, seen) = (healthy.clone(), seen.clone());
                async move {
                    if value.n == 2 && !*healthy.lock().unwrap() {
                        return Err(format!("cannot handle {}", value.n).into());
                    }
                    seen.lock().unwrap().push(value.n);
                    Ok(())
                }
            })
    };
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

/// With the `Stop` policy the consumer stops with an error naming the message, and the
/// message is delivered again after a restart.
pub async fn consumer_stops_on_a_failing_message_and_redelivers_it(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let build = |fail: bool, seen: Arc<Mutex<Vec<u64>>>| {
        Consumer::new(category.clone())
            .with_options(options("stopper").retry(quick_retry(2)))
            .on(move |value: Numbered, _m: Message| {
                let seen = seen.clone();
                async move {
                    if fail && value.n == 2 {
                        return Err(std::io::Error::other("always fails").into());
                    }
                    seen.lock().unwrap().push(value.n);
                    Ok(())
                }
            })
    };
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let error = build(true, seen.clone())
        .start(store.clone())
        .await
        .unwrap()
        .join()
        .await
        .unwrap_err();
    match &error {
        Error::HandlerFailed {
            position,
            attempts,
            source,
            ..
        } => {
            assert_eq!((*position, *attempts), (2, 2));
            assert!(source.to_string().contains("always fails"));
            // The handler's own error is kept, as the error's source.
            assert!(source.downcast_ref::<std::io::Error>().is_some());
            let chained = std::error::Error::source(&error).expect("a source");
            assert!(chained.to_string().contains("always fails"));
        }
        other => panic!("expected HandlerFailed, got {other:?}"),
    }
    assert_eq!(*seen.lock().unwrap(), vec![0, 1]);
    let after: Arc<Mutex<Vec<u64>>> = Arc::default();
    let handle = build(false, after.clone())
        .start(store.clone())
        .await
        .unwrap();
    wait_until("the rest is handled", || {
        after.lock().unwrap().last() == Some(&3)
    })
    .await;
    handle.shutdown().await.unwrap();
    assert_eq!(
        *after.lock().unwrap(),
        vec![1, 2, 3],
        "resumes at the last recorded message, inclusive"
    );
}

/// Reads, writes and position records failing for a while: the consumer retries with
/// back-off and nothing is lost.
pub async fn consumer_survives_backend_failures(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 3, 10).await;
    let failing = FailingStore::new(store.clone());
    let seen: Seen = Arc::default();
    let options = options("survivor").position_update_interval(5).unwrap();
    let handle = recording(&category, options, &seen)
        .start(failing.clone())
        .await
        .unwrap();
    failing.fail_next(Operation::ReadCategory, 4);
    failing.fail_next(Operation::Write, 2);
    wait_until("all 30 are handled", || seen.lock().unwrap().len() >= 30).await;
    let more = stream(&category, "late");
    store
        .write(&more, batch(100, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    failing.fail_next(Operation::ReadCategory, 2);
    wait_until("the late ones are handled", || {
        seen.lock().unwrap().len() >= 33
    })
    .await;
    let health = handle.shutdown().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_strictly_increasing(&global(&seen), "delivery order");
    assert_eq!(seen.len(), 33, "nothing lost, nothing twice");
    assert!(
        failing.injected() >= 6,
        "faults were injected: {}",
        failing.injected()
    );
    assert_eq!(health.committed, seen.last().map(|m| m.global_position));
    println!(
        "fault summary (backend failures): messages {}, faults injected {}, lost 0, duplicates 0",
        seen.len(),
        failing.injected()
    );
}

/// A position record that was written but whose reply was lost: the retry
/// recognises its own record instead of reporting a second consumer.
pub async fn lost_reply_to_a_position_write_is_not_a_second_consumer(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 6), ExpectedVersion::Any)
        .await
        .unwrap();
    let failing = FailingStore::new(store.clone());
    failing.lose_next_write_replies(2);
    let seen: Seen = Arc::default();
    let options = options("lossy").position_update_interval(2).unwrap();
    let handle = recording(&category, options, &seen)
        .start(failing.clone())
        .await
        .unwrap();
    wait_until("all six are handled", || seen.lock().unwrap().len() == 6).await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(failing.injected(), 2, "both replies were lost");
    let last = seen.lock().unwrap()[5].global_position;
    assert_eq!(health.committed, Some(last));
}

/// Graceful shutdown records the position of the last handled message.
pub async fn shutdown_records_the_position(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 7), ExpectedVersion::Any)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let handle = recording(&category, options("closer"), &seen)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("all seven are handled", || seen.lock().unwrap().len() == 7).await;
    let health = handle.shutdown().await.unwrap();
    let last = seen.lock().unwrap()[6].global_position;
    assert_eq!(health.committed, Some(last));
    let position_stream = category.position_stream(Some("closer")).unwrap();
    let record = store
        .last_message(&position_stream, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data, json!({ "position": last }));
    assert!(!health.running);
}

/// Members of a consumer group running concurrently: the union of what they handle is every
/// message, each stream is handled by exactly one member, in order per stream.
pub async fn consumer_group_members_split_the_category(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 12, 4).await;
    let size = 3;
    let seen: Vec<Seen> = (0..size).map(|_| Seen::default()).collect();
    let mut handles: Vec<ConsumerHandle> = Vec::new();
    for member in 0..size {
        let subscription = subscription(&format!("member{member}"))
            .consumer_group(ConsumerGroup::new(member, size).unwrap());
        let options = options("unused").subscription(subscription);
        let consumer = recording(&category, options, &seen[usize::try_from(member).unwrap()]);
        handles.push(consumer.start(store.clone()).await.unwrap());
    }
    wait_until("all 48 are handled", || {
        seen.iter().map(|s| s.lock().unwrap().len()).sum::<usize>() >= 48
    })
    .await;
    for handle in handles {
        handle.shutdown().await.unwrap();
    }
    let mut owner: BTreeMap<String, (usize, Vec<u64>)> = BTreeMap::new();
    for (member, seen) in seen.iter().enumerate() {
        for message in seen.lock().unwrap().iter() {
            let entry = owner
                .entry(message.stream_name.to_string())
                .or_insert((member, Vec::new()));
            assert_eq!(
                entry.0, member,
                "{} handled by two members",
                message.stream_name
            );
            entry.1.push(message.position);
        }
    }
    assert_eq!(owner.len(), 12, "every stream handled");
    assert!(
        owner
            .values()
            .all(|(_, positions)| positions == &[0, 1, 2, 3]),
        "each stream once, in order"
    );
}

/// Invalid options are typed errors when the consumer starts.
pub async fn invalid_consumer_options_are_refused(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    let park_without_id = ConsumerOptions::new().on_failure(FailurePolicy::Park);
    let err = Consumer::new(category.clone())
        .with_options(park_without_id)
        .start(store.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    let group_without_id = ConsumerOptions::new()
        .subscription(SubscribeOptions::new().consumer_group(ConsumerGroup::new(0, 2).unwrap()));
    let err = Consumer::new(category.clone())
        .with_options(group_without_id)
        .start(store.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    assert_eq!(
        SubscribeOptions::new().batch_size(0).unwrap_err().kind(),
        ErrorKind::InvalidOption
    );
    assert_eq!(
        ConsumerGroup::new(2, 2).unwrap_err().kind(),
        ErrorKind::InvalidConsumerGroup
    );
    assert_eq!(
        ConsumerOptions::new()
            .position_update_interval(0)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidOption
    );
}

/// Health reports progress, and lag shrinks to zero once caught up.
pub async fn consumer_health_reports_progress_and_lag(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let options =
        options("healthy").subscription(subscription("healthy").start(StartPosition::Beginning));
    let handle = recording(&category, options, &seen)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("all five are handled", || seen.lock().unwrap().len() == 5).await;
    let health = handle.health();
    assert!(health.running);
    assert_eq!(health.handled, 5);
    assert_eq!(
        health.last_handled,
        Some(seen.lock().unwrap()[4].global_position)
    );
    assert!(health.last_message_time.is_some());
    assert_eq!(handle.lag().await.unwrap(), 0);
    handle.shutdown().await.unwrap();
}

/// A second consumer with the same id is stopped with `PositionStreamInUse` when it records
/// its position, instead of the two overwriting each other's positions and skipping messages.
pub async fn second_consumer_with_the_same_id_is_stopped(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let options = options("twin").position_update_interval(1).unwrap();
    let both_started = Arc::new(tokio::sync::Notify::new());
    let build = || {
        let both_started = both_started.clone();
        Consumer::new(category.clone())
            .with_options(options.clone())
            .on_any(move |_m: Message| {
                let both_started = both_started.clone();
                async move {
                    both_started.notified().await;
                    both_started.notify_one();
                    HandlerResult::Ok(())
                }
            })
    };
    let first = build().start(store.clone()).await.unwrap();
    let second = build().start(store.clone()).await.unwrap();
    both_started.notify_one();
    wait_until("one of the two stops", || {
        first.is_finished() || second.is_finished()
    })
    .await;
    let (stopped, running) = if first.is_finished() {
        (first, second)
    } else {
        (second, first)
    };
    let error = stopped.join().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PositionStreamInUse, "{error}");
    running.shutdown().await.unwrap();
}
