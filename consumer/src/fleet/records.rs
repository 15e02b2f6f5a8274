//! The fleet's records and how they are read and written: heartbeats in
//! the fleet stream, claims and releases in each bucket's position stream.
//!
//! Every record is an ordinary message written through the
//! [`MessageStore`] trait; claims and releases are compare-and-swap writes
//! (an expected version), heartbeats are appends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use message_store::{Error, StreamName};
use message_store::{ExpectedVersion, Message, MessageStore, MessageStoreExt, NewMessage, Result};

/// The type of an instance's heartbeat in the fleet stream.
pub const HEARTBEAT: &str = "Heartbeat";
/// The type of the record an instance leaving the fleet writes last.
pub const LEFT: &str = "Left";
/// The type of the record that gives a bucket to an instance; its stream
/// position is the bucket's generation.
pub const CLAIMED: &str = "Claimed";
/// The type of the record an instance writes when it gives a bucket up.
pub const RELEASED: &str = "Released";

/// A heartbeat's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Heartbeat {
    pub(crate) instance: String,
    /// The fleet's bucket count as this instance sees it.
    pub(crate) buckets: u32,
    pub(crate) lease_ms: u64,
    /// The buckets it runs now.
    pub(crate) running: Vec<u32>,
    /// False while its own renewals are not landing in time: it holds
    /// nothing and is not to be planned with.
    #[serde(default = "ready_by_default")]
    pub(crate) ready: bool,
}

fn ready_by_default() -> bool {
    true
}

impl Heartbeat {
    pub(crate) fn message(&self) -> NewMessage {
        NewMessage::new(HEARTBEAT, json!(self))
    }
}

/// A claim's or a release's data. `position` repeats the bucket's last
/// recorded position, so a reader that takes the position from a position
/// stream's last message (as Eventide's consumers do) still finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Transfer {
    pub(crate) instance: String,
    pub(crate) position: Option<u64>,
}

/// Who holds a bucket, from its position stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BucketRecord {
    /// The position stream's version (`None`: no stream yet).
    pub(crate) version: Option<u64>,
    /// The last claim not released since: its instance, generation and
    /// store time.
    pub(crate) claim: Option<Claim>,
}

/// A standing claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) instance: String,
    pub(crate) generation: u64,
    pub(crate) time: DateTime<Utc>,
}

fn transfer(message: &Message) -> Result<Transfer> {
    message.decode::<Transfer>()
}

/// Reads who holds the bucket whose position stream is `stream`. `cached`
/// is the last answer: while the version has not moved it is still right.
pub(crate) async fn read_bucket(
    store: &dyn MessageStore,
    stream: &StreamName,
    cached: &BucketRecord,
) -> Result<BucketRecord> {
    let Some(last) = store.last_message(stream).await? else {
        return Ok(BucketRecord::default());
    };
    if Some(last.position) == cached.version {
        return Ok(cached.clone());
    }
    let version = Some(last.position);
    let claimed = match last.message_type.as_str() {
        CLAIMED => Some(last),
        RELEASED => None,
        // Positions were recorded since: look for the last transfer.
        _ => {
            let claimed = store.last_message_of_type(stream, CLAIMED).await?;
            let released = store.last_message_of_type(stream, RELEASED).await?;
            match (claimed, released) {
                (Some(c), Some(r)) if r.position > c.position => None,
                (claimed, _) => claimed,
            }
        }
    };
    let claim = match claimed {
        Some(message) => Some(Claim {
            instance: transfer(&message)?.instance,
            generation: message.position,
            time: message.time,
        }),
        None => None,
    };
    Ok(BucketRecord { version, claim })
}

/// Claims a bucket for `instance`, expecting its position stream at
/// `version`: the new generation and whether the bucket has a recorded
/// position, or `None` when someone else wrote first.
pub(crate) async fn claim(
    store: &dyn MessageStore,
    stream: &StreamName,
    version: Option<u64>,
    instance: &str,
) -> Result<Option<(u64, bool)>> {
    let expected = ExpectedVersion::from_version(version);
    let (written, position) = transfer_at(store, stream, CLAIMED, instance, expected).await?;
    Ok(written.map(|generation| (generation, position.is_some())))
}

/// Appends a claim or a release carrying the bucket's recorded position,
/// expecting `expected`: the record's position and the recorded position,
/// or no record when someone else wrote first.
async fn transfer_at(
    store: &dyn MessageStore,
    stream: &StreamName,
    kind: &str,
    instance: &str,
    expected: ExpectedVersion,
) -> Result<(Option<u64>, Option<u64>)> {
    let position = message_store::backend::read_committed_position(store, stream)
        .await?
        .position;
    let record = Transfer {
        instance: instance.to_owned(),
        position,
    };
    let message = NewMessage::new(kind, json!(record));
    match store.write(stream, vec![message], expected).await {
        Ok(written) => Ok((Some(written), position)),
        Err(Error::WrongExpectedVersion { .. }) => Ok((None, position)),
        Err(other) => Err(other),
    }
}

/// Releases a bucket if the claim at `generation` still stands (nobody
/// took it over since); true when released.
pub(crate) async fn release(
    store: &dyn MessageStore,
    stream: &StreamName,
    generation: u64,
    instance: &str,
) -> Result<bool> {
    let standing = read_bucket(store, stream, &BucketRecord::default()).await?;
    let (Some(version), Some(claim)) = (standing.version, standing.claim) else {
        return Ok(false);
    };
    if claim.generation != generation {
        return Ok(false);
    }
    let expected = ExpectedVersion::Exact(version);
    let (written, _) = transfer_at(store, stream, RELEASED, instance, expected).await?;
    Ok(written.is_some())
}
