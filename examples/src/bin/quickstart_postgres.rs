//! The quickstart on PostgreSQL with Message DB.
//!
//! Run it with `DATABASE_URL=postgres://message_store@localhost/message_store
//! cargo run -p message-store-examples --bin quickstart_postgres`. The
//! database needs Message DB (its own install.sh, or our `install` binary).
//! Each run uses a fresh category, so it can run again on the same database.

use message_store::{Category, Result};
use message_store_postgres::PostgresStore;

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("DATABASE_URL")
        .expect("set DATABASE_URL to a database with Message DB, e.g. postgres://message_store@localhost/message_store");
    let store = PostgresStore::connect(&url).await?;
    println!(
        "Connected: {store} (Message DB {})",
        store.message_db_version()
    );
    let category = Category::new(format!(
        "account{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))?;
    message_store_examples::quickstart(&store, &category).await
}
