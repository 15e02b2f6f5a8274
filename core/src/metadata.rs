//! Message metadata with Eventide's standard keys (camelCase on the wire): the
//! type and its builders here, reading what other clients stored in
//! `lenient`, what a write accepts in `limits`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::UnreadableJson;
use crate::message::Message;

/// Metadata carried with a message.
///
/// The named fields are the keys Eventide's messaging library writes; any
/// other key a writer put there is kept in [`Metadata::other`], so metadata
/// written by other clients round-trips unchanged. Empty metadata is stored as
/// SQL NULL, as Eventide does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The stream of the message this one follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_stream_name: Option<String>,
    /// The stream position of the message this one follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_position: Option<u64>,
    /// The global position of the message this one follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_global_position: Option<u64>,
    /// The stream of the process this message belongs to; category reads can
    /// filter on its category (`correlation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_stream_name: Option<String>,
    /// Where a reply to this message should be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_stream_name: Option<String>,
    /// The version of the message's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// User key/values copied to following messages by [`Metadata::follow`].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// User key/values that [`Metadata::follow`] does not copy.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub local_properties: Map<String, Value>,
    /// Any other keys, kept as written.
    #[serde(flatten)]
    pub other: Map<String, Value>,
    /// Set only on metadata read from a store that could not be read at all:
    /// JSON another client stored that nests deeper than [`MAX_JSON_DEPTH`]
    /// or holds a number outside `f64`'s range. Every other field is then
    /// empty, and this keeps the stored text and why.
    /// [`Message::check`](crate::Message::check) reports it, the consumer
    /// runtime treats it as a handler failure, and writes refuse metadata
    /// that carries it. Never serialized.
    #[serde(skip)]
    pub unreadable: Option<UnreadableJson>,
}

impl Metadata {
    /// Metadata with no keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no key is set (stored as SQL NULL).
    pub fn is_empty(&self) -> bool {
        self == &Metadata::default()
    }

    /// Sets the correlation stream name.
    pub fn with_correlation_stream_name(mut self, stream: impl Into<String>) -> Self {
        self.correlation_stream_name = Some(stream.into());
        self
    }

    /// Sets the reply stream name.
    pub fn with_reply_stream_name(mut self, stream: impl Into<String>) -> Self {
        self.reply_stream_name = Some(stream.into());
        self
    }

    /// Sets a top-level key: a standard key (`schemaVersion`,
    /// `correlationStreamName`, ...) given a value of its type fills its
    /// field; any other key goes to [`Metadata::other`].
    ///
    /// ```
    /// use message_store::Metadata;
    /// let metadata = Metadata::new().with_key("source", "web").with_key("schemaVersion", "2");
    /// assert_eq!(metadata.schema_version.as_deref(), Some("2"));
    /// assert_eq!(metadata.other["source"], "web");
    /// ```
    pub fn with_key(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets a top-level key in place (see [`Metadata::with_key`]).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.absorb(Cow::Owned(key.into()), value.into());
    }

    /// Sets a user property that following messages inherit.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Makes this metadata follow `preceding`, as Eventide's `follow` does: the
    /// three causation keys point at the preceding message, and its
    /// correlation stream, reply stream and properties are carried over.
    /// Local properties are not copied.
    pub fn follow(&mut self, preceding: &Message) {
        self.causation_message_stream_name = Some(preceding.stream_name.as_str().to_owned());
        self.causation_message_position = Some(preceding.position);
        self.causation_message_global_position = Some(preceding.global_position);
        let source = &preceding.metadata;
        self.correlation_stream_name = source.correlation_stream_name.clone();
        self.reply_stream_name = source.reply_stream_name.clone();
        self.properties = source.properties.clone();
    }

    /// Returns metadata that follows `preceding` (see [`Metadata::follow`]).
    pub fn following(preceding: &Message) -> Self {
        let mut metadata = Metadata::default();
        metadata.follow(preceding);
        metadata
    }

    /// Reads metadata from stored JSON; SQL NULL and JSON `null` give empty metadata.
    pub fn from_json(value: Option<Value>) -> Result<Self, serde_json::Error> {
        match value {
            None | Some(Value::Null) => Ok(Metadata::default()),
            Some(value) => serde_json::from_value(value),
        }
    }

    /// Reads whatever metadata another client stored, never failing: a standard
    /// key whose value has an unexpected type stays under its own name in
    /// [`Metadata::other`], and metadata that is not a JSON object at all
    /// (Message DB accepts any JSON) is kept whole as `other["value"]`. A
    /// reader must never be stopped by one message's metadata.
    pub fn from_json_lenient(value: Option<Value>) -> Self {
        let map = match value {
            None | Some(Value::Null) => return Metadata::default(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                let mut metadata = Metadata::default();
                metadata.other.insert("value".to_owned(), other);
                return metadata;
            }
        };
        let mut metadata = Metadata::default();
        for (key, value) in map {
            metadata.absorb(Cow::Owned(key), value);
        }
        metadata
    }

    /// [`Metadata::from_json_lenient`] read straight from JSON text (a
    /// stored column), without building an intermediate map of the keys.
    /// Fails only when `text` is not JSON.
    pub fn from_json_text_lenient(text: &str) -> Result<Self, serde_json::Error> {
        if !text.trim_start().starts_with('{') {
            return Ok(Self::from_json_lenient(Some(serde_json::from_str(text)?)));
        }
        let mut metadata = Metadata::default();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(LenientObject(&mut metadata), &mut deserializer)?;
        deserializer.end()?;
        Ok(metadata)
    }

    /// Reads stored metadata text as [`Metadata::from_json_text_lenient`]
    /// does, never failing: text that is not JSON, or that a [`Value`]
    /// cannot hold, gives metadata that is [unreadable](Metadata::unreadable).
    pub fn from_stored_text(text: &str) -> Self {
        Self::from_json_text_lenient(text).unwrap_or_else(|reason| Metadata {
            unreadable: Some(UnreadableJson::new(text, reason)),
            ..Metadata::default()
        })
    }

    /// Takes one key of stored metadata: a standard key with a value of its
    /// type fills its field, anything else goes to [`Metadata::other`].
    fn absorb(&mut self, key: Cow<'_, str>, value: Value) {
        // A key met again replaces what it gave before, as in a JSON value
        // (jsonb never stores duplicates; other JSON text may).
        match key.as_ref() {
            "causationMessageStreamName" => self.causation_message_stream_name = None,
            "correlationStreamName" => self.correlation_stream_name = None,
            "replyStreamName" => self.reply_stream_name = None,
            "schemaVersion" => self.schema_version = None,
            "causationMessagePosition" => self.causation_message_position = None,
            "causationMessageGlobalPosition" => self.causation_message_global_position = None,
            "properties" => self.properties = Map::new(),
            "localProperties" => self.local_properties = Map::new(),
            _ => {}
        }
        self.other.remove(key.as_ref());
        let kept = match (key.as_ref(), value) {
            ("causationMessageStreamName", Value::String(v)) => {
                self.causation_message_stream_name = Some(v);
                None
            }
            ("correlationStreamName", Value::String(v)) => {
                self.correlation_stream_name = Some(v);
                None
            }
            ("replyStreamName", Value::String(v)) => {
                self.reply_stream_name = Some(v);
                None
            }
            ("schemaVersion", Value::String(v)) => {
                self.schema_version = Some(v);
                None
            }
            ("causationMessagePosition", Value::Number(n)) if n.is_u64() => {
                self.causation_message_position = n.as_u64();
                None
            }
            ("causationMessageGlobalPosition", Value::Number(n)) if n.is_u64() => {
                self.causation_message_global_position = n.as_u64();
                None
            }
            ("properties", Value::Object(map)) => {
                self.properties = map;
                None
            }
            ("localProperties", Value::Object(map)) => {
                self.local_properties = map;
                None
            }
            (_, value) => Some(value),
        };
        if let Some(value) = kept {
            self.other.insert(key.into_owned(), value);
        }
    }

    /// The JSON to store: `None` (SQL NULL) when empty.
    pub fn to_json(&self) -> Option<Value> {
        if self.is_empty() {
            None
        } else {
            Some(serde_json::to_value(self).expect("metadata serializes to JSON"))
        }
    }

    /// The correlation stream name as stored: the named field, or a string
    /// under `correlationStreamName` in [`Metadata::other`] (which is written
    /// under that key too).
    pub fn correlation(&self) -> Option<&str> {
        self.correlation_stream_name
            .as_deref()
            .or_else(|| self.other.get("correlationStreamName")?.as_str())
    }

    /// What makes this metadata unstorable or unreadable, if anything (see
    /// [`json_problem`]); the metadata object itself is one level of nesting.
    pub(crate) fn json_problem(&self) -> Option<JsonProblem> {
        if self.unreadable.is_some() {
            return Some(JsonProblem::Unreadable);
        }
        let named = [
            &self.causation_message_stream_name,
            &self.correlation_stream_name,
            &self.reply_stream_name,
            &self.schema_version,
        ];
        if named.into_iter().flatten().any(|text| text.contains('\0')) {
            return Some(JsonProblem::Nul);
        }
        let levels = MAX_JSON_DEPTH.saturating_sub(1);
        for (map, levels) in [
            (&self.properties, levels.saturating_sub(1)),
            (&self.local_properties, levels.saturating_sub(1)),
            (&self.other, levels),
        ] {
            for (key, value) in map {
                if key.contains('\0') {
                    return Some(JsonProblem::Nul);
                }
                if let Some(problem) = json_problem(value, levels) {
                    return Some(problem);
                }
            }
        }
        None
    }
}

/// Metadata from a JSON object, as a writer builds it: standard keys must
/// have their types (`schemaVersion` a string, `causationMessagePosition` a
/// number, ...); other keys are kept in [`Metadata::other`]. `null` gives
/// empty metadata; anything but an object or `null` is refused with
/// [`Error::Json`](crate::Error::Json).
///
/// ```
/// use message_store::Metadata;
/// use serde_json::json;
/// let metadata = Metadata::try_from(json!({"correlationStreamName": "transfer-1", "source": "web"}))?;
/// assert_eq!(metadata.correlation(), Some("transfer-1"));
/// assert!(Metadata::try_from(json!({"schemaVersion": 2})).is_err());
/// # Ok::<(), message_store::Error>(())
/// ```
impl TryFrom<Value> for Metadata {
    type Error = crate::Error;

    fn try_from(value: Value) -> Result<Self, crate::Error> {
        match value {
            Value::Null | Value::Object(_) => Ok(Metadata::from_json(Some(value))?),
            other => Err(crate::Error::Json {
                source: <serde_json::Error as serde::de::Error>::custom(format!(
                    "metadata must be a JSON object, not {}",
                    json_kind(&other)
                )),
            }),
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

mod lenient;
mod limits;
#[cfg(test)]
mod tests;

use lenient::LenientObject;
pub(crate) use limits::json_problem;
pub(crate) use limits::JsonProblem;
pub use limits::MAX_JSON_DEPTH;
