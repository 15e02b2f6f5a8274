//! The consumer runtime against PostgreSQL's own faults: killed
//! connections, a transaction held open, a position write stuck on a lock.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{
    BatchSize, Category, ExpectedVersion, Message, MessageStore, NewMessage, SubscribeOptions,
};
use message_store_conformance::support::wait_until;
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_postgres::sqlx::Executor;
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::Variant;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

fn consumer_options(consumer_id: &str) -> ConsumerOptions {
    let subscription = SubscribeOptions::new()
        .with_consumer_id(consumer_id)
        .with_poll_interval(Duration::from_millis(20));
    ConsumerOptions::new()
        .with_subscription(subscription)
        .with_position_update_interval(10)
        .with_backend_backoff(Duration::from_millis(200))
}

fn recording_consumer(
    category: &Category,
    consumer_id: &str,
    seen: &Arc<Mutex<Vec<Message>>>,
) -> Consumer {
    let seen = seen.clone();
    Consumer::new(category.clone())
        .with_options(consumer_options(consumer_id))
        .on_any(move |message: Message| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(message);
                tokio::time::sleep(Duration::from_millis(1)).await;
                HandlerResult::Ok(())
            }
        })
}

/// A consumer whose reader and listener connections are killed mid-stream
/// resumes where it was: every message handled, in order, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_resumes_after_its_connections_are_killed_mid_stream() {
    for variant in VARIANTS {
        let Some((store, tag)) = support::tagged_store(variant).await else {
            return;
        };
        let category = unique_category("faulty");
        let write = |from: u64, count: u64| {
            let store = store.clone();
            let category = category.clone();
            async move {
                for n in from..from + count {
                    let stream = category.stream(&(n % 7).to_string()).unwrap();
                    store
                        .write(
                            &stream,
                            vec![NewMessage::new("N", json!({ "n": n }))],
                            ExpectedVersion::Any,
                        )
                        .await
                        .unwrap();
                }
            }
        };
        write(0, 150).await;
        let seen: Arc<Mutex<Vec<Message>>> = Arc::default();
        let handle = recording_consumer(&category, "resilient", &seen)
            .start(store.clone())
            .await
            .unwrap();
        wait_until("50 are handled", || seen.lock().unwrap().len() >= 50).await;
        let killed = support::kill(&tag, "%").await;
        assert!(
            killed >= 1,
            "{variant:?}: killed the consumer's connections"
        );
        write(150, 100).await;
        wait_until("all 250 are handled", || seen.lock().unwrap().len() >= 250).await;
        let health = handle.shutdown().await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let numbers: Vec<u64> = seen.iter().map(|m| m.data["n"].as_u64().unwrap()).collect();
        assert_eq!(
            numbers,
            (0..250).collect::<Vec<_>>(),
            "{variant:?}: every message once, in order"
        );
        println!(
            "fault summary ({variant:?}, connections killed mid-stream): messages 250, connections killed {killed}, lost 0, duplicates {}, handled {}",
            seen.len() - 250,
            health.handled
        );
    }
}

/// A writer holds a transaction open in the category while later writes wait:
/// the running consumer handles the held message once it commits, then the later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_never_skips_a_message_held_in_an_open_transaction() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let options = support::options(variant).await.unwrap();
        let category = unique_category("heldconsumer");
        store
            .write(
                &category.stream("1").unwrap(),
                vec![NewMessage::new("Before", json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<Message>>> = Arc::default();
        let handle = recording_consumer(&category, "patient", &seen)
            .start(store.clone())
            .await
            .unwrap();
        wait_until("the first is handled", || seen.lock().unwrap().len() == 1).await;

        let (mut holder, later) = support::hold_a_write_open(&store, &options, &category).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "{variant:?}: nothing else is visible while the transaction is open"
        );
        holder.execute("COMMIT").await.unwrap();
        later.await.unwrap().unwrap();
        wait_until("all three are handled", || seen.lock().unwrap().len() == 3).await;
        handle.shutdown().await.unwrap();
        let types: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.message_type.clone())
            .collect();
        assert_eq!(types, ["Before", "Held", "Later"], "{variant:?}");
    }
}

/// The closing position write waits on the category lock of the position
/// stream (another session holds it in an open transaction): shutdown gives
/// up at its deadline and says nothing was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_while_the_position_write_waits_for_a_lock() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let options = support::options(variant).await.unwrap();
        let category = unique_category("lockedposition");
        store
            .write(
                &category.stream("1").unwrap(),
                vec![
                    NewMessage::new("One", json!({})),
                    NewMessage::new("Two", json!({})),
                ],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<Message>>> = Arc::default();
        let deadline =
            consumer_options("blocked").with_shutdown_deadline(Duration::from_millis(500));
        let handle = recording_consumer(&category, "blocked", &seen)
            .with_options(deadline)
            .start(store.clone())
            .await
            .unwrap();
        wait_until("both are handled", || seen.lock().unwrap().len() == 2).await;
        let positions = Category::new(format!("{category}:position")).unwrap();
        let mut holder = support::hold_category_lock(&options, &positions).await;

        let err = tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
            .await
            .expect("shutdown returns")
            .unwrap_err();
        assert!(
            matches!(
                err,
                message_store_consumer::Error::ShutdownDeadline {
                    recorded: None,
                    abandoned: None,
                    ..
                }
            ),
            "{variant:?}: {err:?}"
        );
        // The dropped statement still runs on the server once the lock is
        // free (sqlx cannot cancel it); it records only what was handled.
        holder.execute("ROLLBACK").await.unwrap();
        let position_stream = category.position_stream(Some("blocked")).unwrap();
        let patience = tokio::time::Instant::now() + Duration::from_secs(60);
        while store
            .stream_version(&position_stream)
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < patience,
                "{variant:?}: it lands"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        seen.lock().unwrap().clear();
        let handle = recording_consumer(&category, "blocked", &seen)
            .start(store.clone())
            .await
            .unwrap();
        wait_until("the last handled is delivered again", || {
            seen.lock().unwrap().len() == 1
        })
        .await;
        assert_eq!(seen.lock().unwrap()[0].message_type, "Two", "{variant:?}");
        handle.shutdown().await.unwrap();
    }
}

/// A consumer reading pages ahead while its handlers are slow holds no
/// connection between reads: with a pool of one, the store's other calls
/// still get it within the pool's acquire timeout (the read of a page
/// waiting for its place in the queue used to keep the connection until
/// the consumer took the page before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_ahead_holds_no_connection_while_handlers_are_slow() {
    for variant in VARIANTS {
        let Some(options) = support::options(variant).await else {
            return;
        };
        let pool = PostgresStore::pool_options()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(1));
        let store = PostgresStore::connect_with(options, pool).await.unwrap();
        let category = unique_category("ahead");
        let messages = (0..20).map(|n| NewMessage::new("M", json!({ "n": n })));
        store
            .write(
                &category.stream("1").unwrap(),
                messages.collect(),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        let handled = Arc::new(Mutex::new(0u32));
        let counter = handled.clone();
        let subscription = SubscribeOptions::new()
            .with_consumer_id("ahead")
            .with_batch_size(BatchSize::Limit(5));
        let consumer = Consumer::new(category.clone())
            .with_options(
                ConsumerOptions::new()
                    .with_standby(false)
                    .with_subscription(subscription),
            )
            .on_any(move |_message: Message| {
                let counter = counter.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    *counter.lock().unwrap() += 1;
                    HandlerResult::Ok(())
                }
            });
        let handle = consumer.start(store.clone()).await.unwrap();
        // Pages of 5 taking 1.5 s each: by now the next pages are read.
        wait_until("six handled", || *handled.lock().unwrap() >= 6).await;
        for n in 0..3 {
            store
                .write(
                    &category.stream("2").unwrap(),
                    vec![NewMessage::new("Other", json!({ "n": n }))],
                    ExpectedVersion::Any,
                )
                .await
                .unwrap_or_else(|e| panic!("{variant:?}: a write while reading ahead: {e}"));
        }
        handle.abort();
        let _ = handle.join().await;
    }
}
