//! Reading a subscription's next pages while its consumer handles the last
//! one. After a full page the following ones are likely there already, so a
//! task of its own reads on through the store's paged feed
//! ([`MessageStore::category_messages`]), which fetches each page while it
//! decodes the one before. At most one page waits for the consumer, one is
//! being decoded and one fetched: catching up then costs the longest of
//! fetching, decoding and handling, not their sum. It stops after a short
//! page (caught up) or a failure, so an idle subscription costs what it did.
//! A page the consumer does not take within [`PATIENCE`] (100 ms) stops the feed
//! (the read it has in flight, unpolled, would hold its connection for as
//! long as the consumer takes); it starts again from there when the page
//! is taken. So a slow consumer holds no connection, at the cost of that
//! one read per page, and one that keeps up does not stop its feed.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::message::Message;
use crate::store::MessageStore;
use crate::stream_name::Category;
use crate::subscription::SubscribeOptions;

/// How long a full page waits for the consumer before the feed is stopped.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Pages being read ahead; the reads stop when it is dropped.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    /// Where the next page it hands over starts.
    position: u64,
    pages: mpsc::Receiver<Result<Vec<Message>>>,
    task: JoinHandle<()>,
}

impl ReadAhead {
    /// Starts reading `category` from `position` on, as `options` read it.
    pub(crate) fn start<S: MessageStore + Clone>(
        store: &S,
        category: &Category,
        options: &SubscribeOptions,
        position: u64,
    ) -> Self {
        let (store, category, options) = (store.clone(), category.clone(), options.clone());
        let limit = options.batch_size().limit();
        let (send, pages) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            use futures::StreamExt;
            let Some(limit) = limit.and_then(|l| usize::try_from(l).ok()) else {
                return;
            };
            // Room for a usual page; a larger batch size grows as it fills.
            let room = limit.min(1000);
            let mut from = position;
            'feed: loop {
                // The store's paged feed fetches a page while it decodes
                // the last, so the server is never idle while this decodes.
                let mut messages = store.category_messages(&category, options.category_read(from));
                let mut page = Vec::with_capacity(room);
                loop {
                    let message = match messages.next().await {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            let _ = send.send(Err(error)).await;
                            return;
                        }
                        None => {
                            // The short page the feed ended with (caught up).
                            let _ = send.send(Ok(page)).await;
                            return;
                        }
                    };
                    page.push(message);
                    if page.len() < limit {
                        continue;
                    }
                    let full = std::mem::replace(&mut page, Vec::with_capacity(room));
                    from = full.last().map_or(from, |last| last.global_position + 1);
                    match tokio::time::timeout(PATIENCE, send.reserve()).await {
                        Ok(Ok(room)) => room.send(Ok(full)),
                        Ok(Err(_)) => return, // the subscription is gone
                        Err(_) => {
                            // The consumer is behind: the feed's next read,
                            // unpolled, would keep its connection until it
                            // takes this page. Stopped now, it starts again
                            // from here once the consumer took the page.
                            drop(messages);
                            if send.send(Ok(full)).await.is_err() {
                                return;
                            }
                            continue 'feed;
                        }
                    }
                }
            }
        });
        ReadAhead {
            position,
            pages,
            task,
        }
    }

    /// The next page read, if it starts at `position`; `None` when the
    /// reads ended or the caller is elsewhere (it reads for itself).
    pub(crate) async fn next(&mut self, position: u64) -> Option<Result<Vec<Message>>> {
        if self.position != position {
            return None;
        }
        let page = self.pages.recv().await?;
        if let Ok(Some(last)) = page.as_ref().map(|page| page.last()) {
            self.position = last.global_position + 1;
        }
        Some(page)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
