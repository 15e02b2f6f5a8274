//! A subscription reads its next pages while the last one is handled, and
//! only after a full page, up to the first short one: catching up overlaps
//! reading with handling, and a caught-up subscription reads no more than
//! it did.

use std::sync::Arc;
use std::time::Duration;

use message_store::{ExpectedVersion, MessageStore, SubscribeOptions};

use crate::faults::{FailingStore, Operation};
use crate::support::*;

/// After a full page the next ones are read before they are asked for, up
/// to a short one, after which nothing is; a read ahead that finds nothing
/// still leaves the subscription woken by the next write.
pub async fn a_subscription_reads_the_next_page_before_it_is_asked(store: Arc<dyn MessageStore>) {
    let category = unique_category("ahead");
    store
        .write(&stream(&category, "1"), batch(0, 25), ExpectedVersion::Any)
        .await
        .unwrap();
    let failing = FailingStore::new(store.clone());
    let options = SubscribeOptions::new()
        .with_batch_size(10)
        .with_poll_interval(Duration::from_millis(20));
    let mut subscription = failing.subscribe(&category, options).await.unwrap();
    let reads = || failing.calls(Operation::ReadCategory);

    assert_eq!(subscription.next_batch().await.unwrap().len(), 10);
    wait_until("the other two pages to be read unasked", || reads() == 3).await;
    assert_eq!(subscription.next_batch().await.unwrap().len(), 10);
    let short = subscription.next_batch().await.unwrap();
    assert_eq!(
        short.len(),
        5,
        "the pages read ahead are the pages delivered"
    );
    assert_eq!(reads(), 3, "no read for a page already read");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(reads(), 3, "nothing read ahead after a short page");

    // Exactly two pages: the read ahead after the second finds nothing,
    // and the subscription then waits for what is written next.
    let exact = unique_category("ahead");
    store
        .write(&stream(&exact, "1"), batch(0, 20), ExpectedVersion::Any)
        .await
        .unwrap();
    let options = SubscribeOptions::new()
        .with_batch_size(10)
        .with_poll_interval(Duration::from_millis(20));
    let mut subscription = store.subscribe(&exact, options).await.unwrap();
    for _ in 0..2 {
        assert_eq!(subscription.next_batch().await.unwrap().len(), 10);
    }
    let next = tokio::spawn(async move { subscription.next_batch().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .write(&stream(&exact, "2"), batch(20, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(20), next)
        .await
        .expect("the write after an empty read ahead is delivered")
        .unwrap()
        .unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].stream_name, stream(&exact, "2"));
}

/// A subscription that polls (no wake-ups, as on genuine Message DB) and
/// whose read ahead found nothing reads again before it waits: what was
/// written while the last page was handled comes at once, not a poll
/// interval later.
pub async fn a_polling_subscription_rereads_after_an_empty_read_ahead(
    store: Arc<dyn MessageStore>,
) {
    let category = unique_category("ahead");
    store
        .write(&stream(&category, "1"), batch(0, 20), ExpectedVersion::Any)
        .await
        .unwrap();
    let polling = FailingStore::new(store.clone());
    polling.without_wake_ups();
    let options = SubscribeOptions::new()
        .with_batch_size(10)
        .with_poll_interval(Duration::from_secs(120));
    let mut subscription = polling.subscribe(&category, options).await.unwrap();
    let reads = || polling.calls(Operation::ReadCategory);

    assert_eq!(subscription.next_batch().await.unwrap().len(), 10);
    wait_until("the read ahead to find the end", || reads() == 3).await;
    assert_eq!(subscription.next_batch().await.unwrap().len(), 10);
    store
        .write(&stream(&category, "2"), batch(20, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), subscription.next_batch())
        .await
        .expect("read at once, not after the two-minute poll")
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].stream_name, stream(&category, "2"));
}
