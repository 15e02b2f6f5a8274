//! A batch longer than one INSERT statement (1000 rows) is still one
//! atomic write, and an id stored already that it repeats in its last
//! statement is the one named, with nothing of the batch stored.

use message_store::{
    Error, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, StreamName,
};
use message_store_sqlite::SqliteStore;

fn batch(count: usize) -> Vec<NewMessage> {
    (0..count)
        .map(|n| NewMessage::new("Numbered", serde_json::json!({ "n": n })))
        .collect()
}

#[tokio::test]
async fn a_batch_of_several_statements_is_one_write() {
    let store = SqliteStore::open_temporary().await.unwrap();
    let stream = StreamName::new("bulk-1").unwrap();
    let last = store
        .write(&stream, batch(2500), ExpectedVersion::NoStream)
        .await
        .unwrap();
    assert_eq!(last, 2499);
    let stored = store.read_stream_to_end(&stream).await.unwrap();
    assert_eq!(stored.len(), 2500);
    for (index, message) in stored.iter().enumerate() {
        assert_eq!(message.position, index as u64);
        assert_eq!(message.data["n"], index);
        assert_eq!(
            message.global_position,
            stored[0].global_position + index as u64
        );
    }
}

#[tokio::test]
async fn a_duplicate_in_a_later_statement_names_it_and_writes_nothing() {
    let store = SqliteStore::open_temporary().await.unwrap();
    let stored = NewMessage::new("Numbered", serde_json::json!({ "n": -1 }));
    let repeated = stored.id;
    store
        .write(
            &StreamName::new("other-1").unwrap(),
            vec![stored],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let stream = StreamName::new("bulk-2").unwrap();
    let mut messages = batch(2500);
    messages[2400] = messages[2400].clone().with_id(repeated);
    let error = store
        .write(&stream, messages, ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::DuplicateMessageId { id } if id == repeated),
        "{error}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
}
