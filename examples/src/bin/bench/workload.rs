//! The payloads every workload writes.

use message_store::{Metadata, NewMessage};
use serde_json::json;

/// Data `{"attribute":"some value"}`, metadata with a `correlationStreamName`.
pub fn message() -> NewMessage {
    NewMessage::new("SomeType", json!({"attribute": "some value"}))
        .with_metadata(Metadata::new().with_correlation_stream_name("someCorrelation-123"))
}

/// The 1 KiB variant.
pub fn large_message() -> NewMessage {
    NewMessage::new("SomeType", json!({"attribute": "x".repeat(1000)}))
        .with_metadata(Metadata::new().with_correlation_stream_name("someCorrelation-123"))
}
