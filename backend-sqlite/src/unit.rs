//! [`SqliteUnit`]: a unit of work on a SQLite store, with PostgreSQL's
//! semantics. SQLite has one writer at a time, so a unit does not hold a
//! write transaction while it is open: it takes its categories' locks in
//! process (waiting, deadlocks and lock timeouts as on PostgreSQL), keeps
//! its writes pending (its own reads see them over the committed rows),
//! and the commit stores them all in one transaction. The commit checks
//! that no other process wrote the unit's streams meanwhile, and fails
//! with a serialization conflict if one did.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use message_store::backend::units::{conflict, lock_key, lock_order, Step, UnitId};
use message_store::backend::{jsonb, meter, trace, validate_stream_read, validate_write};
use message_store::stream_name::category_of;
use message_store::{
    Category, CategoryRead, ConflictReason, Error, ExpectedVersion, JsonData, Message, NewMessage,
    OpenUnit, Result, StreamName, StreamRead, UnitOfWork, UnitOptions, UnitState,
};

use crate::locks::Pending;
use crate::{read, write, SqliteStore};

/// A unit of work on a [`SqliteStore`]; dropped open, it rolls back.
pub(crate) struct SqliteUnit {
    store: SqliteStore,
    id: UnitId,
    state: UnitState,
    lock_timeout: Option<Duration>,
    /// The time its messages are stored with: when it began, as a
    /// PostgreSQL transaction's `now()`.
    time: DateTime<Utc>,
    /// Each stream it wrote, with its committed version when it first did.
    base: HashMap<StreamName, Option<u64>>,
    /// Each category it locked, with its committed head when it did: the
    /// commit fails if another process wrote one since (the locks are in
    /// this process only).
    heads: HashMap<Category, Option<u64>>,
    /// The global position its next pending message is shown with.
    next_global: u64,
}

impl SqliteUnit {
    pub(crate) fn open(store: SqliteStore, options: &UnitOptions) -> SqliteUnit {
        let id = store.inner.locks.units().open();
        SqliteUnit {
            store,
            id,
            state: UnitState::Open,
            lock_timeout: options.lock_timeout(),
            time: Utc::now().trunc_subsecs(6),
            base: HashMap::new(),
            heads: HashMap::new(),
            next_global: 0,
        }
    }

    fn check_open(&self) -> Result<()> {
        match self.state {
            UnitState::Open => Ok(()),
            state => Err(Error::UnitEnded { state }),
        }
    }

    fn end(&mut self, state: UnitState) -> Vec<Pending> {
        self.state = state;
        self.store.inner.locks.end(self.id)
    }

    /// Runs `f` over this unit's pending messages.
    fn pending<T>(&self, f: impl FnOnce(&[Pending]) -> T) -> T {
        f(self.store.inner.locks.units().messages(Some(self.id)))
    }

    async fn take_locks(&self, keys: &[i64]) -> Result<()> {
        let id = self.id;
        self.store
            .inner
            .locks
            .until_free(Some((id, self.lock_timeout)), |units| {
                for &key in keys {
                    if let Some(holder) = units.lock_held(key, Some(id)) {
                        return Step::Wait(holder);
                    }
                    units.lock(id, key);
                }
                Step::Done(())
            })
            .await
    }

    /// Notes the committed heads of `categories` it has just locked.
    async fn note_heads(&mut self, categories: &[Category]) -> Result<()> {
        for category in categories {
            if !self.heads.contains_key(category) {
                let head = read::category_head(&mut *self.store.reader().await?, category).await?;
                self.heads.insert(category.clone(), head);
            }
        }
        Ok(())
    }

    /// The version of `stream` as this unit sees it, and as committed.
    async fn versions(&self, stream: &StreamName) -> Result<(Option<u64>, Option<u64>)> {
        let committed = read::stream_version(&mut *self.store.reader().await?, stream).await?;
        let own = self.pending(|pending| {
            pending
                .iter()
                .rev()
                .find(|p| p.message.stream_name == *stream)
                .map(|p| p.message.position)
        });
        Ok((own.or(committed), committed))
    }

    /// The write, once its input is valid: lock, expected version, ids.
    async fn append(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.take_locks(&[lock_key(category_of(stream.as_str()))])
            .await?;
        self.note_heads(&[stream.category()]).await?;
        let (version, committed) = self.versions(stream).await?;
        if !expected.matches(version) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.as_str().to_owned(),
                expected,
                actual: version,
            });
        }
        for message in &messages {
            self.check_id(message.id).await?;
        }
        let head = read::sequence(&mut *self.store.reader().await?).await?;
        self.next_global = self.next_global.max(head + 1);
        let mut position = version.map_or(0, |v| v + 1);
        let mut pending = Vec::with_capacity(messages.len());
        for new in messages {
            let data = new.data.to_string();
            let metadata = new.metadata.to_json().map(|m| m.to_string());
            pending.push(Pending {
                message: Message {
                    id: new.id,
                    stream_name: stream.clone(),
                    message_type: new.message_type,
                    position,
                    global_position: self.next_global,
                    data: JsonData::from_value(new.data),
                    metadata: new.metadata,
                    time: self.time,
                },
                data,
                metadata,
            });
            position += 1;
            self.next_global += 1;
        }
        self.base.entry(stream.clone()).or_insert(committed);
        self.store.inner.locks.units().add(self.id, pending);
        Ok(position - 1)
    }

    /// Refuses an id stored or written by this unit already; waits while
    /// another open unit writes it (it is a duplicate if that one commits).
    async fn check_id(&self, id: uuid::Uuid) -> Result<()> {
        let me = self.id;
        let own = self
            .store
            .inner
            .locks
            .until_free(Some((me, self.lock_timeout)), |units| {
                match units.id_holder(&id) {
                    Some(holder) if holder != me => Step::Wait(holder),
                    holder => Step::Done(holder.is_some()),
                }
            })
            .await?;
        if own || read::has_id(&mut *self.store.reader().await?, id).await? {
            return Err(Error::DuplicateMessageId { id });
        }
        Ok(())
    }

    /// Stores the pending messages in a task of its own, which holds the
    /// unit's locks until they are stored (or not) and then ends it, so a
    /// commit the caller stops waiting for still finishes.
    async fn store_pending(&mut self) -> Result<()> {
        let pending = self.pending(<[Pending]>::to_vec);
        if pending.is_empty() {
            self.end(UnitState::Committed);
            return Ok(());
        }
        let store = self.store.clone();
        let (base, heads, time, id) = (self.base.clone(), self.heads.clone(), self.time, self.id);
        let task = tokio::spawn(async move {
            let stored = {
                let mut writer = store.inner.writer.clone().lock_owned().await;
                let checks = write::Unchanged {
                    streams: &base,
                    categories: &heads,
                };
                write::store_unit(&mut writer, checks, &pending, time).await
            };
            store.inner.locks.end(id);
            let last = stored?;
            store.inner.written.send_replace(last);
            report_sent(&pending);
            Ok(())
        });
        let stored = task.await.map_err(Error::backend).and_then(|done| done);
        self.state = if stored.is_ok() {
            UnitState::Committed
        } else {
            UnitState::Aborted
        };
        stored
    }
}

/// Counts a committed unit's messages per category.
fn report_sent(pending: &[Pending]) {
    let mut sent: Vec<(&str, usize)> = Vec::new();
    for p in pending {
        let category = category_of(p.message.stream_name.as_str());
        match sent.iter_mut().find(|(c, _)| *c == category) {
            Some((_, count)) => *count += 1,
            None => sent.push((category, 1)),
        }
    }
    for (category, count) in sent {
        meter::sent(crate::BACKEND, category, count);
    }
}

#[async_trait]
impl UnitOfWork for SqliteUnit {
    async fn write(
        &mut self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.check_open()?;
        let call = trace::unit_write(crate::BACKEND, stream.as_str(), &messages);
        trace::call(call, trace::uncounted, async move {
            validate_write(stream, &messages)?;
            let mut messages = messages;
            jsonb::as_stored(&mut messages);
            let written = self.append(stream, messages, expected).await;
            if written.is_err() {
                // As PostgreSQL aborts a transaction at its first error.
                self.end(UnitState::Aborted);
            }
            written
        })
        .await
    }

    async fn read_stream(
        &mut self,
        stream: &StreamName,
        options: StreamRead,
    ) -> Result<Vec<Message>> {
        self.check_open()?;
        validate_stream_read(stream)?;
        let mut page = read::stream(&mut *self.store.reader().await?, stream, &options).await?;
        let limit = options.batch_size().as_usize();
        self.pending(|pending| {
            let own = pending
                .iter()
                .map(|p| &p.message)
                .filter(|m| m.stream_name == *stream && m.position >= options.position());
            page.extend(own.cloned());
        });
        page.truncate(limit);
        Ok(page)
    }

    async fn read_category(
        &mut self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        self.check_open()?;
        options.validate()?;
        let mut page = read::category(&mut *self.store.reader().await?, category, &options).await?;
        let limit = options.batch_size().as_usize();
        // Its pending messages come after every committed one of their
        // categories: it holds their locks.
        self.pending(|pending| {
            let own = pending.iter().map(|p| &p.message).filter(|m| {
                m.stream_name.category() == category.as_str()
                    && m.global_position >= options.position()
                    && options.matches(m.stream_name.as_str(), m.metadata.correlation())
            });
            page.extend(own.cloned());
        });
        page.truncate(limit);
        Ok(page)
    }

    async fn read_last_message(
        &mut self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        self.check_open()?;
        let own = self.pending(|pending| {
            pending
                .iter()
                .rev()
                .map(|p| &p.message)
                .find(|m| {
                    m.stream_name == *stream
                        && message_type.is_none_or(|wanted| m.message_type == wanted)
                })
                .cloned()
        });
        match own {
            Some(message) => Ok(Some(message)),
            None => Ok(read::last(&mut *self.store.reader().await?, stream, message_type).await?),
        }
    }

    async fn stream_version(&mut self, stream: &StreamName) -> Result<Option<u64>> {
        self.check_open()?;
        Ok(self.versions(stream).await?.0)
    }

    async fn lock_categories(&mut self, categories: &[Category]) -> Result<()> {
        self.check_open()?;
        let mut locked = self.take_locks(&lock_order(categories)).await;
        if locked.is_ok() {
            locked = self.note_heads(categories).await;
        }
        if locked.is_err() {
            self.end(UnitState::Aborted);
        }
        locked
    }
}

#[async_trait]
impl OpenUnit for SqliteUnit {
    async fn commit(&mut self) -> Result<()> {
        let span = trace::unit(crate::BACKEND, "commit");
        trace::call(span, trace::uncounted, async {
            self.check_open()?;
            self.store_pending().await
        })
        .await
    }

    async fn rollback(&mut self) -> Result<()> {
        match self.state {
            UnitState::Open => {
                self.end(UnitState::RolledBack);
            }
            UnitState::Committed => {
                return Err(Error::UnitEnded {
                    state: UnitState::Committed,
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn unit(&mut self) -> &mut dyn UnitOfWork {
        self
    }

    fn state(&self) -> UnitState {
        self.state
    }
}

impl Drop for SqliteUnit {
    fn drop(&mut self) {
        if self.state == UnitState::Open {
            self.end(UnitState::RolledBack);
        }
    }
}

impl fmt::Debug for SqliteUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteUnit")
            .field("store", &self.store.to_string())
            .field("state", &self.state)
            .finish()
    }
}

/// Another process wrote one of the unit's streams since it first did.
pub(crate) fn moved_on() -> Error {
    conflict(ConflictReason::Serialization)
}
