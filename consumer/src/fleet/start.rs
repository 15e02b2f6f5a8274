//! Starting a fleet instance: the options checked, the bucket consumers'
//! options derived, the fleet read, the instance spawned.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::bucket::Sink;
use super::handle::{FleetHandle, FleetHealth, Shared};
use super::instance::{Instance, Setup};
use super::members::Members;
use super::options::FleetOptions;
use crate::error::Result;
use crate::options::ConsumerOptions;
use crate::{group_member_id, Consumer};
use message_store::{ConsumerGroup, Error, MessageStore};

impl Consumer {
    /// Starts this process's instance of the fleet named by the consumer
    /// id: it joins the instances already running under that id on this
    /// category, takes its share of the buckets, and hands them on when it
    /// stops (see the [fleet module](crate::fleet) for the protocol).
    ///
    /// The consumer id is required. With more than one bucket each bucket
    /// is a consumer-group member, so the options must not set a consumer
    /// group themselves. The start position applies to buckets with no
    /// recorded position; the others resume where they were. Every other
    /// option applies to each bucket: its retries, failure policy, position
    /// interval, handler timeout and shutdown deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use message_store_consumer::fleet::FleetOptions;
    /// use message_store_consumer::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// let store = message_store_memory::MemoryStore::new();
    /// for id in 0..20 {
    ///     store.write_one(format!("payment-{id}"), NewMessage::new("Charged", json!({})), ExpectedVersion::Any).await?;
    /// }
    /// let consumer = || Consumer::new(Category::new("payment").unwrap())
    ///     .with_options(ConsumerOptions::new().with_subscription(
    ///         SubscribeOptions::new().with_consumer_id("ledger").with_poll_interval(Duration::from_millis(10))))
    ///     .on_any(|_message: Message| async { HandlerResult::Ok(()) });
    /// let fleet = FleetOptions::new().with_buckets(4).with_lease_duration(Duration::from_millis(300));
    /// let a = consumer().start_fleet(store.clone(), fleet.clone()).await?;
    /// let b = consumer().start_fleet(store.clone(), fleet).await?;
    /// while a.health().buckets.len() + b.health().buckets.len() < 4
    ///     || a.health().handled + b.health().handled < 20
    /// {
    ///     tokio::time::sleep(Duration::from_millis(20)).await;
    /// }
    /// a.shutdown().await?;
    /// b.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_fleet<S: MessageStore>(
        self,
        store: S,
        fleet: FleetOptions,
    ) -> Result<FleetHandle> {
        self.launch(Arc::new(store), fleet, None).await
    }

    /// Starts a fleet instance; `sink`: a plain consumer's handle watches
    /// its one bucket there.
    pub(crate) async fn launch(
        self,
        store: Arc<dyn MessageStore>,
        fleet: FleetOptions,
        sink: Option<Sink>,
    ) -> Result<FleetHandle> {
        self.options.validate()?;
        fleet.validate()?;
        let Some(id) = self.options.subscription.consumer_id().map(str::to_owned) else {
            return Err(invalid(
                "consumer_id",
                "a fleet needs a consumer id: it names the fleet",
            ));
        };
        let buckets = fleet.buckets();
        if buckets > 1 && self.options.subscription.consumer_group().is_some() {
            return Err(invalid(
                "consumer_group",
                "a fleet's buckets are its consumer-group members; leave the group unset",
            ));
        }
        let bucket_options = (0..buckets)
            .map(|bucket| bucket_options(&self.options, &id, bucket, buckets))
            .collect::<Result<Vec<_>>>()?;
        let position_streams = bucket_options
            .iter()
            .map(|options| {
                self.category
                    .position_stream(options.subscription.consumer_id())
            })
            .collect::<message_store::Result<Vec<_>>>()?;
        let fleet_stream = self.category.fleet_stream(&id)?;
        let reads = bucket_options
            .iter()
            .map(|options| options.subscription.clone())
            .collect();
        let category = self.category.clone();
        let members =
            Members::open(store.as_ref(), fleet_stream.clone(), fleet.lease_duration()).await?;
        let instance = fleet
            .instance_id()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let shared = Arc::new(Shared {
            meters: message_store::backend::meter::ConsumerMeters::new(
                self.options.subscription.consumer_id(),
                self.category.as_str(),
            ),
            ..Shared::default()
        });
        shared.update(|h| {
            *h = FleetHealth {
                instance: instance.clone(),
                running: true,
                ..FleetHealth::default()
            }
        });
        let token = CancellationToken::new();
        let run = Instance::new(Setup {
            store: store.clone(),
            category: self.category,
            bucket_options,
            fleet,
            instance: instance.clone(),
            handlers: Arc::new(self.handlers),
            shared: shared.clone(),
            token: token.clone(),
            crash: CancellationToken::new(),
            fleet_stream,
            position_streams,
            members,
            sink,
        })
        .run();
        Ok(FleetHandle {
            token,
            task: tokio::spawn(run),
            shared,
            instance,
            store,
            category,
            reads,
        })
    }
}

fn invalid(option: &'static str, problem: &str) -> crate::Error {
    Error::InvalidOption {
        option,
        problem: problem.to_owned(),
    }
    .into()
}

/// Bucket `bucket`'s consumer: with one bucket the consumer itself, else
/// consumer-group member `bucket` under the derived id.
fn bucket_options(
    options: &ConsumerOptions,
    id: &str,
    bucket: u32,
    buckets: u32,
) -> Result<ConsumerOptions> {
    if buckets == 1 {
        return Ok(options.clone());
    }
    let subscription = options
        .subscription
        .clone()
        .with_consumer_id(group_member_id(id, bucket, buckets))
        .with_consumer_group(ConsumerGroup::new(bucket, buckets)?);
    Ok(options.clone().with_subscription(subscription))
}
