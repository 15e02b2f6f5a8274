//! Messages to write and messages read back.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::data::{JsonData, UnreadableJson};
use crate::error::{printable, shown, Error, NameProblem, Result};
use crate::metadata::{json_problem, Metadata, MAX_JSON_DEPTH};
use crate::stream_name::{Category, StreamName, MAX_STREAM_NAME_LEN};

/// A Rust type stored as a message under a fixed type name.
///
/// ```
/// use message_store::TypedMessage;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Deposited { amount: u64 }
/// impl TypedMessage for Deposited { const MESSAGE_TYPE: &'static str = "Deposited"; }
/// ```
pub trait TypedMessage {
    /// The message type written to and matched in the store.
    const MESSAGE_TYPE: &'static str;
}

/// A message to be written: its id, type, JSON data and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The message id; unique across the whole store. Defaults to a random (v4) UUID.
    pub id: Uuid,
    /// The message type (for example `Deposited`).
    pub message_type: String,
    /// The message's data: any JSON value.
    pub data: Value,
    /// The message's metadata; stored as SQL NULL when empty.
    pub metadata: Metadata,
}

impl NewMessage {
    /// A message of the given type and data, with a random id and no metadata.
    pub fn new(message_type: impl Into<String>, data: Value) -> Self {
        NewMessage {
            id: Uuid::new_v4(),
            message_type: message_type.into(),
            data,
            metadata: Metadata::default(),
        }
    }

    /// A message whose data is `value` serialized to JSON.
    pub fn from_data<T: Serialize + ?Sized>(
        message_type: impl Into<String>,
        value: &T,
    ) -> Result<Self> {
        let message_type = message_type.into();
        match serde_json::to_value(value) {
            Ok(data) => Ok(NewMessage::new(message_type, data)),
            Err(source) => Err(Error::Encode {
                message_type,
                source,
            }),
        }
    }

    /// A message of a [`TypedMessage`], under its type name.
    pub fn typed<T: TypedMessage + Serialize>(value: &T) -> Result<Self> {
        NewMessage::from_data(T::MESSAGE_TYPE, value)
    }

    /// Sets the id (for idempotent retries of the same logical message).
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Makes this message follow `preceding` (causation, correlation, reply,
    /// properties), as Eventide's `follow` does.
    pub fn following(mut self, preceding: &Message) -> Self {
        self.metadata.follow(preceding);
        self
    }
}

/// A message as stored: everything written plus the positions and time the
/// store assigned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message id.
    pub id: Uuid,
    /// The stream it was written to.
    pub stream_name: StreamName,
    /// The message type.
    #[serde(rename = "type")]
    pub message_type: String,
    /// Its 0-based position in the stream.
    pub position: u64,
    /// Its position in the whole store: starts at 1, strictly increasing, may have gaps.
    pub global_position: u64,
    /// The data (JSON `null` when stored as SQL NULL): shared by the
    /// message's clones, parsed when looked at (see [`JsonData`]).
    pub data: JsonData,
    /// The metadata (empty when stored as SQL NULL).
    pub metadata: Metadata,
    /// When it was written: UTC, microsecond precision, the same for every
    /// message of one write.
    pub time: DateTime<Utc>,
}

impl Message {
    /// Decodes the data into `T`; the error names the stream, position and type.
    /// Data this client cannot read gives [`Error::Unreadable`].
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        self.data
            .decode()
            .map_err(|source| match self.data.unreadable() {
                Some(unreadable) => self.unreadable("data", unreadable),
                None => Error::Decode {
                    stream: self.stream_name.as_str().to_owned(),
                    position: self.position,
                    global_position: self.global_position,
                    message_type: self.message_type.clone(),
                    source,
                },
            })
    }

    /// Checks that the message's data and metadata can be read:
    /// [`Error::Unreadable`] names the part and why when another client
    /// stored JSON this client cannot hold (see
    /// [`JsonData`](crate::JsonData#stored-json-this-client-cannot-read)).
    /// The consumer runtime checks every message before its handlers run.
    pub fn check(&self) -> Result<()> {
        if let Some(unreadable) = self.data.unreadable() {
            return Err(self.unreadable("data", unreadable));
        }
        if let Some(unreadable) = &self.metadata.unreadable {
            return Err(self.unreadable("metadata", unreadable));
        }
        Ok(())
    }

    fn unreadable(&self, part: &'static str, unreadable: &UnreadableJson) -> Error {
        Error::Unreadable {
            stream: self.stream_name.as_str().to_owned(),
            position: self.position,
            global_position: self.global_position,
            message_type: self.message_type.clone(),
            part,
            reason: unreadable.reason().to_owned(),
        }
    }

    /// Decodes the data into `T` when the message has `T`'s type; `Ok(None)`
    /// for any other type.
    pub fn decode_typed<T: TypedMessage + DeserializeOwned>(&self) -> Result<Option<T>> {
        if self.message_type == T::MESSAGE_TYPE {
            self.decode().map(Some)
        } else {
            Ok(None)
        }
    }

    /// True when the message has `T`'s type.
    pub fn is<T: TypedMessage>(&self) -> bool {
        self.message_type == T::MESSAGE_TYPE
    }

    /// The category of the message's stream.
    pub fn category(&self) -> Category {
        self.stream_name.category()
    }

    /// Eventide's message identifier: `{stream}/{position}`.
    pub fn identifier(&self) -> String {
        format!("{}/{}", self.stream_name, self.position)
    }
}

/// Checks a write before anything is stored; every backend calls this first,
/// so all reject the same input with the same error: an empty batch, a stream
/// name or correlation stream name longer than [`MAX_STREAM_NAME_LEN`], a
/// type or JSON string containing NUL (which PostgreSQL cannot store), JSON
/// nested deeper than [`MAX_JSON_DEPTH`], or an id used twice within the
/// batch.
pub fn validate_write(stream: &StreamName, messages: &[NewMessage]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::EmptyBatch {
            stream: stream.as_str().to_owned(),
        });
    }
    if stream.as_str().len() > MAX_STREAM_NAME_LEN {
        return Err(Error::InvalidStreamName {
            name: shown(stream.as_str()),
            problem: NameProblem::TooLong,
        });
    }
    for message in messages {
        if let Some(correlation) = message.metadata.correlation() {
            if correlation.len() > MAX_STREAM_NAME_LEN {
                let problem = format!(
                    "its correlationStreamName `{}` is longer than {MAX_STREAM_NAME_LEN} bytes (MAX_STREAM_NAME_LEN), more than PostgreSQL's category index can be relied on to hold",
                    shown(correlation)
                );
                return Err(invalid_json(message.id, "metadata", problem));
            }
        }
        if message.message_type.contains('\0') {
            return Err(Error::InvalidMessageType {
                message_type: printable(&message.message_type),
                problem: NameProblem::ContainsNul,
            });
        }
        if let Some(problem) = json_problem(&message.data, MAX_JSON_DEPTH) {
            return Err(invalid_json(message.id, "data", problem.describe()));
        }
        if let Some(problem) = message.metadata.json_problem() {
            return Err(invalid_json(message.id, "metadata", problem.describe()));
        }
    }
    if messages.len() > 1 {
        let mut seen = HashSet::with_capacity(messages.len());
        for message in messages {
            if !seen.insert(message.id) {
                return Err(Error::DuplicateMessageId { id: message.id });
            }
        }
    }
    Ok(())
}

fn invalid_json(id: Uuid, field: &'static str, problem: String) -> Error {
    Error::InvalidJson { id, field, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream() -> StreamName {
        StreamName::new("account-1").unwrap()
    }

    #[test]
    fn empty_batches_are_rejected() {
        let err = validate_write(&stream(), &[]).unwrap_err();
        assert!(matches!(err, Error::EmptyBatch { .. }), "{err}");
    }

    #[test]
    fn nul_in_data_metadata_or_type_is_rejected() {
        let bad_data = NewMessage::new("T", json!({"a": ["x\u{0}y"]}));
        let err = validate_write(&stream(), &[bad_data]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidJson { field: "data", .. }),
            "{err}"
        );

        let bad_key = NewMessage::new("T", json!({"k\u{0}": 1}));
        assert!(matches!(
            validate_write(&stream(), &[bad_key]),
            Err(Error::InvalidJson { .. })
        ));

        let bad_meta = NewMessage::new("T", json!({}))
            .with_metadata(Metadata::new().with_property("p", "\u{0}"));
        let err = validate_write(&stream(), &[bad_meta]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidJson {
                    field: "metadata",
                    ..
                }
            ),
            "{err}"
        );

        let bad_type = NewMessage::new("T\u{0}", json!({}));
        assert!(matches!(
            validate_write(&stream(), &[bad_type]),
            Err(Error::InvalidMessageType { .. })
        ));
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn the_depth_limit_is_what_a_reader_reads_back() {
        // The deepest accepted value reads back from its text; one deeper does not.
        let deepest = nested(MAX_JSON_DEPTH).to_string();
        assert!(JsonData::from_json_text(deepest.as_str()).is_ok());
        assert!(serde_json::from_str::<Value>(&deepest).is_ok());
        let deeper = nested(MAX_JSON_DEPTH + 1).to_string();
        assert!(JsonData::from_json_text(deeper.as_str()).is_err());
        assert!(serde_json::from_str::<Value>(&deeper).is_err());

        let ok = NewMessage::new("T", nested(MAX_JSON_DEPTH));
        assert!(validate_write(&stream(), &[ok]).is_ok());
        let err = validate_write(
            &stream(),
            &[NewMessage::new("T", nested(MAX_JSON_DEPTH + 1))],
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidJson { field: "data", .. }),
            "{err}"
        );
        // A value nested far deeper is refused without walking all of it.
        let err = validate_write(&stream(), &[NewMessage::new("T", nested(10_000))]).unwrap_err();
        assert!(matches!(err, Error::InvalidJson { .. }), "{err}");

        // Metadata: the object is a level, and properties one more.
        let mut metadata = Metadata::new();
        metadata
            .other
            .insert("k".into(), nested(MAX_JSON_DEPTH - 1));
        let text = metadata.to_json().unwrap().to_string();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        let ok = NewMessage::new("T", json!({})).with_metadata(metadata.clone());
        assert!(validate_write(&stream(), &[ok]).is_ok());
        metadata.other.insert("k".into(), nested(MAX_JSON_DEPTH));
        assert!(serde_json::from_str::<Value>(&metadata.to_json().unwrap().to_string()).is_err());
        let bad = NewMessage::new("T", json!({})).with_metadata(metadata);
        assert!(validate_write(&stream(), &[bad]).is_err());
        let mut metadata = Metadata::new();
        metadata
            .properties
            .insert("k".into(), nested(MAX_JSON_DEPTH - 2));
        let ok = NewMessage::new("T", json!({})).with_metadata(metadata.clone());
        assert!(validate_write(&stream(), &[ok]).is_ok());
        metadata
            .properties
            .insert("k".into(), nested(MAX_JSON_DEPTH - 1));
        assert!(serde_json::from_str::<Value>(&metadata.to_json().unwrap().to_string()).is_err());
        let bad = NewMessage::new("T", json!({})).with_metadata(metadata);
        assert!(validate_write(&stream(), &[bad]).is_err());
    }

    #[test]
    fn long_names_are_refused_on_write_and_shown_cut() {
        let long = StreamName::new(format!("a-{}", "x".repeat(MAX_STREAM_NAME_LEN - 2))).unwrap();
        assert!(validate_write(&long, &[NewMessage::new("T", json!({}))]).is_ok());
        let longer = StreamName::new(format!("{long}x")).unwrap();
        let err = validate_write(&longer, &[NewMessage::new("T", json!({}))]).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 300 && text.contains("1025 bytes"), "{text}");
        assert!(matches!(
            err,
            Error::InvalidStreamName {
                problem: NameProblem::TooLong,
                ..
            }
        ));
        let correlated = NewMessage::new("T", json!({}))
            .with_metadata(Metadata::new().with_correlation_stream_name(longer.as_str()));
        assert!(validate_write(&stream(), &[correlated]).is_err());
        let mut other = Metadata::new();
        other
            .other
            .insert("correlationStreamName".into(), json!(longer.as_str()));
        let correlated = NewMessage::new("T", json!({})).with_metadata(other);
        assert!(validate_write(&stream(), &[correlated]).is_err());
    }

    #[test]
    fn duplicate_ids_within_a_batch_are_rejected() {
        let first = NewMessage::new("T", json!({}));
        let second = NewMessage::new("T", json!({})).with_id(first.id);
        let err = validate_write(&stream(), &[first.clone(), second]).unwrap_err();
        assert!(matches!(err, Error::DuplicateMessageId { id } if id == first.id));
    }

    #[test]
    fn decode_errors_name_stream_position_and_type() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Deposited {
            amount: u64,
        }
        let message = Message {
            id: Uuid::new_v4(),
            stream_name: stream(),
            message_type: "Deposited".into(),
            position: 3,
            global_position: 17,
            data: json!({"amount": "ten"}).into(),
            metadata: Metadata::default(),
            time: Utc::now(),
        };
        let text = message.decode::<Deposited>().unwrap_err().to_string();
        assert!(
            text.contains("account-1") && text.contains("position 3") && text.contains("Deposited"),
            "{text}"
        );
        assert!(message.check().is_ok());
    }

    #[test]
    fn unreadable_parts_are_named_by_check_and_decode() {
        let mut message = Message {
            id: Uuid::new_v4(),
            stream_name: stream(),
            message_type: "Deposited".into(),
            position: 3,
            global_position: 17,
            data: JsonData::from_stored_text(r#"{"amount": 1e400}"#),
            metadata: Metadata::default(),
            time: Utc::now(),
        };
        for err in [
            message.check().unwrap_err(),
            message.decode::<Value>().unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                matches!(
                    err,
                    Error::Unreadable {
                        part: "data",
                        position: 3,
                        global_position: 17,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(
                text.contains("account-1") && text.contains("number out of range"),
                "{text}"
            );
        }
        message.data = json!({"amount": 1}).into();
        message.metadata = Metadata::from_stored_text(r#"{"n": 1e400}"#);
        let err = message.check().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unreadable {
                    part: "metadata",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(message.decode::<Value>().unwrap(), json!({"amount": 1}));
        // Written back, unreadable metadata is refused before any I/O.
        let copy = NewMessage::new("T", json!({})).with_metadata(message.metadata.clone());
        assert!(matches!(
            validate_write(&stream(), &[copy]),
            Err(Error::InvalidJson {
                field: "metadata",
                ..
            })
        ));
    }
}
