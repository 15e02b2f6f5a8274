//! Installs our Message DB 1.3.0-compatible schema into the database at
//! `DATABASE_URL` (which must exist; connect as a role that may create
//! schemas and roles). Leaves a genuine Message DB install untouched.
//!
//! `cargo run -p message-store-examples --bin install -- [--no-role] [--extras]`
//!
//! `--extras` adds the NOTIFY trigger (subscriptions wake without polling)
//! and the correlation index; `--no-role` skips creating the `message_store`
//! role and its grants.

use message_store::Result;
use message_store_postgres::sqlx::postgres::PgPoolOptions;
use message_store_postgres::{InstallOptions, InstallOutcome, PostgresStore};

#[tokio::main]
async fn main() -> Result<()> {
    let url =
        std::env::var("DATABASE_URL").expect("set DATABASE_URL to the database to install into");
    let mut options = InstallOptions::new();
    for argument in std::env::args().skip(1) {
        options = match argument.as_str() {
            "--extras" => options.extras(true),
            "--no-role" => options.role(false),
            other => {
                eprintln!("unknown argument {other}; expected --extras or --no-role");
                std::process::exit(2);
            }
        };
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(PostgresStore::connect_options(&url)?)
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
