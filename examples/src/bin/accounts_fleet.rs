//! The accounts service as a fleet: any number of worker processes on one
//! PostgreSQL database share its two consumers (the command handler and the
//! balance projection), each as a fleet instance. Kill a worker and the
//! others take its buckets over once its lease runs out; the projection, a
//! table the workers update idempotently, still ends up complete.
//!
//! `bash examples/accounts_fleet.sh` runs three workers, sends commands,
//! kills one worker with SIGKILL half-way and checks the projection. The
//! subcommands it uses (all on `DATABASE_URL`, as the `message_store` role):
//!
//! * `worker --instance NAME`: runs both consumers until SIGTERM or Ctrl-C,
//!   then shuts down gracefully (its buckets go to the others at once);
//! * `send --from I --to J`: writes commands I..J (deposits and withdrawals
//!   over a few accounts, one command stream per account, so each account's
//!   commands are handled in order);
//! * `check --to J`: waits until the projection shows what commands 0..J
//!   imply, and fails after a minute if it does not.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Parser, Subcommand};
use message_store::{
    Category, ExpectedVersion, Message, MessageStore, MessageStoreExt, NewMessage,
    SubscribeOptions, TypedMessage,
};
use message_store_consumer::fleet::{FleetHandle, FleetOptions};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult, Result};
use message_store_postgres::{sqlx, PostgresStore};
use serde::{Deserialize, Serialize};

const ACCOUNTS: u64 = 12;
const BUCKETS: u32 = 6;
const LEASE: Duration = Duration::from_secs(2);

#[derive(Debug, Parser)]
struct Args {
    /// The database, as the `message_store` role.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run both consumers as fleet instances until SIGTERM or Ctrl-C.
    Worker {
        /// This instance's id in both fleets.
        #[arg(long)]
        instance: String,
    },
    /// Write commands `from..to`.
    Send {
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
    /// Wait until the projection shows what commands `0..to` imply.
    Check {
        #[arg(long)]
        to: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Deposit {
    amount: u64,
}
#[derive(Debug, Serialize, Deserialize)]
struct Withdraw {
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
}

macro_rules! message_types {
    ($($name:ident),*) => {
        $(impl TypedMessage for $name {
            const MESSAGE_TYPE: &'static str = stringify!($name);
        })*
    };
}
message_types!(Deposit, Withdraw, Deposited, Withdrawn, WithdrawalRejected);

fn commands() -> Category {
    Category::new("accountsFleet:command").expect("a category")
}

fn accounts() -> Category {
    Category::new("accountsFleet").expect("a category")
}

/// Command `i`: its account, and a deposit (`true`) or withdrawal of an amount.
fn command(i: u64) -> (String, bool, u64) {
    let account = format!("acct{}", i % ACCOUNTS);
    if i % 5 == 4 {
        (account, false, i % 13 + 1)
    } else {
        (account, true, i % 7 + 1)
    }
}

/// The balance of each account after commands `0..to`, handled in order.
fn expected(to: u64) -> BTreeMap<String, i64> {
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..to {
        let (account, deposit, amount) = command(i);
        let balance = balances.entry(account).or_default();
        let amount = i64::try_from(amount).expect("small");
        if deposit {
            *balance += amount;
        } else if *balance >= amount {
            *balance -= amount;
        }
    }
    balances
}

/// Handles a command once: skipped if the account's stream already has an
/// event caused by it (a redelivery), else decided on the balance read and
/// written at the version read (a concurrent write fails and is retried).
async fn handle(
    store: &dyn MessageStore,
    command: &Message,
    deposit: bool,
    amount: u64,
) -> HandlerResult {
    let id = command
        .stream_name
        .cardinal_id()
        .unwrap_or_default()
        .to_owned();
    let stream = accounts().stream(&id)?;
    let (mut balance, mut version) = (0u64, None);
    for event in store.read_stream_to_end(&stream).await? {
        if event.metadata.causation_message_global_position == Some(command.global_position) {
            return Ok(());
        }
        if let Some(e) = event.decode_typed::<Deposited>()? {
            balance += e.amount;
        } else if let Some(e) = event.decode_typed::<Withdrawn>()? {
            balance -= e.amount;
        }
        version = Some(event.position);
    }
    let event = if deposit {
        NewMessage::typed(&Deposited { amount })?
    } else if balance >= amount {
        NewMessage::typed(&Withdrawn { amount })?
    } else {
        NewMessage::typed(&WithdrawalRejected { amount })?
    };
    store
        .write(
            &stream,
            vec![event.following(command)],
            ExpectedVersion::from_version(version),
        )
        .await?;
    Ok(())
}

/// Applies an event to the projection table unless an event at or past its
/// stream position was applied (redeliveries, and a stale owner's late ones).
async fn apply(pool: &sqlx::PgPool, event: &Message, change: i64) -> HandlerResult {
    sqlx::query(
        "INSERT INTO account_balance (account, balance, last_position) VALUES ($1, $2, $3)
         ON CONFLICT (account) DO UPDATE
         SET balance = account_balance.balance + EXCLUDED.balance, last_position = EXCLUDED.last_position
         WHERE account_balance.last_position < EXCLUDED.last_position",
    )
    .bind(event.stream_name.cardinal_id().unwrap_or_default())
    .bind(change)
    .bind(i64::try_from(event.position)?)
    .execute(pool)
    .await?;
    Ok(())
}

fn options(id: &str) -> ConsumerOptions {
    ConsumerOptions::new()
        .with_subscription(
            SubscribeOptions::new()
                .with_consumer_id(id)
                .with_poll_interval(Duration::from_millis(50)),
        )
        .with_position_update_interval(10)
}

async fn worker(store: PostgresStore, instance: &str) -> Result<()> {
    let fleet = FleetOptions::new()
        .with_buckets(BUCKETS)
        .with_lease_duration(LEASE)
        .with_instance_id(instance);
    let (s1, s2) = (store.clone(), store.clone());
    let command_handler = Consumer::new(commands())
        .with_options(options("command-handler"))
        .on(move |c: Deposit, m: Message| {
            let store = s1.clone();
            async move { handle(&store, &m, true, c.amount).await }
        })
        .on(move |c: Withdraw, m: Message| {
            let store = s2.clone();
            async move { handle(&store, &m, false, c.amount).await }
        })
        .start_fleet(store.clone(), fleet.clone())
        .await?;
    let (p1, p2) = (store.pool().clone(), store.pool().clone());
    let projection = Consumer::new(accounts())
        .with_options(options("balance-projection"))
        .on(move |e: Deposited, m: Message| {
            let pool = p1.clone();
            async move { apply(&pool, &m, i64::try_from(e.amount)?).await }
        })
        .on(move |e: Withdrawn, m: Message| {
            let pool = p2.clone();
            async move { apply(&pool, &m, -i64::try_from(e.amount)?).await }
        })
        .on_any(|_rejected: Message| async { HandlerResult::Ok(()) })
        .start_fleet(store.clone(), fleet)
        .await?;
    println!("{instance}: running");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(message_store::Error::backend)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    for (name, handle) in [("commands", command_handler), ("projection", projection)] {
        report(instance, name, handle).await?;
    }
    Ok(())
}

async fn report(instance: &str, name: &str, handle: FleetHandle) -> Result<()> {
    let health = handle.shutdown().await?;
    println!(
        "{instance}: {name}: handled {}, claims {}, takeovers {}, releases {}, refused commits {}",
        health.handled, health.claims, health.takeovers, health.releases, health.refused_commits
    );
    Ok(())
}

async fn send(store: &PostgresStore, from: u64, to: u64) -> Result<()> {
    for i in from..to {
        let (account, deposit, amount) = command(i);
        let message = if deposit {
            NewMessage::typed(&Deposit { amount })?
        } else {
            NewMessage::typed(&Withdraw { amount })?
        };
        let stream = commands().stream(&account)?;
        store
            .write(&stream, vec![message], ExpectedVersion::Any)
            .await?;
    }
    println!("sent commands {from}..{to}");
    Ok(())
}

async fn check(store: &PostgresStore, to: u64) -> Result<()> {
    let want = expected(to);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT account, balance FROM account_balance")
                .fetch_all(store.pool())
                .await
                .map_err(message_store::Error::backend)?;
        let got: BTreeMap<String, i64> = rows.into_iter().collect();
        if got == want {
            let total: i64 = got.values().sum();
            println!(
                "projection complete: {} accounts, total balance {total}",
                got.len()
            );
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!("projection incomplete after 60 s:\n  want {want:?}\n  got  {got:?}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let store = PostgresStore::connect(&args.database_url).await?;
    match args.command {
        Command::Worker { instance } => worker(store, &instance).await,
        Command::Send { from, to } => send(&store, from, to).await,
        Command::Check { to } => check(&store, to).await,
    }
}
