//! A consumer killed, cut off from its backend, shut down (within its
//! deadline or not), or started twice under one name.

use std::collections::BTreeSet;
use std::sync::Arc;

use message_store::{ErrorKind, ExpectedVersion, Message, MessageStore, MessageStoreExt};
use message_store_consumer::{Consumer, Error, ErrorKind::Store, HandlerResult};
use serde_json::json;

use crate::faults::{FailingStore, Operation};
use crate::support::*;

use super::*;

/// A consumer killed after handling messages but before recording its position
/// loses nothing: the restarted consumer delivers every unrecorded message again.
pub async fn consumer_killed_before_recording_loses_nothing(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 5, 10).await;
    let all = store
        .read_category(&category, message_store::CategoryRead::new())
        .await
        .unwrap();
    let options = options("killed").with_position_update_interval(20);

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
        .last_message(&position_stream)
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
        .filter(|r| r.message_type == "Recorded")
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

/// Reads, writes and position records failing for a while: the consumer retries with
/// back-off and nothing is lost.
pub async fn consumer_survives_backend_failures(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 3, 10).await;
    let failing = FailingStore::new(store.clone());
    let seen: Seen = Arc::default();
    let options = alone("survivor").with_position_update_interval(5);
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
    let options = alone("lossy").with_position_update_interval(2);
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
        .last_message_of_type(&position_stream, "Recorded")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data, json!({ "position": last }));
    // Eventide's consumers take the position from the stream's last message,
    // whatever its type (here the release of the lease): it is the same.
    let newest = store.last_message(&position_stream).await.unwrap().unwrap();
    assert_eq!(newest.data["position"], json!(last), "{newest:?}");
    assert!(!health.running);
}

/// Without the standby lease, a second consumer with the same id on the
/// same store is refused at `start()` while the first runs, and may start
/// once it stopped (or was aborted). One that does not know of the first
/// (another process: here the same data behind a `FailingStore`, a store of
/// its own) starts, and one of the two is stopped at a position write with
/// `PositionStreamInUse`.
pub async fn second_consumer_with_the_same_id_is_refused_or_stopped(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let options = alone("twin").with_position_update_interval(1);
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
    let refused = build().start(store.clone()).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        Store(ErrorKind::PositionStreamInUse),
        "{refused}"
    );
    first.abort();
    let first = build().start(store.clone()).await.unwrap();

    let elsewhere = FailingStore::new(store.clone());
    let second = build().start(elsewhere).await.unwrap();
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
    assert_eq!(
        error.kind(),
        Store(ErrorKind::PositionStreamInUse),
        "{error}"
    );
    running.shutdown().await.unwrap();
    let again = build().start(store.clone()).await.unwrap();
    again.abort();
}

/// Shutdown of a consumer whose handler never returns gives up at the
/// deadline: it records what was handled, drops the handler, and says so;
/// the restarted consumer delivers the abandoned message again. (The
/// deadline leaves a fifth, 400 ms, for the position write, which takes a
/// few milliseconds even on a loaded machine.)
pub async fn shutdown_drops_a_stuck_handler_at_its_deadline(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let written = store
        .read_category(&category, Default::default())
        .await
        .unwrap();
    let handled: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stuck = {
        let handled = handled.clone();
        Consumer::new(category.clone())
            .with_options(options("stuck").with_shutdown_deadline(Duration::from_secs(2)))
            .on_any(move |message: Message| {
                let handled = handled.clone();
                async move {
                    if message.data["n"] == 2 {
                        std::future::pending::<()>().await;
                    }
                    handled.lock().unwrap().push(message.global_position);
                    HandlerResult::Ok(())
                }
            })
    };
    let handle = stuck.start(store.clone()).await.unwrap();
    wait_until("message 2 is in flight", || {
        handle.health().in_flight == Some(written[2].global_position)
    })
    .await;
    let err = tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
        .await
        .expect("shutdown returns")
        .unwrap_err();
    let Error::ShutdownDeadline {
        abandoned,
        handled: last,
        recorded,
        deadline,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*deadline, Duration::from_secs(2));
    assert_eq!(*abandoned, Some(written[2].global_position));
    assert_eq!(*last, Some(written[1].global_position));
    assert_eq!(*recorded, Some(written[1].global_position), "{err}");

    let seen = Seen::default();
    let handle = recording(&category, options("stuck"), &seen)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("the abandoned message is delivered again", || {
        seen.lock().unwrap().iter().any(|m| m.data["n"] == 2)
    })
    .await;
    handle.shutdown().await.unwrap();
}

/// Shutdown while the closing position write never returns (the server
/// stopped answering) gives up at the deadline and says nothing was
/// recorded; a restart delivers everything again.
pub async fn shutdown_gives_up_on_a_position_write_that_never_returns(
    store: Arc<dyn MessageStore>,
) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let failing = FailingStore::new(store.clone());
    let seen = Seen::default();
    let options = alone("paused").with_shutdown_deadline(Duration::from_millis(300));
    let handle = recording(&category, options.clone(), &seen)
        .start(failing.clone())
        .await
        .unwrap();
    wait_until("all three are handled", || seen.lock().unwrap().len() == 3).await;
    failing.stall_next(Operation::Write, 1);
    let err = tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
        .await
        .expect("shutdown returns")
        .unwrap_err();
    let handled = seen.lock().unwrap()[2].global_position;
    assert!(
        matches!(
            err,
            Error::ShutdownDeadline { abandoned: None, handled: Some(h), recorded: None, .. } if h == handled
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("recorded up to nothing"), "{err}");

    let again = Seen::default();
    let handle = recording(&category, options, &again)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("all three are delivered again", || {
        again.lock().unwrap().len() == 3
    })
    .await;
    handle.shutdown().await.unwrap();
}
