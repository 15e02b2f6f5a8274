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
    /// The JSON text, when the data arrived as text (checked to be JSON).
    text: Option<Box<str>>,
    /// The parsed value: given, or built from the text on first use.
    value: OnceLock<Value>,
}

impl JsonData {
    /// Data holding `value`.
    pub fn from_value(value: Value) -> Self {
        JsonData(Arc::new(Inner {
            text: None,
            value: OnceLock::from(value),
        }))
    }

    /// Data holding JSON `text`, checked to be one JSON value that a
    /// [`Value`] can hold (the same syntax, nesting and number limits),
    /// without building it: it is parsed when first looked at.
    pub fn from_json_text(text: impl Into<Box<str>>) -> serde_json::Result<Self> {
        let text = text.into();
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        Checked::deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(JsonData(Arc::new(Inner {
            text: Some(text),
            value: OnceLock::new(),
        })))
    }

    /// The data as a [`Value`] (built on first use, then kept).
    pub fn value(&self) -> &Value {
        self.0.value.get_or_init(|| match &self.0.text {
            Some(text) => serde_json::from_str(text).expect("checked to parse when built"),
            None => unreachable!("data without text is built with its value"),
        })
    }

    /// Decodes the data into `T` (from its [`Value`]).
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(self.value())
    }

    /// A copy of the data as an owned [`Value`].
    pub fn to_value(&self) -> Value {
        self.value().clone()
    }
}

impl Deref for JsonData {
    type Target = Value;

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
        self.value() == other.value()
    }
}

impl Eq for JsonData {}

impl PartialEq<Value> for JsonData {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl PartialEq<JsonData> for Value {
    fn eq(&self, other: &JsonData) -> bool {
        self == other.value()
    }
}

impl fmt::Debug for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl fmt::Display for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.value(), f)
    }
}

impl Serialize for JsonData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
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
