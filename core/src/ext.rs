//! Conveniences every store gets, written once so backends cannot drift.

use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::{Message, NewMessage, TypedMessage};
use crate::read::{BatchSize, CategoryRead, StreamRead};
use crate::store::MessageStore;
use crate::stream_name::{Category, StreamName};
use crate::version::ExpectedVersion;

/// Conveniences on top of [`MessageStore`], implemented for every store
/// (including `dyn MessageStore`).
#[async_trait]
pub trait MessageStoreExt: MessageStore {
    /// Writes one message; returns its stream position.
    async fn write_one(
        &self,
        stream: &StreamName,
        message: NewMessage,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        self.write(stream, vec![message], expected).await
    }

    /// Serializes `value` as a message of its [`TypedMessage`] type and writes it.
    async fn write_typed<T>(
        &self,
        stream: &StreamName,
        value: &T,
        expected: ExpectedVersion,
    ) -> Result<u64>
    where
        T: TypedMessage + Serialize + Sync,
    {
        self.write(stream, vec![NewMessage::typed(value)?], expected)
            .await
    }

    /// Reads a whole stream, page by page, into memory.
    async fn read_stream_to_end(&self, stream: &StreamName) -> Result<Vec<Message>> {
        self.stream_messages(stream, StreamRead::new())
            .try_collect()
            .await
    }

    /// Every message of a stream from `options.position()` on, fetched in
    /// pages of `options.limit()` as the stream is consumed.
    fn stream_messages<'a>(
        &'a self,
        stream: &StreamName,
        options: StreamRead,
    ) -> BoxStream<'a, Result<Message>> {
        let stream = stream.clone();
        let batch = options.limit();
        paged(batch, options.position(), move |position| {
            let stream = stream.clone();
            async move {
                let options = StreamRead::new().from_position(position).batch_size(batch);
                let page = self.read_stream(&stream, options).await?;
                let next = page.last().map(|m| m.position + 1);
                Ok((page, next))
            }
        })
    }

    /// Every message of a category from `options.position()` on, with its
    /// filters, fetched in pages of `options.limit()` as it is consumed.
    fn category_messages<'a>(
        &'a self,
        category: &Category,
        options: CategoryRead,
    ) -> BoxStream<'a, Result<Message>> {
        let category = category.clone();
        let batch = options.limit();
        paged(batch, options.position(), move |position| {
            let category = category.clone();
            let options = options.clone().from_position(position);
            async move {
                let page = self.read_category(&category, options).await?;
                let next = page.last().map(|m| m.global_position + 1);
                Ok((page, next))
            }
        })
    }
}

impl<T: MessageStore + ?Sized> MessageStoreExt for T {}

type Page = Result<(Vec<Message>, Option<u64>)>;

/// Drives `fetch(position) -> (page, next position)` until a page is not full.
/// The next page is requested as soon as the current one arrives, and makes
/// progress whenever the caller polls for a message, so the server works on
/// page k+1 while the caller handles page k.
fn paged<'a, F, Fut>(batch: BatchSize, start: u64, fetch: F) -> BoxStream<'a, Result<Message>>
where
    F: Fn(u64) -> Fut + Send + Sync + 'a,
    Fut: Future<Output = Page> + Send + 'a,
{
    if batch == BatchSize::Limit(0) {
        let error = Error::InvalidOption {
            option: "batch_size",
            problem: "paging needs a batch size of at least 1".to_owned(),
        };
        return stream::once(async move { Err(error) }).boxed();
    }
    let fetch: Box<dyn Fn(u64) -> BoxFuture<'a, Page> + Send + Sync + 'a> =
        Box::new(move |position| fetch(position).boxed());
    let inflight = Some(fetch(start));
    Paged {
        fetch,
        batch,
        buffer: Vec::new().into_iter(),
        inflight,
        ready: None,
    }
    .boxed()
}

struct Paged<'a> {
    fetch: Box<dyn Fn(u64) -> BoxFuture<'a, Page> + Send + Sync + 'a>,
    batch: BatchSize,
    /// The page being handed out.
    buffer: std::vec::IntoIter<Message>,
    /// The next page, requested.
    inflight: Option<BoxFuture<'a, Page>>,
    /// The next page, arrived.
    ready: Option<Page>,
}

impl Stream for Paged<'_> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ready.is_none() {
                if let Some(inflight) = this.inflight.as_mut() {
                    if let Poll::Ready(page) = inflight.as_mut().poll(cx) {
                        this.inflight = None;
                        this.ready = Some(page);
                    }
                }
            }
            if let Some(message) = this.buffer.next() {
                return Poll::Ready(Some(Ok(message)));
            }
            match this.ready.take() {
                Some(Ok((page, next))) => {
                    if let (true, Some(next)) = (this.batch.is_full(page.len()), next) {
                        this.inflight = Some((this.fetch)(next));
                    }
                    this.buffer = page.into_iter();
                    if this.buffer.len() == 0 && this.inflight.is_none() {
                        return Poll::Ready(None);
                    }
                }
                Some(Err(error)) => {
                    this.inflight = None;
                    return Poll::Ready(Some(Err(error)));
                }
                None if this.inflight.is_some() => return Poll::Pending,
                None => return Poll::Ready(None),
            }
        }
    }
}
