//! Why a name or a consumer group was refused, and how names are shown in
//! error messages.

use std::fmt;

/// Why a name (stream, category, type, correlation, consumer id) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is the empty string.
    Empty,
    /// The name contains a NUL character, which PostgreSQL text cannot hold.
    ContainsNul,
    /// A category contains `-`, which separates a category from a stream id.
    ContainsDash,
    /// A stream name starts with `-`, so its category would be empty.
    EmptyCategory,
    /// A name to be written is longer than
    /// [`MAX_STREAM_NAME_LEN`](crate::MAX_STREAM_NAME_LEN) bytes, more than
    /// PostgreSQL's indexes can be relied on to hold.
    TooLong,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "it is empty",
            NameProblem::ContainsNul => "it contains a NUL character",
            NameProblem::ContainsDash => {
                "it contains `-`, which separates a category from a stream id"
            }
            NameProblem::EmptyCategory => "it starts with `-`, so its category is empty",
            NameProblem::TooLong => {
                "it is longer than 1024 bytes, the most a stream name may have (MAX_STREAM_NAME_LEN)"
            }
        })
    }
}

/// Which consumer-group rule was broken, in the order Message DB checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsumerGroupProblem {
    /// The size is zero.
    SizeLessThanOne,
    /// The member index is not below the size.
    MemberNotLessThanSize,
    /// The size exceeds 32767, the largest Message DB accepts (it binds a smallint).
    SizeTooLarge,
}

impl fmt::Display for ConsumerGroupProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConsumerGroupProblem::SizeLessThanOne => "the group size must not be less than 1",
            ConsumerGroupProblem::MemberNotLessThanSize => {
                "the member must be less than the group size"
            }
            ConsumerGroupProblem::SizeTooLarge => "the group size must not exceed 32767",
        })
    }
}

/// Shows NUL characters escaped so an error message stays printable.
pub(crate) fn printable(name: &str) -> String {
    name.replace('\0', "\\0")
}

/// A name for an error message: printable, and cut to its first 64
/// characters with its length in bytes when longer.
pub(crate) fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}... ({} bytes)", printable(&name[..cut]), name.len()),
        None => printable(name),
    }
}
