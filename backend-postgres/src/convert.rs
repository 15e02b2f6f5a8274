//! Every conversion between our unsigned positions and PostgreSQL's bigint, in one place.

use message_store::{BatchSize, ExpectedVersion};

/// A position or count for a bigint parameter. Values beyond `i64::MAX`
/// cannot exist in the store, so they clamp (a read from there is empty).
pub(crate) fn to_bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Message DB's `batch_size`: `-1` for unlimited.
pub(crate) fn batch_size(batch: BatchSize) -> i64 {
    batch.limit().map_or(-1, to_bigint)
}

/// Message DB's `expected_version`: NULL, `-1` or the version.
pub(crate) fn expected_version(expected: ExpectedVersion) -> Option<i64> {
    match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(-1),
        ExpectedVersion::Exact(version) => Some(to_bigint(version)),
    }
}

/// A version reported by Message DB: `-1` (or any negative) means no stream.
pub(crate) fn version_from_bigint(version: i64) -> Option<u64> {
    u64::try_from(version).ok()
}

/// A stored position, which is never negative.
pub(crate) fn position_from_bigint(
    value: i64,
    column: &'static str,
) -> Result<u64, crate::error::PostgresError> {
    u64::try_from(value).map_err(|_| crate::error::PostgresError::Decode {
        column,
        problem: format!("negative value {value}"),
    })
}

/// The position of the last message a write stored, from the positions
/// its statement returned.
pub(crate) fn last_written(positions: Vec<i64>) -> Result<u64, crate::error::PostgresError> {
    let last = positions
        .into_iter()
        .max()
        .ok_or_else(|| crate::error::PostgresError::Decode {
            column: "write_message",
            problem: "the write returned no position".to_owned(),
        })?;
    position_from_bigint(last, "write_message")
}

/// A count of messages (an offset in a batch) as a bigint.
pub(crate) fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(to_bigint(u64::MAX), i64::MAX);
        assert_eq!(batch_size(BatchSize::Unlimited), -1);
        assert_eq!(batch_size(BatchSize::Limit(7)), 7);
        assert_eq!(expected_version(ExpectedVersion::NoStream), Some(-1));
        assert_eq!(expected_version(ExpectedVersion::Any), None);
        assert_eq!(version_from_bigint(-1), None);
        assert_eq!(version_from_bigint(12), Some(12));
        assert!(position_from_bigint(-3, "position").is_err());
    }
}
