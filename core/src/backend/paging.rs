//! Paging through a stream or a category as a `Stream` of messages, with the
//! next page requested while the current one is handed out.
//!
//! [`MessageStore::stream_messages`](crate::MessageStore::stream_messages) and
//! [`MessageStore::category_messages`](crate::MessageStore::category_messages)
//! use [`pages`] over the store's reads. A backend whose pages arrive
//! undecoded (rows off the wire) can use it too, passing the decoding
//! separately: the request for page k+1 then goes out before page k is
//! decoded, so the decoding overlaps the server's work on the next page.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, Stream, StreamExt};

use crate::error::{Error, Result};
use crate::message::Message;
use crate::read::{BatchSize, CategoryRead, StreamRead};
use crate::stream_name::{Category, StreamName};

/// One page as fetched, before decoding.
#[derive(Debug)]
pub struct RawPage<R> {
    /// The page's rows, in whatever form the backend fetched them.
    pub rows: R,
    /// How many messages the rows hold (a page shorter than the batch size is the last).
    pub len: usize,
    /// The position the next page starts at: one past the last row's, `None` for an empty page.
    pub next: Option<u64>,
}

impl RawPage<Vec<Message>> {
    /// A page of decoded messages, whose next position `position_of` reads off the last one.
    pub fn decoded(messages: Vec<Message>, position_of: impl Fn(&Message) -> u64) -> Self {
        RawPage {
            len: messages.len(),
            next: messages.last().map(|m| position_of(m) + 1),
            rows: messages,
        }
    }
}

type Fetch<'a, R> = Box<dyn Fn(u64) -> BoxFuture<'a, Result<RawPage<R>>> + Send + Sync + 'a>;
type Decode<'a, R> = Box<dyn Fn(R) -> Result<Vec<Message>> + Send + Sync + 'a>;

/// Drives `fetch(position)` from `start` until a page is shorter than
/// `batch`, decoding each page with `decode`, and yields the messages.
///
/// The next page is requested as soon as the current one arrives, before it
/// is decoded, and makes progress whenever the caller polls; so the server
/// works on page k+1 while page k is decoded and handled. An error ends the
/// stream after it is yielded. A batch size of 0 is refused (it would never
/// advance).
pub fn pages<'a, R, F, Fut, D>(
    batch: BatchSize,
    start: u64,
    fetch: F,
    decode: D,
) -> BoxStream<'a, Result<Message>>
where
    R: Send + 'a,
    F: Fn(u64) -> Fut + Send + Sync + 'a,
    Fut: Future<Output = Result<RawPage<R>>> + Send + 'a,
    D: Fn(R) -> Result<Vec<Message>> + Send + Sync + 'a,
{
    if batch == BatchSize::Limit(0) {
        let error = Error::InvalidOption {
            option: "batch_size",
            problem: "paging needs a batch size of at least 1".to_owned(),
        };
        return stream::once(async move { Err(error) }).boxed();
    }
    let fetch: Fetch<'a, R> = Box::new(move |position| fetch(position).boxed());
    let inflight = Some(fetch(start));
    Pages {
        fetch,
        decode: Box::new(decode),
        batch,
        buffer: Vec::new().into_iter(),
        undecoded: None,
        inflight,
        ready: None,
    }
    .boxed()
}

/// [`pages`] over a stream: `fetch(stream, read)` reads one page with the
/// read's options (the start position advancing page by page).
pub fn stream_pages<'a, R, F, Fut, D>(
    stream: &StreamName,
    options: StreamRead,
    fetch: F,
    decode: D,
) -> BoxStream<'a, Result<Message>>
where
    R: Send + 'a,
    F: Fn(StreamName, StreamRead) -> Fut + Send + Sync + 'a,
    Fut: Future<Output = Result<RawPage<R>>> + Send + 'a,
    D: Fn(R) -> Result<Vec<Message>> + Send + Sync + 'a,
{
    let stream = stream.clone();
    let (batch, start) = (options.batch_size(), options.position());
    pages(
        batch,
        start,
        move |position| fetch(stream.clone(), options.with_position(position)),
        decode,
    )
}

/// [`pages`] over a category: `fetch(category, read)` reads one page with
/// the read's options and filters (the start position advancing page by page).
pub fn category_pages<'a, R, F, Fut, D>(
    category: &Category,
    options: CategoryRead,
    fetch: F,
    decode: D,
) -> BoxStream<'a, Result<Message>>
where
    R: Send + 'a,
    F: Fn(Category, CategoryRead) -> Fut + Send + Sync + 'a,
    Fut: Future<Output = Result<RawPage<R>>> + Send + 'a,
    D: Fn(R) -> Result<Vec<Message>> + Send + Sync + 'a,
{
    let category = category.clone();
    let (batch, start) = (options.batch_size(), options.position());
    pages(
        batch,
        start,
        move |position| fetch(category.clone(), options.clone().with_position(position)),
        decode,
    )
}

struct Pages<'a, R> {
    fetch: Fetch<'a, R>,
    decode: Decode<'a, R>,
    batch: BatchSize,
    /// The page being handed out.
    buffer: std::vec::IntoIter<Message>,
    /// The page to hand out next, not decoded yet.
    undecoded: Option<R>,
    /// The next page, requested.
    inflight: Option<BoxFuture<'a, Result<RawPage<R>>>>,
    /// The next page, arrived.
    ready: Option<Result<RawPage<R>>>,
}

impl<R> Unpin for Pages<'_, R> {}

impl<R> Stream for Pages<'_, R> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            // First let the request in flight progress (on its first poll, it
            // is sent), then decode or hand out what is here.
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
            if let Some(rows) = this.undecoded.take() {
                match (this.decode)(rows) {
                    Ok(messages) => {
                        this.buffer = messages.into_iter();
                        continue;
                    }
                    Err(error) => {
                        this.inflight = None;
                        this.ready = None;
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
            match this.ready.take() {
                Some(Ok(page)) => {
                    if let (true, Some(next)) = (this.batch.is_full(page.len), page.next) {
                        this.inflight = Some((this.fetch)(next));
                    }
                    this.undecoded = Some(page.rows);
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
