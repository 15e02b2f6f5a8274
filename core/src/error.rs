//! The one error type every backend returns.

use uuid::Uuid;

mod kind;
mod problems;

pub use kind::ErrorKind;
pub(crate) use problems::{printable, shown};
pub use problems::{ConsumerGroupProblem, NameProblem};

use crate::unit::{ConflictReason, UnitState};
use crate::version::ExpectedVersion;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a message store.
///
/// Both backends return the same variant for the same cause, so application
/// code can branch on it and tests written against the memory store hold on
/// Postgres. [`Error::kind`] gives a comparable summary without the payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stream name failed validation.
    #[error("invalid stream name `{name}`: {problem}")]
    InvalidStreamName {
        /// The rejected name (NUL characters shown escaped).
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// A category name failed validation.
    #[error("invalid category `{name}`: {problem}")]
    InvalidCategory {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// A stream read was asked for a name without `-`, which names a whole
    /// category (Message DB: `Must be a stream name`).
    #[error("`{name}` is not a stream name: it has no `-`, so it names a category; read it as a category or use `category-id`")]
    NotAStream {
        /// The category-shaped name.
        name: String,
    },

    /// A correlation filter was not a category (Message DB: `Correlation must be a category`).
    #[error("correlation `{correlation}` must be a category: {problem}")]
    InvalidCorrelation {
        /// The rejected correlation value.
        correlation: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// Consumer-group parameters out of range.
    #[error("invalid consumer group (member {member}, size {size}): {problem}")]
    InvalidConsumerGroup {
        /// The requested member index.
        member: u64,
        /// The requested group size.
        size: u64,
        /// Which rule it breaks.
        problem: ConsumerGroupProblem,
    },

    /// A message type failed validation.
    #[error("invalid message type `{message_type}`: {problem}")]
    InvalidMessageType {
        /// The rejected type.
        message_type: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// Message data or metadata holds JSON that PostgreSQL's `jsonb` cannot
    /// store, or that a reader could not read back (see
    /// [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH)), or a correlation stream
    /// name longer than [`MAX_STREAM_NAME_LEN`](crate::MAX_STREAM_NAME_LEN).
    #[error("message {id} has {field} that cannot be stored: {problem}")]
    InvalidJson {
        /// The id of the offending message.
        id: Uuid,
        /// `data` or `metadata`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// A write was given no messages.
    #[error("a write to stream `{stream}` needs at least one message")]
    EmptyBatch {
        /// The stream the empty write was aimed at.
        stream: String,
    },

    /// An option that must be positive was zero or otherwise out of range.
    #[error("invalid option `{option}`: {problem}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// The stream's version did not match the expected version; nothing was written.
    #[error("wrong expected version for stream `{stream}`: expected {expected}, actual {}", display_version(*.actual))]
    WrongExpectedVersion {
        /// The stream written to.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the write was attempted (`None`: no stream).
        actual: Option<u64>,
    },

    /// A message id is already used, in the store or earlier in the same batch;
    /// nothing of the batch was written.
    #[error("duplicate message id {id}: every message id must be unique in the store")]
    DuplicateMessageId {
        /// The id that was used twice.
        id: Uuid,
    },

    /// A value could not be serialized into message data.
    #[error("cannot serialize data for message type `{message_type}`: {source}")]
    Encode {
        /// The message type being written.
        message_type: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// JSON was malformed or did not have the shape asked for (for example
    /// [`Metadata::try_from`](crate::Metadata) given an array); `?` on a
    /// `serde_json` result gives this.
    #[error("invalid JSON: {source}")]
    Json {
        /// The parser's or deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored message could not be decoded into the requested type.
    #[error("cannot decode message `{message_type}` at position {position} of stream `{stream}` (global position {global_position}): {source}")]
    Decode {
        /// The message's stream.
        stream: String,
        /// Its stream position.
        position: u64,
        /// Its global position.
        global_position: u64,
        /// Its type.
        message_type: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored message's data or metadata is JSON this client cannot read:
    /// another client stored JSON nesting deeper than
    /// [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH) or a number outside `f64`'s
    /// range (see [`UnreadableJson`](crate::UnreadableJson)). The message was
    /// read; only this part of it cannot be looked at.
    #[error("message `{message_type}` at position {position} of stream `{stream}` (global position {global_position}) has {part} this client cannot read: {reason}")]
    Unreadable {
        /// The message's stream.
        stream: String,
        /// Its stream position.
        position: u64,
        /// Its global position.
        global_position: u64,
        /// Its type.
        message_type: String,
        /// `data` or `metadata`.
        part: &'static str,
        /// Why (the JSON parser's error).
        reason: String,
    },

    /// Two subscriptions or consumers would share one position stream.
    #[error("position stream `{stream}` is already in use by another consumer; give each consumer its own consumer id")]
    PositionStreamInUse {
        /// The contested position stream.
        stream: String,
    },

    /// [`Subscription::commit`](crate::Subscription::commit) was given a
    /// position past the last message the subscription delivered: recording
    /// it would make a restart skip the messages in between. Nothing was
    /// recorded.
    #[error("cannot commit global position {position} to `{stream}`: {}; a restart would skip the messages in between", display_delivered(*.delivered))]
    CommitAhead {
        /// The position stream.
        stream: String,
        /// The position asked for.
        position: u64,
        /// The highest position that may be committed: the last delivered
        /// message's, or the position the subscription resumed from
        /// (`None`: nothing yet).
        delivered: Option<u64>,
    },

    /// A failure that passes: the server could not be reached, a connection
    /// broke before the call was sent, the pool had no connection in time, or
    /// the server aborted the call (a deadlock, a serialization failure, a
    /// restart). Nothing was written; the same call can be made again.
    #[error("message store temporarily unavailable: {source}")]
    Transient {
        /// The underlying cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A write was sent, but the connection broke before its reply arrived:
    /// it may or may not have been stored. Recover by sending the same
    /// messages again, with the same ids: if the first write landed, the
    /// resend fails with [`Error::DuplicateMessageId`] (or, with an expected
    /// version, [`Error::WrongExpectedVersion`]) and stores nothing twice.
    #[error("the outcome of the write to `{stream}` is unknown (its reply was lost); resend the same messages, with the same ids, to find out: {source}")]
    OutcomeUnknown {
        /// The stream written to.
        stream: String,
        /// The underlying cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A unit of work was used, or committed, after it had ended: after its
    /// commit, its rollback, or a failure that aborted it. Nothing was done.
    #[error("the unit of work is {state}: nothing more can be done with it; begin a new one")]
    UnitEnded {
        /// How it ended.
        state: UnitState,
    },

    /// Concurrent work made a unit of work fail: a deadlock, a lock timeout
    /// or a serialization failure. The unit was rolled back, nothing of it
    /// is stored, and running it again may succeed.
    #[error("the unit of work was rolled back because of {reason}; run it again")]
    Conflict {
        /// What happened.
        reason: ConflictReason,
        /// The database's report, where there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A unit of work's commit was sent, but the connection broke before
    /// its reply arrived: all of the unit may be stored, or none of it.
    /// Find out by reading one of its writes back (by message id, or the
    /// stream's version), or run it again with the same message ids, which
    /// fails with [`Error::DuplicateMessageId`] if the first commit landed.
    #[error("the outcome of committing the unit of work is unknown (its reply was lost): all of it may be stored, or none; read one of its writes back, or run it again with the same message ids, to find out: {source}")]
    CommitOutcomeUnknown {
        /// The underlying cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The backend failed in a way that retrying will not mend (a missing
    /// schema, a privilege, a server error we do not classify).
    #[error("message store backend failed: {source}")]
    Backend {
        /// The underlying cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl From<serde_json::Error> for Error {
    fn from(source: serde_json::Error) -> Self {
        Error::Json { source }
    }
}

fn display_delivered(delivered: Option<u64>) -> String {
    match delivered {
        Some(position) => format!("nothing past global position {position} was delivered"),
        None => "nothing was delivered yet".to_owned(),
    }
}

fn display_version(version: Option<u64>) -> String {
    match version {
        Some(v) => v.to_string(),
        None => "no stream".to_owned(),
    }
}

impl Error {
    /// Wraps any backend failure.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Error::Backend {
            source: source.into(),
        }
    }

    /// Wraps a failure that passes (see [`Error::Transient`]).
    pub fn transient(
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Transient {
            source: source.into(),
        }
    }

    /// True when making the same call again is safe and may succeed:
    /// [`Error::Transient`], [`Error::OutcomeUnknown`] (a write resent
    /// with the same message ids is never stored twice) and
    /// [`Error::Conflict`]. In a unit of work, the failure aborted the unit:
    /// what may succeed is running the whole unit again. Everything else
    /// fails the same way again until something changes: the input, the
    /// expected version, the schema or the role.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Transient { .. } | Error::OutcomeUnknown { .. } | Error::Conflict { .. }
        )
    }

    /// True for [`Error::OutcomeUnknown`] and [`Error::CommitOutcomeUnknown`]:
    /// a write or a commit whose reply was lost.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::OutcomeUnknown { .. } | Error::CommitOutcomeUnknown { .. }
        )
    }

    /// True for [`Error::WrongExpectedVersion`], the error optimistic writers retry on.
    pub fn is_wrong_expected_version(&self) -> bool {
        matches!(self, Error::WrongExpectedVersion { .. })
    }
}
