//! `OnRuntime`: a store whose calls run on another Tokio runtime, so that an
//! instance on a runtime of its own can be stopped whole (its thread
//! blocked) while the connections it shares with other instances stay
//! served by the runtime they were opened on.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use message_store::{
    Category, CategoryRead, Error, ExpectedVersion, Message, MessageStore, NewMessage, OpenUnit,
    Result, StreamName, StreamRead, SubscribeOptions, Subscription, UnitOptions,
};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Runs every call of `inner` as a task on `runtime`, and counts the
/// writes refused for a wrong expected version (which land or fail there
/// even when the caller was dropped meanwhile).
#[derive(Clone)]
pub(super) struct OnRuntime {
    pub(super) inner: Arc<dyn MessageStore>,
    pub(super) runtime: Handle,
    pub(super) refused: Arc<AtomicU64>,
}

impl OnRuntime {
    async fn run<T, F>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        self.runtime.spawn(call).await.map_err(Error::backend)?
    }
}

impl fmt::Debug for OnRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnRuntime").finish_non_exhaustive()
    }
}

impl fmt::Display for OnRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (on another runtime)", self.inner)
    }
}

#[async_trait]
impl MessageStore for OnRuntime {
    async fn write(
        &self,
        stream: &StreamName,
        messages: Vec<NewMessage>,
        expected: ExpectedVersion,
    ) -> Result<u64> {
        let (inner, stream, refused) = (self.inner.clone(), stream.clone(), self.refused.clone());
        self.run(async move {
            let written = inner.write(&stream, messages, expected).await;
            if matches!(written, Err(Error::WrongExpectedVersion { .. })) {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            written
        })
        .await
    }

    async fn read_stream(&self, stream: &StreamName, options: StreamRead) -> Result<Vec<Message>> {
        let (inner, stream) = (self.inner.clone(), stream.clone());
        self.run(async move { inner.read_stream(&stream, options).await })
            .await
    }

    async fn read_category(
        &self,
        category: &Category,
        options: CategoryRead,
    ) -> Result<Vec<Message>> {
        let (inner, category) = (self.inner.clone(), category.clone());
        self.run(async move { inner.read_category(&category, options).await })
            .await
    }

    async fn read_last_message(
        &self,
        stream: &StreamName,
        message_type: Option<&str>,
    ) -> Result<Option<Message>> {
        let (inner, stream) = (self.inner.clone(), stream.clone());
        let message_type = message_type.map(str::to_owned);
        self.run(async move {
            inner
                .read_last_message(&stream, message_type.as_deref())
                .await
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>> {
        let (inner, stream) = (self.inner.clone(), stream.clone());
        self.run(async move { inner.stream_version(&stream).await })
            .await
    }

    async fn category_head(&self, category: &Category) -> Result<Option<u64>> {
        let (inner, category) = (self.inner.clone(), category.clone());
        self.run(async move { inner.category_head(&category).await })
            .await
    }

    /// Opened on the other runtime; the unit's own calls run on the caller's.
    async fn begin(&self, options: UnitOptions) -> Result<Box<dyn OpenUnit>> {
        let inner = self.inner.clone();
        self.run(async move { inner.begin(options).await }).await
    }

    async fn subscribe(
        &self,
        category: &Category,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        message_store::backend::subscribe(self, category, options).await
    }

    fn wake_ups(&self, category: &Category) -> Option<watch::Receiver<u64>> {
        self.inner.wake_ups(category)
    }

    fn wakes_subscriptions_on_write(&self) -> bool {
        self.inner.wakes_subscriptions_on_write()
    }

    fn wake_ups_live(&self) -> bool {
        self.inner.wake_ups_live()
    }
}
