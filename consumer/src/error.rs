//! The runtime's error type: the store's errors, plus what only a running
//! consumer can report (a handler that gave up, a shutdown past its
//! deadline, a consumer that stopped while someone waited for it).

use std::time::Duration;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong running a consumer.
///
/// Store failures keep their [`message_store::Error`] in [`Error::Store`]
/// (`?` converts one), so code branching on, say, an invalid option or
/// `PositionStreamInUse` matches `Error::Store(message_store::Error::..)`
/// or asks [`Error::store_error`]; [`Error::kind`] compares without payloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed a call (options, names, the backend,
    /// a position stream written by another consumer).
    #[error(transparent)]
    Store(#[from] message_store::Error),

    /// A handler failed on a message after every retry, and the consumer's
    /// failure policy is to stop.
    #[error("consumer of `{category}` stopped: the handler failed on message `{message_type}` at position {position} of stream `{stream}` (global position {global_position}) after {attempts} attempts: {source}")]
    HandlerFailed {
        /// The consumer's category.
        category: String,
        /// The message's stream.
        stream: String,
        /// Its stream position.
        position: u64,
        /// Its global position.
        global_position: u64,
        /// Its type.
        message_type: String,
        /// How many times the handler ran.
        attempts: u32,
        /// The last error the handler returned (a panic's message is a
        /// [`HandlerPanicked`](crate::HandlerPanicked), a timeout a
        /// [`HandlerTimedOut`](crate::HandlerTimedOut), unreadable data a
        /// [`message_store::Error::Unreadable`]).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A consumer stopped (its failure policy, a shutdown, a lost position
    /// stream) before it handled what
    /// [`ConsumerHandle::caught_up`](crate::ConsumerHandle::caught_up)
    /// waited for; [`ConsumerHandle::join`](crate::ConsumerHandle::join)
    /// gives why.
    #[error("consumer of `{category}` stopped before handling the message at global position {waiting_for}{}", .last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    ConsumerStopped {
        /// The consumer's category.
        category: String,
        /// The global position of the first message it had not handled.
        waiting_for: u64,
        /// The last error it reported, if any.
        last_error: Option<String>,
    },

    /// A consumer did not stop within its
    /// [`shutdown_deadline`](crate::ConsumerOptions::shutdown_deadline): a
    /// handler or the position write was still running and was dropped.
    /// Nothing is lost (delivery is at least once): on restart the consumer
    /// delivers everything from `recorded` on again (resuming is inclusive),
    /// including `abandoned`.
    #[error("consumer of `{category}` did not stop within {deadline:?}: {}", display_cut(*.abandoned, *.handled, *.recorded))]
    ShutdownDeadline {
        /// The consumer's category.
        category: String,
        /// The deadline.
        deadline: Duration,
        /// The global position of the message whose handler was dropped
        /// unfinished, if one was.
        abandoned: Option<u64>,
        /// The global position of the last message handled (or parked).
        handled: Option<u64>,
        /// The global position last recorded in the position stream.
        recorded: Option<u64>,
    },

    /// A live instance of the fleet counts its buckets differently: the two
    /// would split the category differently and handle streams twice, so
    /// this instance, joining, stopped before it took any bucket (the
    /// instances already at work leave it out and go on).
    #[error("fleet `{fleet}`: instance `{instance}` runs {theirs} buckets, this one {ours}; every instance of a fleet needs the same bucket count")]
    FleetMismatch {
        /// The fleet stream.
        fleet: String,
        /// The other instance.
        instance: String,
        /// Its bucket count.
        theirs: u32,
        /// This instance's.
        ours: u32,
    },
}

/// The variants of [`Error`] without their payloads; a store error keeps
/// its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Store`], with the store error's kind.
    Store(message_store::ErrorKind),
    /// [`Error::HandlerFailed`].
    HandlerFailed,
    /// [`Error::ConsumerStopped`].
    ConsumerStopped,
    /// [`Error::ShutdownDeadline`].
    ShutdownDeadline,
    /// [`Error::FleetMismatch`].
    FleetMismatch,
}

impl Error {
    /// The variant without its payload, for comparisons.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(error) => ErrorKind::Store(error.kind()),
            Error::HandlerFailed { .. } => ErrorKind::HandlerFailed,
            Error::ConsumerStopped { .. } => ErrorKind::ConsumerStopped,
            Error::ShutdownDeadline { .. } => ErrorKind::ShutdownDeadline,
            Error::FleetMismatch { .. } => ErrorKind::FleetMismatch,
        }
    }

    /// The store's error, when the store refused or failed a call.
    pub fn store_error(&self) -> Option<&message_store::Error> {
        match self {
            Error::Store(error) => Some(error),
            _ => None,
        }
    }

    /// True when the same call may succeed if made again (a store error
    /// that passes; see [`message_store::Error::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.store_error()
            .is_some_and(message_store::Error::is_transient)
    }
}

fn display_cut(abandoned: Option<u64>, handled: Option<u64>, recorded: Option<u64>) -> String {
    let mut text = String::new();
    if let Some(position) = abandoned {
        text += &format!(
            "the handler of the message at global position {position} was dropped unfinished; "
        );
    }
    let shown = |position: Option<u64>| {
        position.map_or("nothing".to_owned(), |p| format!("global position {p}"))
    };
    text += &format!(
        "handled up to {}, recorded up to {}; ",
        shown(handled),
        shown(recorded)
    );
    text += &match recorded {
        // Resuming is inclusive: the recorded message is delivered again.
        Some(position) => {
            format!("a restart delivers the messages from global position {position} on again")
        }
        None => "a restart delivers everything from its start position again".to_owned(),
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_keeps_its_message_and_kind() {
        let store = message_store::Error::PositionStreamInUse {
            stream: "account:position-x".to_owned(),
        };
        let text = store.to_string();
        let error = Error::from(store);
        assert_eq!(error.to_string(), text);
        assert_eq!(
            error.kind(),
            ErrorKind::Store(message_store::ErrorKind::PositionStreamInUse)
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn a_cut_shutdown_says_what_a_restart_delivers_again() {
        let error = Error::ShutdownDeadline {
            category: "account".to_owned(),
            deadline: Duration::from_secs(1),
            abandoned: Some(7),
            handled: Some(6),
            recorded: Some(5),
        };
        let text = error.to_string();
        assert!(
            text.contains("global position 7 was dropped unfinished"),
            "{text}"
        );
        assert!(text.contains("from global position 5 on again"), "{text}");
    }
}
