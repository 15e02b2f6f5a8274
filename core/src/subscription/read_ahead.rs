//! Reading a subscription's next pages while its consumer handles the last
//! one. After a full page the following ones are likely there already, so a
//! task of its own reads on, page after page, keeping at most one read page
//! waiting (and one being read): catching up then costs the longest of
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
            let mut from = position;
            loop {
                let read = options.category_read(from);
                let page = store.read_category(&category, read).await;
                let more = match &page {
                    Ok(page) => match page.last() {
                        Some(last) if limit.is_some_and(|l| page.len() as u64 >= l) => {
                            from = last.global_position + 1;
                            true
                        }
                        _ => false,
                    },
                    Err(_) => false,
                };
                if send.send(page).await.is_err() || !more {
                    return;
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
