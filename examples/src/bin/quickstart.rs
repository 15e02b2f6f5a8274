//! The quickstart on the in-memory store, no set-up needed:
//! `cargo run -p message-store-examples --bin quickstart`.
//!
//! With `-- --sqlite PATH` it runs on a SQLite file instead (created if
//! missing); run again on the same file, it takes the first `account`
//! category it has not used yet, so the earlier runs' messages stay.

use message_store::{Category, Error, MessageStore, Result};
use message_store_memory::MemoryStore;
use message_store_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            message_store_examples::quickstart(&MemoryStore::new(), &Category::new("account")?)
                .await
        }
        [flag, path] if flag == "--sqlite" => {
            let store = SqliteStore::open(path).await?;
            let category = unused_category(&store).await?;
            println!("On {store}, category {category}\n");
            message_store_examples::quickstart(&store, &category).await
        }
        _ => Err(Error::InvalidOption {
            option: "quickstart arguments",
            problem: "expected nothing, or --sqlite PATH".to_owned(),
        }),
    }
}

/// `account`, or `account2`, `account3`... : the first one with no messages.
async fn unused_category(store: &SqliteStore) -> Result<Category> {
    for n in 1u32.. {
        let name = if n == 1 {
            "account".to_owned()
        } else {
            format!("account{n}")
        };
        let category = Category::new(name)?;
        if store.category_head(&category).await?.is_none() {
            return Ok(category);
        }
    }
    unreachable!("some category is unused")
}
