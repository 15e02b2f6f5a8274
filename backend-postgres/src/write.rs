//! A write on its own: one statement (one round trip, one transaction) on
//! a leased connection, sent again while the server reports it had ended
//! the session first. Every write without group commit, a lone write with
//! it, and each call of a group that failed as a whole take this path.

use message_store::{ExpectedVersion, Result, StreamName};

use crate::error::{map_error, WriteContext};
use crate::pooler::leased;
use crate::retry::{write_with_retry, Sent};
use crate::statements::{self, Batch};
use crate::{convert, PostgresStore};

impl PostgresStore {
    /// Writes `batch` to `stream` expecting `expected`: the last position.
    pub(crate) async fn write_alone(
        &self,
        stream: &StreamName,
        batch: &Batch,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let sent = Sent::default();
        let positions = write_with_retry(self.attempts(), || {
            leased!(self, sent = sent, |conn, persistent| statements::write(
                conn, persistent, stream, batch, expected
            ))
        })
        .await
        .map_err(|e| {
            let context = WriteContext {
                stream: stream.as_str(),
                expected,
                sent: sent.get(),
            };
            map_error(e, Some(&context))
        })?;
        Ok(convert::last_written(positions)?)
    }
}
