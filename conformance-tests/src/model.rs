//! A pure reference model of Message DB's semantics, written independently of
//! the backends, that the property tests compare them with.

use std::collections::HashSet;

use message_store::{hash_64, ErrorKind};
use serde_json::Value;
use uuid::Uuid;

/// A message as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMessage {
    /// Its id.
    pub id: Uuid,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub message_type: String,
    /// Its stream position.
    pub position: u64,
    /// Its global position, as the backend assigned it (learned after the write).
    pub global_position: u64,
    /// Its data.
    pub data: Value,
    /// Its metadata's `correlationStreamName`.
    pub correlation: Option<String>,
}

/// A message to write, as the model sees it.
#[derive(Debug, Clone)]
pub struct ModelWrite {
    /// Its id.
    pub id: Uuid,
    /// Its type.
    pub message_type: String,
    /// Its data.
    pub data: Value,
    /// Its metadata's `correlationStreamName`.
    pub correlation: Option<String>,
}

/// The expected version, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelExpected {
    /// Any version.
    Any,
    /// No stream.
    NoStream,
    /// This version.
    Exact(u64),
}

/// Every message, in global order.
#[derive(Debug, Default, Clone)]
pub struct Model {
    messages: Vec<ModelMessage>,
    ids: HashSet<Uuid>,
}

fn category(stream: &str) -> &str {
    match stream.find('-') {
        Some(dash) => &stream[..dash],
        None => stream,
    }
}

fn cardinal_id(stream: &str) -> Option<&str> {
    let id = &stream[stream.find('-')? + 1..];
    Some(match id.find('+') {
        Some(plus) => &id[..plus],
        None => id,
    })
}

impl Model {
    /// The messages of a stream, in position order.
    fn stream(&self, stream: &str) -> impl Iterator<Item = &ModelMessage> {
        let stream = stream.to_owned();
        self.messages.iter().filter(move |m| m.stream == stream)
    }

    /// The stream's version.
    pub fn version(&self, stream: &str) -> Option<u64> {
        self.stream(stream).last().map(|m| m.position)
    }

    /// Applies a write; on success returns the last position. Global positions
    /// are left at 0 until [`Model::learn_global_positions`].
    pub fn write(
        &mut self,
        stream: &str,
        batch: &[ModelWrite],
        expected: ModelExpected,
    ) -> Result<u64, ErrorKind> {
        if batch.is_empty() {
            return Err(ErrorKind::EmptyBatch);
        }
        let mut in_batch = HashSet::new();
        if batch.iter().any(|m| !in_batch.insert(m.id)) {
            return Err(ErrorKind::DuplicateMessageId);
        }
        let version = self.version(stream);
        let ok = match expected {
            ModelExpected::Any => true,
            ModelExpected::NoStream => version.is_none(),
            ModelExpected::Exact(v) => version == Some(v),
        };
        if !ok {
            return Err(ErrorKind::WrongExpectedVersion);
        }
        if batch.iter().any(|m| self.ids.contains(&m.id)) {
            return Err(ErrorKind::DuplicateMessageId);
        }
        let mut position = version.map_or(0, |v| v + 1);
        for message in batch {
            self.ids.insert(message.id);
            self.messages.push(ModelMessage {
                id: message.id,
                stream: stream.to_owned(),
                message_type: message.message_type.clone(),
                position,
                global_position: 0,
                data: message.data.clone(),
                correlation: message.correlation.clone(),
            });
            position += 1;
        }
        Ok(position - 1)
    }

    /// Records the global positions the backend gave the last `gps.len()`
    /// messages; they must exceed every earlier one and strictly increase.
    pub fn learn_global_positions(&mut self, gps: &[u64]) -> Result<(), String> {
        let start = self.messages.len() - gps.len();
        let mut previous = self.messages[..start]
            .last()
            .map_or(0, |m| m.global_position);
        for (message, &gp) in self.messages[start..].iter_mut().zip(gps) {
            if gp <= previous {
                return Err(format!("global position {gp} does not exceed {previous}"));
            }
            message.global_position = gp;
            previous = gp;
        }
        Ok(())
    }

    /// A stream read.
    pub fn read_stream(
        &self,
        stream: &str,
        from: u64,
        limit: Option<u64>,
    ) -> Result<Vec<ModelMessage>, ErrorKind> {
        if !stream.contains('-') {
            return Err(ErrorKind::NotAStream);
        }
        Ok(take(
            self.stream(stream).filter(|m| m.position >= from),
            limit,
        ))
    }

    /// A category read with optional correlation and group (member, size).
    pub fn read_category(
        &self,
        wanted: &str,
        from: u64,
        limit: Option<u64>,
        correlation: Option<&str>,
        group: Option<(u32, u32)>,
    ) -> Vec<ModelMessage> {
        let matches = |m: &&ModelMessage| {
            category(&m.stream) == wanted
                && m.global_position >= from
                && correlation
                    .is_none_or(|c| m.correlation.as_deref().is_some_and(|mc| category(mc) == c))
                && group.is_none_or(|(member, size)| {
                    cardinal_id(&m.stream).is_some_and(|id| {
                        hash_64(id).unsigned_abs() % u64::from(size) == u64::from(member)
                    })
                })
        };
        take(self.messages.iter().filter(matches), limit)
    }

    /// The last message of a stream, optionally of a type.
    pub fn last_message(&self, stream: &str, message_type: Option<&str>) -> Option<ModelMessage> {
        self.stream(stream)
            .filter(|m| message_type.is_none_or(|t| m.message_type == t))
            .last()
            .cloned()
    }

    /// The global position of the k-th message overall (wrapping), if any.
    pub fn global_position_at(&self, k: usize) -> Option<u64> {
        if self.messages.is_empty() {
            None
        } else {
            Some(self.messages[k % self.messages.len()].global_position)
        }
    }

    /// Every id written (for duplicate-id operations).
    pub fn id_at(&self, k: usize) -> Option<Uuid> {
        if self.messages.is_empty() {
            None
        } else {
            Some(self.messages[k % self.messages.len()].id)
        }
    }

    /// The global position after the last message.
    pub fn head(&self) -> u64 {
        self.messages.last().map_or(1, |m| m.global_position + 1)
    }
}

fn take<'a>(
    messages: impl Iterator<Item = &'a ModelMessage>,
    limit: Option<u64>,
) -> Vec<ModelMessage> {
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    messages.take(limit).cloned().collect()
}
