//! The NOTIFY listener (our schema's trigger): a connection of its own,
//! restarted when its runtime ends, truthful health, reconnects, and one
//! notification per transaction and category.

mod support;

use std::time::{Duration, Instant};

use message_store::{
    Category, ExpectedVersion, Message, MessageStore, NewMessage, SubscribeOptions,
};
use message_store_conformance::support::wait_until;
use message_store_postgres::sqlx::postgres::PgListener;
use message_store_postgres::sqlx::{self, Connection, Executor};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::Variant;
use uuid::Uuid;

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// Subscription options that never poll within a test: only a wake-up
/// delivers a caught-up subscription's next batch.
fn waiting() -> SubscribeOptions {
    SubscribeOptions::new().with_poll_interval(Duration::from_secs(3600))
}

/// Runs `write` while the caught-up subscription waits; fails after 20 s
/// without a wake-up.
async fn write_while_waiting(
    subscription: &mut Box<dyn message_store::Subscription>,
    write: impl std::future::Future<Output = ()>,
) -> Vec<Message> {
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write.await;
    };
    let (batch, ()) = futures::join!(
        async { tokio::time::timeout(Duration::from_secs(20), subscription.next_batch()).await },
        writer
    );
    batch.expect("woken by the write").unwrap()
}

async fn write_one(store: &PostgresStore, category: &Category, message_type: &str) {
    let message = NewMessage::new(message_type, json!({}));
    store
        .write(
            &category.stream("1").unwrap(),
            vec![message],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
}

/// With a pool of one connection, the listener takes none of it: after a
/// subscription started the listener, writes and reads go on at once
/// (before, every call waited for the pool's acquire timeout and failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_never_starves_a_pool_of_one() {
    let Some(options) = support::options(Variant::Ours).await else {
        return;
    };
    let pool = PostgresStore::pool_options()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3));
    let store = PostgresStore::connect_with(options, pool).await.unwrap();
    let category = unique_category("single");
    let mut subscription = store.subscribe(&category, waiting()).await.unwrap();
    wait_until("the listener is up", || {
        store.listener_health().unwrap().connected
    })
    .await;
    let started = Instant::now();
    let batch = write_while_waiting(&mut subscription, write_one(&store, &category, "First")).await;
    assert_eq!(batch[0].message_type, "First");
    let batch =
        write_while_waiting(&mut subscription, write_one(&store, &category, "Second")).await;
    assert_eq!(batch[0].message_type, "Second");
    println!(
        "pool of one with the listener: two writes and wake-ups in {:?} (each waits 300 ms first)",
        started.elapsed()
    );
}

/// A listener started on a runtime that ended is reported disconnected and
/// is started again by the next subscription, which then wakes on writes.
#[test]
fn the_listener_restarts_after_its_runtime_ends() {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let Some(store) = first.block_on(support::store(Variant::Ours)) else {
        return;
    };
    let category = unique_category("restart");
    first.block_on(async {
        let _subscription = store.subscribe(&category, waiting()).await.unwrap();
        wait_until("the listener is up", || {
            store.listener_health().unwrap().connected
        })
        .await;
    });
    drop(first);
    let health = store.listener_health().unwrap();
    assert!(!health.connected, "its task is gone: {health:?}");
    assert!(
        !store.wake_ups_live(),
        "without a listener, subscriptions poll"
    );
    assert_eq!(health.starts, 1);

    runtime().block_on(async {
        let mut subscription = store.subscribe(&category, waiting()).await.unwrap();
        wait_until("the listener is up again", || {
            store.listener_health().unwrap().connected
        })
        .await;
        assert_eq!(store.listener_health().unwrap().starts, 2);
        let batch =
            write_while_waiting(&mut subscription, write_one(&store, &category, "Again")).await;
        assert_eq!(batch[0].message_type, "Again");
    });
}

/// When the LISTEN connection is killed, sqlx connects again by itself; the
/// listener keeps that connection (one more connection, the same task),
/// its health says so, and a caught-up subscription still wakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_wakes_after_the_listener_connection_is_killed() {
    let Some((store, tag)) = support::tagged_store(Variant::Ours).await else {
        return;
    };
    assert!(store.has_notifications());
    let category = unique_category("listen");
    let mut subscription = store.subscribe(&category, waiting()).await.unwrap();
    wait_until("the listener is up", || {
        store.listener_health().unwrap().connected
    })
    .await;
    assert!(
        store.wake_ups_live(),
        "a connected listener delivers wake-ups"
    );
    assert_eq!(
        support::kill(&tag, "LISTEN%").await,
        1,
        "the listener's connection was found and killed"
    );
    let batch =
        write_while_waiting(&mut subscription, write_one(&store, &category, "AfterKill")).await;
    assert_eq!(batch[0].message_type, "AfterKill");
    wait_until("the reconnection is reported", || {
        store.listener_health().unwrap().connections == 2
    })
    .await;
    let health = store.listener_health().unwrap();
    assert!(health.connected, "{health:?}");
    assert_eq!(health.starts, 1, "the same task goes on: {health:?}");
}

/// NOTIFY payloads must stay under 8000 bytes: a category name longer than
/// that (which only another client can write, and only because PostgreSQL
/// compresses it in the index) still wakes the category's subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_too_long_for_notify_still_wakes_its_subscription() {
    let Some(store) = support::store(Variant::Ours).await else {
        return;
    };
    let options = support::options(Variant::Ours).await.unwrap();
    let name = format!("{}{}", "a".repeat(8100), Uuid::new_v4().simple());
    let category = Category::new(name).unwrap();
    let mut subscription = store.subscribe(&category, waiting()).await.unwrap();
    wait_until("the listener is up", || {
        store.listener_health().unwrap().connected
    })
    .await;
    let write = async {
        let mut connection = sqlx::PgConnection::connect_with(&options).await.unwrap();
        sqlx::query("SELECT write_message($1, $2, 'Long', '{}'::jsonb)")
            .bind(Uuid::new_v4().to_string())
            .bind(category.stream("1").unwrap().as_str())
            .execute(&mut connection)
            .await
            .unwrap();
    };
    let batch = write_while_waiting(&mut subscription, write).await;
    assert_eq!(batch[0].message_type, "Long");
}

/// Every notification for one of `categories` that arrives within `quiet`
/// of the last notification (the other tests of this binary write to the
/// same database meanwhile).
async fn notifications(
    listener: &mut PgListener,
    categories: &[&Category],
    quiet: Duration,
) -> Vec<serde_json::Value> {
    let mut payloads = Vec::new();
    while let Ok(next) = tokio::time::timeout(quiet, listener.recv()).await {
        let payload: serde_json::Value = serde_json::from_str(next.unwrap().payload()).unwrap();
        if categories.iter().any(|c| payload["category"] == c.as_str()) {
            payloads.push(payload);
        }
    }
    payloads
}

/// A transaction sends one notification per category it wrote, however
/// many messages: a batch of 100 through the store sends one, and a plain
/// SQL transaction writing two categories sends two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_per_transaction_and_category() {
    let Some(store) = support::store(Variant::Ours).await else {
        return;
    };
    let options = support::options(Variant::Ours).await.unwrap();
    let mut connection = sqlx::PgConnection::connect_with(&options).await.unwrap();
    let pool = message_store_postgres::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .unwrap();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("message_store").await.unwrap();

    let first = unique_category("batch");
    let batch: Vec<NewMessage> = (0..100)
        .map(|n| NewMessage::new("N", json!({ "n": n })))
        .collect();
    store
        .write(&first.stream("1").unwrap(), batch, ExpectedVersion::Any)
        .await
        .unwrap();
    let seen = notifications(&mut listener, &[&first], Duration::from_millis(500)).await;
    assert_eq!(seen, [json!({ "category": first.as_str() })]);

    let second = unique_category("other");
    connection.execute("BEGIN").await.unwrap();
    for (category, id) in [(&first, "2"), (&second, "1"), (&first, "3"), (&second, "2")] {
        sqlx::query("SELECT write_message($1, $2, 'N', '{}'::jsonb)")
            .bind(Uuid::new_v4().to_string())
            .bind(category.stream(id).unwrap().as_str())
            .execute(&mut connection)
            .await
            .unwrap();
    }
    connection.execute("COMMIT").await.unwrap();
    let seen = notifications(
        &mut listener,
        &[&first, &second],
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    for category in [&first, &second] {
        assert!(
            seen.contains(&json!({ "category": category.as_str() })),
            "{seen:?}"
        );
    }
}
