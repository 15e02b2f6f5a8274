//! One bucket held by this instance: open its subscription, check that the
//! claim still stands, run the consumer loop on it, and release it when
//! asked to stop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::handle::Shared;
use super::records;
use super::Lease;
use crate::error::Error;
use crate::handle::ConsumerHealth;
use crate::handlers::Handlers;
use crate::options::ConsumerOptions;
use crate::runtime::Runner;
use message_store::backend::meter::ConsumerMeters;
use message_store::{Category, MessageStore, StartPosition, StreamName};

/// What a bucket needs to run.
pub(crate) struct BucketContext {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    /// The bucket consumer's options (its derived id and group).
    pub(crate) options: ConsumerOptions,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) position_stream: StreamName,
    pub(crate) lease: Lease,
    /// The bucket had a recorded position when it was claimed.
    pub(crate) resumes: bool,
    /// The fleet's lease duration (a release is not waited for longer).
    pub(crate) lease_duration: std::time::Duration,
    /// Cancelled when the instance's loop was dropped unfinished (a crash).
    pub(crate) crash: tokio_util::sync::CancellationToken,
    /// The instance's lease by its own clock: no message starts past it.
    pub(crate) fence: super::FenceView,
    /// Where a plain consumer's handle watches its one bucket, whichever
    /// generation runs it.
    pub(crate) sink: Option<Sink>,
}

/// The health and progress signal a plain consumer's handle reads, kept
/// across the generations of its one bucket.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
    pub(crate) progress: tokio::sync::watch::Sender<u64>,
}

/// How a bucket's run ended.
#[derive(Debug)]
pub(crate) enum BucketEnd {
    /// Stopped when asked, and released if the claim still stood; `cut`
    /// when its stop ran past the shutdown deadline.
    Stopped {
        /// The consumer's `ShutdownDeadline`, if it was cut.
        cut: Option<Error>,
    },
    /// Someone else claimed it: a commit was refused (`refused`), or the
    /// claim had already been overtaken when the bucket opened.
    Lost {
        /// A position commit was refused.
        refused: bool,
    },
    /// A handler failed under `FailurePolicy::Stop`: the whole instance stops.
    Failed(Error),
}

/// Runs the bucket until `token` is cancelled or it is lost.
pub(crate) async fn run(context: BucketContext, token: CancellationToken) -> BucketEnd {
    let mut subscription_options = context.options.subscription.clone();
    if context.resumes {
        subscription_options = subscription_options.with_start(StartPosition::Committed);
    }
    let store = context.store.as_ref();
    let generation = context.lease.generation;
    let opened = async {
        let subscription = store
            .subscribe(&context.category, subscription_options)
            .await?;
        // Versions only grow: if the stream is still at the claim, the
        // subscription read it there and its commits expect it.
        let version = store.stream_version(&context.position_stream).await?;
        Ok::<_, message_store::Error>((version == Some(generation)).then_some(subscription))
    };
    let subscription = match opened.await {
        Ok(Some(subscription)) => subscription,
        Ok(None) => return BucketEnd::Lost { refused: false },
        Err(error) => {
            context.shared.update(|h| {
                h.last_error = Some(format!("opening bucket {}: {error}", context.lease.bucket))
            });
            release(&context).await;
            return BucketEnd::Stopped { cut: None };
        }
    };
    let (health, progress) = match &context.sink {
        Some(sink) => {
            let mut health = sink.health.lock().unwrap_or_else(PoisonError::into_inner);
            health.running = true;
            health.position = subscription.position();
            drop(health);
            (sink.health.clone(), sink.progress.clone())
        }
        None => {
            let health = ConsumerHealth {
                running: true,
                position: subscription.position(),
                ..ConsumerHealth::default()
            };
            (
                Arc::new(Mutex::new(health)),
                tokio::sync::watch::channel(0).0,
            )
        }
    };
    context
        .shared
        .register(context.lease.bucket, generation, health.clone());
    let runner = Runner {
        store: context.store.clone(),
        category: context.category.clone(),
        options: context.options.clone(),
        handlers: context.handlers.clone(),
        subscription,
        token,
        health,
        progress,
        claim: None,
        lease: Some(std::sync::Arc::new(context.lease.clone())),
        crash: Some(context.crash.clone()),
        fence: Some(context.fence.clone()),
        meters: ConsumerMeters::new(
            context.options.subscription.consumer_id(),
            context.category.as_str(),
        ),
        background: None,
        last_record: Default::default(),
    };
    let result = runner.run().await;
    context
        .shared
        .unregister(context.lease.bucket, context.sink.is_none());
    match result {
        Err(Error::Store(message_store::Error::PositionStreamInUse { .. })) => {
            BucketEnd::Lost { refused: true }
        }
        Err(error @ Error::HandlerFailed { .. }) => {
            release(&context).await;
            BucketEnd::Failed(error)
        }
        Ok(_) => {
            release(&context).await;
            BucketEnd::Stopped { cut: None }
        }
        // Cut at its deadline (a stuck handler, a store that does not
        // answer): no release to wait for; the lease lapses instead.
        Err(cut @ Error::ShutdownDeadline { .. }) => BucketEnd::Stopped { cut: Some(cut) },
        Err(error) => {
            context
                .shared
                .update(|h| h.last_error = Some(error.to_string()));
            release(&context).await;
            BucketEnd::Stopped { cut: None }
        }
    }
}

/// Releases the bucket if the claim still stands; a few quick attempts
/// within a heartbeat interval, since a release that does not land only
/// delays the next holder until the lease lapses or this instance's next
/// heartbeat leaves the bucket out.
async fn release(context: &BucketContext) {
    let bound = context.lease_duration / 3;
    if tokio::time::timeout(bound, try_release(context))
        .await
        .is_err()
    {
        context.shared.update(|h| {
            h.last_error = Some(format!(
                "releasing bucket {}: timed out",
                context.lease.bucket
            ))
        });
    }
}

async fn try_release(context: &BucketContext) {
    for attempt in 1..=3u32 {
        match records::release(
            context.store.as_ref(),
            &context.position_stream,
            context.lease.generation,
            &context.lease.instance,
        )
        .await
        {
            Ok(released) => {
                if released {
                    context.shared.update(|h| h.releases += 1);
                    context.shared.lease_changed("release");
                }
                return;
            }
            Err(error) => {
                context.shared.update(|h| {
                    h.last_error = Some(format!(
                        "releasing bucket {}: {error}",
                        context.lease.bucket
                    ))
                });
                tokio::time::sleep(Duration::from_millis(20) * attempt).await;
            }
        }
    }
}
