//! What JSON a write accepts: no NUL (jsonb refuses it), and no nesting
//! deeper than a reader can read back.

use serde_json::Value;

/// The deepest nesting of JSON arrays and objects a write accepts: 127, the
/// most serde_json reads back from text (its recursion limit, 128, counts
/// the container that fails), so a reader of any backend reads back what was
/// written. PostgreSQL's jsonb takes deeper JSON, which other clients may
/// store; such a message is still delivered, and reading its data gives an
/// error (see [`JsonData`](crate::JsonData)).
pub const MAX_JSON_DEPTH: usize = 127;

/// Why a JSON value cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonProblem {
    /// A string or key contains NUL, which jsonb rejects.
    Nul,
    /// Arrays and objects nest deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
    /// Metadata read from a store that could not be read, written back.
    Unreadable,
}

impl JsonProblem {
    pub(crate) fn describe(self) -> String {
        match self {
            JsonProblem::Nul => "a string or key contains the NUL character (\\u0000), which PostgreSQL's jsonb rejects".to_owned(),
            JsonProblem::TooDeep => format!(
                "arrays and objects nest deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), more than a reader can read back"
            ),
            JsonProblem::Unreadable => "it is stored metadata that could not be read (Metadata::unreadable is set); build new metadata instead".to_owned(),
        }
    }
}

/// Walks `value` without allocating, looking for NUL in a string or key and
/// for containers nested more than `levels` deep. Stops descending one level
/// past the limit, so the walk's own depth is bounded.
pub(crate) fn json_problem(value: &Value, levels: usize) -> Option<JsonProblem> {
    match value {
        Value::String(text) => text.contains('\0').then_some(JsonProblem::Nul),
        Value::Array(_) | Value::Object(_) if levels == 0 => Some(JsonProblem::TooDeep),
        Value::Array(items) => items.iter().find_map(|item| json_problem(item, levels - 1)),
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.contains('\0') {
                Some(JsonProblem::Nul)
            } else {
                json_problem(value, levels - 1)
            }
        }),
        _ => None,
    }
}
