//! Position streams: Eventide's position records, and reading the last
//! committed position back.

use serde_json::json;

use crate::error::Result;
use crate::ext::MessageStoreExt;
use crate::message::{Message, NewMessage};
use crate::store::MessageStore;
use crate::stream_name::StreamName;

/// The message type of a position record, as Eventide writes it.
pub const POSITION_RECORDED: &str = "Recorded";
/// The message type Eventide used for position records before mid-2018; still read.
pub const POSITION_UPDATED_LEGACY: &str = "Updated";

/// What a position stream holds: its last committed position and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommittedPosition {
    /// The last recorded global position, if any.
    pub position: Option<u64>,
    /// The position stream's version, to append the next record after it.
    pub version: Option<u64>,
}

/// Reads the last committed position of a position stream. Accepts
/// Eventide's `Recorded` and legacy `Updated` records.
pub async fn read_committed_position(
    store: &(impl MessageStore + ?Sized),
    position_stream: &StreamName,
) -> Result<CommittedPosition> {
    let Some(last) = store.last_message(position_stream).await? else {
        return Ok(CommittedPosition::default());
    };
    let version = Some(last.position);
    // Usually the last record is a position; if something else was appended
    // after it, look for the last position record rather than start over.
    let record = if is_position_record(&last) {
        Some(last)
    } else {
        match store
            .last_message_of_type(position_stream, POSITION_RECORDED)
            .await?
        {
            Some(recorded) => Some(recorded),
            None => {
                store
                    .last_message_of_type(position_stream, POSITION_UPDATED_LEGACY)
                    .await?
            }
        }
    };
    let position = match record {
        Some(record) => Some(recorded_position(&record)?),
        None => None,
    };
    Ok(CommittedPosition { position, version })
}

fn is_position_record(message: &Message) -> bool {
    message.message_type == POSITION_RECORDED || message.message_type == POSITION_UPDATED_LEGACY
}

fn recorded_position(record: &Message) -> Result<u64> {
    #[derive(serde::Deserialize)]
    struct Recorded {
        position: u64,
    }
    Ok(record.decode::<Recorded>()?.position)
}

/// The message that records a committed position.
pub fn position_record(global_position: u64) -> NewMessage {
    NewMessage::new(POSITION_RECORDED, json!({ "position": global_position }))
}
