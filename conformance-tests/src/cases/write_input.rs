//! What a write accepts and gives back: an empty batch and NUL in JSON
//! refused (nothing written), an empty type allowed, data of every JSON
//! shape, numbers as jsonb returns them, and metadata round-tripping.

use message_store::{Error, ErrorKind, ExpectedVersion, MessageStore, Metadata, NewMessage};
use serde_json::json;

use crate::support::*;

/// An empty write is refused.
pub async fn empty_batch_is_refused(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let err = store
        .write(&stream, Vec::new(), ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptyBatch);
    assert!(err.to_string().contains(stream.as_str()));
}

/// JSON that PostgreSQL cannot store (`\u0000`) is refused before anything is written.
pub async fn nul_in_json_is_refused_and_nothing_written(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let good = numbered("Numbered", 0);
    let bad_data = NewMessage::new("Bad", json!({ "text": "a\u{0}b" }));
    let err = store
        .write(&stream, vec![good.clone(), bad_data], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidJson);
    let bad_meta = NewMessage::new("Bad", json!({}))
        .with_metadata(Metadata::new().with_correlation_stream_name("x\u{0}-1"));
    let err = store
        .write(&stream, vec![bad_meta], ExpectedVersion::Any)
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
    let bad_type = NewMessage::new("Ty\u{0}pe", json!({}));
    let err = store
        .write(&stream, vec![bad_type], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMessageType);
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        None,
        "nothing was written"
    );
    store
        .write(&stream, vec![good], ExpectedVersion::NoStream)
        .await
        .unwrap();
}

/// Message DB allows an empty message type.
pub async fn empty_message_type_is_allowed(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(
            &stream,
            vec![NewMessage::new("", json!({}))],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    assert_eq!(read_all(store, &stream).await[0].message_type, "");
}

/// §11.22: data of any JSON shape reads back equal (as JSON values).
pub async fn data_of_every_json_shape_round_trips(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let values = vec![
        json!({"zeta": 1, "a": {"nested": [1, 2.5, "three", null, true]}, "bb": "é ü 🙂"}),
        json!([1, "two", {"three": 3}]),
        json!("just a string"),
        json!(42),
        json!(-7.25),
        json!(true),
        json!(null),
        json!({}),
        json!({"big": 9007199254740993u64, "neg": -9007199254740993i64}),
    ];
    let messages: Vec<_> = values
        .iter()
        .map(|v| NewMessage::new("Shape", v.clone()))
        .collect();
    store
        .write(&stream, messages, ExpectedVersion::Any)
        .await
        .unwrap();
    let read: Vec<_> = read_all(store, &stream)
        .await
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(read, values);
}

/// Numbers read back as Message DB's jsonb returns them: jsonb keeps a
/// number's digits, not its notation, and has no negative zero. A float
/// serde_json writes in exponent form (1e16 and up, shortest digits) comes
/// back spelled out, an integer when it fits one; `-0.0` comes back `0.0`;
/// other numbers as written. The same in data and in metadata properties.
pub async fn numbers_read_back_as_jsonb_returns_them(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let written = json!({
        "e16": 1e16,
        "two60": 2f64.powi(60),
        "neg": -1e16,
        "over_i64": 9.223372036854776e18,
        "under_i64": -9.223372036854776e18,
        "over_u64": 1.8446744073709552e19,
        "huge": 1.5e300,
        "tiny": 1e-7,
        "negative_zero": -0.0,
        "one": 1.0,
        "below_e16": 1e15,
        "u64_max": u64::MAX,
        "i64_min": i64::MIN,
        "nested": [1e17, {"x": -0.0}]
    });
    let expected = json!({
        "e16": 10000000000000000u64,
        "two60": 1152921504606847000u64,
        "neg": -10000000000000000i64,
        "over_i64": 9223372036854776000u64,
        "under_i64": -9.223372036854776e18,
        "over_u64": 1.8446744073709552e19,
        "huge": 1.5e300,
        "tiny": 1e-7,
        "negative_zero": 0.0,
        "one": 1.0,
        "below_e16": 1e15,
        "u64_max": u64::MAX,
        "i64_min": i64::MIN,
        "nested": [100000000000000000u64, {"x": 0.0}]
    });
    let message = NewMessage::new("Numbers", written.clone())
        .with_metadata(Metadata::new().with_property("n", written));
    store
        .write(&stream, vec![message], ExpectedVersion::Any)
        .await
        .unwrap();
    let read = read_all(store, &stream).await.remove(0);
    assert_eq!(read.data, expected);
    assert_eq!(read.data.to_string(), expected.to_string(), "the same text");
    assert_eq!(read.metadata.properties["n"], expected);
    assert_eq!(
        read.metadata.properties["n"].to_string(),
        expected.to_string()
    );
}

/// Standard metadata keys and unknown keys round-trip; no metadata reads as empty.
pub async fn metadata_round_trips(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let mut metadata = Metadata::new()
        .with_correlation_stream_name("transfer-7")
        .with_reply_stream_name("reply-1")
        .with_property("tenant", "acme");
    metadata.causation_message_stream_name = Some("command-1".into());
    metadata.causation_message_position = Some(4);
    metadata.causation_message_global_position = Some(40);
    metadata.schema_version = Some("2".into());
    metadata
        .local_properties
        .insert("trace".into(), json!("abc"));
    metadata
        .other
        .insert("source".into(), json!({"app": "web"}));
    store
        .write(
            &stream,
            vec![
                NewMessage::new("WithMeta", json!({})).with_metadata(metadata.clone()),
                NewMessage::new("WithoutMeta", json!({})),
            ],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let read = read_all(store, &stream).await;
    assert_eq!(read[0].metadata, metadata);
    assert!(read[1].metadata.is_empty());
}
