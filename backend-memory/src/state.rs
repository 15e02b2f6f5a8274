//! The store's synchronous state: every transition happens under one lock and
//! never awaits, so a write is atomic and visible all at once.

use std::collections::{HashMap, HashSet};

use chrono::{SubsecRound, Utc};
use message_store::{
    stream_name, Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, Result,
    StreamName, StreamRead,
};
use uuid::Uuid;

/// Messages in global order plus the indexes reads need.
#[derive(Default)]
pub(crate) struct State {
    /// Every message, in global-position order.
    messages: Vec<Message>,
    /// Stream name -> indexes into `messages`, in stream-position order.
    streams: HashMap<String, Vec<usize>>,
    /// Category -> indexes into `messages`, in global order.
    categories: HashMap<String, Vec<usize>>,
    /// Every id in use.
    ids: HashSet<Uuid>,
    /// The last global position handed out (burned values included).
    last_global_position: u64,
}

/// What a successful append reports.
pub(crate) struct Written {
    pub(crate) last_position: u64,
    pub(crate) last_global_position: u64,
}

impl State {
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn stream_version(&self, stream: &str) -> Option<u64> {
        self.streams
            .get(stream)
            .map(|indexes| position_of(indexes.len() - 1))
    }

    /// Appends a validated batch, checking as Message DB does: the expected
    /// version first, then each id in turn. A duplicate id burns one global
    /// position for each message up to and including it, as the sequence does
    /// on Postgres, so gaps appear where they would there.
    pub(crate) fn append(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<Written> {
        let version = self.stream_version(stream.as_str());
        if !expected.matches(version) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.as_str().to_owned(),
                expected,
                actual: version,
            });
        }
        if let Some(index) = messages.iter().position(|m| self.ids.contains(&m.id)) {
            self.last_global_position += position_of(index + 1);
            return Err(Error::DuplicateMessageId {
                id: messages[index].id,
            });
        }

        let time = Utc::now().trunc_subsecs(6);
        let first_position = version.map_or(0, |v| v + 1);
        let mut position = first_position;
        if !self.streams.contains_key(stream.as_str()) {
            self.streams.insert(stream.as_str().to_owned(), Vec::new());
        }
        let category = stream_name::category_of(stream.as_str());
        if !self.categories.contains_key(category) {
            self.categories.insert(category.to_owned(), Vec::new());
        }
        let stream_indexes = self
            .streams
            .get_mut(stream.as_str())
            .expect("inserted above");
        let category_indexes = self.categories.get_mut(category).expect("inserted above");
        self.ids.reserve(messages.len());
        for new in messages {
            self.last_global_position += 1;
            let index = self.messages.len();
            self.ids.insert(new.id);
            self.messages.push(Message {
                id: new.id,
                stream_name: stream.clone(),
                message_type: new.message_type,
                position,
                global_position: self.last_global_position,
                data: new.data,
                metadata: new.metadata,
                time,
            });
            stream_indexes.push(index);
            category_indexes.push(index);
            position += 1;
        }
        Ok(Written {
            last_position: position - 1,
            last_global_position: self.last_global_position,
        })
    }

    pub(crate) fn read_stream(&self, stream: &StreamName, options: &StreamRead) -> Vec<Message> {
        let Some(indexes) = self.streams.get(stream.as_str()) else {
            return Vec::new();
        };
        let start = usize::try_from(options.position()).unwrap_or(usize::MAX);
        indexes
            .iter()
            .skip(start)
            .take(options.limit().as_usize())
            .map(|&index| self.messages[index].clone())
            .collect()
    }

    pub(crate) fn read_category(
        &self,
        category: &Category,
        options: &CategoryRead,
    ) -> Vec<Message> {
        let Some(indexes) = self.categories.get(category.as_str()) else {
            return Vec::new();
        };
        let from = options.position();
        let start = indexes.partition_point(|&index| self.messages[index].global_position < from);
        let candidates = indexes[start..].iter().map(|&index| &self.messages[index]);
        let limit = options.limit().as_usize();
        let mut page = Vec::with_capacity(limit.min(candidates.len()));
        if options.correlation_filter().is_none() && options.group().is_none() {
            page.extend(candidates.take(limit).cloned());
        } else {
            page.extend(
                candidates
                    .filter(|message| {
                        options.matches(
                            message.stream_name.as_str(),
                            message.metadata.correlation_stream_name.as_deref(),
                        )
                    })
                    .take(limit)
                    .cloned(),
            );
        }
        page
    }

    pub(crate) fn category_head(&self, category: &Category) -> Option<u64> {
        let last = *self.categories.get(category.as_str())?.last()?;
        Some(self.messages[last].global_position)
    }

    pub(crate) fn last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Option<Message> {
        self.streams
            .get(stream.as_str())?
            .iter()
            .rev()
            .map(|&index| &self.messages[index])
            .find(|message| message_type.is_none_or(|wanted| message.message_type == wanted))
            .cloned()
    }
}

fn position_of(index: usize) -> u64 {
    u64::try_from(index).expect("an index fits in u64")
}
