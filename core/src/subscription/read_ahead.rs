//! Reading a subscription's next page while its consumer handles the last
//! one. After a full page the next is likely there already, so its read
//! starts at once on a task of its own: catching up then costs the longer
//! of reading and handling, not their sum. After a short page (caught up)
//! nothing is read ahead, so an idle subscription costs what it did.

use tokio::task::JoinHandle;

use crate::error::Result;
use crate::message::Message;
use crate::read::CategoryRead;
use crate::store::MessageStore;
use crate::stream_name::Category;

/// A page being read ahead, from `position` on; its read is dropped with it.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    position: u64,
    task: JoinHandle<Result<Vec<Message>>>,
}

impl ReadAhead {
    /// Starts reading `read` (which starts at `position`) of `category`.
    pub(crate) fn start<S: MessageStore + Clone>(
        store: &S,
        category: &Category,
        position: u64,
        read: CategoryRead,
    ) -> Self {
        let (store, category) = (store.clone(), category.clone());
        let task = tokio::spawn(async move { store.read_category(&category, read).await });
        ReadAhead { position, task }
    }

    /// The page, if it was read from `position`; `None` when it was read
    /// from elsewhere (the caller reads again).
    pub(crate) async fn take(mut self, position: u64) -> Option<Result<Vec<Message>>> {
        if self.position != position {
            return None;
        }
        match (&mut self.task).await {
            Ok(page) => Some(page),
            // The read panicked: so does the caller, as it would have.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => None,
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
