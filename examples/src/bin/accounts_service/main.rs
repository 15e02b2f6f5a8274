//! A small accounts service: a command consumer turns `Deposit`/`Withdraw`
//! commands into account events written with expected versions, and an event
//! consumer builds a balance projection. Both park what they cannot handle
//! and are idempotent under redelivery and under replays of parked messages.
//!
//! `cargo run -p message-store-examples --bin accounts_service` runs a demo on
//! the memory store: it sends some commands, waits until the projection has
//! caught up, prints it and shuts down gracefully. With `DATABASE_URL` set it
//! runs on PostgreSQL (a database with Message DB). With `--serve` it keeps
//! running until Ctrl-C, then shuts both consumers down gracefully. On
//! PostgreSQL each run uses categories of its own (`account{run id}`);
//! `--run-id ID` picks them, so a later run serves an earlier one's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{
    Category, Error, ExpectedVersion, Message, MessageStore, MessageStoreExt, NewMessage, Result,
    StreamName, SubscribeOptions, TypedMessage,
};
use message_store_consumer::{is_replay, Consumer, ConsumerOptions, FailurePolicy, HandlerResult};
use message_store_memory::MemoryStore;
use message_store_postgres::PostgresStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Deposit {
    account_id: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Withdraw {
    account_id: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Deposited {
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Withdrawn {
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithdrawalRejected {
    amount: u64,
    balance: u64,
}

macro_rules! message_types {
    ($($name:ident),*) => {
        $(impl TypedMessage for $name {
            const MESSAGE_TYPE: &'static str = stringify!($name);
        })*
    };
}
message_types!(Deposit, Withdraw, Deposited, Withdrawn, WithdrawalRejected);

/// An account rebuilt from its stream: the balance, the stream version, and
/// the global positions of the commands it processed (for idempotence; each
/// event records its command as its causation). A set, not the last one: a
/// parked command replayed later is older than commands processed since.
#[derive(Default)]
struct Account {
    balance: u64,
    version: Option<u64>,
    processed: HashSet<u64>,
}

async fn load(store: &dyn MessageStore, stream: &StreamName) -> Result<Account> {
    let mut account = Account::default();
    for event in store.read_stream_to_end(stream).await? {
        if let Some(e) = event.decode_typed::<Deposited>()? {
            account.balance += e.amount;
        } else if let Some(e) = event.decode_typed::<Withdrawn>()? {
            account.balance -= e.amount;
        }
        account.version = Some(event.position);
        if let Some(command) = event.metadata.causation_message_global_position {
            account.processed.insert(command);
        }
    }
    Ok(account)
}

/// Handles one command: skip it if the account already processed it (a
/// redelivery), else decide and write the event at the version we read. A
/// concurrent writer makes the write fail with a version conflict; the
/// consumer's retry policy runs the handler again, which reloads and decides
/// again.
async fn handle_command(
    store: &dyn MessageStore,
    accounts: &Category,
    command: &Message,
    account_id: &str,
    change: i64,
) -> HandlerResult {
    let stream = accounts.stream(account_id)?;
    let account = load(store, &stream).await?;
    if account.processed.contains(&command.global_position) {
        return Ok(()); // already processed: at-least-once delivery, exactly-once effect
    }
    let amount = change.unsigned_abs();
    let event = if change >= 0 {
        NewMessage::typed(&Deposited { amount })?
    } else if account.balance >= amount {
        NewMessage::typed(&Withdrawn { amount })?
    } else {
        NewMessage::typed(&WithdrawalRejected {
            amount,
            balance: account.balance,
        })?
    };
    let expected = ExpectedVersion::from_version(account.version);
    store
        .write(&stream, vec![event.following(command)], expected)
        .await?;
    Ok(())
}

fn options(consumer_id: &str) -> Result<ConsumerOptions> {
    Ok(ConsumerOptions::new()
        .with_subscription(
            SubscribeOptions::new()
                .with_consumer_id(consumer_id)
                .with_poll_interval(Duration::from_millis(100)),
        )
        .with_position_update_interval(10)
        .with_failure_policy(FailurePolicy::Park))
}

/// One account in the projection: the balance, the last global position
/// applied in order, and the global positions of the replays applied since.
#[derive(Debug, Clone, Default)]
struct Balance {
    balance: u64,
    last: u64,
    replays: BTreeSet<u64>,
}

/// The balance of each account stream.
type Projection = Arc<Mutex<HashMap<String, Balance>>>;

/// Applies one event's `change` to its account, once: it remembers what
/// was applied, the last position in order and replays (older than that)
/// apart, so a redelivered event changes nothing.
fn apply(projection: &Projection, message: &Message, change: i64) {
    let mut balances = projection.lock().expect("projection lock");
    let entry = balances.entry(message.stream_name.to_string()).or_default();
    let position = message.global_position;
    let fresh = if is_replay(message) {
        entry.replays.insert(position)
    } else {
        let fresh = position > entry.last;
        entry.last = entry.last.max(position);
        fresh
    };
    if fresh {
        let balance = i64::try_from(entry.balance).unwrap_or(i64::MAX) + change;
        entry.balance = u64::try_from(balance).unwrap_or(0);
    }
}

/// The balance projection: account events applied to `projection`.
fn event_consumer(accounts: Category, projection: Projection) -> Result<Consumer> {
    let (p1, p2) = (projection.clone(), projection);
    Ok(Consumer::new(accounts)
        .with_options(options("balance-projection")?)
        .on(move |e: Deposited, message: Message| {
            let projection = p1.clone();
            async move {
                apply(&projection, &message, i64::try_from(e.amount)?);
                HandlerResult::Ok(())
            }
        })
        .on(move |e: Withdrawn, message: Message| {
            let projection = p2.clone();
            async move {
                apply(&projection, &message, -i64::try_from(e.amount)?);
                HandlerResult::Ok(())
            }
        }))
}

async fn run(
    store: Arc<dyn MessageStore>,
    commands: Category,
    accounts: Category,
    serve: bool,
) -> message_store_consumer::Result<()> {
    let command_consumer = {
        let (deposit_store, withdraw_store) = (store.clone(), store.clone());
        let (deposit_accounts, withdraw_accounts) = (accounts.clone(), accounts.clone());
        Consumer::new(commands.clone())
            .with_options(options("command-handler")?)
            .on(move |deposit: Deposit, message: Message| {
                let (store, accounts) = (deposit_store.clone(), deposit_accounts.clone());
                async move {
                    let change = i64::try_from(deposit.amount)?;
                    handle_command(
                        store.as_ref(),
                        &accounts,
                        &message,
                        &deposit.account_id,
                        change,
                    )
                    .await
                }
            })
            .on(move |withdraw: Withdraw, message: Message| {
                let (store, accounts) = (withdraw_store.clone(), withdraw_accounts.clone());
                async move {
                    let change = -i64::try_from(withdraw.amount)?;
                    handle_command(
                        store.as_ref(),
                        &accounts,
                        &message,
                        &withdraw.account_id,
                        change,
                    )
                    .await
                }
            })
    };

    let projection: Projection = Arc::default();
    let event_consumer = event_consumer(accounts.clone(), projection.clone())?;

    let commands_running = command_consumer.start(store.clone()).await?;
    let events_running = event_consumer.start(store.clone()).await?;
    println!("consumers started on {store}");

    if serve {
        println!("serving; press Ctrl-C to stop");
        tokio::signal::ctrl_c().await.map_err(Error::backend)?;
    } else {
        let send = |account_id: &str, deposit: bool, amount: u64| -> Result<NewMessage> {
            let account_id = account_id.to_owned();
            if deposit {
                NewMessage::typed(&Deposit { account_id, amount })
            } else {
                NewMessage::typed(&Withdraw { account_id, amount })
            }
        };
        let script = [
            ("ada", true, 100),
            ("ada", false, 30),
            ("grace", true, 50),
            ("grace", false, 80),
            ("ada", true, 5),
        ];
        for (account_id, deposit, amount) in script {
            let stream = commands.stream(&format!("{account_id}-{}", uuid_suffix()))?;
            store
                .write(
                    &stream,
                    vec![send(account_id, deposit, amount)?],
                    ExpectedVersion::Any,
                )
                .await?;
            println!(
                "sent {} {amount} for {account_id}",
                if deposit { "Deposit" } else { "Withdraw" }
            );
        }
        // Wait until both consumers have handled everything written: the
        // commands first, then the events their handler wrote.
        commands_running.caught_up().await?;
        events_running.caught_up().await?;
    }

    let commands_health = commands_running.shutdown().await?;
    let events_health = events_running.shutdown().await?;
    println!(
        "command handler: handled {}, parked {}, position recorded at {:?}",
        commands_health.handled, commands_health.parked, commands_health.committed
    );
    println!(
        "projection: handled {}, position recorded at {:?}",
        events_health.handled, events_health.committed
    );
    let mut balances: Vec<_> = projection
        .lock()
        .expect("projection lock")
        .clone()
        .into_iter()
        .collect();
    balances.sort_by(|a, b| a.0.cmp(&b.0));
    for (account, Balance { balance, .. }) in balances {
        println!("  {account}: {balance}");
    }
    Ok(())
}

fn uuid_suffix() -> String {
    message_store::uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

#[tokio::main]
async fn main() -> message_store_consumer::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    let given = args
        .iter()
        .position(|a| a == "--run-id")
        .and_then(|at| args.get(at + 1).cloned());
    let (store, run_id): (Arc<dyn MessageStore>, String) = match std::env::var("DATABASE_URL") {
        Ok(url) => (
            Arc::new(PostgresStore::connect(&url).await?),
            given.unwrap_or_else(uuid_suffix),
        ),
        Err(_) => (Arc::new(MemoryStore::new()), given.unwrap_or_default()),
    };
    let commands = Category::new(format!("account{run_id}:command"))?;
    let accounts = Category::new(format!("account{run_id}"))?;
    run(store, commands, accounts, serve).await
}

#[cfg(test)]
mod redelivery;
