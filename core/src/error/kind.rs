//! [`ErrorKind`]: an [`Error`]'s variant without its payload.

use super::Error;

/// The variants of [`Error`] without their payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each mirrors the Error variant of the same name
pub enum ErrorKind {
    InvalidStreamName,
    InvalidCategory,
    NotAStream,
    InvalidCorrelation,
    InvalidConsumerGroup,
    InvalidMessageType,
    InvalidJson,
    EmptyBatch,
    InvalidOption,
    WrongExpectedVersion,
    DuplicateMessageId,
    Encode,
    Json,
    Decode,
    Unreadable,
    PositionStreamInUse,
    CommitAhead,
    Transient,
    OutcomeUnknown,
    Backend,
    UnitEnded,
    Conflict,
    CommitOutcomeUnknown,
}

impl Error {
    /// The variant without its payload, for comparisons.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidStreamName { .. } => ErrorKind::InvalidStreamName,
            Error::InvalidCategory { .. } => ErrorKind::InvalidCategory,
            Error::NotAStream { .. } => ErrorKind::NotAStream,
            Error::InvalidCorrelation { .. } => ErrorKind::InvalidCorrelation,
            Error::InvalidConsumerGroup { .. } => ErrorKind::InvalidConsumerGroup,
            Error::InvalidMessageType { .. } => ErrorKind::InvalidMessageType,
            Error::InvalidJson { .. } => ErrorKind::InvalidJson,
            Error::EmptyBatch { .. } => ErrorKind::EmptyBatch,
            Error::InvalidOption { .. } => ErrorKind::InvalidOption,
            Error::WrongExpectedVersion { .. } => ErrorKind::WrongExpectedVersion,
            Error::DuplicateMessageId { .. } => ErrorKind::DuplicateMessageId,
            Error::Encode { .. } => ErrorKind::Encode,
            Error::Json { .. } => ErrorKind::Json,
            Error::Decode { .. } => ErrorKind::Decode,
            Error::Unreadable { .. } => ErrorKind::Unreadable,
            Error::PositionStreamInUse { .. } => ErrorKind::PositionStreamInUse,
            Error::CommitAhead { .. } => ErrorKind::CommitAhead,
            Error::Transient { .. } => ErrorKind::Transient,
            Error::OutcomeUnknown { .. } => ErrorKind::OutcomeUnknown,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::UnitEnded { .. } => ErrorKind::UnitEnded,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::CommitOutcomeUnknown { .. } => ErrorKind::CommitOutcomeUnknown,
        }
    }
}
