//! The everyday flows of message-db-py and Depeche DB, in this crate's API,
//! each checked as it runs: the quick example, a write with metadata and an
//! expected version, a batch, reading a stream from a position, reading a
//! category in batches, a typed message, a consumer that resumes, and a
//! partitioned consumer.
//!
//! `cargo run -p message-store-examples --bin from_message_db_py` runs it on
//! the memory store; with `DATABASE_URL` set, on PostgreSQL (a database
//! with Message DB, as the `message_store` role).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store_consumer::prelude::*;
use message_store_memory::MemoryStore;
use message_store_postgres::PostgresStore;

/// A typed message: its type name is fixed, its data is the struct.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Registered {
    name: String,
}

impl TypedMessage for Registered {
    const MESSAGE_TYPE: &'static str = "Registered";
}

/// Names of this run: on a shared database, each run has its own streams.
struct Names {
    suffix: String,
}

impl Names {
    fn stream(&self, category: &str, id: &str) -> String {
        format!("{category}{}-{id}", self.suffix)
    }

    fn category(&self, category: &str) -> Result<Category> {
        Ok(Category::new(format!("{category}{}", self.suffix))?)
    }
}

/// message-db-py's quick example: `write(stream, type, data)`, then
/// `read_last_message(stream)`.
async fn quick_example(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let stream = names.stream("user", "1");
    store
        .write_one(
            &stream,
            NewMessage::new("register", json!({"name": "John Doe"})),
            ExpectedVersion::Any,
        )
        .await?;
    let message = store.last_message(&stream).await?.expect("just written");
    assert_eq!(message.message_type, "register");
    assert_eq!(message.data["name"], "John Doe");
    println!(
        "quick example: wrote and read back {}",
        message.identifier()
    );
    Ok(())
}

/// `write(stream, type, data, metadata, expected_version)`: metadata from a
/// JSON object, the version from `stream_version`.
async fn metadata_and_expected_version(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let stream = StreamName::new(names.stream("account", "7"))?;
    let metadata = Metadata::try_from(json!({
        "correlationStreamName": "transfer-42",
        "source": "web",
    }))?;
    let opened = NewMessage::new("Opened", json!({"owner": "Ada"})).with_metadata(metadata);
    store
        .write_one(&stream, opened, store.stream_version(&stream).await?.into())
        .await?;
    let version = store.stream_version(&stream).await?;
    let deposit = NewMessage::new("Deposited", json!({"amount": 10}));
    let position = store.write_one(&stream, deposit, version.into()).await?;
    assert_eq!(position, 1);
    // The same expectation again is stale now, and refused.
    let stale = store
        .write_one(
            &stream,
            NewMessage::new("Deposited", json!({"amount": 1})),
            version.into(),
        )
        .await;
    assert!(stale.unwrap_err().is_wrong_expected_version());
    let first = store.read_stream(&stream, StreamRead::new()).await?;
    assert_eq!(first[0].metadata.correlation(), Some("transfer-42"));
    assert_eq!(first[0].metadata.other["source"], "web");
    println!("metadata and expected version: {stream} is at version {position}");
    Ok(())
}

/// `write_batch(stream, [(type, data, metadata), ...], expected_version)`:
/// all or nothing, one time for all.
async fn write_batch(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let stream = names.stream("order", "3");
    let batch = vec![
        NewMessage::new("Placed", json!({"items": 2})),
        NewMessage::new("Paid", json!({"total": 30})),
        NewMessage::new("Shipped", json!({})),
    ];
    let last = store
        .write_batch(&stream, batch, ExpectedVersion::NoStream)
        .await?;
    assert_eq!(last, 2);
    let written = store.read_stream_to_end(&stream).await?;
    assert!(written.iter().all(|m| m.time == written[0].time));
    println!("batch: {} messages in one write", written.len());
    Ok(())
}

/// `read_stream(stream, position, no_of_messages)`.
async fn read_stream_from_a_position(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let stream = StreamName::new(names.stream("log", "1"))?;
    let lines = (0..10)
        .map(|n| NewMessage::new("Line", json!({"n": n})))
        .collect();
    store
        .write_batch(&stream, lines, ExpectedVersion::Any)
        .await?;
    let page = store
        .read_stream(
            &stream,
            StreamRead::new().with_position(4).with_batch_size(3),
        )
        .await?;
    let numbers: Vec<u64> = page.iter().map(|m| m.position).collect();
    assert_eq!(numbers, [4, 5, 6]);
    println!("stream read from position 4, 3 at a time: {numbers:?}");
    Ok(())
}

/// `read_category(category, position, no_of_messages)`, then every page.
async fn read_category_in_batches(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let category = names.category("sensor")?;
    for id in 0..5 {
        let reading = NewMessage::new("Reading", json!({"sensor": id}));
        store
            .write_one(
                category.stream(&id.to_string())?,
                reading,
                ExpectedVersion::Any,
            )
            .await?;
    }
    let first = store
        .read_category(&category, CategoryRead::new().with_batch_size(2))
        .await?;
    assert_eq!(first.len(), 2);
    // Or every message, page by page, as a stream.
    let all: Vec<Message> = store
        .category_messages(&category, CategoryRead::new().with_batch_size(2))
        .try_collect()
        .await?;
    assert_eq!(all.len(), 5);
    assert!(all
        .windows(2)
        .all(|w| w[0].global_position < w[1].global_position));
    println!(
        "category read: {} in the first batch, {} in all",
        first.len(),
        all.len()
    );
    Ok(())
}

/// A Rust type as a message: written and decoded through serde.
async fn typed_message(store: &dyn MessageStore, names: &Names) -> Result<()> {
    let stream = names.stream("user", "2");
    let registered = Registered {
        name: "Grace".into(),
    };
    store
        .write_typed(&stream, &registered, ExpectedVersion::NoStream)
        .await?;
    let message = store.last_message(&stream).await?.expect("just written");
    assert_eq!(message.decode_typed::<Registered>()?, Some(registered));
    println!("typed message: {} decoded back", message.message_type);
    Ok(())
}

/// A consumer that records its position and resumes after a restart
/// (Depeche DB's subscriptions, Eventide's consumers).
async fn consumer_that_resumes(store: Arc<dyn MessageStore>, names: &Names) -> Result<()> {
    let category = names.category("signup")?;
    let write = |n: u64| {
        let store = store.clone();
        let stream = category.stream(&n.to_string());
        async move {
            store
                .write_one(
                    stream?,
                    NewMessage::new("SignedUp", json!({"n": n})),
                    ExpectedVersion::Any,
                )
                .await
        }
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = || {
        let seen = seen.clone();
        let subscription = SubscribeOptions::new()
            .with_consumer_id("welcome-mailer")
            .with_poll_interval(Duration::from_millis(20));
        Consumer::new(category.clone())
            .with_options(ConsumerOptions::new().with_subscription(subscription))
            .on_any(move |message: Message| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(message.data["n"].as_u64().unwrap_or(0));
                    HandlerResult::Ok(())
                }
            })
    };
    for n in 0..3 {
        write(n).await?;
    }
    let first = consumer().run_until_caught_up(store.clone()).await?;
    for n in 3..5 {
        write(n).await?;
    }
    let second = consumer().run_until_caught_up(store.clone()).await?;
    let seen = seen.lock().unwrap().clone();
    // The restart resumes at the recorded position: the last message it
    // recorded is delivered again (at least once), nothing before it.
    assert_eq!(seen, [0, 1, 2, 2, 3, 4]);
    println!(
        "consumer: {} handled, restarted, {} more (the last recorded one again)",
        first.handled, second.handled
    );
    Ok(())
}

/// A partitioned consumer: a static group of three members, each on its
/// share of the streams, every message handled once, in order per stream.
async fn partitioned_consumer(store: Arc<dyn MessageStore>, names: &Names) -> Result<()> {
    let category = names.category("payment")?;
    for round in 0..3 {
        for id in 0..6 {
            let message = NewMessage::new("Charged", json!({"round": round}));
            store
                .write_one(
                    category.stream(&id.to_string())?,
                    message,
                    ExpectedVersion::Any,
                )
                .await?;
        }
    }
    let handled = Arc::new(Mutex::new(Vec::new()));
    let recorder = handled.clone();
    let consumer = Consumer::new(category.clone())
        .with_options(
            ConsumerOptions::new().with_subscription(
                SubscribeOptions::new()
                    .with_consumer_id("ledger")
                    .with_poll_interval(Duration::from_millis(20)),
            ),
        )
        .on_any(move |message: Message| {
            let recorder = recorder.clone();
            async move {
                recorder
                    .lock()
                    .unwrap()
                    .push((message.stream_name.to_string(), message.position));
                HandlerResult::Ok(())
            }
        });
    let members = consumer.start_group(store.clone(), 3).await?;
    for member in &members {
        member.caught_up().await?;
    }
    let shares: Vec<u64> = members.iter().map(|m| m.health().handled).collect();
    for member in members {
        member.shutdown().await?;
    }
    let handled = handled.lock().unwrap().clone();
    let distinct: BTreeSet<_> = handled.iter().cloned().collect();
    assert_eq!(
        (handled.len(), distinct.len()),
        (18, 18),
        "each message once"
    );
    assert_eq!(shares.iter().sum::<u64>(), 18);
    println!("partitioned consumer: 3 members handled {shares:?} of 18");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let (store, suffix): (Arc<dyn MessageStore>, String) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let run = message_store::uuid::Uuid::new_v4().simple().to_string();
            (
                Arc::new(PostgresStore::connect(&url).await?),
                run[..8].to_owned(),
            )
        }
        Err(_) => (Arc::new(MemoryStore::new()), String::new()),
    };
    println!("on {store}");
    let names = Names { suffix };
    quick_example(store.as_ref(), &names).await?;
    metadata_and_expected_version(store.as_ref(), &names).await?;
    write_batch(store.as_ref(), &names).await?;
    read_stream_from_a_position(store.as_ref(), &names).await?;
    read_category_in_batches(store.as_ref(), &names).await?;
    typed_message(store.as_ref(), &names).await?;
    consumer_that_resumes(store.clone(), &names).await?;
    partitioned_consumer(store, &names).await?;
    println!("every flow ran as expected");
    Ok(())
}
