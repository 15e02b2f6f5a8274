//! One group's run: a single call is written as it would be alone; more
//! are first written in one statement ([`optimistic`](super::optimistic)).
//! When the database refuses that statement (a call's wrong expected
//! version or duplicate id fails it whole), nothing of it is stored, and
//! the group runs once more, checked: in one transaction (`BEGIN`, the
//! check, one write statement, `COMMIT`), where each call is judged apart
//! ([`plan`](super::plan)) and only the good ones are written.
//!
//! When that fails too before its commit (a deadlock with a unit of work,
//! an id the check could not see, a broken connection), or the first
//! statement's session was ended, each call is written on its own, in
//! queue order. When a commit's reply is lost, every call it would have
//! written fails with [`Error::OutcomeUnknown`], as a lone write would.

use message_store::stream_name::category_of;
use message_store::{Error, ExpectedVersion, Result};
use sqlx::postgres::PgTransactionManager;
use sqlx::TransactionManager;

use super::optimistic::{self, Attempt};
use super::plan::{self, Verdict};
use super::sql::{self, Rows};
use super::Queued;
use crate::retry::{is_connection_error, is_lost_reply, is_terminated_session};
use crate::statements;
use crate::warm::Lease;
use crate::{convert, PostgresStore};

/// The group's transaction, READ COMMITTED whatever the server's default
/// (Message DB's version check needs fresh snapshots, see `unit`).
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Writes `group` and answers each of its calls.
pub(super) async fn run(store: &PostgresStore, group: Vec<Queued>) {
    if group.len() == 1 {
        for call in group {
            let result = store
                .write_alone(&call.stream, &call.batch, call.expected)
                .await;
            call.answer(result);
        }
        return;
    }
    let outcomes = match optimistic::attempt(store, &group).await {
        Attempt::Written(outcomes) | Attempt::Unknown(outcomes) => Ok(outcomes),
        Attempt::Failed(error) if is_connection_error(&error) => Err(error),
        Attempt::Failed(error) => {
            tracing::debug!(%error, calls = group.len(), "a group's statement was refused; checking each call");
            checked(store, &group).await
        }
    };
    match outcomes {
        Ok(outcomes) => {
            for (call, outcome) in group.into_iter().zip(outcomes) {
                call.answer(outcome);
            }
        }
        Err(error) => {
            tracing::debug!(%error, calls = group.len(), "a group failed; writing its calls one at a time");
            for call in group {
                let result = store
                    .write_alone(&call.stream, &call.batch, call.expected)
                    .await;
                call.answer(result);
            }
        }
    }
}

/// The group in one transaction, each call judged apart: each call's
/// outcome, or the failure that left nothing stored.
async fn checked(
    store: &PostgresStore,
    group: &[Queued],
) -> std::result::Result<Vec<Result<u64>>, sqlx::Error> {
    let persistent = !store.inner.pooled;
    let mut lease = store.inner.warm.lease().await?;
    if let Err(error) = PgTransactionManager::begin(&mut lease, Some(BEGIN.into())).await {
        return Err(give_back(lease, error));
    }
    let written = match check_and_write(&mut lease, persistent, group).await {
        Ok(written) => written,
        Err(error) => return Err(abort(lease, error).await),
    };
    match PgTransactionManager::commit(&mut lease).await {
        Ok(()) => lease.done(&Ok::<(), sqlx::Error>(())),
        Err(error) => {
            // sqlx still counts the transaction open: the connection is spent.
            lease.discard();
            if !(is_lost_reply(&error) || is_terminated_session(&error)) {
                return Err(error);
            }
            let cause = std::sync::Arc::new(error);
            return Ok(group
                .iter()
                .zip(written)
                .map(|(call, outcome)| outcome.and_then(|_| Err(unknown(call, &cause))))
                .collect());
        }
    }
    Ok(written)
}

/// The check and the write, inside the open transaction: each call's
/// outcome should the commit succeed.
async fn check_and_write(
    conn: &mut sqlx::PgConnection,
    persistent: bool,
    group: &[Queued],
) -> std::result::Result<Vec<Result<u64>>, sqlx::Error> {
    let locks = statements::lock_order(group.iter().map(|call| category_of(call.stream.as_str())));
    let mut streams: Vec<&str> = group.iter().map(|call| call.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let ids: Vec<&str> = group
        .iter()
        .flat_map(|call| call.batch.ids.iter().map(String::as_str))
        .collect();
    let found = sql::check(conn, persistent, &locks, &streams, &ids).await?;

    let calls: Vec<plan::Call<'_>> = group
        .iter()
        .map(|call| plan::Call {
            stream: call.stream.as_str(),
            expected: call.expected,
            ids: &call.ids,
        })
        .collect();
    let verdicts = plan::plan(&calls, &found.versions, &found.stored);
    let mut rows = Rows::default();
    for (call, verdict) in group.iter().zip(&verdicts) {
        if let Verdict::Write { version } = verdict {
            let first = (call.expected != ExpectedVersion::Any).then_some(*version);
            rows.push_call(call, first);
        }
    }
    let mut positions = if rows.ids.is_empty() {
        Vec::new()
    } else {
        sql::write(conn, persistent, &rows).await?
    }
    .into_iter();
    Ok(group
        .iter()
        .zip(verdicts)
        .map(|(call, verdict)| match verdict {
            Verdict::Write { .. } => {
                let mine: Vec<i64> = positions.by_ref().take(call.batch.len()).collect();
                Ok(convert::last_written(mine)?)
            }
            Verdict::Refuse(error) => Err(error),
        })
        .collect())
}

/// The error of a call whose commit lost its reply (`cause`, shared by
/// the group's calls).
pub(super) fn unknown(call: &Queued, cause: &std::sync::Arc<sqlx::Error>) -> Error {
    Error::OutcomeUnknown {
        stream: call.stream.as_str().to_owned(),
        source: Box::new(SharedCause(cause.clone())),
    }
}

/// Ends the lease after a failure outside a transaction.
fn give_back(lease: Lease, error: sqlx::Error) -> sqlx::Error {
    let failed: std::result::Result<(), sqlx::Error> = Err(error);
    lease.done(&failed);
    match failed {
        Err(error) => error,
        Ok(()) => unreachable!("a failure"),
    }
}

/// Rolls the transaction back after `error`, keeping the connection when
/// that worked.
async fn abort(mut lease: Lease, error: sqlx::Error) -> sqlx::Error {
    if !is_connection_error(&error) && PgTransactionManager::rollback(&mut lease).await.is_ok() {
        lease.done(&Ok::<(), sqlx::Error>(()));
    } else {
        lease.discard();
    }
    error
}

/// One lost commit reply, the cause of every call's unknown outcome.
#[derive(Debug)]
struct SharedCause(std::sync::Arc<sqlx::Error>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the commit of a group of writes lost its reply: {}",
            self.0
        )
    }
}

impl std::error::Error for SharedCause {}
