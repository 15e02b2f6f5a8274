//! Installs our Message DB 1.3.0-compatible schema into the database at
//! `DATABASE_URL` (which must exist; connect as a role that may create
//! schemas and roles). Leaves a genuine Message DB install untouched.
//!
//! `cargo run -p message-store-examples --bin install -- [--no-role] [--extras] [--consumer-group-size N]...`
//!
//! `--extras` adds the NOTIFY trigger (subscriptions wake without polling);
//! `--consumer-group-size N` indexes consumer groups of N members;
//! `--no-role` skips creating the `message_store` role and its grants.

use clap::Parser;
use message_store::Result;
use message_store_postgres::sqlx::postgres::PgPoolOptions;
use message_store_postgres::{InstallOptions, InstallOutcome, PostgresStore};

/// Installs a Message DB 1.3.0-compatible schema into an existing database.
#[derive(Debug, Parser)]
struct Args {
    /// The database to install into.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Add the NOTIFY trigger, so subscriptions wake on write instead of polling.
    #[arg(long)]
    extras: bool,
    /// Do not create the `message_store` role or grant it privileges.
    #[arg(long)]
    no_role: bool,
    /// Index consumer groups of this size (repeat for each size in use).
    #[arg(long = "consumer-group-size", value_name = "SIZE")]
    consumer_group_sizes: Vec<u32>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let options = args.consumer_group_sizes.iter().fold(
        InstallOptions::new()
            .with_extras(args.extras)
            .with_role(!args.no_role),
        |options, &size| options.with_consumer_group_index(size),
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(PostgresStore::connect_options(&args.database_url)?)
        .await
        .map_err(message_store::Error::backend)?;
    match PostgresStore::install(&pool, &options).await? {
        InstallOutcome::Installed => println!("installed the message store schema"),
        InstallOutcome::ExistingMessageDb { version } => {
            println!("found Message DB {version} installed by other means; left it untouched")
        }
    }
    Ok(())
}
