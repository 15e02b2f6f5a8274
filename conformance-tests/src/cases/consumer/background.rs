//! Positions recorded in the background: the consumer does not wait for
//! its position writes, yet a crash never leaves a position past a message
//! whose handler had not finished, and a restart handles what follows.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::backend::read_committed_position;
use message_store::{ExpectedVersion, Message, MessageStore, MessageStoreExt};
use message_store_consumer::{Consumer, HandlerResult};

use crate::faults::{FailingStore, Operation};

use super::*;

/// A consumer recording every message (interval 1), whose handlers are
/// slow on every other message, is killed after 1, 3 and 7 messages.
/// Each time, every message up to the position recorded had its handler
/// finish; a restart then handles the rest, so nothing is lost.
pub async fn a_crash_never_leaves_a_position_past_an_unfinished_handler(
    store: Arc<dyn MessageStore>,
) {
    for crash_after in [1usize, 3, 7] {
        let category = unique_category("crash");
        store
            .write(&stream(&category, "1"), batch(0, 10), ExpectedVersion::Any)
            .await
            .unwrap();
        let finished: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
        let consumer = || {
            let finished = finished.clone();
            Consumer::new(category.clone())
                .with_options(alone("crasher").with_position_update_interval(1))
                .on_any(move |message: Message| {
                    let finished = finished.clone();
                    async move {
                        if message.position % 2 == 1 {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                        }
                        finished.lock().unwrap().insert(message.global_position);
                        HandlerResult::Ok(())
                    }
                })
        };
        let handle = consumer().start(store.clone()).await.unwrap();
        wait_until("enough messages are handled", || {
            finished.lock().unwrap().len() >= crash_after
        })
        .await;
        handle.abort();
        let _ = handle.join().await;
        // A write already under way may still land: let it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let position_stream = category.position_stream(Some("crasher")).unwrap();
        let recorded = read_committed_position(store.as_ref(), &position_stream)
            .await
            .unwrap()
            .position;
        let all: Vec<u64> = store
            .read_category_to_end(category.as_str())
            .await
            .unwrap()
            .iter()
            .map(|m| m.global_position)
            .collect();
        let done = finished.lock().unwrap().clone();
        for global_position in all.iter().filter(|&&g| Some(g) <= recorded) {
            assert!(
                done.contains(global_position),
                "crash after {crash_after}: position {recorded:?} recorded, but the handler of \
                 {global_position} had not finished ({done:?})"
            );
        }
        let health = consumer().run_until_caught_up(store.clone()).await.unwrap();
        let done = finished.lock().unwrap().clone();
        assert_eq!(done.len(), all.len(), "crash after {crash_after}: {done:?}");
        assert_eq!(health.committed, all.last().copied());
    }
}

/// Records never hold handling up: while the first position write of a
/// consumer recording every message hangs, it handles all the rest (each
/// record asked for meanwhile waits, only the newest kept, for the one in
/// flight). Waiting for each record before the next would stop it at the
/// second message.
pub async fn a_hanging_position_write_does_not_hold_handling_up(store: Arc<dyn MessageStore>) {
    let category = unique_category("patient");
    store
        .write(&stream(&category, "1"), batch(0, 20), ExpectedVersion::Any)
        .await
        .unwrap();
    let failing = FailingStore::new(store.clone());
    failing.stall_next(Operation::Write, 1);
    let handled: Arc<Mutex<Vec<u64>>> = Arc::default();
    let consumer = {
        let handled = handled.clone();
        Consumer::new(category.clone())
            .with_options(alone("patient").with_position_update_interval(1))
            .on_any(move |message: Message| {
                let handled = handled.clone();
                async move {
                    handled.lock().unwrap().push(message.position);
                    HandlerResult::Ok(())
                }
            })
    };
    let handle = consumer.start(failing.clone()).await.unwrap();
    wait_until("all 20 are handled while the first record hangs", || {
        handled.lock().unwrap().len() == 20
    })
    .await;
    assert_eq!(
        failing.calls(Operation::Write),
        1,
        "one record in flight, the rest waiting"
    );
    assert_eq!(*handled.lock().unwrap(), (0..20).collect::<Vec<u64>>());
    handle.abort();
    let _ = handle.join().await;
}

/// Catching up, records wait out the gap between them, and the record of
/// the catch-up's end does not: a consumer recording every message with a
/// gap of an hour, and handlers that take 2 ms, writes its first record at
/// once, the newest as soon as it has caught up, and nothing between (up
/// to a record per message without the gap); so does one whose gap is too
/// long for the clock (`Duration::MAX`). Its shutdown then has nothing left
/// to wait for.
pub async fn records_wait_out_the_gap_but_not_the_end_of_a_catch_up(store: Arc<dyn MessageStore>) {
    let category = unique_category("gapped");
    store
        .write(&stream(&category, "1"), batch(0, 50), ExpectedVersion::Any)
        .await
        .unwrap();
    let last = store
        .category_head(&category)
        .await
        .unwrap()
        .expect("written");
    let cases = [(false, 3600), (true, 3600), (false, u64::MAX)];
    for (standby, gap) in cases {
        let consumer_id = format!("gapped{standby}{gap}");
        let consumer = Consumer::new(category.clone())
            .with_options(
                options(&consumer_id)
                    .with_standby(standby)
                    .with_position_update_interval(1)
                    .with_position_update_gap(Duration::from_secs(gap)),
            )
            .on_any(|_message: Message| async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                HandlerResult::Ok(())
            });
        let handle = consumer.start(store.clone()).await.unwrap();
        handle.caught_up().await.unwrap();
        wait_until("the newest position is recorded", || {
            handle.health().committed == Some(last)
        })
        .await;
        let position_stream = category.position_stream(Some(&consumer_id)).unwrap();
        let records = store
            .read_stream(&position_stream, Default::default())
            .await
            .unwrap();
        let recorded: Vec<u64> = records
            .iter()
            .filter_map(|record| record.data.get("position").and_then(|p| p.as_u64()))
            .collect();
        assert_eq!(
            recorded.last(),
            Some(&last),
            "standby {standby}: {recorded:?}"
        );
        assert_eq!(recorded.len(), 2, "standby {standby}: {recorded:?}");
        let stopped = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await;
        let health = stopped.expect("shut down within 10 s").unwrap();
        assert_eq!(health.committed, Some(last));
    }
}
