//! The quickstart on the in-memory store: no set-up needed.
//!
//! Run it with `cargo run -p message-store-examples --bin quickstart`.

use message_store::{Category, Result};
use message_store_memory::MemoryStore;

#[tokio::main]
async fn main() -> Result<()> {
    message_store_examples::quickstart(&MemoryStore::new(), &Category::new("account")?).await
}
