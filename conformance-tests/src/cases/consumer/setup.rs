//! Consumer options, consumer-group members and health.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use message_store::{
    ConsumerGroup, ErrorKind, ExpectedVersion, MessageStore, StartPosition, SubscribeOptions,
};
use message_store_consumer::{
    Consumer, ConsumerHandle, ConsumerOptions, ErrorKind::Store, FailurePolicy, RetryPolicy,
};

use crate::support::*;

use super::*;

/// Members of a consumer group running concurrently: the union of what they handle is every
/// message, each stream is handled by exactly one member, in order per stream.
pub async fn consumer_group_members_split_the_category(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 12, 4).await;
    let size = 3;
    let seen: Vec<Seen> = (0..size).map(|_| Seen::default()).collect();
    let mut handles: Vec<ConsumerHandle> = Vec::new();
    for member in 0..size {
        let subscription = subscription(&format!("member{member}"))
            .with_consumer_group(ConsumerGroup::new(member, size).unwrap());
        let options = options("unused").with_subscription(subscription);
        let consumer = recording(&category, options, &seen[usize::try_from(member).unwrap()]);
        handles.push(consumer.start(store.clone()).await.unwrap());
    }
    wait_until("all 48 are handled", || {
        seen.iter().map(|s| s.lock().unwrap().len()).sum::<usize>() >= 48
    })
    .await;
    for handle in handles {
        handle.shutdown().await.unwrap();
    }
    let mut owner: BTreeMap<String, (usize, Vec<u64>)> = BTreeMap::new();
    for (member, seen) in seen.iter().enumerate() {
        for message in seen.lock().unwrap().iter() {
            let entry = owner
                .entry(message.stream_name.to_string())
                .or_insert((member, Vec::new()));
            assert_eq!(
                entry.0, member,
                "{} handled by two members",
                message.stream_name
            );
            entry.1.push(message.position);
        }
    }
    assert_eq!(owner.len(), 12, "every stream handled");
    assert!(
        owner
            .values()
            .all(|(_, positions)| positions == &[0, 1, 2, 3]),
        "each stream once, in order"
    );
}

/// Invalid options are typed errors when the consumer starts.
pub async fn invalid_consumer_options_are_refused(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    let park_without_id = ConsumerOptions::new().with_failure_policy(FailurePolicy::Park);
    let err = Consumer::new(category.clone())
        .with_options(park_without_id)
        .start(store.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption));
    let group_without_id = ConsumerOptions::new().with_subscription(
        SubscribeOptions::new().with_consumer_group(ConsumerGroup::new(0, 2).unwrap()),
    );
    let err = Consumer::new(category.clone())
        .with_options(group_without_id)
        .start(store.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption));
    assert_eq!(
        ConsumerGroup::new(2, 2).unwrap_err().kind(),
        ErrorKind::InvalidConsumerGroup
    );
    let with_id =
        || ConsumerOptions::new().with_subscription(SubscribeOptions::new().with_consumer_id("c"));
    for invalid in [
        with_id().with_position_update_interval(0),
        with_id().with_retry(RetryPolicy::new().with_max_attempts(0)),
        with_id().with_subscription(SubscribeOptions::new().with_batch_size(0)),
        with_id().with_shutdown_deadline(Duration::ZERO),
    ] {
        let err = Consumer::new(category.clone())
            .with_options(invalid.clone())
            .start(store.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Store(ErrorKind::InvalidOption), "{invalid:?}");
    }
}

/// Health reports progress, and lag shrinks to zero once caught up.
pub async fn consumer_health_reports_progress_and_lag(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let options = options("healthy")
        .with_subscription(subscription("healthy").with_start(StartPosition::Beginning));
    let handle = recording(&category, options, &seen)
        .start(store.clone())
        .await
        .unwrap();
    wait_until("all five are handled", || seen.lock().unwrap().len() == 5).await;
    let health = handle.health();
    assert!(health.running);
    assert_eq!(health.handled, 5);
    assert_eq!(
        health.last_handled,
        Some(seen.lock().unwrap()[4].global_position)
    );
    assert!(health.last_message_time.is_some());
    assert_eq!(handle.lag().await.unwrap(), 0);
    handle.shutdown().await.unwrap();
}

/// `start_group` starts the members of a static group with derived ids:
/// each handles exactly its share, every message is handled once and in
/// order per stream; the members of the group started twice stand by and
/// handle nothing, and a group needs a consumer id.
pub async fn start_group_runs_each_member_on_its_share(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 12, 4).await;
    let seen = Seen::default();
    let group = || recording(&category, options("projector"), &seen);
    let handles = group().start_group(store.clone(), 3).await.unwrap();
    assert_eq!(handles.len(), 3);
    for (member, handle) in handles.iter().enumerate() {
        handle.caught_up().await.unwrap();
        let share = message_store::CategoryRead::new()
            .with_consumer_group(ConsumerGroup::new(u32::try_from(member).unwrap(), 3).unwrap());
        let expected = store.read_category(&category, share).await.unwrap().len();
        assert_eq!(handle.health().handled, u64::try_from(expected).unwrap());
    }
    let standbys = group().start_group(store.clone(), 3).await.unwrap();
    // A lease and a half: a standby that did not stand by would have
    // handled by now.
    tokio::time::sleep(LEASE * 3 / 2).await;
    for standby in standbys {
        assert_eq!(standby.shutdown().await.unwrap().handled, 0);
    }
    for handle in handles {
        handle.shutdown().await.unwrap();
    }
    let mut handled: Vec<(String, u64)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|m| (m.stream_name.to_string(), m.position))
        .collect();
    handled.sort();
    let mut expected: Vec<(String, u64)> = (0..12)
        .flat_map(|id| {
            let name = stream(&category, &id.to_string()).to_string();
            (0..4).map(move |p| (name.clone(), p))
        })
        .collect();
    expected.sort();
    assert_eq!(handled, expected, "every message once");
    let member_two = category
        .position_stream(Some(&message_store_consumer::group_member_id(
            "projector",
            2,
            3,
        )))
        .unwrap();
    assert!(store.stream_version(&member_two).await.unwrap().is_some());

    // Stopped, the group starts again; without an id it cannot.
    let again = group().start_group(store.clone(), 3).await.unwrap();
    for handle in again {
        handle.shutdown().await.unwrap();
    }
    let anonymous = Consumer::new(category.clone())
        .on_any(|_m: message_store::Message| async { HandlerResult::Ok(()) });
    let err = anonymous.start_group(store.clone(), 2).await.unwrap_err();
    assert_eq!(err.kind(), Store(ErrorKind::InvalidOption));
}
