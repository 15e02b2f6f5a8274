//! A stream's last message (of a type, or of a literal category-shaped
//! name), its version, and a category's head.

use message_store::{CategoryRead, ExpectedVersion, MessageStore, MessageStoreExt, StreamName};

use crate::support::*;

/// §11.21: the last message is the one with the highest position.
pub async fn last_message_is_the_highest_position(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let last = store.last_message(&stream).await.unwrap().unwrap();
    assert_eq!((last.position, numbers(&[last])[0]), (3, 3));
}

/// §11.21: the last message of a given type.
pub async fn last_message_of_a_type(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let messages = vec![
        numbered("Opened", 0),
        numbered("Deposited", 1),
        numbered("Deposited", 2),
        numbered("Withdrawn", 3),
    ];
    store
        .write(&stream, messages, ExpectedVersion::Any)
        .await
        .unwrap();
    let deposited = store
        .last_message_of_type(&stream, "Deposited")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deposited.position, 2);
    assert!(store
        .last_message_of_type(&stream, "Closed")
        .await
        .unwrap()
        .is_none());
}

/// No message: no last message, no version.
pub async fn absent_stream_has_no_last_message_and_no_version(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    assert!(store.last_message(&stream).await.unwrap().is_none());
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
}

/// Pitfall 14: last message and version of a category-shaped name look for that literal stream.
pub async fn last_message_of_a_category_name_reads_that_literal_stream(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let literal = StreamName::new(category.as_str()).unwrap();
    assert!(store.last_message(&literal).await.unwrap().is_none());
    assert_eq!(store.stream_version(&literal).await.unwrap(), None);
    store
        .write(&literal, batch(7, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let last = store.last_message(&literal).await.unwrap().unwrap();
    assert_eq!(numbers(&[last]), vec![7]);
}

/// §11.21: the stream version is the last position.
pub async fn stream_version_is_the_last_position(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(2));
    store
        .write(&stream, batch(3, 2), ExpectedVersion::Exact(2))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(4));
}

/// The category head is the global position of the category's last message.
pub async fn category_head_is_the_last_global_position(store: &dyn MessageStore) {
    let category = unique_category("account");
    assert_eq!(store.category_head(&category).await.unwrap(), None);
    store
        .write(&stream(&category, "1"), batch(0, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let other = unique_category("other");
    store
        .write(&stream(&other, "1"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let typed = message_store::Category::new(format!("{}:command", category.as_str())).unwrap();
    store
        .write(&stream(&typed, "1"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let all = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(
        store.category_head(&category).await.unwrap(),
        Some(all[1].global_position)
    );
}
