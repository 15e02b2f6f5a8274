//! The conveniences of `MessageStoreExt`, which take names as strings too:
//! the same answers and the same typed errors as the typed calls.

use message_store::{ErrorKind, ExpectedVersion, MessageStore, MessageStoreExt};

use crate::support::*;

/// `write_one`, `write_batch`, `last_message`, `last_message_of_type`,
/// `read_stream_to_end` and `read_category_to_end` take `&str` and `String`
/// names as they take `StreamName`s and `Category`s; a bad name is the typed error `StreamName::new` gives, and
/// nothing is written.
pub async fn conveniences_take_string_names_with_the_same_errors(store: &dyn MessageStore) {
    let category = unique_category("account");
    let name = format!("{category}-1");
    let typed = stream(&category, "1");
    assert_eq!(
        store
            .write_one(
                name.as_str(),
                numbered("Opened", 0),
                ExpectedVersion::NoStream
            )
            .await
            .unwrap(),
        0
    );
    let batch = vec![numbered("Deposited", 1), numbered("Deposited", 2)];
    assert_eq!(
        store
            .write_batch(name.clone(), batch, ExpectedVersion::Exact(0))
            .await
            .unwrap(),
        2
    );
    let by_string = store.read_stream_to_end(&name).await.unwrap();
    assert_eq!(by_string, store.read_stream_to_end(&typed).await.unwrap());
    assert_eq!(by_string.len(), 3);
    let last = store.last_message(name.as_str()).await.unwrap().unwrap();
    assert_eq!(last.position, 2);
    let opened = store
        .last_message_of_type(name.as_str(), "Opened")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.position, 0);
    assert!(store
        .last_message_of_type(&typed, "Closed")
        .await
        .unwrap()
        .is_none());

    for bad in ["", "a\0b"] {
        let err = store
            .write_one(bad, numbered("T", 0), ExpectedVersion::Any)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidStreamName, "{bad:?}: {err}");
        assert_eq!(
            store.last_message(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidStreamName
        );
    }
    let whole = store.read_category_to_end(category.as_str()).await.unwrap();
    assert_eq!(whole, by_string, "one stream: the category is that stream");
    assert_eq!(
        store.read_category_to_end("a-b").await.unwrap_err().kind(),
        ErrorKind::InvalidCategory
    );
    let err = store
        .read_stream_to_end(category.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAStream, "{err}");
    assert_eq!(store.read_stream_to_end(&typed).await.unwrap().len(), 3);
}
