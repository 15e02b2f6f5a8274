//! Options for stream and category reads.

use crate::consumer_group::ConsumerGroup;
use crate::error::{printable, Error, NameProblem, Result};

/// How many messages one read returns at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchSize {
    /// At most this many (Message DB's default is 1000; 0 returns nothing).
    Limit(u64),
    /// Everything from the start position on (Message DB's `-1`). Loads the
    /// whole result into memory: prefer paging for large categories.
    Unlimited,
}

impl BatchSize {
    /// Message DB's default batch size.
    pub const DEFAULT: BatchSize = BatchSize::Limit(1000);

    /// The limit as a count, `None` when unlimited.
    pub fn limit(self) -> Option<u64> {
        match self {
            BatchSize::Limit(limit) => Some(limit),
            BatchSize::Unlimited => None,
        }
    }

    /// The limit as a `usize` for in-memory slicing (`usize::MAX` when unlimited).
    #[doc(hidden)] // for backends (see `backend`), not application code
    pub fn as_usize(self) -> usize {
        self.limit().map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        })
    }

    /// True when a page of `len` messages means there may be more to read.
    #[doc(hidden)] // for backends (see `backend`), not application code
    pub fn is_full(self, len: usize) -> bool {
        match self {
            BatchSize::Limit(limit) => u64::try_from(len).is_ok_and(|len| len >= limit),
            BatchSize::Unlimited => false,
        }
    }
}

/// A count: `Limit(n)`, so options take `.with_batch_size(100)`.
impl From<u64> for BatchSize {
    fn from(limit: u64) -> Self {
        BatchSize::Limit(limit)
    }
}

impl Default for BatchSize {
    fn default() -> Self {
        BatchSize::DEFAULT
    }
}

/// Options of a stream read: from a stream position (inclusive), a batch size.
///
/// ```
/// use message_store::{BatchSize, StreamRead};
/// let options = StreamRead::new().with_position(5).with_batch_size(10);
/// assert_eq!(options.position(), 5);
/// assert_eq!(options.batch_size(), BatchSize::Limit(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamRead {
    position: u64,
    batch_size: BatchSize,
}

impl StreamRead {
    /// From position 0, at most 1000 messages (Message DB's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts at this stream position (inclusive).
    pub fn with_position(mut self, position: u64) -> Self {
        self.position = position;
        self
    }

    /// Returns at most this many messages (a count, or [`BatchSize::Unlimited`]).
    pub fn with_batch_size(mut self, batch_size: impl Into<BatchSize>) -> Self {
        self.batch_size = batch_size.into();
        self
    }

    /// The first stream position to return.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The batch size.
    pub fn batch_size(&self) -> BatchSize {
        self.batch_size
    }
}

/// Options of a category read: from a global position (inclusive), a batch
/// size, and the optional correlation and consumer-group filters.
///
/// Setters never fail; the read checks the options and refuses bad ones
/// with a typed error (a correlation that is not a category:
/// [`Error::InvalidCorrelation`]), before any I/O.
///
/// ```
/// use message_store::{CategoryRead, ConsumerGroup};
/// let options = CategoryRead::new()
///     .with_position(100)
///     .with_consumer_group(ConsumerGroup::new(0, 2)?)
///     .with_correlation("fundsTransfer");
/// assert_eq!(options.correlation(), Some("fundsTransfer"));
/// # Ok::<(), message_store::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CategoryRead {
    position: u64,
    batch_size: BatchSize,
    correlation: Option<String>,
    consumer_group: Option<ConsumerGroup>,
}

impl Default for CategoryRead {
    fn default() -> Self {
        CategoryRead {
            position: 1,
            batch_size: BatchSize::DEFAULT,
            correlation: None,
            consumer_group: None,
        }
    }
}

impl CategoryRead {
    /// From global position 1, at most 1000 messages, no filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts at this global position (inclusive; 0 reads like 1).
    pub fn with_position(mut self, global_position: u64) -> Self {
        self.position = global_position;
        self
    }

    /// Returns at most this many messages (a count, or [`BatchSize::Unlimited`]).
    pub fn with_batch_size(mut self, batch_size: impl Into<BatchSize>) -> Self {
        self.batch_size = batch_size.into();
        self
    }

    /// Keeps only messages whose `correlationStreamName` metadata belongs to
    /// this category. A value containing `-` or NUL is refused by the read.
    pub fn with_correlation(mut self, category: impl Into<String>) -> Self {
        self.correlation = Some(category.into());
        self
    }

    /// Keeps only the streams of this consumer-group member.
    pub fn with_consumer_group(mut self, group: ConsumerGroup) -> Self {
        self.consumer_group = Some(group);
        self
    }

    /// The first global position to return (as given; 0 behaves like 1).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The batch size.
    pub fn batch_size(&self) -> BatchSize {
        self.batch_size
    }

    /// The correlation category filter, if any.
    pub fn correlation(&self) -> Option<&str> {
        self.correlation.as_deref()
    }

    /// The consumer-group filter, if any.
    pub fn consumer_group(&self) -> Option<ConsumerGroup> {
        self.consumer_group
    }

    /// Checks the options as every backend's read does first: the
    /// correlation must be a category (no `-`, no NUL), as Message DB's
    /// `Correlation must be a category`.
    pub fn validate(&self) -> Result<()> {
        let Some(category) = &self.correlation else {
            return Ok(());
        };
        let problem = if category.contains('-') {
            Some(NameProblem::ContainsDash)
        } else if category.contains('\0') {
            Some(NameProblem::ContainsNul)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::InvalidCorrelation {
                correlation: printable(category),
                problem,
            }),
            None => Ok(()),
        }
    }

    /// True when a message of `stream_name` whose metadata carries
    /// `correlation_stream_name` passes both filters.
    #[doc(hidden)] // for backends (see `backend`), not application code
    pub fn matches(&self, stream_name: &str, correlation_stream_name: Option<&str>) -> bool {
        let correlated = match &self.correlation {
            None => true,
            Some(wanted) => correlation_stream_name
                .is_some_and(|name| crate::stream_name::category_of(name) == wanted),
        };
        correlated
            && self
                .consumer_group
                .is_none_or(|group| group.contains(stream_name))
    }
}

/// The check every backend's stream read runs first: a category-shaped
/// name (no `-`) is refused with [`Error::NotAStream`](crate::Error::NotAStream),
/// as Message DB's `get_stream_messages` refuses it.
pub fn validate_stream_read(stream: &crate::StreamName) -> crate::Result<()> {
    if stream.is_category() {
        return Err(crate::Error::NotAStream {
            name: stream.as_str().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_message_db_defaults() {
        assert_eq!(StreamRead::new().position(), 0);
        assert_eq!(StreamRead::new().batch_size(), BatchSize::Limit(1000));
        assert_eq!(CategoryRead::new().position(), 1);
        assert_eq!(CategoryRead::new().batch_size(), BatchSize::Limit(1000));
    }

    #[test]
    fn correlation_with_dash_is_rejected() {
        let err = CategoryRead::new()
            .with_correlation("transfer-1")
            .validate()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCorrelation { .. }));
        assert!(err.to_string().contains("transfer-1"));
    }

    #[test]
    fn correlation_matches_the_category_of_the_metadata_stream() {
        let options = CategoryRead::new().with_correlation("transfer");
        assert!(options.matches("account-1", Some("transfer-9")));
        assert!(options.matches("account-1", Some("transfer")));
        assert!(!options.matches("account-1", Some("transfer:cmd-9")));
        assert!(!options.matches("account-1", None));
        let empty = CategoryRead::new().with_correlation("");
        assert!(empty.matches("account-1", Some("-9")));
        assert!(!empty.matches("account-1", Some("x-9")));
    }

    #[test]
    fn batch_size_fullness() {
        assert!(BatchSize::Limit(2).is_full(2));
        assert!(!BatchSize::Limit(2).is_full(1));
        assert!(!BatchSize::Unlimited.is_full(10));
    }
}
