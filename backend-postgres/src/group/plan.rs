//! Which calls of a group are written and which are refused, decided in
//! Rust from what the group's transaction read under the categories'
//! locks: each stream's version and which of the group's ids are stored.
//!
//! The calls are judged in queue order, each against the store as the
//! calls before it left it, so every call gets the outcome it would have
//! had alone, run in that order. A call is refused as Message DB's
//! `write_message` refuses it: a wrong expected version first (checked
//! at its first message), then the first of its ids already stored.

use std::collections::{HashMap, HashSet};

use message_store::{Error, ExpectedVersion};
use uuid::Uuid;

use crate::convert;

/// A call as the plan sees it.
pub(crate) struct Call<'a> {
    pub(crate) stream: &'a str,
    pub(crate) expected: ExpectedVersion,
    pub(crate) ids: &'a [Uuid],
}

/// What happens to one call.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Written after `version` (`-1`: the stream had none), its messages
    /// taking the next positions.
    Write {
        /// The stream's version before the call.
        version: i64,
    },
    /// Refused, nothing of it written.
    Refuse(Error),
}

/// Judges `calls` in order. `versions` holds each stream's version (`-1`
/// or absent: no stream); `stored` the ids of the group already stored.
pub(crate) fn plan(
    calls: &[Call<'_>],
    versions: &HashMap<String, i64>,
    stored: &HashSet<Uuid>,
) -> Vec<Verdict> {
    let mut versions: HashMap<&str, i64> = versions
        .iter()
        .map(|(stream, version)| (stream.as_str(), *version))
        .collect();
    let mut taken: HashSet<Uuid> = HashSet::new();
    calls
        .iter()
        .map(|call| {
            let version = versions.get(call.stream).copied().unwrap_or(-1);
            if !call.expected.matches(convert::version_from_bigint(version)) {
                return Verdict::Refuse(Error::WrongExpectedVersion {
                    stream: call.stream.to_owned(),
                    expected: call.expected,
                    actual: convert::version_from_bigint(version),
                });
            }
            let mut own = HashSet::new();
            let duplicate = call
                .ids
                .iter()
                .find(|id| stored.contains(id) || taken.contains(id) || !own.insert(**id));
            if let Some(id) = duplicate {
                return Verdict::Refuse(Error::DuplicateMessageId { id: *id });
            }
            taken.extend(own);
            versions.insert(call.stream, version + convert::count(call.ids.len()));
            Verdict::Write { version }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    fn summary(verdicts: &[Verdict]) -> Vec<String> {
        verdicts
            .iter()
            .map(|v| match v {
                Verdict::Write { version } => format!("write after {version}"),
                Verdict::Refuse(Error::WrongExpectedVersion { actual, .. }) => {
                    format!("wrong version, actual {actual:?}")
                }
                Verdict::Refuse(Error::DuplicateMessageId { .. }) => "duplicate".to_owned(),
                Verdict::Refuse(other) => format!("{other}"),
            })
            .collect()
    }

    #[test]
    fn each_call_sees_the_calls_before_it() {
        let (a, b, c) = (ids(2), ids(1), ids(1));
        let calls = [
            Call {
                stream: "s-1",
                expected: ExpectedVersion::NoStream,
                ids: &a,
            },
            Call {
                stream: "s-1",
                expected: ExpectedVersion::NoStream,
                ids: &b,
            },
            Call {
                stream: "s-1",
                expected: ExpectedVersion::Exact(1),
                ids: &c,
            },
        ];
        let verdicts = plan(&calls, &HashMap::new(), &HashSet::new());
        assert_eq!(
            summary(&verdicts),
            [
                "write after -1",
                "wrong version, actual Some(1)",
                "write after 1"
            ]
        );
    }

    #[test]
    fn a_refused_call_leaves_the_stream_as_it_was() {
        let (stored, fresh, again) = (ids(1), ids(2), ids(1));
        let mixed = vec![fresh[0], stored[0]];
        let calls = [
            Call {
                stream: "s-1",
                expected: ExpectedVersion::Exact(4),
                ids: &mixed,
            },
            Call {
                stream: "s-1",
                expected: ExpectedVersion::Exact(4),
                ids: &again,
            },
            Call {
                stream: "s-2",
                expected: ExpectedVersion::Any,
                ids: &fresh[..1],
            },
        ];
        let versions = HashMap::from([("s-1".to_owned(), 4)]);
        let verdicts = plan(&calls, &versions, &HashSet::from([stored[0]]));
        // The first call's fresh id was not taken, since the call was refused.
        assert_eq!(
            summary(&verdicts),
            ["duplicate", "write after 4", "write after -1"]
        );
    }

    #[test]
    fn an_id_twice_in_a_group_or_a_call_is_a_duplicate() {
        let (id, other) = (ids(1), ids(1));
        let twice = vec![other[0], other[0]];
        let calls = [
            Call {
                stream: "s-1",
                expected: ExpectedVersion::Any,
                ids: &id,
            },
            Call {
                stream: "s-2",
                expected: ExpectedVersion::Any,
                ids: &id,
            },
            Call {
                stream: "s-3",
                expected: ExpectedVersion::Any,
                ids: &twice,
            },
        ];
        let verdicts = plan(&calls, &HashMap::new(), &HashSet::new());
        assert_eq!(
            summary(&verdicts),
            ["write after -1", "duplicate", "duplicate"]
        );
    }

    #[test]
    fn the_version_is_checked_before_the_ids() {
        let id = ids(1);
        let calls = [Call {
            stream: "s-1",
            expected: ExpectedVersion::Exact(0),
            ids: &id,
        }];
        let verdicts = plan(&calls, &HashMap::new(), &HashSet::from([id[0]]));
        assert_eq!(summary(&verdicts), ["wrong version, actual None"]);
    }
}
