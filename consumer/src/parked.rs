//! Parking messages a handler could not handle, listing and replaying them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::handlers::Outcome;
use crate::runtime;

use message_store::ExpectedVersion;
use message_store::MessageStore;
use message_store::MessageStoreExt;
use message_store::Metadata;
use message_store::{BatchSize, StreamRead};
use message_store::{Category, StreamName};
use message_store::{Error, Result};
use message_store::{Message, NewMessage};

/// The metadata key under which a parked message records where it came from.
pub const PARKED_FROM: &str = "parkedFrom";
/// The type of the marker written when a parked message was replayed.
pub const REPLAYED: &str = "ParkedMessageReplayed";
/// The type of the marker written when a parked message was purged: given
/// up on by an operator, never to be replayed. The parked copy stays in the
/// parked stream, as a record.
pub const PURGED: &str = "ParkedMessagePurged";

/// Where a parked message came from and why it was parked (camelCase on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedFrom {
    /// The original message's id.
    pub message_id: Uuid,
    /// Its stream.
    pub stream_name: String,
    /// Its stream position.
    pub position: u64,
    /// Its global position.
    pub global_position: u64,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// The consumer that parked it.
    pub consumer_id: String,
    /// The handler's last error.
    pub error: String,
    /// How many times the handler ran.
    pub attempts: u32,
    /// True when the original's data or metadata could not be read
    /// ([`Message::check`]): the parked copy then holds JSON `null` data (and
    /// only this record as metadata), and listing or replaying it reads the
    /// original from its stream again, as it is stored by then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
}

/// A message in a parked stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedMessage {
    /// Its position in the parked stream.
    pub parked_position: u64,
    /// The original message, as it was delivered.
    pub message: Message,
    /// Why and by whom it was parked.
    pub parked_from: ParkedFrom,
    /// True once it was replayed successfully.
    pub replayed: bool,
    /// True once it was purged ([`purge_parked`]): it is not replayed.
    pub purged: bool,
}

impl ParkedMessage {
    /// True while it waits for a replay: neither replayed nor purged.
    pub fn waiting(&self) -> bool {
        !self.replayed && !self.purged
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Replayed {
    parked_position: u64,
}

/// The parked copy of `message`: same type and data, metadata plus
/// `parkedFrom`, and a fresh id (a message parked again after a replay is a
/// new entry, to be replayed again).
pub(crate) fn parked_copy(
    message: &Message,
    consumer_id: &str,
    error: String,
    attempts: u32,
) -> NewMessage {
    let from = ParkedFrom {
        message_id: message.id,
        stream_name: message.stream_name.as_str().to_owned(),
        position: message.position,
        global_position: message.global_position,
        time: message.time,
        consumer_id: consumer_id.to_owned(),
        error,
        attempts,
        unreadable: message.check().is_err(),
    };
    // What cannot be read cannot be copied: the original stays in its stream.
    let mut metadata = match message.metadata.unreadable {
        Some(_) => Metadata::default(),
        None => message.metadata.clone(),
    };
    metadata.other.insert(
        PARKED_FROM.to_owned(),
        serde_json::to_value(&from).expect("parked-from record serializes"),
    );
    let data = match message.data.try_value() {
        Ok(value) => value.clone(),
        Err(_) => Value::Null,
    };
    NewMessage::new(message.message_type.clone(), data).with_metadata(metadata)
}

/// Writes the parked copy; if this very copy is already there (an earlier
/// attempt whose reply was lost), it counts as parked.
pub(crate) async fn park(
    store: &dyn MessageStore,
    parked_stream: &StreamName,
    copy: NewMessage,
) -> Result<()> {
    match store
        .write(parked_stream, vec![copy], ExpectedVersion::Any)
        .await
    {
        Ok(_) | Err(Error::DuplicateMessageId { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Every message the consumer `consumer_id` of `category` parked, oldest
/// first, with whether it was replayed since.
pub async fn parked_messages(
    store: &(impl MessageStore + ?Sized),
    category: &Category,
    consumer_id: &str,
) -> Result<Vec<ParkedMessage>> {
    let stream = category.parked_stream(consumer_id)?;
    let mut parked = Vec::new();
    let mut replayed = std::collections::HashSet::new();
    let mut purged = std::collections::HashSet::new();
    for record in store.read_stream_to_end(&stream).await? {
        let marker = !record.metadata.other.contains_key(PARKED_FROM);
        if record.message_type == REPLAYED && marker {
            replayed.insert(record.decode::<Replayed>()?.parked_position);
            continue;
        }
        if record.message_type == PURGED && marker {
            purged.insert(record.decode::<Replayed>()?.parked_position);
            continue;
        }
        let Some(from) = record.metadata.other.get(PARKED_FROM) else {
            continue;
        };
        let from: ParkedFrom =
            serde_json::from_value(from.clone()).map_err(|source| Error::Decode {
                stream: record.stream_name.as_str().to_owned(),
                position: record.position,
                global_position: record.global_position,
                message_type: record.message_type.clone(),
                source,
            })?;
        if from.unreadable {
            if let Some(original) = original(store, &from).await? {
                parked.push(ParkedMessage {
                    parked_position: record.position,
                    message: original,
                    parked_from: from,
                    replayed: false,
                    purged: false,
                });
                continue;
            }
        }
        let mut metadata = record.metadata.clone();
        metadata.other.remove(PARKED_FROM);
        let message = Message {
            id: from.message_id,
            stream_name: StreamName::new(from.stream_name.clone())?,
            message_type: record.message_type.clone(),
            position: from.position,
            global_position: from.global_position,
            data: record.data.clone(),
            metadata,
            time: from.time,
        };
        parked.push(ParkedMessage {
            parked_position: record.position,
            message,
            parked_from: from,
            replayed: false,
            purged: false,
        });
    }
    for entry in &mut parked {
        entry.replayed = replayed.contains(&entry.parked_position);
        entry.purged = purged.contains(&entry.parked_position);
    }
    Ok(parked)
}

/// The message a parked copy was made of, read from its stream (`None` when
/// it is no longer there).
async fn original(
    store: &(impl MessageStore + ?Sized),
    from: &ParkedFrom,
) -> Result<Option<Message>> {
    let stream = StreamName::new(from.stream_name.clone())?;
    let options = StreamRead::new()
        .with_position(from.position)
        .with_batch_size(BatchSize::Limit(1));
    let found = store.read_stream(&stream, options).await?;
    Ok(found.into_iter().find(|m| m.id == from.message_id))
}

/// True when `message` is handed to a handler by
/// [`Consumer::replay_parked`](crate::Consumer::replay_parked):
/// a parked message run again, with its original positions, after the
/// consumer went past it (see [idempotent handlers](crate#idempotent-handlers)).
pub fn is_replay(message: &Message) -> bool {
    message.metadata.other.contains_key(PARKED_FROM)
}

/// The message a replay hands to the handlers: the original, its metadata
/// marked with the parked-from record (which [`is_replay`] looks for).
pub(crate) fn as_replay(entry: &ParkedMessage) -> Message {
    let mut message = entry.message.clone();
    message.metadata.other.insert(
        PARKED_FROM.to_owned(),
        serde_json::to_value(&entry.parked_from).expect("parked-from record serializes"),
    );
    message
}

/// Records that the parked message at `parked_position` was replayed.
pub(crate) async fn mark_replayed(
    store: &dyn MessageStore,
    parked_stream: &StreamName,
    parked_position: u64,
) -> Result<()> {
    let marker = NewMessage::from_data(REPLAYED, &Replayed { parked_position })?;
    store
        .write(parked_stream, vec![marker], ExpectedVersion::Any)
        .await
        .map(|_| ())
}

/// The parked messages [`purge_parked`] would purge now, given the same
/// arguments, purging nothing: those still waiting at `parked_positions`
/// (all waiting ones when `None`), oldest first. A position that holds no
/// parked message is an [`Error::InvalidOption`].
pub async fn parked_to_purge(
    store: &(impl MessageStore + ?Sized),
    category: &Category,
    consumer_id: &str,
    parked_positions: Option<&[u64]>,
) -> Result<Vec<ParkedMessage>> {
    let stream = category.parked_stream(consumer_id)?;
    let parked = parked_messages(store, category, consumer_id).await?;
    if let Some(asked) = parked_positions {
        if let Some(unknown) = asked
            .iter()
            .find(|p| !parked.iter().any(|e| e.parked_position == **p))
        {
            return Err(Error::InvalidOption {
                option: "parked_positions",
                problem: format!("{stream} holds no parked message at position {unknown}"),
            });
        }
    }
    Ok(parked
        .into_iter()
        .filter(|e| {
            e.waiting() && parked_positions.is_none_or(|asked| asked.contains(&e.parked_position))
        })
        .collect())
}

/// Purges the parked messages at `parked_positions` (all waiting ones when
/// `None`) of the consumer `consumer_id` of `category`: each gets a marker
/// in the parked stream, so it is no longer listed as waiting and never
/// replayed. Returns the positions purged now (those already replayed or
/// purged are left as they are; [`parked_to_purge`] says which those would
/// be); a position that holds no parked message is an
/// [`Error::InvalidOption`] and purges nothing.
pub async fn purge_parked(
    store: &(impl MessageStore + ?Sized),
    category: &Category,
    consumer_id: &str,
    parked_positions: Option<&[u64]>,
) -> Result<Vec<u64>> {
    let chosen: Vec<u64> = parked_to_purge(store, category, consumer_id, parked_positions)
        .await?
        .iter()
        .map(|e| e.parked_position)
        .collect();
    if chosen.is_empty() {
        return Ok(chosen);
    }
    let markers = chosen
        .iter()
        .map(|&parked_position| NewMessage::from_data(PURGED, &Replayed { parked_position }))
        .collect::<Result<Vec<_>>>()?;
    let stream = category.parked_stream(consumer_id)?;
    store.write(&stream, markers, ExpectedVersion::Any).await?;
    Ok(chosen)
}

/// What [`Consumer::replay_parked`](crate::Consumer::replay_parked) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Parked messages handled successfully now (and marked replayed).
    pub replayed: u64,
    /// Parked messages whose handler still failed, with the error.
    pub still_failing: Vec<(u64, String)>,
}

impl crate::Consumer {
    /// Runs the handlers again on every parked message not yet replayed
    /// (under the retry policy and the handler timeout), oldest first; each
    /// success is marked in the parked stream. Handlers see the original
    /// message, with its positions, and [`is_replay`] true for it: see
    /// [idempotent handlers](crate#idempotent-handlers).
    pub async fn replay_parked(&self, store: &dyn MessageStore) -> crate::Result<ReplayReport> {
        self.options.validate()?;
        let Some(consumer_id) = self.options.subscription.consumer_id() else {
            return Ok(ReplayReport::default());
        };
        let stream = self.category.parked_stream(consumer_id)?;
        let never_cancelled = CancellationToken::new();
        let mut report = ReplayReport::default();
        for entry in parked_messages(store, &self.category, consumer_id).await? {
            if !entry.waiting() {
                continue;
            }
            let token = never_cancelled.clone();
            let message = as_replay(&entry);
            let outcome = self
                .handlers
                .dispatch(
                    &message,
                    &self.options.retry,
                    self.options.handler_timeout,
                    |delay| {
                        let token = token.clone();
                        Box::pin(async move { runtime::pause(&token, delay).await })
                    },
                )
                .await;
            match outcome {
                Outcome::Handled { .. } => {
                    mark_replayed(store, &stream, entry.parked_position).await?;
                    report.replayed += 1;
                }
                Outcome::Failed { error, .. } => report
                    .still_failing
                    .push((entry.parked_position, error.to_string())),
                Outcome::Cancelled => {}
            }
        }
        Ok(report)
    }
}
