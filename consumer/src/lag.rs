//! Consumer lag: how many messages a consumer would still handle. The
//! handles count it exactly ([`ConsumerHandle::lag`](crate::ConsumerHandle::lag));
//! the runtime samples it for the [`LAG`](message_store::backend::meter::LAG)
//! gauge, counting at most a bounded number of messages and estimating the
//! rest of a longer backlog.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use message_store::backend::meter::LagGauge;
use message_store::{Category, MessageStore, Result, SubscribeOptions};

use crate::handle::ConsumerHealth;

/// What a count of the messages ahead found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ahead {
    /// The first global position counted from.
    from: u64,
    /// The category's head when the count began.
    head: u64,
    /// Messages counted.
    counted: u64,
    /// The global position of the last one counted.
    last: Option<u64>,
}

/// Counts, up to `most`, the messages a consumer reading with `read` at
/// `health` would still handle up to the category's head now.
async fn ahead(
    store: &dyn MessageStore,
    category: &Category,
    read: &SubscribeOptions,
    health: &ConsumerHealth,
    most: Option<u64>,
) -> Result<Ahead> {
    let from = health.first_unhandled();
    let mut found = Ahead {
        from,
        head: 0,
        counted: 0,
        last: None,
    };
    let Some(head) = store.category_head(category).await? else {
        return Ok(found);
    };
    found.head = head;
    if from > head {
        return Ok(found);
    }
    let mut messages = store.category_messages(category, read.category_read(from));
    while let Some(message) = messages.next().await {
        let global_position = message?.global_position;
        if global_position > head || most.is_some_and(|most| found.counted >= most) {
            break;
        }
        found.counted += 1;
        found.last = Some(global_position);
    }
    Ok(found)
}

/// Exactly how many messages a consumer reading with `read`, at `health`,
/// would still handle up to the category's head now.
pub(crate) async fn lag(
    store: &dyn MessageStore,
    category: &Category,
    read: &SubscribeOptions,
    health: &ConsumerHealth,
) -> crate::Result<u64> {
    Ok(ahead(store, category, read, health, None).await?.counted)
}

/// The lag a count stopped at its bound implies: the messages counted,
/// plus the rest of the way to the head at the share of global positions
/// that were the consumer's messages so far.
fn estimate(ahead: Ahead) -> u64 {
    let Some(last) = ahead.last.filter(|&last| last < ahead.head) else {
        return ahead.counted;
    };
    let span = (last + 1).saturating_sub(ahead.from).max(1);
    let rest = u128::from(ahead.head - last) * u128::from(ahead.counted) / u128::from(span);
    ahead
        .counted
        .saturating_add(u64::try_from(rest).unwrap_or(u64::MAX))
}

/// Everything a lag sampler needs; it runs until dropped.
pub(crate) struct Sampler {
    pub(crate) store: Arc<dyn MessageStore>,
    pub(crate) category: Category,
    pub(crate) read: SubscribeOptions,
    pub(crate) health: Arc<Mutex<ConsumerHealth>>,
    pub(crate) gauge: LagGauge,
    pub(crate) interval: Duration,
    pub(crate) exact_up_to: u64,
}

impl Sampler {
    /// Sets the gauge every interval, forever. A failed
    /// sample leaves the last value (the consumer reports the backend's
    /// failures itself).
    pub(crate) async fn run(self) {
        // The first sample after one interval: a consumer that runs only
        // briefly (a test's, a batch job's) reads nothing extra.
        let first = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(first, self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let health = self
                .health
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let most = Some(self.exact_up_to);
            match ahead(
                self.store.as_ref(),
                &self.category,
                &self.read,
                &health,
                most,
            )
            .await
            {
                Ok(found) => self.gauge.set(estimate(found)),
                Err(error) => tracing::debug!(%error, "lag sample failed"),
            }
        }
    }
}

impl crate::runtime::Runner {
    /// This loop's lag sampler, while metrics are on: its gauge is the
    /// consumer's, or its consumer-group member's for a fleet bucket.
    pub(crate) fn lag_sampler(&self) -> Option<Sampler> {
        let read = &self.options.subscription;
        let bucket = read.consumer_group().map(|group| group.member());
        Some(Sampler {
            gauge: self.meters.lag(bucket)?,
            store: self.store.clone(),
            category: self.category.clone(),
            read: read.clone(),
            health: self.health.clone(),
            interval: self.options.lag_interval,
            exact_up_to: self.options.lag_exact_up_to,
        })
    }
}

/// Runs `work` while `sampler` (if any) samples the lag. Once the work is
/// done or dropped the gauge reads 0: this loop no longer holds the
/// messages (a fleet bucket's new holder reports them).
pub(crate) async fn while_sampling<T>(
    sampler: Option<Sampler>,
    work: impl std::future::Future<Output = T>,
) -> T {
    struct Zero(LagGauge);
    impl Drop for Zero {
        fn drop(&mut self) {
            self.0.set(0);
        }
    }
    let Some(sampler) = sampler else {
        return work.await;
    };
    let _zero = Zero(sampler.gauge.clone());
    tokio::select! {
        biased;
        done = work => done,
        () = sampler.run() => unreachable!("sampling runs until dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ahead(from: u64, head: u64, counted: u64, last: Option<u64>) -> Ahead {
        Ahead {
            from,
            head,
            counted,
            last,
        }
    }

    #[test]
    fn a_complete_count_is_the_lag() {
        assert_eq!(estimate(ahead(1, 0, 0, None)), 0, "an empty category");
        assert_eq!(estimate(ahead(11, 10, 0, None)), 0, "caught up");
        assert_eq!(
            estimate(ahead(1, 10, 4, Some(10))),
            4,
            "counted to the head"
        );
        assert_eq!(estimate(ahead(1, 10, 0, None)), 0, "none of ours ahead");
    }

    #[test]
    fn a_cut_count_is_carried_on_to_the_head_at_its_share() {
        // Every position ours: 100 counted of 1..=100, head 1000.
        assert_eq!(estimate(ahead(1, 1000, 100, Some(100))), 1000);
        // A quarter ours: 100 counted of 501..=900, head 2900.
        assert_eq!(estimate(ahead(501, 2900, 100, Some(900))), 100 + 500);
        // Counted past `from` only by one position: never divides by zero.
        assert_eq!(estimate(ahead(7, 9, 1, Some(7))), 3);
    }
}
