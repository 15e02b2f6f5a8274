//! Optimistic concurrency: what a writer expects the stream's version to be.

use std::fmt;

/// The version a writer expects a stream to have before its write.
///
/// A stream's version is the position of its last message (0-based), so a
/// stream with three messages has version 2. Message DB's `expected_version`
/// maps as `Any` = NULL, `NoStream` = -1, `Exact(n)` = n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpectedVersion {
    /// Write whatever the stream's version is.
    #[default]
    Any,
    /// The stream must have no messages yet.
    NoStream,
    /// The stream's last message must be at this position.
    Exact(u64),
}

impl ExpectedVersion {
    /// The expectation that matches a stream whose current version is `version`
    /// (`None`: no stream), as returned by `stream_version`.
    pub fn from_version(version: Option<u64>) -> Self {
        version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }

    /// True when a stream whose version is `actual` satisfies this expectation.
    pub fn matches(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(expected) => actual == Some(expected),
        }
    }

    /// The expectation for the message after this one in a batch: the first
    /// message carries the caller's expectation, each later one expects the
    /// position just written.
    pub fn after_write(self, written: u64) -> Self {
        match self {
            ExpectedVersion::Any => ExpectedVersion::Any,
            _ => ExpectedVersion::Exact(written),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
        }
    }
}

impl From<u64> for ExpectedVersion {
    fn from(version: u64) -> Self {
        ExpectedVersion::Exact(version)
    }
}

/// [`ExpectedVersion::from_version`]: `None` (no stream) expects no stream,
/// `Some(v)` expects exactly `v`, so the result of `stream_version` can be
/// passed as it is.
impl From<Option<u64>> for ExpectedVersion {
    fn from(version: Option<u64>) -> Self {
        ExpectedVersion::from_version(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_follows_message_db() {
        assert!(ExpectedVersion::Any.matches(None));
        assert!(ExpectedVersion::Any.matches(Some(4)));
        assert!(ExpectedVersion::NoStream.matches(None));
        assert!(!ExpectedVersion::NoStream.matches(Some(0)));
        assert!(ExpectedVersion::Exact(0).matches(Some(0)));
        assert!(!ExpectedVersion::Exact(0).matches(None));
        assert!(!ExpectedVersion::Exact(3).matches(Some(2)));
    }

    #[test]
    fn from_version_round_trips() {
        assert_eq!(
            ExpectedVersion::from_version(None),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            ExpectedVersion::from_version(Some(7)),
            ExpectedVersion::Exact(7)
        );
        assert!(ExpectedVersion::from_version(Some(7)).matches(Some(7)));
        assert_eq!(ExpectedVersion::from(None), ExpectedVersion::NoStream);
        assert_eq!(ExpectedVersion::from(Some(2)), ExpectedVersion::Exact(2));
    }
}
