//! A consumer's lag: the messages it would still handle, with its filters.

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

async fn lag(handle: &ConsumerHandle) -> u64 {
    handle.lag().await.unwrap()
}

/// Each member of a group of 3 reports lag 0 once it handled its share,
/// although the category's newest messages belong to the other members.
pub async fn lag_of_consumer_group_members_reaches_zero(store: Arc<dyn MessageStore>) {
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
