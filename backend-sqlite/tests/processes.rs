//! Two stores opened on one file stand for two processes sharing it: they
//! share no wake-ups and no in-process locks. A subscription finds the
//! other's writes by polling; the store names the same data; a unit whose
//! streams, or locked categories, the other wrote meanwhile fails to
//! commit and stores nothing.

use std::time::Duration;

use message_store::{
    Category, ConflictReason, Error, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage,
    StreamName, SubscribeOptions, UnitOptions,
};
use message_store_sqlite::SqliteStore;

/// The file two stores share: removed when dropped (open connections keep
/// an unlinked file alive until they close).
struct File(std::path::PathBuf);

impl Drop for File {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.0.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Two stores on one new file, standing for two processes.
async fn two_processes() -> (SqliteStore, SqliteStore, File) {
    let file =
        File(std::env::temp_dir().join(format!("shared-{}.sqlite", uuid::Uuid::new_v4().simple())));
    let one = SqliteStore::open(&file.0).await.unwrap();
    let other = SqliteStore::open(&file.0).await.unwrap();
    (one, other, file)
}

fn event(n: u64) -> NewMessage {
    NewMessage::new("Deposited", serde_json::json!({ "n": n }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_polls_for_another_process_writes() {
    let (one, other, _file) = two_processes().await;
    assert_eq!(one.to_string(), other.to_string(), "the same data");
    assert!(!one.wake_ups_live(), "another process's writes wake nobody");
    let category = Category::new("account").unwrap();
    let options = SubscribeOptions::new().with_poll_interval(Duration::from_millis(20));
    let mut subscription = one.subscribe(&category, options).await.unwrap();
    let reading = tokio::spawn(async move { subscription.next_batch().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    other
        .write_one("account-1", event(1), ExpectedVersion::Any)
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("found by polling")
        .unwrap()
        .unwrap();
    assert_eq!(batch.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_stream_another_process_wrote_stores_nothing() {
    let (one, other, _file) = two_processes().await;
    let stream = StreamName::new("account-1").unwrap();
    let mut unit = one.begin(UnitOptions::new()).await.unwrap();
    unit.unit()
        .write(&stream, vec![event(1)], ExpectedVersion::NoStream)
        .await
        .unwrap();
    // Not held back by the unit's lock: that lock is in the other process.
    other
        .write(&stream, vec![event(2)], ExpectedVersion::NoStream)
        .await
        .unwrap();
    let error = unit.commit().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Conflict {
                reason: ConflictReason::Serialization,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_transient());
    let stored = one.read_stream_to_end(&stream).await.unwrap();
    assert_eq!(stored.len(), 1, "only the other process's message");
    assert_eq!(stored[0].data["n"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_locked_category_another_process_wrote_stores_nothing() {
    let (one, other, _file) = two_processes().await;
    let category = Category::new("account").unwrap();
    let mut unit = one.begin(UnitOptions::new()).await.unwrap();
    unit.unit()
        .lock_categories(std::slice::from_ref(&category))
        .await
        .unwrap();
    // Another stream of the locked category, by the other process.
    other
        .write_one("account-2", event(2), ExpectedVersion::Any)
        .await
        .unwrap();
    unit.unit()
        .write(
            &category.stream("1").unwrap(),
            vec![event(1)],
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();
    let error = unit.commit().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Conflict {
                reason: ConflictReason::Serialization,
                ..
            }
        ),
        "{error}"
    );
    let stored = one.read_category_to_end(&category).await.unwrap();
    assert_eq!(stored.len(), 1, "only the other process's message");
}
