//! The store is a file: what was written and recorded survives closing
//! it, a consumer resumes where it recorded its position, and a file with
//! a newer schema is refused with an error that says so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use message_store::{
    Category, Error, ExpectedVersion, Message, MessageStore, MessageStoreExt, NewMessage,
    SubscribeOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_sqlite::{SqliteError, SqliteStore, SCHEMA_VERSION};

fn path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{name}-{}.sqlite", uuid::Uuid::new_v4().simple()))
}

fn remove(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// Counts what it handles; records its position every 10 messages.
fn counting_consumer(handled: Arc<AtomicU64>) -> Consumer {
    Consumer::new(Category::new("account").unwrap())
        .with_options(
            ConsumerOptions::new()
                .with_position_update_interval(10)
                .with_subscription(SubscribeOptions::new().with_consumer_id("projector")),
        )
        .on_any(move |_message: Message| {
            let handled = handled.clone();
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                HandlerResult::Ok(())
            }
        })
}

async fn write(store: &SqliteStore, from: u64, count: u64) {
    for n in from..from + count {
        let message = NewMessage::new("Deposited", serde_json::json!({ "n": n }));
        store
            .write_one(format!("account-{}", n % 3), message, ExpectedVersion::Any)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_keeps_its_messages_and_a_consumer_resumes() {
    let file = path("reopen");
    let first = Arc::new(AtomicU64::new(0));
    {
        let store = SqliteStore::open(&file).await.unwrap();
        write(&store, 0, 25).await;
        let handle = counting_consumer(first.clone())
            .start(store.clone())
            .await
            .unwrap();
        handle.caught_up().await.unwrap();
        handle.shutdown().await.unwrap();
    }
    assert_eq!(first.load(Ordering::SeqCst), 25);

    let store = SqliteStore::open(&file).await.unwrap();
    let category = Category::new("account").unwrap();
    let stored = store
        .read_category(&category, Default::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 25, "every message survives the reopen");
    write(&store, 25, 5).await;
    let again = Arc::new(AtomicU64::new(0));
    let handle = counting_consumer(again.clone())
        .start(store.clone())
        .await
        .unwrap();
    handle.caught_up().await.unwrap();
    handle.shutdown().await.unwrap();
    // Shutdown recorded the 25th; reading resumes at it (inclusive).
    assert_eq!(
        again.load(Ordering::SeqCst),
        6,
        "the last recorded message and the 5 new ones"
    );
    drop(store);
    remove(&file);
}

#[tokio::test]
async fn a_file_with_a_newer_schema_is_refused() {
    let file = path("newer");
    drop(SqliteStore::open(&file).await.unwrap());
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", file.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let error = SqliteStore::open(&file).await.unwrap_err();
    let Error::Backend { source } = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    let newer = source.downcast_ref::<SqliteError>();
    assert!(
        matches!(newer, Some(SqliteError::NewerSchema { found, .. }) if *found == SCHEMA_VERSION + 1),
        "{error}"
    );
    remove(&file);
}

#[tokio::test]
async fn text_another_client_stored_that_is_not_json_never_breaks_a_page() {
    let file = path("foreign");
    drop(SqliteStore::open(&file).await.unwrap());
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", file.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO messages (position, time, stream_name, type, data, metadata, id, category) \
             VALUES (0, '2026-01-01 00:00:00.000000', 'account-9', 'Odd', 'not json \"at all', \
                     '{\"a\": [1, 2', '6f1d3f5e-0b7a-4c1e-9a53-3c1f5b2d7e10', 'account')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = SqliteStore::open(&file).await.unwrap();
    write(&store, 0, 2).await;
    let page = store
        .read_category(&Category::new("account").unwrap(), Default::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 3, "the odd row and the two after it");
    assert_eq!(page[0].message_type, "Odd");
    assert!(page[0].check().is_err(), "its data is reported unreadable");
    assert!(page[1].check().is_ok());
    drop(store);
    remove(&file);
}
