//! A store wrapped in a decorator (here `FailingStore`) subscribes as the
//! store it wraps does: core builds the subscription from the wake-ups the
//! decorator passes on.

use std::sync::Arc;
use std::time::Duration;

use message_store::{ExpectedVersion, MessageStore, SubscribeOptions};

use crate::faults::FailingStore;
use crate::support::*;

/// Through a decorator, a caught-up subscription is woken by a write exactly
/// when the wrapped store wakes its own (the poll interval here is an hour,
/// so only a wake-up delivers in time); on a store without wake-ups it polls.
pub async fn a_decorated_store_passes_wake_ups_on(store: Arc<dyn MessageStore>) {
    let decorated = FailingStore::new(store.clone());
    assert_eq!(
        decorated.wakes_subscriptions_on_write(),
        store.wakes_subscriptions_on_write()
    );
    let interval = if decorated.wakes_subscriptions_on_write() {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(50)
    };
    let category = unique_category("account");
    let options = SubscribeOptions::new().with_poll_interval(interval);
    let mut subscription = decorated.subscribe(&category, options).await.unwrap();
    let write_later = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .write(&stream(&category, "1"), batch(0, 1), ExpectedVersion::Any)
            .await
            .unwrap();
    };
    // A caught-up subscription's next batch waits for a wake-up or its poll.
    let receive = subscription.next_batch();
    let (received, ()) = futures::join!(
        tokio::time::timeout(Duration::from_secs(30), receive),
        write_later
    );
    let received = received.expect("woken in time").unwrap();
    assert_eq!(numbers(&received), vec![0]);
}
