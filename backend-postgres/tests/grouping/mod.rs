//! What the group commit tests share: a group made deterministic by
//! holding a category's lock (see `group.rs`).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use message_store::{Category, ExpectedVersion, MessageStore, NewMessage, StreamName};
use message_store_postgres::sqlx::{self, ConnectOptions, Connection, PgConnection};
use message_store_postgres::PostgresStore;
use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::{self, Variant};

pub const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

pub fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// An admin connection to the variant's database.
pub async fn admin(variant: Variant) -> PgConnection {
    let options = support::options(variant).await.expect("the database");
    let database = options.get_database().expect("a database").to_owned();
    support::admin_options()
        .expect("DATABASE_URL")
        .database(&database)
        .connect()
        .await
        .unwrap()
}

/// How many transactions wrote the messages of `category`'s streams
/// (the holder's `-held` stream left out).
pub async fn transactions(variant: Variant, category: &Category) -> i64 {
    let mut admin = admin(variant).await;
    sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM message_store.messages
         WHERE stream_name LIKE $1 AND stream_name <> $2",
    )
    .bind(format!("{category}-%"))
    .bind(format!("{category}-held"))
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// Polls `ready` every 5 ms for up to 20 s.
pub async fn until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !ready().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waited for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn spawn_write(
    store: &PostgresStore,
    stream: &StreamName,
    messages: Vec<NewMessage>,
    expected: ExpectedVersion,
) -> JoinHandle<message_store::Result<u64>> {
    let (store, stream) = (store.clone(), stream.clone());
    tokio::spawn(async move { store.write(&stream, messages, expected).await })
}

pub fn one(kind: &str) -> Vec<NewMessage> {
    vec![NewMessage::new(kind, json!({}))]
}

/// Holds `category`'s lock and starts a first write that waits for it
/// alone: the writes started next queue for one group.
pub async fn first_write_waiting(
    variant: Variant,
    category: &Category,
) -> (
    PostgresStore,
    PgConnection,
    JoinHandle<message_store::Result<u64>>,
) {
    let (store, tag) = support::tagged_store(variant).await.expect("the database");
    let options = support::options(variant).await.unwrap();
    let holder = support::hold_category_lock(&options, category).await;
    let first = spawn_write(
        &store,
        &category.stream("first").unwrap(),
        one("W"),
        ExpectedVersion::Any,
    );
    until("the first write to wait for the lock", || {
        support::waits_for_a_lock(&tag)
    })
    .await;
    (store, holder, first)
}

/// Starts a write and waits until it is queued (the `queued`-th).
pub async fn queue(
    store: &PostgresStore,
    queued: usize,
    stream: &StreamName,
    messages: Vec<NewMessage>,
    expected: ExpectedVersion,
) -> JoinHandle<message_store::Result<u64>> {
    let write = spawn_write(store, stream, messages, expected);
    until("the write to queue", || async {
        store.queued_writes() == queued
    })
    .await;
    write
}

/// One call of a group: its stream, messages and expected version.
pub type Call = (StreamName, Vec<NewMessage>, ExpectedVersion);

/// Queues `calls` behind the `first` write (each until it is queued), then
/// closes `holder`: the first write commits alone and the queued calls go
/// as one group. Each queued call's outcome, in order.
pub async fn write_as_a_group(
    store: &PostgresStore,
    holder: PgConnection,
    first: JoinHandle<message_store::Result<u64>>,
    calls: Vec<Call>,
) -> Vec<message_store::Result<u64>> {
    let mut writes = Vec::new();
    for (i, (stream, messages, expected)) in calls.into_iter().enumerate() {
        writes.push(queue(store, i + 1, &stream, messages, expected).await);
    }
    holder.close().await.unwrap(); // rolls back, releasing the lock
    first.await.unwrap().unwrap();
    let mut outcomes = Vec::new();
    for write in writes {
        outcomes.push(write.await.unwrap());
    }
    outcomes
}

/// True when a session named `tag` running a statement like `pattern`
/// waits for a lock.
pub async fn waits_in(variant: Variant, tag: &str, pattern: &str) -> bool {
    let mut admin = admin(variant).await;
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1
                        AND wait_event_type = 'Lock' AND query LIKE $2)",
    )
    .bind(tag)
    .bind(pattern)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}
