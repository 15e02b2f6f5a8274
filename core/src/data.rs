//! A read message's JSON data, shared between clones and parsed on demand.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The JSON data of a message read from a store.
///
/// It holds the data as the backend has it (JSON text from PostgreSQL, a
/// value in memory), shared by every clone of the message, and builds a
/// [`Value`] only when one is asked for, once. Read it as a [`Value`]
/// (`message.data["amount"]`, `message.data.get("x")`, `*message.data`: it
/// dereferences to one), compare it with one (`message.data == json!(...)`),
/// or decode it into a type with [`JsonData::decode`]. Everything reads the
/// one [`Value`], so data read from any backend behaves the same.
///
/// ## Stored JSON this client cannot read
///
/// PostgreSQL's `jsonb` holds JSON a [`Value`] cannot: nesting deeper than
/// [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH), numbers outside `f64`'s range.
/// Writes through this crate refuse such JSON, but another client may have
/// stored it. Its message is still read (one such row never fails a page):
/// its data is *unreadable*. [`JsonData::unreadable`] says so and why,
/// [`JsonData::decode`] and [`Message::decode`](crate::Message::decode)
/// return an error naming the reason, [`Display`](fmt::Display) shows the
/// stored text, and looking at it as a [`Value`] (`Deref`,
/// [`JsonData::value`]) panics. The consumer runtime checks every message
/// ([`Message::check`](crate::Message::check)) before its handlers run and
/// treats unreadable data as a handler failure.
///
/// ```
/// use message_store::JsonData;
/// use serde_json::json;
/// let data = JsonData::from_json_text(r#"{"amount": 10}"#).unwrap();
/// assert_eq!(data["amount"], 10);
/// assert_eq!(data, json!({"amount": 10}));
/// #[derive(serde::Deserialize)]
/// struct Deposited { amount: u64 }
/// assert_eq!(data.decode::<Deposited>().unwrap().amount, 10);
/// ```
#[derive(Clone)]
pub struct JsonData(Arc<Inner>);

struct Inner {
    /// The JSON text, when the data arrived as text.
    text: Option<Box<str>>,
    /// The parsed value: given, or built from the text on first use.
    value: OnceLock<Value>,
    /// Whether the text is JSON a [`Value`] can hold: known from the start
    /// for a value or checked text, found out on first need for stored text.
    unreadable: OnceLock<Option<UnreadableJson>>,
}

/// Stored JSON a [`Value`] cannot hold, kept as it was stored, with why.
///
/// Found in [`JsonData::unreadable`] and [`Metadata::unreadable`](crate::Metadata::unreadable);
/// clones share the text.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored JSON cannot be read: {reason}")]
pub struct UnreadableJson {
    text: Arc<str>,
    reason: Arc<str>,
}

impl UnreadableJson {
    /// Records that `text` cannot be read, for `reason`.
    pub fn new(text: impl Into<Arc<str>>, reason: impl fmt::Display) -> Self {
        UnreadableJson {
            text: text.into(),
            reason: reason.to_string().into(),
        }
    }

    /// The JSON text as stored.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why it cannot be read (the parser's error).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Debug for UnreadableJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnreadableJson")
            .field("reason", &self.reason)
            .field("text", &crate::error::shown(&self.text))
            .finish()
    }
}

impl JsonData {
    /// Data holding `value`.
    pub fn from_value(value: Value) -> Self {
        JsonData(Arc::new(Inner {
            text: None,
            value: OnceLock::from(value),
            unreadable: OnceLock::from(None),
        }))
    }

    /// Data holding JSON `text`, checked to be one JSON value that a
    /// [`Value`] can hold (the same syntax, nesting and number limits),
    /// without building it: it is parsed when first looked at.
    pub fn from_json_text(text: impl Into<Box<str>>) -> serde_json::Result<Self> {
        let text = text.into();
        check(&text)?;
        Ok(JsonData(Arc::new(Inner {
            text: Some(text),
            value: OnceLock::new(),
            unreadable: OnceLock::from(None),
        })))
    }

    /// Data holding stored JSON `text` (valid JSON, as a `jsonb` column
    /// returns it), never failing and doing no work now: the text is
    /// parsed when first looked at, or decoded straight into a type by
    /// [`JsonData::decode`]. Text a [`Value`] cannot hold is found out then,
    /// and the data is [unreadable](JsonData::unreadable). This is how
    /// backends read what any client stored.
    pub fn from_stored_text(text: impl Into<Box<str>>) -> Self {
        JsonData(Arc::new(Inner {
            text: Some(text.into()),
            value: OnceLock::new(),
            unreadable: OnceLock::new(),
        }))
    }

    /// Why the stored data cannot be read, if it cannot (see the
    /// [type's docs](JsonData#stored-json-this-client-cannot-read)). For
    /// stored text not looked at yet, this checks it (a walk that builds
    /// nothing).
    pub fn unreadable(&self) -> Option<&UnreadableJson> {
        self.0
            .unreadable
            .get_or_init(|| {
                let text = self.0.text.as_deref()?;
                check(text)
                    .err()
                    .map(|reason| UnreadableJson::new(text, reason))
            })
            .as_ref()
    }

    /// The data as a [`Value`], or why it cannot be read.
    pub fn try_value(&self) -> Result<&Value, &UnreadableJson> {
        if let Some(value) = self.0.value.get() {
            return Ok(value);
        }
        if let Some(unreadable) = self.0.unreadable.get().and_then(Option::as_ref) {
            return Err(unreadable);
        }
        let text = self
            .0
            .text
            .as_deref()
            .expect("data without text is built with its value");
        // One parse tells both whether it can be read and what it holds.
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                let _ = self.0.unreadable.set(None);
                Ok(self.0.value.get_or_init(|| value))
            }
            Err(reason) => {
                let _ = self
                    .0
                    .unreadable
                    .set(Some(UnreadableJson::new(text, reason)));
                Err(self.unreadable().expect("just found unreadable"))
            }
        }
    }

    /// The data as a [`Value`] (built on first use, then kept).
    ///
    /// # Panics
    ///
    /// When the data is [unreadable](JsonData::unreadable); use
    /// [`JsonData::try_value`] where stored data may come from other clients.
    pub fn value(&self) -> &Value {
        match self.try_value() {
            Ok(value) => value,
            Err(unreadable) => panic!(
                "message data cannot be read as a serde_json::Value ({}); check JsonData::unreadable or Message::check first",
                unreadable.reason()
            ),
        }
    }

    /// Decodes the data into `T`: straight from the stored text while no
    /// [`Value`] was built (one parse, no intermediate tree), else from the
    /// [`Value`]. Unreadable data gives an error carrying the reason.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        if let Some(value) = self.0.value.get() {
            return T::deserialize(value);
        }
        if let Some(unreadable) = self.0.unreadable.get().and_then(Option::as_ref) {
            return Err(serde::de::Error::custom(unreadable));
        }
        let text = self
            .0
            .text
            .as_deref()
            .expect("data without text is built with its value");
        serde_json::from_str(text).map_err(|error| match self.unreadable() {
            Some(unreadable) => serde::de::Error::custom(unreadable),
            None => error,
        })
    }

    /// A copy of the data as an owned [`Value`].
    ///
    /// # Panics
    ///
    /// When the data is [unreadable](JsonData::unreadable), as [`JsonData::value`].
    pub fn to_value(&self) -> Value {
        self.value().clone()
    }
}

/// Checks that `text` is one JSON value a [`Value`] can hold.
fn check(text: &str) -> serde_json::Result<()> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Checked::deserialize(&mut deserializer)?;
    deserializer.end()
}

impl Deref for JsonData {
    type Target = Value;

    /// # Panics
    ///
    /// When the data is [unreadable](JsonData::unreadable).
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for JsonData {
    fn from(value: Value) -> Self {
        JsonData::from_value(value)
    }
}

impl PartialEq for JsonData {
    fn eq(&self, other: &JsonData) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        if let (Some(a), Some(b)) = (&self.0.text, &other.0.text) {
            if a == b {
                return true;
            }
        }
        match (self.try_value(), other.try_value()) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a.text() == b.text(),
            _ => false,
        }
    }
}

impl Eq for JsonData {}

impl PartialEq<Value> for JsonData {
    fn eq(&self, other: &Value) -> bool {
        self.try_value() == Ok(other)
    }
}

impl PartialEq<JsonData> for Value {
    fn eq(&self, other: &JsonData) -> bool {
        other == self
    }
}

impl fmt::Debug for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_value() {
            Ok(value) => fmt::Debug::fmt(value, f),
            Err(unreadable) => fmt::Debug::fmt(unreadable, f),
        }
    }
}

/// Shows the JSON; unreadable data shows its stored text.
impl fmt::Display for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_value() {
            Ok(value) => fmt::Display::fmt(value, f),
            Err(unreadable) => f.write_str(unreadable.text()),
        }
    }
}

/// Serializes the [`Value`]; unreadable data fails with its reason.
impl Serialize for JsonData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.try_value() {
            Ok(value) => value.serialize(serializer),
            Err(unreadable) => Err(serde::ser::Error::custom(unreadable)),
        }
    }
}

impl<'de> Deserialize<'de> for JsonData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(JsonData::from_value)
    }
}

/// Walks a JSON value as building a [`Value`] would (nesting limit, number
/// range), keeping nothing.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_value_are_the_same_data() {
        let text = JsonData::from_json_text(r#"{"b": [1, 2.5, null], "a": "é"}"#).unwrap();
        let value = JsonData::from_value(json!({"a": "é", "b": [1, 2.5, null]}));
        assert_eq!(text, value);
        assert_eq!(text, json!({"a": "é", "b": [1, 2.5, null]}));
        assert_eq!(json!({"a": "é", "b": [1, 2.5, null]}), value);
        assert_eq!(text["b"][1], 2.5);
        assert_eq!(text.to_string(), value.to_string());
        assert_eq!(format!("{text:?}"), format!("{value:?}"));
        assert_ne!(text, JsonData::from_value(json!({"a": "é"})));
    }

    #[test]
    fn text_is_checked_and_decoded_without_a_value() {
        assert!(JsonData::from_json_text("{").is_err());
        assert!(JsonData::from_json_text("1 2").is_err());
        assert!(JsonData::from_json_text("").is_err());
        // What a Value cannot hold is refused when the data is built.
        assert!(JsonData::from_json_text("1e400").is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(JsonData::from_json_text(deep).is_err());
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(JsonData::from_json_text(fine).unwrap().is_array());
        let data = JsonData::from_json_text("null").unwrap();
        assert!(data.is_null());

        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Deposited {
            amount: u64,
        }
        let data = JsonData::from_json_text(r#"{"amount": 7}"#).unwrap();
        assert!(data.0.value.get().is_none(), "not parsed until looked at");
        assert_eq!(data.decode::<Deposited>().unwrap(), Deposited { amount: 7 });
        assert_eq!(data["amount"], 7);
        assert_eq!(data.decode::<Deposited>().unwrap(), Deposited { amount: 7 });
        assert!(data.decode::<String>().is_err());
    }

    #[test]
    fn stored_text_a_value_cannot_hold_is_kept_unreadable() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let huge = format!("{{\"n\": 1{}}}", "0".repeat(400));
        for text in [deep.as_str(), "1e400", huge.as_str()] {
            let data = JsonData::from_stored_text(text);
            let unreadable = data.unreadable().expect(text);
            assert_eq!(unreadable.text(), text);
            assert!(
                unreadable.reason().contains("recursion limit")
                    || unreadable.reason().contains("number out of range"),
                "{unreadable}"
            );
            assert!(data.try_value().is_err());
            let err = data.decode::<Value>().unwrap_err().to_string();
            assert!(err.contains(unreadable.reason()), "{err}");
            assert_eq!(data.to_string(), text);
            assert!(format!("{data:?}").starts_with("UnreadableJson"));
            assert!(serde_json::to_string(&data).is_err());
            assert_eq!(data, JsonData::from_stored_text(text));
            assert_ne!(data, JsonData::from_value(Value::Null));
            assert_ne!(data, Value::Null);
            let panic = std::panic::catch_unwind(|| data.is_null()).unwrap_err();
            let panic = panic.downcast_ref::<String>().unwrap();
            assert!(panic.contains("Message::check"), "{panic}");
        }
        let fine = JsonData::from_stored_text(r#"{"n": 1}"#);
        assert!(fine.unreadable().is_none());
        assert_eq!(fine, serde_json::json!({"n": 1}));
    }

    #[test]
    fn clones_share_the_parsed_value_and_serde_round_trips() {
        let data = JsonData::from_json_text(r#"{"n": 1}"#).unwrap();
        let copy = data.clone();
        assert_eq!(data["n"], 1);
        assert!(copy.0.value.get().is_some(), "parsed once for both");
        let text = serde_json::to_string(&copy).unwrap();
        assert_eq!(text, r#"{"n":1}"#);
        let back: JsonData = serde_json::from_str(&text).unwrap();
        assert_eq!(back, data);
    }
}
