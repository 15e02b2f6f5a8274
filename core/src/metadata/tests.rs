//! Metadata: standard keys, lenient reading of what other clients stored, building from JSON.

use super::*;
use serde_json::json;

#[test]
fn standard_keys_are_camel_case_and_omitted_when_unset() {
    let metadata = Metadata::new()
        .with_correlation_stream_name("fundsTransfer-1")
        .with_property("tenant", "acme");
    assert_eq!(
        metadata.to_json().unwrap(),
        json!({"correlationStreamName": "fundsTransfer-1", "properties": {"tenant": "acme"}})
    );
    assert_eq!(Metadata::new().to_json(), None);
}

#[test]
fn unknown_keys_round_trip() {
    let stored = json!({"source": "web_app", "schemaVersion": "2", "causationMessagePosition": 4});
    let metadata = Metadata::from_json(Some(stored.clone())).unwrap();
    assert_eq!(metadata.schema_version.as_deref(), Some("2"));
    assert_eq!(metadata.causation_message_position, Some(4));
    assert_eq!(metadata.other.get("source"), Some(&json!("web_app")));
    assert_eq!(metadata.to_json().unwrap(), stored);
}

#[test]
fn lenient_reading_keeps_unexpected_shapes() {
    let odd = Metadata::from_json_lenient(Some(
        json!({"schemaVersion": 2, "correlationStreamName": "a-1"}),
    ));
    assert_eq!(odd.correlation_stream_name.as_deref(), Some("a-1"));
    assert_eq!(odd.other.get("schemaVersion"), Some(&json!(2)));
    assert_eq!(
        odd.to_json().unwrap(),
        json!({"schemaVersion": 2, "correlationStreamName": "a-1"})
    );
    let array = Metadata::from_json_lenient(Some(json!([1, 2])));
    assert_eq!(array.other.get("value"), Some(&json!([1, 2])));
    let standard = json!({"source": "web", "schemaVersion": "2", "causationMessagePosition": 4, "properties": {"a": 1}});
    assert_eq!(
        Metadata::from_json_lenient(Some(standard.clone())),
        Metadata::from_json(Some(standard)).unwrap()
    );
    assert!(Metadata::from_json_lenient(None).is_empty());
}

#[test]
fn stored_metadata_a_value_cannot_hold_is_kept_unreadable() {
    let deep = format!(r#"{{"a": {}{}}}"#, "[".repeat(200), "]".repeat(200));
    for text in [deep.as_str(), r#"{"n": 1e400}"#, "1e400", "{"] {
        let metadata = Metadata::from_stored_text(text);
        let unreadable = metadata.unreadable.as_ref().expect(text);
        assert_eq!(unreadable.text(), text);
        assert!(!metadata.is_empty());
        assert_eq!(metadata.json_problem(), Some(JsonProblem::Unreadable));
        assert_eq!(metadata.to_json(), Some(json!({})));
    }
    let fine = Metadata::from_stored_text(r#"{"schemaVersion": "2"}"#);
    assert_eq!(fine.schema_version.as_deref(), Some("2"));
    assert!(fine.unreadable.is_none());
}

#[test]
fn metadata_is_built_from_json_objects_and_keys() {
    let metadata = Metadata::try_from(json!({
        "schemaVersion": "3",
        "causationMessagePosition": 4,
        "properties": {"tenant": "acme"},
        "source": "web"
    }))
    .unwrap();
    assert_eq!(metadata.schema_version.as_deref(), Some("3"));
    assert_eq!(metadata.causation_message_position, Some(4));
    assert_eq!(metadata.properties["tenant"], "acme");
    assert_eq!(metadata.other["source"], "web");
    assert!(Metadata::try_from(Value::Null).unwrap().is_empty());
    for bad in [json!([1]), json!("x"), json!({"schemaVersion": 2})] {
        let err = Metadata::try_from(bad.clone()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Json, "{bad}: {err}");
    }
    assert!(Metadata::try_from(json!(7))
        .unwrap_err()
        .to_string()
        .contains("must be a JSON object, not a number"));

    let built = Metadata::new()
        .with_key("correlationStreamName", "transfer-1")
        .with_key("source", "web")
        .with_key("causationMessagePosition", 2);
    assert_eq!(built.correlation_stream_name.as_deref(), Some("transfer-1"));
    assert_eq!(built.causation_message_position, Some(2));
    assert_eq!(
        built.to_json().unwrap(),
        json!({"correlationStreamName": "transfer-1", "causationMessagePosition": 2, "source": "web"})
    );
}

#[test]
fn null_metadata_reads_as_empty() {
    assert!(Metadata::from_json(None).unwrap().is_empty());
    assert!(Metadata::from_json(Some(Value::Null)).unwrap().is_empty());
    assert!(Metadata::from_json(Some(json!([1]))).is_err());
}

#[test]
fn reading_text_matches_reading_a_value() {
    let cases = [
        "null",
        "[1, 2]",
        "\"text\"",
        "7",
        "{}",
        r#"{"correlationStreamName": "someCorrelation-123"}"#,
        r#"{"schemaVersion": 2, "correlationStreamName": "a-1", "x": {"y": [1]}}"#,
        r#"{"causationMessagePosition": -1, "causationMessageGlobalPosition": 9}"#,
        r#"{"properties": {"a": 1}, "localProperties": 3, "replyStreamName": "r-1"}"#,
        r#"{"caf\u00e9": "\u00e9t\u00e9", "causationMessageStreamName": "c-\"1\""}"#,
        r#" {"a": 1} "#,
    ];
    for text in cases {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            Metadata::from_json_text_lenient(text).unwrap(),
            Metadata::from_json_lenient(Some(value)),
            "{text}"
        );
    }
    // Repeated keys: the last one counts, as when parsing to a value.
    for text in [
        r#"{"schemaVersion": "1", "schemaVersion": 2}"#,
        r#"{"schemaVersion": 2, "schemaVersion": "1"}"#,
        r#"{"properties": {"a": 1}, "properties": {"b": 2}, "x": 1, "x": 2}"#,
    ] {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            Metadata::from_json_text_lenient(text).unwrap(),
            Metadata::from_json_lenient(Some(value)),
            "{text}"
        );
    }
    for bad in ["{", "{\"a\": }", "{} x", ""] {
        assert!(Metadata::from_json_text_lenient(bad).is_err(), "{bad}");
    }
}

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-z\\-\"é]{0,6}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("correlationStreamName".to_owned()),
        Just("causationMessagePosition".to_owned()),
        Just("properties".to_owned()),
        Just("schemaVersion".to_owned()),
        "[a-z\"é]{1,4}",
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Any JSON a client stored reads the same from text as from a value.
    #[test]
    fn any_stored_json_reads_the_same_from_text(value in json_value()) {
        let text = value.to_string();
        proptest::prop_assert_eq!(
            Metadata::from_json_text_lenient(&text).unwrap(),
            Metadata::from_json_lenient(Some(value))
        );
    }
}
