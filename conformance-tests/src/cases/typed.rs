//! Typed messages: written under their type name, read back as the same
//! value; a decode failure names the stream and position.

use message_store::{
    ErrorKind, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, TypedMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::support::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Deposited {
    account: String,
    amount: u64,
}

impl TypedMessage for Deposited {
    const MESSAGE_TYPE: &'static str = "Deposited";
}

/// Typed messages go in under their type name and come back as the same value; a decode
/// failure names the stream and position.
pub async fn typed_messages_round_trip(store: &dyn MessageStore) {
    let s = unique_stream("account");
    let deposit = Deposited {
        account: "a".into(),
        amount: 10,
    };
    store
        .write_typed(&s, &deposit, ExpectedVersion::NoStream)
        .await
        .unwrap();
    store
        .write_one(
            &s,
            NewMessage::new("Deposited", json!({"amount": "ten"})),
            ExpectedVersion::Exact(0),
        )
        .await
        .unwrap();
    let messages = read_all(store, &s).await;
    assert_eq!(messages[0].message_type, "Deposited");
    assert_eq!(
        messages[0].decode_typed::<Deposited>().unwrap(),
        Some(deposit)
    );
    let err = messages[1].decode::<Deposited>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(
        err.to_string().contains(s.as_str()) && err.to_string().contains("position 1"),
        "{err}"
    );
}
