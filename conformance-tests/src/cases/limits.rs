//! The limits a write enforces before anything is stored: name lengths
//! PostgreSQL can index, JSON nesting a reader can read back.

use message_store::{
    Category, Error, ErrorKind, ExpectedVersion, MessageStore, MessageStoreExt, Metadata,
    NameProblem, NewMessage, StreamName, MAX_JSON_DEPTH, MAX_STREAM_NAME_LEN,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

/// `len` bytes of hex that does not compress (PostgreSQL compresses long
/// index entries, so repetitive names would fit where these do not).
fn incompressible(len: usize) -> String {
    let mut text = String::with_capacity(len + 32);
    while text.len() < len {
        text.push_str(&Uuid::new_v4().simple().to_string());
    }
    text.truncate(len);
    text
}

/// A fresh stream name of exactly `len` bytes that is nearly all category:
/// the worst case for the category index.
fn long_stream(len: usize) -> StreamName {
    StreamName::new(format!("c{}-1", incompressible(len - 3))).unwrap()
}

/// Arrays nested `depth` levels deep around `null`.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

/// A stream name and a correlation stream name of [`MAX_STREAM_NAME_LEN`]
/// bytes, both nearly all category, are written and read back; one byte
/// more of either is refused with a typed error, and nothing is written.
pub async fn names_up_to_the_length_limit_are_written_and_longer_ones_refused(
    store: &dyn MessageStore,
) {
    let at_limit = long_stream(MAX_STREAM_NAME_LEN);
    let correlation = long_stream(MAX_STREAM_NAME_LEN);
    let message = numbered("Numbered", 0)
        .with_metadata(Metadata::new().with_correlation_stream_name(correlation.as_str()));
    store
        .write(&at_limit, vec![message], ExpectedVersion::NoStream)
        .await
        .unwrap();
    let read = store.read_stream_to_end(&at_limit).await.unwrap();
    assert_eq!(read[0].stream_name, at_limit);
    assert_eq!(read[0].metadata.correlation(), Some(correlation.as_str()));
    let correlated = store
        .read_category(
            &at_limit.category(),
            message_store::CategoryRead::new().with_correlation(correlation.category().as_str()),
        )
        .await
        .unwrap();
    assert_eq!(correlated.len(), 1);

    // Bytes, not characters: 1024 bytes of mostly two-byte characters are
    // at the limit, though only 530 characters.
    let wide =
        StreamName::new(format!("é{}-x{}", Uuid::new_v4().simple(), "é".repeat(494))).unwrap();
    assert_eq!(wide.as_str().len(), MAX_STREAM_NAME_LEN);
    store
        .write(
            &wide,
            vec![numbered("Numbered", 0)],
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();

    let past = long_stream(MAX_STREAM_NAME_LEN + 1);
    let err = store
        .write(&past, vec![numbered("Numbered", 0)], ExpectedVersion::Any)
        .await
        .unwrap_err();
    match &err {
        Error::InvalidStreamName { name, problem } => {
            assert_eq!(*problem, NameProblem::TooLong);
            assert!(name.len() < 200, "the error shows a cut name: {name}");
            assert!(name.contains("1025 bytes"), "{name}");
        }
        other => panic!("expected InvalidStreamName, got {other:?}"),
    }
    let wide_past = StreamName::new(format!("{}x", wide.as_str())).unwrap();
    let err = store
        .write(
            &wide_past,
            vec![numbered("Numbered", 0)],
            ExpectedVersion::Any,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStreamName);

    let stream = unique_stream("account");
    let too_long = long_stream(MAX_STREAM_NAME_LEN + 1);
    let message = numbered("Numbered", 0)
        .with_metadata(Metadata::new().with_correlation_stream_name(too_long.as_str()));
    let err = store
        .write(
            &stream,
            vec![numbered("Numbered", 1), message],
            ExpectedVersion::Any,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJson { field: "metadata", problem, .. } if problem.contains("correlationStreamName")),
        "{err:?}"
    );
    for stream in [&past, &wide_past, &stream] {
        assert_eq!(store.stream_version(stream).await.unwrap(), None);
    }
    // Reads take a name of any length.
    assert!(store.read_stream_to_end(&past).await.unwrap().is_empty());
    let long_category = Category::new(incompressible(4000)).unwrap();
    assert!(store.category_head(&long_category).await.unwrap().is_none());
}

/// Data and metadata nested [`MAX_JSON_DEPTH`] levels deep are written and
/// read back; one level deeper is refused before anything is written (a
/// reader could not read it back).
pub async fn json_nested_past_the_depth_limit_is_refused(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let deepest = nested(MAX_JSON_DEPTH);
    // The metadata object is one level itself.
    let deep_metadata = {
        let mut metadata = Metadata::new();
        metadata
            .other
            .insert("deep".to_owned(), nested(MAX_JSON_DEPTH - 1));
        metadata
    };
    let message = NewMessage::new("Deep", deepest.clone()).with_metadata(deep_metadata.clone());
    store
        .write(&stream, vec![message], ExpectedVersion::NoStream)
        .await
        .unwrap();
    let read = store.read_stream_to_end(&stream).await.unwrap();
    assert_eq!(read[0].data, deepest);
    assert_eq!(read[0].metadata, deep_metadata);

    let too_deep = NewMessage::new("Deep", nested(MAX_JSON_DEPTH + 1));
    let err = store
        .write(
            &stream,
            vec![numbered("Numbered", 1), too_deep],
            ExpectedVersion::Any,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJson { field: "data", problem, .. } if problem.contains(&MAX_JSON_DEPTH.to_string())),
        "{err:?}"
    );
    let mut metadata = Metadata::new();
    metadata
        .properties
        .insert("deep".to_owned(), nested(MAX_JSON_DEPTH - 1));
    let deep_properties = NewMessage::new("Deep", json!({})).with_metadata(metadata);
    let err = store
        .write(&stream, vec![deep_properties], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidJson {
                field: "metadata",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(0));
}
