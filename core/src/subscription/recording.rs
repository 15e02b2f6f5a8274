//! Recording a subscription's position: the state its commits share (the
//! position stream's version after our last record, a record whose outcome
//! is unknown, the last position recorded), and the write itself, which can
//! run apart from the subscription (a consumer's background position
//! writes) while the subscription reads on.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use super::position::position_record;
use crate::error::{Error, Result};
use crate::ext::MessageStoreExt;
use crate::store::MessageStore;
use crate::stream_name::StreamName;
use crate::version::ExpectedVersion;

/// What a subscription's commits know of its position stream.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    /// The position stream's version after our last record: a commit
    /// expects it, so a second consumer writing the stream is detected.
    pub(crate) version: Option<u64>,
    /// The record of a commit whose outcome is unknown (the call failed),
    /// so a retry of the same position sends the very same record.
    pub(crate) pending: Option<(u64, Uuid)>,
    /// The last position recorded: read at open, then each of our commits.
    pub(crate) recorded: Option<u64>,
}

/// The recording state, shared by a subscription and its detached commits.
pub(crate) type Shared = Arc<Mutex<Recording>>;

/// The state, locked (never across an await).
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Recording> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends the record of `global_position` to `stream`, expecting the
/// stream as our last record left it. If another writer moved it on, fails
/// with [`Error::PositionStreamInUse`] rather than let two consumers
/// overwrite each other's positions, unless the stream ends with this very
/// record (an earlier attempt landed although its reply was lost).
pub(crate) async fn record<S: MessageStore>(
    store: &S,
    stream: &StreamName,
    shared: &Shared,
    global_position: u64,
) -> Result<()> {
    let (expected, id) = {
        let mut state = lock(shared);
        let id = match state.pending {
            Some((position, id)) if position == global_position => id,
            _ => Uuid::new_v4(),
        };
        state.pending = Some((global_position, id));
        (ExpectedVersion::from_version(state.version), id)
    };
    let record = vec![position_record(global_position).with_id(id)];
    match store.write(stream, record, expected).await {
        Ok(version) => {
            let mut state = lock(shared);
            state.version = Some(version);
            state.pending = None;
            state.recorded = Some(global_position);
            Ok(())
        }
        Err(Error::WrongExpectedVersion { actual, .. }) => {
            let last = store.last_message(stream).await?;
            let mut state = lock(shared);
            state.pending = None;
            match last {
                Some(last) if last.id == id => {
                    state.version = actual;
                    state.recorded = Some(global_position);
                    Ok(())
                }
                _ => Err(Error::PositionStreamInUse {
                    stream: stream.as_str().to_owned(),
                }),
            }
        }
        Err(other) => Err(other),
    }
}
