//! A group's first attempt: every call's messages in one autocommit
//! statement (one round trip, one commit flush), each call with its own
//! expected version, chained over its messages as a lone batch write
//! chains it. When no call is refused, that is all a group costs.
//!
//! The rows go in the order of their categories' lock keys (the order
//! units of work take locks in), each category's calls in queue order:
//! `write_message` takes a category's lock at its first row, so groups of
//! several categories never deadlock with one another.

use message_store::stream_name::category_of;
use message_store::{Error, Result};

use super::sql::{self, Rows};
use super::Queued;
use crate::pooler::leased;
use crate::retry::{is_lost_reply, Sent};
use crate::{convert, PostgresStore};

/// How the first attempt ended.
pub(super) enum Attempt {
    /// Written: each call's outcome.
    Written(Vec<Result<u64>>),
    /// The reply was lost after the statement went out: each call's
    /// outcome is unknown.
    Unknown(Vec<Result<u64>>),
    /// Refused or failed before it could commit: nothing stored.
    Failed(sqlx::Error),
}

/// Writes every call of `group` in one statement.
pub(super) async fn attempt(store: &PostgresStore, group: &[Queued]) -> Attempt {
    let mut order: Vec<(i64, usize)> = group
        .iter()
        .enumerate()
        .map(|(index, call)| {
            (
                message_store::hash_64(category_of(call.stream.as_str())),
                index,
            )
        })
        .collect();
    order.sort_unstable();
    let mut rows = Rows::default();
    for &(_, index) in &order {
        let call = &group[index];
        rows.push_call(call, convert::expected_version(call.expected));
    }
    let sent = Sent::default();
    let written = leased!(store, sent = sent, |conn, persistent| sql::write(
        conn, persistent, &rows
    ))
    .await;
    match written {
        Ok(positions) => {
            let mut outcomes: Vec<Option<Result<u64>>> = group.iter().map(|_| None).collect();
            let mut positions = positions.into_iter();
            for &(_, index) in &order {
                let mine: Vec<i64> = positions.by_ref().take(group[index].batch.len()).collect();
                outcomes[index] = Some(convert::last_written(mine).map_err(Error::from));
            }
            Attempt::Written(outcomes.into_iter().flatten().collect())
        }
        Err(error) if sent.get() && is_lost_reply(&error) => {
            let cause = std::sync::Arc::new(error);
            Attempt::Unknown(
                group
                    .iter()
                    .map(|call| Err(super::run::unknown(call, &cause)))
                    .collect(),
            )
        }
        Err(error) => Attempt::Failed(error),
    }
}

impl<'a> Rows<'a> {
    /// Adds `call`'s messages, the first expecting the stream at `first`
    /// and each later one the message before it (`None`: expect nothing,
    /// as for `Any`).
    pub(super) fn push_call(&mut self, call: &'a Queued, first: Option<i64>) {
        let batch = &call.batch;
        for k in 0..batch.len() {
            self.ids.push(&batch.ids[k]);
            self.streams.push(call.stream.as_str());
            self.types.push(&batch.types[k]);
            self.data.push(&batch.data[k]);
            self.metadata.push(batch.metadata[k].as_deref());
            self.expected
                .push(first.map(|version| version + convert::count(k)));
        }
    }
}
