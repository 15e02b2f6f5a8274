//! Subscriptions: order, resume, redelivery, groups, wake-ups, start
//! positions, one consumer per position stream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use message_store::{
    BatchSize, CategoryRead, ConsumerGroup, Error, ErrorKind, ExpectedVersion, MessageStore,
    MessageStoreExt, NewMessage, StartPosition, SubscribeOptions, Subscription,
};
use serde_json::json;

use crate::support::*;

const PATIENCE: Duration = Duration::from_secs(20);

/// Receives batches until `count` messages arrived (fails after a generous timeout).
async fn receive(subscription: &mut dyn Subscription, count: usize) -> Vec<message_store::Message> {
    let mut received = Vec::new();
    while received.len() < count {
        let batch = tokio::time::timeout(PATIENCE, subscription.next_batch())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages arrived", received.len()))
            .unwrap();
        assert!(!batch.is_empty(), "next_batch never returns an empty batch");
        received.extend(batch);
    }
    received
}

fn options() -> SubscribeOptions {
    SubscribeOptions::new().with_poll_interval(Duration::from_millis(20))
}

/// A subscription delivers the whole category in global order, across batches.
pub async fn subscription_delivers_the_category_in_global_order(store: &dyn MessageStore) {
    let category = unique_category("account");
    for (id, n) in [("1", 0), ("2", 1), ("1", 2), ("3", 3), ("2", 4)] {
        store
            .write(
                &stream(&category, id),
                vec![numbered("N", n)],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let mut subscription = store
        .subscribe(&category, options().with_batch_size(2))
        .await
        .unwrap();
    let received = receive(subscription.as_mut(), 5).await;
    assert_eq!(numbers(&received), vec![0, 1, 2, 3, 4]);
    assert_eq!(subscription.position(), received[4].global_position + 1);
}

/// After a commit, a new subscription resumes at the committed position, inclusive (as Eventide).
pub async fn subscription_resumes_at_the_committed_position(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 6), ExpectedVersion::Any)
        .await
        .unwrap();
    let opts = options().with_consumer_id("resumer");
    let mut first = store.subscribe(&category, opts.clone()).await.unwrap();
    let received = receive(first.as_mut(), 6).await;
    first.commit(received[3].global_position).await.unwrap();
    drop(first);
    let mut second = store.subscribe(&category, opts).await.unwrap();
    assert_eq!(second.position(), received[3].global_position);
    assert_eq!(numbers(&receive(second.as_mut(), 3).await), vec![3, 4, 5]);
}

/// Messages received but not committed are delivered again to the next subscription.
pub async fn uncommitted_messages_are_redelivered(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let mut first = store.subscribe(&category, options()).await.unwrap();
    let received = receive(first.as_mut(), 4).await;
    first.commit(received[1].global_position).await.unwrap();
    drop(first); // "crashed" after handling 2 and 3 without committing
    let mut second = store.subscribe(&category, options()).await.unwrap();
    assert_eq!(numbers(&receive(second.as_mut(), 3).await), vec![1, 2, 3]);
}

/// The position is recorded Eventide's way: `{category}:position-{id}`, type `Recorded`,
/// data `{"position": N}`.
pub async fn committed_position_is_an_eventide_position_record(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let mut subscription = store
        .subscribe(&category, options().with_consumer_id("worker"))
        .await
        .unwrap();
    let received = receive(subscription.as_mut(), 1).await;
    subscription
        .commit(received[0].global_position)
        .await
        .unwrap();
    let position_stream = category.position_stream(Some("worker")).unwrap();
    assert_eq!(
        position_stream.as_str(),
        format!("{}:position-worker", category.as_str())
    );
    let record = store
        .last_message(&position_stream)
        .await
        .unwrap()
        .expect("a position record");
    assert_eq!(record.message_type, "Recorded");
    assert_eq!(
        record.data,
        json!({ "position": received[0].global_position })
    );
}

/// `Beginning` ignores a committed position; `At(n)` starts at n.
pub async fn subscription_start_positions(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let all = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    let mut committing = store.subscribe(&category, options()).await.unwrap();
    receive(committing.as_mut(), 4).await;
    committing.commit(all[3].global_position).await.unwrap();
    let mut from_start = store
        .subscribe(&category, options().with_start(StartPosition::Beginning))
        .await
        .unwrap();
    assert_eq!(
        numbers(&receive(from_start.as_mut(), 4).await),
        vec![0, 1, 2, 3]
    );
    let at = options().with_start(StartPosition::At(all[2].global_position));
    let mut from_at = store.subscribe(&category, at).await.unwrap();
    assert_eq!(numbers(&receive(from_at.as_mut(), 2).await), vec![2, 3]);
}

/// Members of a consumer group, subscribed concurrently, split the category disjointly and
/// completely, each stream in order.
pub async fn consumer_group_subscriptions_partition_the_category(store: &dyn MessageStore) {
    let category = unique_category("account");
    let streams = 12u64;
    for round in 0..3u64 {
        for id in 0..streams {
            let n = round * 100 + id;
            store
                .write(
                    &stream(&category, &id.to_string()),
                    vec![numbered("N", n)],
                    ExpectedVersion::Any,
                )
                .await
                .unwrap();
        }
    }
    let size = 3;
    let mut per_stream: BTreeMap<String, (u32, Vec<u64>)> = BTreeMap::new();
    let mut total = 0;
    for member in 0..size {
        let opts = options()
            .with_consumer_id(format!("member{member}"))
            .with_consumer_group(ConsumerGroup::new(member, size).unwrap());
        let mut subscription = store.subscribe(&category, opts).await.unwrap();
        let expected = store
            .read_category(
                &category,
                CategoryRead::new().with_consumer_group(ConsumerGroup::new(member, size).unwrap()),
            )
            .await
            .unwrap()
            .len();
        for message in receive(subscription.as_mut(), expected).await {
            let entry = per_stream
                .entry(message.stream_name.to_string())
                .or_insert((member, Vec::new()));
            assert_eq!(
                entry.0, member,
                "{} went to two members",
                message.stream_name
            );
            entry.1.push(message.position);
            total += 1;
        }
    }
    assert_eq!(total, 3 * streams, "every message delivered once");
    assert_eq!(per_stream.len(), usize::try_from(streams).unwrap());
    assert!(
        per_stream.values().all(|(_, p)| p == &[0, 1, 2]),
        "in order per stream"
    );
    let members: BTreeSet<u32> = per_stream.values().map(|(m, _)| *m).collect();
    assert!(members.len() > 1, "the work is spread: {members:?}");
}

/// A consumer-group member without a consumer id is refused: members would share one position stream.
pub async fn consumer_group_subscription_needs_a_consumer_id(store: &dyn MessageStore) {
    let category = unique_category("account");
    let err = store
        .subscribe(
            &category,
            options().with_consumer_group(ConsumerGroup::new(0, 2).unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    for (option, invalid) in [
        ("batch_size", options().with_batch_size(0)),
        (
            "batch_size",
            options().with_batch_size(BatchSize::Unlimited),
        ),
        ("consumer_id", options().with_consumer_id("")),
        ("consumer_id", options().with_consumer_id("a\0b")),
        (
            "poll_interval",
            options().with_poll_interval(Duration::ZERO),
        ),
    ] {
        match store.subscribe(&category, invalid).await.err() {
            Some(Error::InvalidOption { option: named, .. }) => assert_eq!(named, option),
            other => panic!("{option}: {other:?}"),
        }
    }
}

/// A caught-up subscription sees a new write. On a store that wakes subscriptions on write it
/// must arrive without any poll (the poll interval here is an hour); otherwise by polling.
pub async fn caught_up_subscription_sees_a_new_write(store: &dyn MessageStore) {
    let category = unique_category("account");
    let interval = if store.wakes_subscriptions_on_write() {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(50)
    };
    let opts = SubscribeOptions::new().with_poll_interval(interval);
    let mut subscription = store.subscribe(&category, opts).await.unwrap();
    let s = stream(&category, "1");
    let write_later = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .write(&s, batch(0, 1), ExpectedVersion::Any)
            .await
            .unwrap();
    };
    let (received, ()) = futures::join!(receive(subscription.as_mut(), 1), write_later);
    assert_eq!(numbers(&received), vec![0]);
}

/// A correlated subscription delivers only correlated messages.
pub async fn subscription_with_correlation_filters(store: &dyn MessageStore) {
    let category = unique_category("account");
    let with = |n: u64, c: &str| {
        NewMessage::new("N", json!({ "n": n }))
            .with_metadata(message_store::Metadata::new().with_correlation_stream_name(c))
    };
    store
        .write(
            &stream(&category, "1"),
            vec![
                with(0, "transfer-1"),
                with(1, "other-1"),
                with(2, "transfer-2"),
            ],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let mut subscription = store
        .subscribe(&category, options().with_correlation("transfer"))
        .await
        .unwrap();
    assert_eq!(
        numbers(&receive(subscription.as_mut(), 2).await),
        vec![0, 2]
    );
}

/// `End` skips what the category held when the subscription opened.
pub async fn subscription_started_at_the_end_delivers_only_new_messages(store: &dyn MessageStore) {
    let category = unique_category("account");
    let s = stream(&category, "1");
    store
        .write(&s, batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let mut subscription = store
        .subscribe(&category, options().with_start(StartPosition::End))
        .await
        .unwrap();
    store
        .write(&s, batch(3, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(
        numbers(&receive(subscription.as_mut(), 2).await),
        vec![3, 4]
    );
}

/// Two subscriptions committing to one position stream would overwrite each other's positions
/// and skip messages: the second to commit is refused.
pub async fn two_consumers_on_one_position_stream_are_refused(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let opts = options().with_consumer_id("shared");
    let mut first = store.subscribe(&category, opts.clone()).await.unwrap();
    let mut second = store.subscribe(&category, opts).await.unwrap();
    let a = receive(first.as_mut(), 2).await;
    let b = receive(second.as_mut(), 2).await;
    first.commit(a[0].global_position).await.unwrap();
    first.commit(a[1].global_position).await.unwrap();
    let err = second.commit(b[1].global_position).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PositionStreamInUse);
    assert!(err.to_string().contains(":position-shared"), "{err}");
}

/// A commit past the last delivered message is refused (a restart would skip
/// the messages in between); up to it, and the position recorded before,
/// are accepted.
pub async fn commit_past_the_last_delivered_message_is_refused(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let opts = options().with_consumer_id("careful");
    let mut first = store.subscribe(&category, opts.clone()).await.unwrap();
    let err = first.commit(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            message_store::Error::CommitAhead {
                position: 1,
                delivered: None,
                ..
            }
        ),
        "nothing delivered yet: {err:?}"
    );
    let received = receive(first.as_mut(), 3).await;
    let last = received[2].global_position;
    for ahead in [last + 1, u64::MAX] {
        let err = first.commit(ahead).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommitAhead);
        assert!(err.to_string().contains(&last.to_string()), "{err}");
    }
    first.commit(received[1].global_position).await.unwrap();
    drop(first);
    let mut second = store.subscribe(&category, opts.clone()).await.unwrap();
    assert_eq!(second.position(), received[1].global_position);
    // The position already recorded may be recorded again before any delivery.
    second.commit(received[1].global_position).await.unwrap();
    assert_eq!(
        second.commit(last).await.unwrap_err().kind(),
        ErrorKind::CommitAhead
    );
    drop(second);
    let third = store.subscribe(&category, opts).await.unwrap();
    assert_eq!(third.position(), received[1].global_position);
}
