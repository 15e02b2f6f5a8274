//! A consumer's lag: the messages it would still handle, with its filters,
//! as its handle counts it and as its lag gauge reports it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{
    Category, ConsumerGroup, ExpectedVersion, Message, MessageStore, Metadata, NewMessage,
    SubscribeOptions,
};
use message_store_consumer::{Consumer, ConsumerHandle, ConsumerOptions, HandlerResult};
use serde_json::json;

use crate::support::*;

fn counting(
    category: &Category,
    subscription: SubscribeOptions,
    handled: &Arc<Mutex<u64>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
) -> Consumer {
    let handled = handled.clone();
    Consumer::new(category.clone())
        .with_options(
            ConsumerOptions::new()
                .with_subscription(subscription.with_poll_interval(Duration::from_millis(10))),
        )
        .on_any(move |_message: Message| {
            let (handled, gate) = (handled.clone(), gate.clone());
            async move {
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                *handled.lock().unwrap() += 1;
                HandlerResult::Ok(())
            }
        })
}

/// A new category of 12 streams, one message each.
async fn twelve_streams(store: &dyn MessageStore) -> Category {
    let category = unique_category("account");
    for id in 0..12 {
        store
            .write(
                &stream(&category, &id.to_string()),
                batch(0, 1),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    category
}

async fn lag(handle: &ConsumerHandle) -> u64 {
    handle.lag().await.unwrap()
}

/// Each member of a group of 3 reports lag 0 once it handled its share,
/// although the category's newest messages belong to the other members.
pub async fn lag_of_consumer_group_members_reaches_zero(store: Arc<dyn MessageStore>) {
    let category = twelve_streams(store.as_ref()).await;
    let mut members = Vec::new();
    for member in 0..3 {
        let handled = Arc::new(Mutex::new(0));
        let options = SubscribeOptions::new()
            .with_consumer_id(format!("member{member}"))
            .with_consumer_group(ConsumerGroup::new(member, 3).unwrap());
        let handle = counting(&category, options, &handled, None)
            .start(store.clone())
            .await
            .unwrap();
        members.push((handle, handled));
    }
    wait_until("all twelve are handled", || {
        members.iter().map(|(_, h)| *h.lock().unwrap()).sum::<u64>() == 12
    })
    .await;
    for (handle, _) in &members {
        assert_eq!(lag(handle).await, 0, "caught up");
    }
    for (handle, _) in members {
        handle.shutdown().await.unwrap();
    }
}

/// A correlation consumer's lag counts only its messages: while it is held
/// at its first message, it is the number of correlated messages; once it
/// handled them, 0, although uncorrelated messages follow.
pub async fn lag_counts_only_the_messages_a_correlation_consumer_handles(
    store: Arc<dyn MessageStore>,
) {
    let category = unique_category("account");
    let correlated = |n: u64| {
        NewMessage::new("Numbered", json!({ "n": n }))
            .with_metadata(Metadata::new().with_correlation_stream_name("process-1"))
    };
    let stream = stream(&category, "1");
    let messages = vec![
        numbered("Numbered", 0),
        correlated(1),
        numbered("Numbered", 2),
        correlated(3),
        numbered("Numbered", 4),
        numbered("Numbered", 5),
    ];
    store
        .write(&stream, messages, ExpectedVersion::Any)
        .await
        .unwrap();
    let handled = Arc::new(Mutex::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let options = SubscribeOptions::new()
        .with_consumer_id("correlated")
        .with_correlation("process");
    let handle = counting(&category, options, &handled, Some(gate.clone()))
        .start(store.clone())
        .await
        .unwrap();
    assert_eq!(
        lag(&handle).await,
        2,
        "two messages to handle, not six positions"
    );
    gate.add_permits(1);
    wait_until("the first is handled", || *handled.lock().unwrap() == 1).await;
    assert_eq!(lag(&handle).await, 1);
    gate.add_permits(1);
    wait_until("both are handled", || *handled.lock().unwrap() == 2).await;
    assert_eq!(
        lag(&handle).await,
        0,
        "caught up before the uncorrelated tail"
    );
    handle.shutdown().await.unwrap();
}

/// With metrics on, a consumer samples its lag into the lag gauge: held at
/// its first of 12 messages it reports 12, held at its sixth 7. Each
/// bucket of a two-bucket fleet reports its own share, labelled with the
/// bucket.
pub async fn the_lag_gauge_follows_a_consumer_and_each_fleet_bucket(store: Arc<dyn MessageStore>) {
    use message_store::backend::meter;
    use message_store_consumer::fleet::FleetOptions;

    assert!(
        crate::meters::start(),
        "another global metrics recorder is installed in this test binary"
    );
    let category = twelve_streams(store.as_ref()).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let consumer = |id: &str| {
        let gate = gate.clone();
        let subscription = SubscribeOptions::new()
            .with_consumer_id(id)
            .with_poll_interval(Duration::from_millis(10));
        Consumer::new(category.clone())
            .with_options(
                ConsumerOptions::new()
                    .with_subscription(subscription)
                    .with_lag_interval(Duration::from_millis(20))
                    .with_lease_duration(Duration::from_millis(300)),
            )
            .on_any(move |_message: Message| {
                let gate = gate.clone();
                async move {
                    gate.acquire().await.unwrap().forget();
                    HandlerResult::Ok(())
                }
            })
    };
    let gauge = |bucket: Option<&str>| {
        crate::meters::of(category.as_str())
            .iter()
            .find(|m| m.name == meter::LAG && m.label("message_store.consumer.bucket") == bucket)
            .and_then(|m| m.gauge)
    };

    let single = consumer("single").start(store.clone()).await.unwrap();
    wait_until("the gauge reads 12 while the first is held", || {
        gauge(None) == Some(12.0)
    })
    .await;
    assert_eq!(lag(&single).await, 12, "the handle counts the same");
    gate.add_permits(5);
    wait_until("the gauge reads 7 while the sixth is held", || {
        gauge(None) == Some(7.0)
    })
    .await;
    assert_eq!(lag(&single).await, 7, "the handle counts the same");
    gate.add_permits(7);
    single.caught_up().await.unwrap();
    single.shutdown().await.unwrap();

    let share = |bucket: u32| {
        let group = ConsumerGroup::new(bucket, 2).unwrap();
        (0..12)
            .filter(|id| group.contains(stream(&category, &id.to_string()).as_str()))
            .count() as f64
    };
    let (first, second) = (share(0), share(1));
    assert_eq!(first + second, 12.0);
    let fleet = consumer("fleet")
        .start_fleet(
            store.clone(),
            FleetOptions::new()
                .with_buckets(2)
                .with_lease_duration(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    wait_until("each bucket's gauge reads its share", || {
        gauge(Some("0")) == Some(first) && gauge(Some("1")) == Some(second)
    })
    .await;
    gate.add_permits(12);
    wait_until("the fleet handled all twelve", || {
        fleet.health().handled == 12
    })
    .await;
    fleet.shutdown().await.unwrap();
}
