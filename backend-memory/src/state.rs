//! The store's synchronous state: every transition happens under one lock and
//! never awaits, so a write, and a unit of work's commit, is atomic and
//! visible all at once.
//!
//! Writes that must wait (for a category lock or a message id an open unit
//! of work holds) return [`Step::Wait`] naming that unit; the caller waits
//! outside the lock and tries again.

use chrono::{SubsecRound, Utc};
use message_store::{
    stream_name, Category, CategoryRead, Error, ExpectedVersion, Message, NewMessage, Result,
    StreamName, StreamRead,
};
use rustc_hash::{FxHashMap, FxHashSet};
use uuid::Uuid;

use crate::stored::Stored;
use message_store::backend::units::{lock_key, Step, UnitId, Units};

/// Committed messages plus the indexes reads need, and the open units of
/// work. The maps use FxHash (rustc-hash): the keys come from the
/// application itself, so SipHash's flooding resistance buys nothing here,
/// and it was measurably slower on the append path.
#[derive(Default)]
pub(crate) struct State {
    /// Every committed message, in commit order. That is global-position
    /// order within a category (a category's writers take turns, through
    /// its lock), not across categories, as on PostgreSQL.
    messages: Vec<Stored>,
    /// Stream name -> indexes into `messages`, in stream-position order.
    streams: FxHashMap<String, Vec<usize>>,
    /// Category -> indexes into `messages`, in global order.
    categories: FxHashMap<String, Vec<usize>>,
    /// Every id in use.
    ids: FxHashSet<Uuid>,
    /// The last global position handed out (burned values included).
    last_global_position: u64,
    pub(crate) units: Units<Stored>,
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

    /// The stream's version as `unit` sees it (committed only for `None`).
    pub(crate) fn stream_version(&self, stream: &str, unit: Option<UnitId>) -> Option<u64> {
        let pending = self.units.messages(unit).iter().rev();
        if let Some(last) = pending
            .into_iter()
            .find(|m| m.stream_name.as_str() == stream)
        {
            return Some(last.position);
        }
        self.streams
            .get(stream)
            .map(|indexes| position_of(indexes.len() - 1))
    }

    /// Appends a validated batch (taken from `messages` once it need not
    /// wait), as a plain write (`unit` `None`) or as
    /// part of an open unit, checking as Message DB does: the category's
    /// lock first, then the expected version, then each id in turn. A
    /// duplicate id burns one global position for each message up to and
    /// including it, as the sequence does on Postgres, so gaps appear where
    /// they would there.
    pub(crate) fn append(
        &mut self,
        stream: &StreamName,
        messages: &mut Vec<NewMessage>,
        expected: ExpectedVersion,
        unit: Option<UnitId>,
    ) -> Result<Step<Written>> {
        // Hashing the category costs a plain write that nothing can block
        // more than the write itself.
        let contended = !self.units.none_open();
        if contended {
            let key = lock_key(stream_name::category_of(stream.as_str()));
            if let Some(holder) = self.units.lock_held(key, unit) {
                return Ok(Step::Wait(holder));
            }
            if let Some(unit) = unit {
                self.units.lock(unit, key);
            }
        }
        let version = self.stream_version(stream.as_str(), unit);
        if !expected.matches(version) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.as_str().to_owned(),
                expected,
                actual: version,
            });
        }
        for (index, message) in messages.iter().enumerate() {
            let holder = contended
                .then(|| self.units.id_holder(&message.id))
                .flatten();
            match holder {
                Some(other) if Some(other) != unit => return Ok(Step::Wait(other)),
                _ => {}
            }
            if holder.is_some() || self.ids.contains(&message.id) {
                self.last_global_position += position_of(index + 1);
                return Err(Error::DuplicateMessageId { id: message.id });
            }
        }

        let time = Utc::now().trunc_subsecs(6);
        let mut position = version.map_or(0, |v| v + 1);
        let mut stored = Vec::with_capacity(messages.len());
        for new in std::mem::take(messages) {
            self.last_global_position += 1;
            stored.push(Stored::new(
                new,
                stream,
                position,
                self.last_global_position,
                time,
            ));
            position += 1;
        }
        let written = Written {
            last_position: position - 1,
            last_global_position: self.last_global_position,
        };
        match unit {
            Some(unit) => self.units.add(unit, stored),
            None => self.insert(stored),
        }
        Ok(Step::Done(written))
    }

    /// Takes the lock of each key for `unit`, in the order given, up to the
    /// first one another unit holds.
    pub(crate) fn lock(&mut self, keys: &[i64], unit: UnitId) -> Step<()> {
        for &key in keys {
            if let Some(holder) = self.units.lock_held(key, Some(unit)) {
                return Step::Wait(holder);
            }
            self.units.lock(unit, key);
        }
        Step::Done(())
    }

    /// Ends `unit`, storing its writes when `commit`: the last global
    /// position it wrote, if it wrote anything.
    pub(crate) fn end_unit(&mut self, unit: UnitId, commit: bool) -> Option<u64> {
        let messages = self.units.end(unit);
        let last = messages.last().map(|m| m.global_position);
        if commit {
            self.insert(messages);
        }
        last.filter(|_| commit)
    }

    /// Stores written messages, in global-position order. Consecutive
    /// messages of one stream (every batch) share one index lookup.
    fn insert(&mut self, messages: Vec<Stored>) {
        let mut messages = messages.into_iter().peekable();
        while let Some(first) = messages.peek() {
            let stream = first.stream_name.clone();
            let category = stream_name::category_of(stream.as_str());
            if !self.categories.contains_key(category) {
                self.categories.insert(category.to_owned(), Vec::new());
            }
            let category_indexes = self.categories.get_mut(category).expect("inserted above");
            if !self.streams.contains_key(stream.as_str()) {
                self.streams.insert(stream.as_str().to_owned(), Vec::new());
            }
            let stream_indexes = self
                .streams
                .get_mut(stream.as_str())
                .expect("inserted above");
            while let Some(stored) = messages.next_if(|m| m.stream_name == stream) {
                let index = self.messages.len();
                self.ids.insert(stored.id);
                stream_indexes.push(index);
                category_indexes.push(index);
                self.messages.push(stored);
            }
        }
    }

    pub(crate) fn read_stream(
        &self,
        stream: &StreamName,
        options: &StreamRead,
        unit: Option<UnitId>,
    ) -> Vec<Message> {
        let committed = self
            .streams
            .get(stream.as_str())
            .map_or(&[][..], Vec::as_slice);
        let pending = self.units.messages(unit).iter();
        let start = usize::try_from(options.position()).unwrap_or(usize::MAX);
        committed
            .iter()
            .map(|&index| &self.messages[index])
            .chain(pending.filter(|m| m.stream_name == *stream))
            .skip(start)
            .take(options.batch_size().as_usize())
            .map(Stored::to_message)
            .collect()
    }

    pub(crate) fn read_category(
        &self,
        category: &Category,
        options: &CategoryRead,
        unit: Option<UnitId>,
    ) -> Vec<Message> {
        let indexes = self
            .categories
            .get(category.as_str())
            .map_or(&[][..], Vec::as_slice);
        let from = options.position();
        let start = indexes.partition_point(|&index| self.messages[index].global_position < from);
        // A unit's pending messages in this category come after every
        // committed one: it holds the category's lock.
        let pending = self
            .units
            .messages(unit)
            .iter()
            .filter(|m| m.category() == category.as_str() && m.global_position >= from);
        let candidates = indexes[start..]
            .iter()
            .map(|&index| &self.messages[index])
            .chain(pending);
        let limit = options.batch_size().as_usize();
        let mut page = Vec::with_capacity(limit.min(indexes.len() - start));
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
        unit: Option<UnitId>,
    ) -> Option<Message> {
        let committed = self
            .streams
            .get(stream.as_str())
            .map_or(&[][..], Vec::as_slice);
        let pending = self.units.messages(unit).iter().rev();
        pending
            .filter(|m| m.stream_name == *stream)
            .chain(committed.iter().rev().map(|&index| &self.messages[index]))
            .find(|stored| message_type.is_none_or(|wanted| &*stored.message_type == wanted))
            .map(Stored::to_message)
    }
}

fn position_of(index: usize) -> u64 {
    u64::try_from(index).expect("an index fits in u64")
}
