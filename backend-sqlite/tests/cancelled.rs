//! Writes and commits the caller stops waiting for (a timeout, a dropped
//! future) never leave the store's one write connection inside a
//! transaction: later writes go on, and every write reported as done is
//! stored.

use std::time::Duration;

use message_store::{
    ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName, UnitOptions,
};
use message_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_dropped_at_any_moment_leave_the_store_writable() {
    let store = SqliteStore::open_temporary().await.unwrap();
    let stream = StreamName::new("account-1").unwrap();
    let mut reported = 0;
    for attempt in 0..300u64 {
        let patience = Duration::from_micros((attempt % 60) * 20);
        let message = NewMessage::new("Deposited", serde_json::json!({ "n": attempt }));
        let write = store.write(&stream, vec![message], ExpectedVersion::Any);
        if let Ok(Ok(_)) = tokio::time::timeout(patience, write).await {
            reported += 1;
        }
        if attempt % 3 == 0 {
            let mut unit = store.begin(UnitOptions::new()).await.unwrap();
            let message = NewMessage::new("Deposited", serde_json::json!({ "unit": attempt }));
            unit.unit()
                .write(&stream, vec![message], ExpectedVersion::Any)
                .await
                .unwrap();
            if let Ok(Ok(())) = tokio::time::timeout(patience, unit.commit()).await {
                reported += 1;
            }
        }
    }
    let last = NewMessage::new("Deposited", serde_json::json!({ "last": true }));
    store
        .write(&stream, vec![last], ExpectedVersion::Any)
        .await
        .expect("the store is still writable");
    let stored = store.read_stream_to_end(&stream).await.unwrap();
    assert!(
        stored.len() > reported,
        "{} stored, {reported} reported as written, plus the last",
        stored.len()
    );
}
