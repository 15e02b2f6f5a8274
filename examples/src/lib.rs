//! Runnable examples. The quickstart's story lives here, written against
//! `&dyn MessageStore`, so the same code runs on the memory store
//! (`--bin quickstart`) and on PostgreSQL (`--bin quickstart_postgres`).

use std::time::Duration;

use message_store::{
    Category, Error, ExpectedVersion, MessageStore, MessageStoreExt, Result, StreamName,
    SubscribeOptions, TypedMessage,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Opened {
    owner: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Deposited {
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Withdrawn {
    amount: u64,
}

impl TypedMessage for Opened {
    const MESSAGE_TYPE: &'static str = "Opened";
}
impl TypedMessage for Deposited {
    const MESSAGE_TYPE: &'static str = "Deposited";
}
impl TypedMessage for Withdrawn {
    const MESSAGE_TYPE: &'static str = "Withdrawn";
}

/// The account's state, rebuilt from its stream, with the version it was read at.
#[derive(Debug, Default)]
struct Account {
    balance: u64,
    version: Option<u64>,
}

async fn load(store: &dyn MessageStore, stream: &StreamName) -> Result<Account> {
    let mut account = Account::default();
    for message in store.read_stream_to_end(stream).await? {
        if let Some(deposit) = message.decode_typed::<Deposited>()? {
            account.balance += deposit.amount;
        } else if let Some(withdrawal) = message.decode_typed::<Withdrawn>()? {
            account.balance -= withdrawal.amount;
        }
        account.version = Some(message.position);
    }
    Ok(account)
}

/// A command handler: withdraw if the balance allows, writing at the version it
/// decided on; on a conflict, reload and decide again.
async fn withdraw(store: &dyn MessageStore, stream: &StreamName, amount: u64) -> Result<()> {
    loop {
        let account = load(store, stream).await?;
        if account.balance < amount {
            println!(
                "  refused: withdrawing {amount} from a balance of {}",
                account.balance
            );
            return Ok(());
        }
        let expected = ExpectedVersion::from_version(account.version);
        match store
            .write_typed(stream, &Withdrawn { amount }, expected)
            .await
        {
            Ok(position) => {
                println!("  withdrew {amount} at position {position}");
                return Ok(());
            }
            Err(conflict @ Error::WrongExpectedVersion { .. }) => {
                println!("  conflict: {conflict}; reloading and retrying");
            }
            Err(other) => return Err(other),
        }
    }
}

/// The quickstart: a bank account's events in `category` of `store`.
///
/// Writes events with expected versions, reads them back into a balance,
/// handles a version conflict the way a real command handler would, and runs a
/// subscription that prints what it receives and records its position. The
/// category must be new (empty), so the story's expected versions hold.
pub async fn quickstart<S: MessageStore + Clone>(store: &S, category: &Category) -> Result<()> {
    let store = store.clone();
    let account = category.stream("123")?;

    println!("1. Open {account} and deposit, each write at the version we expect");
    store
        .write_typed(
            &account,
            &Opened {
                owner: "Ada".into(),
            },
            ExpectedVersion::NoStream,
        )
        .await?;
    store
        .write_typed(
            &account,
            &Deposited { amount: 100 },
            ExpectedVersion::Exact(0),
        )
        .await?;
    store
        .write_typed(
            &account,
            &Deposited { amount: 50 },
            ExpectedVersion::Exact(1),
        )
        .await?;

    println!("2. Read the stream back");
    for message in store.read_stream_to_end(&account).await? {
        println!(
            "  #{} {} (global {}) {}",
            message.position, message.message_type, message.global_position, message.data
        );
    }
    println!("  balance: {}", load(&store, &account).await?.balance);

    println!("3. A writer holding a stale version is refused");
    let stale = store
        .write_typed(
            &account,
            &Withdrawn { amount: 10 },
            ExpectedVersion::Exact(0),
        )
        .await;
    if let Err(error) = stale {
        println!("  {error}");
    }

    println!(
        "4. Someone deposits between our read and our write: we get a conflict, reload and retry"
    );
    let decided = load(&store, &account).await?;
    let other_writer = store.clone();
    let interleaved = account.clone();
    tokio::spawn(async move {
        other_writer
            .write_typed(
                &interleaved,
                &Deposited { amount: 25 },
                ExpectedVersion::Any,
            )
            .await
    })
    .await
    .expect("the other writer ran")?;
    let expected = ExpectedVersion::from_version(decided.version);
    match store
        .write_typed(&account, &Withdrawn { amount: 120 }, expected)
        .await
    {
        Err(conflict @ Error::WrongExpectedVersion { .. }) => {
            println!("  conflict: {conflict}");
            withdraw(&store, &account, 120).await?;
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    withdraw(&store, &account, 1000).await?;
    println!("  balance: {}", load(&store, &account).await?.balance);

    println!("5. A subscription to the account category receives every event");
    let options = SubscribeOptions::new()
        .with_consumer_id("quickstart")
        .with_poll_interval(Duration::from_millis(50));
    let mut subscription = store.subscribe(category, options).await?;
    let other = category.stream("456")?;
    store
        .write_typed(
            &other,
            &Opened {
                owner: "Grace".into(),
            },
            ExpectedVersion::NoStream,
        )
        .await?;
    let mut received = 0;
    while received < 6 {
        let batch = subscription.next_batch().await?;
        for message in &batch {
            println!(
                "  received {} {} at global position {}",
                message.stream_name, message.message_type, message.global_position
            );
        }
        received += batch.len();
        let last = batch
            .last()
            .expect("batches are never empty")
            .global_position;
        subscription.commit(last).await?;
    }
    let position_stream = category.position_stream(Some("quickstart"))?;
    let record = store
        .last_message(&position_stream)
        .await?
        .expect("a committed position");
    println!("  position recorded in {position_stream}: {}", record.data);
    Ok(())
}

/// The README's Rust code blocks, compiled and run as doctests (those that
/// need a database are compiled only).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
