//! `message-store install`: installs message-store's Message DB-compatible
//! schema into an existing database (idempotent, safe to run again), or
//! reports a genuine Message DB already there and leaves it untouched.

use message_store_postgres::sqlx::PgPool;
use message_store_postgres::{InstallOptions, InstallOutcome, PostgresStore};

use crate::Failure;

/// What `install` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Do not create the `message_store` role or grant it Message DB's
    /// functions-only privileges (which needs CREATEROLE).
    #[arg(long)]
    no_role: bool,
    /// Add the NOTIFY trigger that wakes subscriptions without polling.
    #[arg(long)]
    notify: bool,
    /// Index consumer groups of this many members (repeat for each size in use).
    #[arg(long, value_name = "SIZE")]
    group_index: Vec<u32>,
}

pub(crate) async fn run(pool: &PgPool, args: Args) -> Result<(), Failure> {
    let mut options = InstallOptions::new()
        .with_role(!args.no_role)
        .with_extras(args.notify);
    for size in &args.group_index {
        options = options.with_consumer_group_index(*size);
    }
    let spinner = crate::style::spinner("installing");
    let outcome = PostgresStore::install(pool, &options).await;
    spinner.finish_and_clear();
    match outcome? {
        InstallOutcome::Installed => {
            let mut parts =
                vec!["installed message-store's schema (Message DB 1.3.0-compatible)".to_owned()];
            if args.notify {
                parts.push("the notify trigger".to_owned());
            }
            if !args.no_role {
                parts.push("the message_store role with functions-only privileges".to_owned());
            }
            if !args.group_index.is_empty() {
                let sizes: Vec<String> = args.group_index.iter().map(u32::to_string).collect();
                parts.push(format!(
                    "consumer-group indexes for {} members",
                    sizes.join(", ")
                ));
            }
            println!("{}; check it with `message-store verify`", parts.join(", "));
        }
        InstallOutcome::ExistingMessageDb { version } => println!(
            "found genuine Message DB {version}, installed by another tool: left it untouched \
             (check it with `message-store verify`)"
        ),
    }
    Ok(())
}
