//! Stream and category names with Message DB's grammar.
//!
//! Only the first `-` has meaning to the server: the category is everything
//! before it, the id everything after it. The cardinal id is the id up to its
//! first `+`. `:` and `+` inside a category are ordinary characters, which
//! Eventide uses for the entity name and category types
//! (`account:command+position`).

use std::sync::Arc;

use crate::error::{printable, Error, NameProblem, Result};

/// The longest stream name a write accepts, in bytes of UTF-8: 1024.
///
/// Message DB indexes the stream name (with the position) and the category
/// of the stream and of the metadata's `correlationStreamName` (together,
/// with the global position). A PostgreSQL btree index row holds at most
/// 2704 bytes, so, measured on PostgreSQL 15 with names that do not
/// compress, a stream name of more than 2684 bytes cannot be written, and a
/// stream's category and its correlation's category cannot both be longer
/// than 1340 bytes. Every backend therefore refuses a write to a longer
/// stream name, or with a longer correlation stream name, with
/// [`NameProblem::TooLong`] before anything is stored; any pair of names
/// within this limit fits. Reads take names of any length (another client
/// may have stored one). Message types are not indexed and have no limit
/// of their own.
pub const MAX_STREAM_NAME_LEN: usize = 1024;

/// The category of a stream name: everything before the first `-`, or the
/// whole name when it has none. Mirrors Message DB's `category()`.
pub fn category_of(name: &str) -> &str {
    name.split_once('-').map_or(name, |(category, _)| category)
}

/// The id of a stream name: everything after the first `-`; `None` when there
/// is no `-`. Mirrors Message DB's `id()` (`None` is SQL NULL).
pub fn id_of(name: &str) -> Option<&str> {
    name.split_once('-').map(|(_, id)| id)
}

/// The cardinal id: the id up to its first `+`; `None` when there is no id.
/// Mirrors Message DB's `cardinal_id()` (`account-+1` has cardinal id `""`).
pub fn cardinal_id_of(name: &str) -> Option<&str> {
    id_of(name).map(|id| id.split_once('+').map_or(id, |(cardinal, _)| cardinal))
}

/// True when the name has no `-` and so names a category. Mirrors Message DB's
/// `is_category()`.
pub fn is_category(name: &str) -> bool {
    !name.contains('-')
}

fn entity_of(category: &str) -> &str {
    category
        .split_once(':')
        .map_or(category, |(entity, _)| entity)
}

fn types_of(category: &str) -> Vec<&str> {
    match category.split_once(':') {
        Some((_, types)) => types.split('+').collect(),
        None => Vec::new(),
    }
}

/// A validated stream name: not empty, no NUL, not starting with `-`. Cloning
/// is cheap (the text is shared).
///
/// A name without `-` (`account`) is a valid stream name, as in Message DB:
/// it can be written to and is used for position streams, but stream reads
/// refuse it because it names a whole category.
///
/// ```
/// use message_store::StreamName;
/// let stream = StreamName::new("account:command-123+abc").unwrap();
/// assert_eq!(stream.category().as_str(), "account:command");
/// assert_eq!(stream.id(), Some("123+abc"));
/// assert_eq!(stream.cardinal_id(), Some("123"));
/// assert_eq!(stream.entity_name(), "account");
/// assert_eq!(stream.types(), vec!["command"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(Arc<str>);

impl StreamName {
    /// Validates and wraps a stream name.
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        let problem = if name.is_empty() {
            Some(NameProblem::Empty)
        } else if name.contains('\0') {
            Some(NameProblem::ContainsNul)
        } else if name.starts_with('-') {
            Some(NameProblem::EmptyCategory)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::InvalidStreamName {
                name: printable(name),
                problem,
            }),
            None => Ok(StreamName(name.into())),
        }
    }

    /// Builds `{category}-{id}`. The id may itself contain `-` and `+`
    /// (`+` separates compound ids); it must not contain NUL.
    pub fn from_parts(category: &Category, id: &str) -> Result<Self> {
        StreamName::new(format!("{}-{}", category.as_str(), id))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the name, returning its text.
    pub fn into_string(self) -> String {
        self.0.to_string()
    }

    /// The category: everything before the first `-` (the whole name if none).
    pub fn category(&self) -> Category {
        Category(category_of(&self.0).into())
    }

    /// The id after the first `-`, or `None` for a category-shaped name.
    pub fn id(&self) -> Option<&str> {
        id_of(&self.0)
    }

    /// The id before its first `+`, or `None` for a category-shaped name.
    pub fn cardinal_id(&self) -> Option<&str> {
        cardinal_id_of(&self.0)
    }

    /// True when the name has no `-` (it names a category; stream reads refuse it).
    pub fn is_category(&self) -> bool {
        is_category(&self.0)
    }

    /// Eventide's entity name: the category up to its first `:`.
    pub fn entity_name(&self) -> &str {
        entity_of(category_of(&self.0))
    }

    /// Eventide's category types: the part of the category after `:`, split on `+`.
    pub fn types(&self) -> Vec<&str> {
        types_of(category_of(&self.0))
    }
}

/// A validated category: not empty, no NUL, no `-`.
///
/// ```
/// use message_store::Category;
/// let category = Category::new("account:command").unwrap();
/// assert_eq!(category.entity_name(), "account");
/// assert_eq!(category.stream("123").unwrap().as_str(), "account:command-123");
/// assert!(Category::new("account-1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category(Arc<str>);

impl Category {
    /// Validates and wraps a category name.
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        match category_problem(name) {
            Some(problem) => Err(Error::InvalidCategory {
                name: printable(name),
                problem,
            }),
            None => Ok(Category(name.into())),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the category, returning its text.
    pub fn into_string(self) -> String {
        self.0.to_string()
    }

    /// The stream `{category}-{id}` of this category.
    pub fn stream(&self, id: &str) -> Result<StreamName> {
        StreamName::from_parts(self, id)
    }

    /// Eventide's entity name: the category up to its first `:`.
    pub fn entity_name(&self) -> &str {
        entity_of(&self.0)
    }

    /// Eventide's category types: the part after `:`, split on `+`.
    pub fn types(&self) -> Vec<&str> {
        types_of(&self.0)
    }

    /// True when `stream` belongs to this category (Message DB: `category(stream) = self`).
    pub fn contains(&self, stream: &str) -> bool {
        category_of(stream) == &*self.0
    }

    /// The stream where a consumer of this category records its position, as
    /// Eventide names it: `account` gives `account:position`, `account:command`
    /// gives `account:command+position`, and a consumer id `x` appends `-x`.
    ///
    /// ```
    /// use message_store::Category;
    /// let c = Category::new("account:command").unwrap();
    /// assert_eq!(c.position_stream(Some("x")).unwrap().as_str(), "account:command+position-x");
    /// let c = Category::new("account").unwrap();
    /// assert_eq!(c.position_stream(None).unwrap().as_str(), "account:position");
    /// ```
    pub fn position_stream(&self, consumer_id: Option<&str>) -> Result<StreamName> {
        self.derived_stream("position", consumer_id)
    }

    /// The stream where a consumer parks the messages its handlers could not
    /// handle: `account` gives `account:parked-{consumer id}`.
    pub fn parked_stream(&self, consumer_id: &str) -> Result<StreamName> {
        self.derived_stream("parked", Some(consumer_id))
    }

    /// The stream where the instances of a fleet consumer (the runtime's
    /// consumers that share a category's work) announce themselves:
    /// `account` gives `account:fleet-{consumer id}`.
    pub fn fleet_stream(&self, consumer_id: &str) -> Result<StreamName> {
        self.derived_stream("fleet", Some(consumer_id))
    }

    /// `{entity}:{types}+{kind}[-{id}]`, with `kind` added to the category's
    /// types unless already there (Eventide's naming for position streams).
    fn derived_stream(&self, kind: &str, id: Option<&str>) -> Result<StreamName> {
        let mut types = self.types();
        if !types.contains(&kind) {
            types.push(kind);
        }
        let mut name = format!("{}:{}", self.entity_name(), types.join("+"));
        if let Some(id) = id {
            name.push('-');
            name.push_str(id);
        }
        StreamName::new(name)
    }
}

pub(crate) fn category_problem(name: &str) -> Option<NameProblem> {
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.contains('\0') {
        Some(NameProblem::ContainsNul)
    } else if name.contains('-') {
        Some(NameProblem::ContainsDash)
    } else {
        None
    }
}

mod impls;
#[cfg(test)]
mod tests;
