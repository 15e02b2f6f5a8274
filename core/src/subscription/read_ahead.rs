//! Reading a subscription's next pages while its consumer handles the last
//! one. After a full page the following ones are likely there already, so a
//! task of its own reads on through the store's paged feed
//! ([`MessageStore::category_messages`]), which fetches each page while it
//! decodes the one before. At most one page waits for the consumer, one is
//! being decoded and one fetched: catching up then costs the longest of
//! fetching, decoding and handling, not their sum. It stops after a short
//! page (caught up) or a failure, so an idle subscription costs what it did.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::message::Message;
use crate::store::MessageStore;
use crate::stream_name::Category;
use crate::subscription::SubscribeOptions;

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
            // The store's paged feed fetches a page while it decodes the
            // last, so the server is never idle while this decodes.
            let mut messages = store.category_messages(&category, options.category_read(position));
            let mut page = Vec::with_capacity(limit);
            while let Some(next) = messages.next().await {
                let message = match next {
                    Ok(message) => message,
                    Err(error) => {
                        let _ = send.send(Err(error)).await;
                        return;
                    }
                };
                page.push(message);
                if page.len() == limit {
                    let full = std::mem::replace(&mut page, Vec::with_capacity(limit));
                    if send.send(Ok(full)).await.is_err() {
                        return;
                    }
                }
            }
            // The short page the feed ended with (caught up), if any.
            let _ = send.send(Ok(page)).await;
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
