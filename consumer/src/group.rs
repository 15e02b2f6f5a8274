//! Static consumer groups: the members of a group of a fixed size, each
//! on its share of the category, started together.

use crate::error::Result;
use crate::{Consumer, ConsumerHandle};
use message_store::{ConsumerGroup, MessageStore};

/// The consumer id of `member` of a static group of `size` started by
/// [`Consumer::start_group`]: `{id}-{member}of{size}`, so its position stream
/// is `{category}:position-{id}-{member}of{size}`.
pub fn group_member_id(id: &str, member: u32, size: u32) -> String {
    format!("{id}-{member}of{size}")
}

impl Consumer {
    /// Starts the `size` members of a static consumer group, each on its
    /// share of the category's streams ([`ConsumerGroup`]), with its own
    /// position stream under the derived id [`group_member_id`]`(id, member,
    /// size)` (the consumer id is required). Handles come back in member
    /// order; if one fails to start, those started are shut down.
    ///
    /// Every member reads the whole category and keeps its share, so a
    /// member costs a read of the category per page (see the PostgreSQL
    /// backend's consumer-group indexes).
    ///
    /// ## Changing the size
    ///
    /// A stream's member depends on the size, so members of a new size own
    /// other streams than the old ones. The size is part of the derived ids:
    /// members of a new size never resume from an old member's position
    /// (which would skip the messages of streams that moved to them), they
    /// start where their options say, the beginning by default. To change
    /// the size, stop every member of the old size, then start the new size
    /// with [`StartPosition::At`](message_store::StartPosition::At) the lowest
    /// position the old members recorded: messages after it are delivered
    /// again to idempotent handlers, and none is skipped.
    pub async fn start_group<S: MessageStore + Clone>(
        self,
        store: S,
        size: u32,
    ) -> Result<Vec<ConsumerHandle>> {
        let Some(id) = self.options.subscription.consumer_id().map(str::to_owned) else {
            return Err(message_store::Error::InvalidOption {
                option: "consumer_id",
                problem: "a consumer group needs a consumer id to derive its members' ids"
                    .to_owned(),
            }
            .into());
        };
        let mut handles = Vec::new();
        for member in 0..size.max(1) {
            let started = match ConsumerGroup::new(member, size) {
                Ok(group) => {
                    let subscription = self
                        .options
                        .subscription
                        .clone()
                        .with_consumer_id(group_member_id(&id, member, size))
                        .with_consumer_group(group);
                    let member = Consumer {
                        category: self.category.clone(),
                        options: self.options.clone().with_subscription(subscription),
                        handlers: self.handlers.clone(),
                    };
                    member.start(store.clone()).await
                }
                Err(error) => Err(error.into()),
            };
            match started {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    for handle in handles {
                        handle.shutdown().await.ok();
                    }
                    return Err(error);
                }
            }
        }
        Ok(handles)
    }
}
