//! The store's synchronous state: every transition happens under one lock and
//! never awaits, so a write is atomic and visible all at once.

use chrono::{DateTime, SubsecRound, Utc};
use message_store::{
    stream_name, Category, CategoryRead, Error, ExpectedVersion, JsonData, Message, Metadata,
    NewMessage, Result, StreamName, StreamRead,
};
use rustc_hash::{FxHashMap, FxHashSet};
use uuid::Uuid;

/// Messages in global order plus the indexes reads need. The maps use
/// FxHash (rustc-hash): the keys come from the application itself, so
/// SipHash's flooding resistance buys nothing here, and it was measurably
/// slower on the append path.
#[derive(Default)]
pub(crate) struct State {
    /// Every message, in global-position order.
    messages: Vec<Stored>,
    /// Stream name -> indexes into `messages`, in stream-position order.
    streams: FxHashMap<String, Vec<usize>>,
    /// Category -> indexes into `messages`, in global order.
    categories: FxHashMap<String, Vec<usize>>,
    /// Every id in use.
    ids: FxHashSet<Uuid>,
    /// The last global position handed out (burned values included).
    last_global_position: u64,
}

/// A message as kept in memory: about a third of a `Message`'s size (type as a
/// boxed str, metadata boxed and absent when empty), which matters when a test
/// or benchmark holds millions of them.
struct Stored {
    id: Uuid,
    stream_name: StreamName,
    message_type: Box<str>,
    position: u64,
    global_position: u64,
    time: DateTime<Utc>,
    data: JsonData,
    metadata: Option<Box<Metadata>>,
}

impl Stored {
    fn to_message(&self) -> Message {
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

    fn correlation(&self) -> Option<&str> {
        self.metadata.as_ref()?.correlation()
    }
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
            let metadata = (!new.metadata.is_empty()).then(|| Box::new(new.metadata));
            self.messages.push(Stored {
                id: new.id,
                stream_name: stream.clone(),
                message_type: new.message_type.into_boxed_str(),
                position,
                global_position: self.last_global_position,
                time,
                data: JsonData::from_value(new.data),
                metadata,
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
            .take(options.batch_size().as_usize())
            .map(|&index| self.messages[index].to_message())
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
        let limit = options.batch_size().as_usize();
        let mut page = Vec::with_capacity(limit.min(candidates.len()));
        if options.correlation().is_none() && options.consumer_group().is_none() {
            page.extend(candidates.take(limit).map(Stored::to_message));
        } else {
            page.extend(
                candidates
                    .filter(|stored| {
                        options.matches(stored.stream_name.as_str(), stored.correlation())
                    })
                    .take(limit)
                    .map(Stored::to_message),
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
            .find(|stored| message_type.is_none_or(|wanted| &*stored.message_type == wanted))
            .map(Stored::to_message)
    }
}

fn position_of(index: usize) -> u64 {
    u64::try_from(index).expect("an index fits in u64")
}
