//! Cases only PostgreSQL has: the category write lock seen by subscribers,
//! killed and cancelled connections, the kept connections, privileges.

mod support;

use std::time::Duration;

use message_store::{
    BatchSize, Category, CategoryRead, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage,
    StreamRead, SubscribeOptions,
};
use message_store_conformance::support::wait_until;
use message_store_postgres::sqlx::postgres::PgPoolOptions;
use message_store_postgres::sqlx::{self, ConnectOptions, Executor};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::Variant;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// A transaction holds a write open in a category while later writes wait and a
/// subscriber reads: the subscriber never skips the held message once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_never_skips_a_message_held_in_an_open_transaction() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let options = support::options(variant).await.unwrap();
        let category = unique_category("held");
        let first = category.stream("1").unwrap();
        store
            .write(
                &first,
                vec![NewMessage::new("Before", json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();

        let (mut holder, later) = support::hold_a_write_open(&store, &options, &category).await;

        let opts = SubscribeOptions::new().with_poll_interval(Duration::from_millis(20));
        let mut subscription = store.subscribe(&category, opts).await.unwrap();
        let seen = subscription.next_batch().await.unwrap();
        assert_eq!(
            seen.iter()
                .map(|m| m.message_type.as_str())
                .collect::<Vec<_>>(),
            ["Before"],
            "{variant:?}"
        );
        // While the holder's transaction is open, nothing more is visible.
        let nothing =
            tokio::time::timeout(Duration::from_millis(300), subscription.next_batch()).await;
        assert!(
            nothing.is_err(),
            "{variant:?}: the later write must wait for the category lock"
        );
        assert!(
            !later.is_finished(),
            "{variant:?}: the later writer is blocked"
        );

        holder.execute("COMMIT").await.unwrap();
        later.await.unwrap().unwrap();
        let mut types = Vec::new();
        while types.len() < 2 {
            let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch())
                .await
                .unwrap()
                .unwrap();
            types.extend(batch.into_iter().map(|m| m.message_type));
        }
        assert_eq!(
            types,
            ["Held", "Later"],
            "{variant:?}: the held message is delivered, in order"
        );
    }
}

/// The store recovers when its connections are killed: the next call works.
#[tokio::test]
async fn next_call_works_after_connections_are_killed() {
    for variant in VARIANTS {
        let Some((store, tag)) = support::tagged_store(variant).await else {
            return;
        };
        let stream = unique_category("killed").stream("1").unwrap();
        store
            .write(
                &stream,
                vec![NewMessage::new("A", json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        assert!(
            support::kill(&tag, "%").await > 0,
            "{variant:?}: killed the store's connections"
        );
        let version = store.stream_version(&stream).await;
        assert_eq!(
            version.unwrap(),
            Some(0),
            "{variant:?}: the pool reconnects"
        );
    }
}

/// A call cancelled while its statement waits (here, on the category lock)
/// does not leave its connection to the next call in a half-read state: with
/// a pool of one connection, the next calls get their own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_leaves_the_connection_usable() {
    for variant in VARIANTS {
        let Some(options) = support::options(variant).await else {
            return;
        };
        let store = PostgresStore::connect_with(
            options.clone(),
            PostgresStore::pool_options().max_connections(1),
        )
        .await
        .unwrap();
        let category = unique_category("cancelled");
        let mut holder = support::hold_category_lock(&options, &category).await;
        let stream = category.stream("3").unwrap();
        let waiting = store.write(
            &stream,
            vec![NewMessage::new("Later", json!({}))],
            ExpectedVersion::Any,
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), waiting)
                .await
                .is_err(),
            "{variant:?}: the write waits for the category lock"
        );
        holder.execute("COMMIT").await.unwrap();

        // The cancelled statement still ran on the server once the lock was free.
        let last = store.last_message(&stream).await.unwrap().unwrap();
        assert_eq!(last.message_type, "Later", "{variant:?}");
        assert_eq!(store.stream_version(&stream).await.unwrap(), Some(0));
        let all = store
            .read_category(&category, CategoryRead::new())
            .await
            .unwrap();
        let types: Vec<&str> = all.iter().map(|m| m.message_type.as_str()).collect();
        assert_eq!(types, ["Held", "Later"], "{variant:?}");
    }
}

/// Polls `call` up to `polls + 1` times, yielding to the runtime in between
/// (so its I/O makes progress), and drops it unfinished after that.
async fn within_polls<F: std::future::Future>(polls: u64, call: F) -> Option<F::Output> {
    let mut call = std::pin::pin!(call);
    for _ in 0..=polls {
        if let std::task::Poll::Ready(output) = futures::poll!(call.as_mut()) {
            return Some(output);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Many tasks share a pool of three connections while calls are cancelled
/// at spread-out points (before sending, while the server works, mid-reply):
/// every call that completes gets the answer to its own question (never a
/// reply meant for a cancelled call on the same connection), every write
/// that reported success is stored intact, each stream's positions are
/// gapless, and once the store is dropped the pool closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_never_leak_replies_into_later_calls() {
    let Some(options) = support::options(Variant::Ours).await else {
        return;
    };
    let store =
        PostgresStore::connect_with(options, PostgresStore::pool_options().max_connections(3))
            .await
            .unwrap();
    let category = unique_category("cancelled");
    let tasks = (0..8u64).map(|task| {
        let store = store.clone();
        let category = category.clone();
        tokio::spawn(async move {
            let stream = category.stream(&task.to_string()).unwrap();
            let mut written = Vec::new();
            let mut cancelled = 0;
            for i in 0..40u64 {
                // Every third call is dropped after 0 to ~1500 polls.
                let polls = (i % 3 == 0).then_some((task * 131 + i * 97) % 1500);
                let call = async {
                    match i % 4 {
                        0 | 1 => {
                            let message = NewMessage::new("Step", json!({ "task": task, "i": i }));
                            let id = message.id;
                            store
                                .write(&stream, vec![message], ExpectedVersion::Any)
                                .await
                                .map(|_| Some(id))
                        }
                        2 => {
                            let last = store.last_message(&stream).await?;
                            if let Some(last) = last {
                                assert_eq!(last.stream_name, stream, "a reply for another call");
                                assert_eq!(last.data["task"], task);
                            }
                            Ok(None)
                        }
                        _ => {
                            let page = store.read_category(&category, CategoryRead::new()).await?;
                            assert!(
                                page.iter().all(|m| m.stream_name.category() == category),
                                "a reply for another call"
                            );
                            let version = store.stream_version(&stream).await?;
                            let own = page.iter().filter(|m| m.stream_name == stream).count();
                            assert!(version.map_or(0, |v| v + 1) >= own as u64);
                            Ok(None)
                        }
                    }
                };
                let outcome = match polls {
                    Some(polls) => within_polls(polls, call).await,
                    None => Some(call.await),
                };
                match outcome {
                    Some(Ok(Some(id))) => written.push((i, id)),
                    Some(Ok(None)) => {}
                    Some(Err(error)) => panic!("task {task} call {i}: {error}"),
                    None => cancelled += 1,
                }
            }
            (stream, written, cancelled)
        })
    });
    let results = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(tasks))
        .await
        .expect("no call hangs");
    let mut cancelled = 0;
    for result in results {
        let (stream, written, dropped) = result.unwrap();
        cancelled += dropped;
        let stored = store
            .read_stream(
                &stream,
                StreamRead::new().with_batch_size(BatchSize::Unlimited),
            )
            .await
            .unwrap();
        let positions: Vec<u64> = stored.iter().map(|m| m.position).collect();
        assert_eq!(
            positions,
            (0..stored.len() as u64).collect::<Vec<_>>(),
            "{stream}"
        );
        for (i, id) in written {
            let message = stored
                .iter()
                .find(|m| m.id == id)
                .unwrap_or_else(|| panic!("{stream}: write {i} reported success but is missing"));
            assert_eq!(message.data["i"], i);
        }
    }
    assert!(cancelled > 0, "some calls were dropped unfinished");
    let pool = store.pool().clone();
    drop(store);
    tokio::time::timeout(Duration::from_secs(30), pool.close())
        .await
        .expect("the pool closes once the store is gone");
}

/// The store keeps the connections of back-to-back calls out of the pool for
/// a moment, but never starves the pool's other callers: with a pool of one
/// connection, a caller of the pool gets it right after a store call, and
/// once the store is idle every connection is back in the pool.
#[tokio::test]
async fn store_calls_leave_the_pool_to_its_other_callers() {
    let Some(options) = support::options(Variant::Genuine).await else {
        return;
    };
    for size in [1, 3] {
        let store = PostgresStore::connect_with(
            options.clone(),
            PostgresStore::pool_options().max_connections(size),
        )
        .await
        .unwrap();
        let stream = unique_category("pooled").stream("1").unwrap();
        for _ in 0..3 {
            store
                .write(
                    &stream,
                    vec![NewMessage::new("A", json!({}))],
                    ExpectedVersion::Any,
                )
                .await
                .unwrap();
            let mut own = tokio::time::timeout(Duration::from_secs(10), store.pool().acquire())
                .await
                .unwrap_or_else(|_| panic!("pool of {size}: the pool serves its caller"))
                .unwrap();
            let one: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&mut *own)
                .await
                .unwrap();
            assert_eq!(one, 1);
        }
        assert_eq!(store.stream_version(&stream).await.unwrap(), Some(2));
        let pool = store.pool().clone();
        wait_until("every connection is back in the pool", || {
            pool.num_idle() == pool.size() as usize
        })
        .await;
    }
}

/// A store whose connections are kept for its next call can be dropped after
/// its runtime has ended, even with a pool that maintains a minimum of
/// connections (whose return to the pool spawns a task).
#[test]
fn a_store_outliving_its_runtime_drops_cleanly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        let options = support::options(Variant::Genuine).await?;
        let store = PostgresStore::connect_with(
            options,
            PostgresStore::pool_options()
                .min_connections(1)
                .max_connections(3),
        )
        .await
        .unwrap();
        let stream = unique_category("outlived").stream("1").unwrap();
        store
            .write(
                &stream,
                vec![NewMessage::new("A", json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        assert_eq!(store.stream_version(&stream).await.unwrap(), Some(0));
        Some(store)
    });
    drop(runtime);
    drop(store);
}

/// A role without privileges on the message store gets an error naming the problem.
#[tokio::test]
async fn role_without_privileges_is_a_clear_error() {
    let Some(admin) = support::admin_options() else {
        return;
    };
    let Some(genuine) = support::options(Variant::Genuine).await else {
        return;
    };
    let role = format!("nopriv_{}", Uuid::new_v4().simple());
    let mut connection = admin.connect().await.unwrap();
    connection
        .execute(format!("CREATE ROLE {role} LOGIN").as_str())
        .await
        .unwrap();
    let result = PostgresStore::connect_with(genuine.username(&role), PgPoolOptions::new()).await;
    connection
        .execute(format!("DROP ROLE {role}").as_str())
        .await
        .unwrap();
    let error = result.unwrap_err();
    let text = support::backend_source(&error);
    assert!(text.contains(&role) && text.contains("privilege"), "{text}");
}

/// Display and Debug never show the password.
#[tokio::test]
async fn display_and_debug_hide_the_password() {
    let Some(options) = support::options(Variant::Ours).await else {
        return;
    };
    let store = PostgresStore::connect_with(options.password("s3cret-pw"), PgPoolOptions::new())
        .await
        .unwrap();
    let shown = format!("{store} {store:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("message_store"), "{shown}");
}
