//! Small helpers the cases share: unique names and quick writes.

use message_store::{
    BatchSize, Category, ExpectedVersion, Message, MessageStore, NewMessage, StreamName, StreamRead,
};
use serde_json::json;
use uuid::Uuid;

/// A category no other test uses: `{entity}{random hex}` (no dashes).
pub fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple()))
        .expect("generated category is valid")
}

/// The stream `{category}-{id}`.
pub fn stream(category: &Category, id: &str) -> StreamName {
    category.stream(id).expect("generated stream name is valid")
}

/// A stream in a fresh category.
pub fn unique_stream(entity: &str) -> StreamName {
    stream(&unique_category(entity), "1")
}

/// A message of `message_type` whose data is `{"n": n}`.
pub fn numbered(message_type: &str, n: u64) -> NewMessage {
    NewMessage::new(message_type, json!({ "n": n }))
}

/// `count` messages `{"n": first..}` of type `Numbered`.
pub fn batch(first: u64, count: u64) -> Vec<NewMessage> {
    (first..first + count)
        .map(|n| numbered("Numbered", n))
        .collect()
}

/// Writes `count` numbered messages to `stream`, one write each, and returns the last position.
pub async fn write_numbered(store: &dyn MessageStore, stream: &StreamName, count: u64) -> u64 {
    let mut last = 0;
    for n in 0..count {
        last = store
            .write(stream, vec![numbered("Numbered", n)], ExpectedVersion::Any)
            .await
            .unwrap_or_else(|e| panic!("writing message {n} to {stream}: {e}"));
    }
    last
}

/// Reads the whole stream in one unlimited read.
pub async fn read_all(store: &dyn MessageStore, stream: &StreamName) -> Vec<Message> {
    store
        .read_stream(
            stream,
            StreamRead::new().with_batch_size(BatchSize::Unlimited),
        )
        .await
        .unwrap_or_else(|e| panic!("reading {stream}: {e}"))
}

/// The `n` field of each message's data.
pub fn numbers(messages: &[Message]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m.data["n"].as_u64().expect("numbered message"))
        .collect()
}

/// The stream positions of the messages.
pub fn positions(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.position).collect()
}

/// The global positions of the messages.
pub fn global_positions(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.global_position).collect()
}

/// Asserts the values strictly increase.
pub fn assert_strictly_increasing(values: &[u64], what: &str) {
    for pair in values.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{what} must strictly increase: {values:?}"
        );
    }
}

/// For `conformance_suite!`: a store that is always there.
pub fn present<S>(store: S) -> Option<S> {
    Some(store)
}

/// For `conformance_suite!(optional: …)`: a store that may be missing.
pub fn optional<S>(store: Option<S>) -> Option<S> {
    store
}

/// Polls `done` until it holds; fails the test after 60 seconds naming `what`.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
