//! A message as the memory store keeps it.

use chrono::{DateTime, Utc};
use message_store::{JsonData, Message, Metadata, NewMessage, StreamName};
use uuid::Uuid;

/// A message as kept in memory: about a third of a `Message`'s size (type as a
/// boxed str, metadata boxed and absent when empty), which matters when a test
/// or benchmark holds millions of them.
pub(crate) struct Stored {
    pub(crate) id: Uuid,
    pub(crate) stream_name: StreamName,
    pub(crate) message_type: Box<str>,
    pub(crate) position: u64,
    pub(crate) global_position: u64,
    pub(crate) time: DateTime<Utc>,
    pub(crate) data: JsonData,
    pub(crate) metadata: Option<Box<Metadata>>,
}

impl message_store::backend::units::PendingMessage for Stored {
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Stored {
    /// `new` as stored at `position` of `stream`, at `global_position`.
    pub(crate) fn new(
        new: NewMessage,
        stream: &StreamName,
        position: u64,
        global_position: u64,
        time: DateTime<Utc>,
    ) -> Stored {
        let metadata = (!new.metadata.is_empty()).then(|| Box::new(new.metadata));
        Stored {
            id: new.id,
            stream_name: stream.clone(),
            message_type: new.message_type.into_boxed_str(),
            position,
            global_position,
            time,
            data: JsonData::from_value(new.data),
            metadata,
        }
    }

    pub(crate) fn to_message(&self) -> Message {
        Message {
            id: self.id,
            stream_name: self.stream_name.clone(),
            message_type: self.message_type.to_string(),
            position: self.position,
            global_position: self.global_position,
            data: self.data.clone(),
            metadata: self.metadata.as_deref().cloned().unwrap_or_default(),
            time: self.time,
        }
    }

    pub(crate) fn correlation(&self) -> Option<&str> {
        self.metadata.as_ref()?.correlation()
    }

    /// The category of its stream.
    pub(crate) fn category(&self) -> &str {
        message_store::stream_name::category_of(self.stream_name.as_str())
    }
}
