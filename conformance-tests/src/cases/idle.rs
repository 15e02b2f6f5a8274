//! What an idle subscription costs: while the store's wake-ups are live it
//! reads only when woken (or after its fallback interval), and it polls at
//! its poll interval when they are not, backing off while a category stays
//! quiet when asked to.

use std::sync::Arc;
use std::time::Duration;

use message_store::{Category, ExpectedVersion, MessageStore, SubscribeOptions, Subscription};

use crate::faults::{FailingStore, Operation};
use crate::support::*;

/// The reads a caught-up `subscription` makes in `span` through `counting`.
async fn idle_reads(
    counting: &FailingStore,
    subscription: &mut dyn Subscription,
    span: Duration,
) -> u64 {
    let before = counting.calls(Operation::ReadCategory);
    let idle = tokio::time::timeout(span, subscription.next_batch()).await;
    assert!(idle.is_err(), "nothing to deliver: {idle:?}");
    counting.calls(Operation::ReadCategory) - before
}

/// A write reaches `subscription` (woken, or by its poll).
async fn delivered(
    store: &dyn MessageStore,
    category: &Category,
    subscription: &mut dyn Subscription,
    n: u64,
) {
    let stream = category.stream("1").unwrap();
    store
        .write(&stream, batch(n, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch())
        .await
        .expect("the write is delivered")
        .unwrap();
    assert_eq!(numbers(&batch), vec![n]);
}

/// Poll interval 10 ms, fallback an hour. Where the store's wake-ups are
/// live, 300 idle milliseconds cost at most the one read that found
/// nothing, and a write still arrives at once (woken). Where they are not
/// (no notifications, or, here, a decorator reporting them down as a lost
/// LISTEN connection would), the subscription polls every 10 ms.
pub async fn an_idle_subscription_reads_only_when_woken_while_wake_ups_are_live(
    store: Arc<dyn MessageStore>,
) {
    let counting = FailingStore::new(store.clone());
    let category = unique_category("idle");
    let options = SubscribeOptions::new()
        .with_poll_interval(Duration::from_millis(10))
        .with_fallback_interval(Duration::from_secs(3600));
    let mut subscription = counting.subscribe(&category, options).await.unwrap();
    if store.wakes_subscriptions_on_write() {
        wait_until("the store's wake-ups are live", || store.wake_ups_live()).await;
    }
    let span = Duration::from_millis(300);
    if store.wake_ups_live() {
        let reads = idle_reads(&counting, subscription.as_mut(), span).await;
        assert!(reads <= 1, "{reads} reads while idle with live wake-ups");
        delivered(store.as_ref(), &category, subscription.as_mut(), 0).await;
        counting.silence_wake_ups();
        // The next write's wake-up ends the long wait; from then on it polls.
        delivered(store.as_ref(), &category, subscription.as_mut(), 1).await;
    }
    let reads = idle_reads(&counting, subscription.as_mut(), span).await;
    assert!(
        reads >= 5,
        "{reads} reads in {span:?} at a 10 ms poll interval without live wake-ups"
    );
    delivered(store.as_ref(), &category, subscription.as_mut(), 2).await;
}

/// Without live wake-ups and with an idle backoff to 200 ms, a quiet
/// category's polls double from 10 ms: about 8 reads in a second instead
/// of about 90; a write is still delivered, and polling starts again at
/// the poll interval.
pub async fn a_quiet_category_is_polled_less_and_less_with_an_idle_backoff(
    store: Arc<dyn MessageStore>,
) {
    let counting = FailingStore::new(store.clone());
    counting.silence_wake_ups();
    let category = unique_category("quiet");
    let options = SubscribeOptions::new()
        .with_poll_interval(Duration::from_millis(10))
        .with_idle_backoff(Duration::from_millis(200));
    let mut subscription = counting.subscribe(&category, options).await.unwrap();
    let second = Duration::from_secs(1);
    let reads = idle_reads(&counting, subscription.as_mut(), second).await;
    assert!(
        (3..=12).contains(&reads),
        "{reads} reads in a quiet second, backing off from 10 ms to 200 ms"
    );
    delivered(store.as_ref(), &category, subscription.as_mut(), 0).await;
    delivered(store.as_ref(), &category, subscription.as_mut(), 1).await;
}
