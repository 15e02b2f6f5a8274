//! What a unit sees: its own writes and everything committed, while nobody
//! sees its writes before the commit; and what the commit wakes.

use std::time::Duration;

use message_store::{
    BatchSize, CategoryRead, ExpectedVersion, MessageStore, StartPosition, StreamRead,
    SubscribeOptions,
};

use super::begin;
use crate::support::*;

/// A unit's reads (stream, category, last message, version) include its own
/// writes, and its expected versions chain on them; the store, and another
/// unit, see none of them until the commit.
pub async fn a_unit_sees_its_own_writes_and_nobody_else_does(store: &dyn MessageStore) {
    let category = unique_category("account");
    let (one, two) = (stream(&category, "1"), stream(&category, "2"));
    write_numbered(store, &one, 1).await; // committed before: version 0
    let mut unit = begin(store).await;
    unit.write(&one, batch(10, 2), ExpectedVersion::Exact(0))
        .await
        .unwrap();
    let chained = unit
        .write(&one, batch(12, 1), ExpectedVersion::Exact(2))
        .await
        .unwrap();
    assert_eq!(
        chained, 3,
        "an expected version chains on the unit's writes"
    );
    unit.write(&two, batch(20, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();

    assert_eq!(unit.stream_version(&one).await.unwrap(), Some(3));
    let own = unit
        .read_stream(
            &one,
            StreamRead::new().with_batch_size(BatchSize::Unlimited),
        )
        .await
        .unwrap();
    assert_eq!(numbers(&own), vec![0, 10, 11, 12]);
    let from_one = unit
        .read_stream(&one, StreamRead::new().with_position(2))
        .await
        .unwrap();
    assert_eq!(numbers(&from_one), vec![11, 12]);
    let last = unit.read_last_message(&one, None).await.unwrap().unwrap();
    assert_eq!(last.position, 3);
    let whole = unit
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(numbers(&whole), vec![0, 10, 11, 12, 20]);
    assert_strictly_increasing(&global_positions(&whole), "the unit's category read");
    let after = unit
        .read_category(
            &category,
            CategoryRead::new().with_position(whole[2].global_position),
        )
        .await
        .unwrap();
    assert_eq!(numbers(&after), vec![11, 12, 20]);

    assert_eq!(store.stream_version(&one).await.unwrap(), Some(0));
    assert_eq!(store.stream_version(&two).await.unwrap(), None);
    let outside = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(numbers(&outside), vec![0]);
    let mut other = begin(store).await;
    assert_eq!(other.stream_version(&one).await.unwrap(), Some(0));
    let seen = other.read_last_message(&two, None).await.unwrap();
    assert!(seen.is_none(), "another unit saw an uncommitted write");
    other.rollback().await.unwrap();

    unit.commit().await.unwrap();
    let committed = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(global_positions(&committed), global_positions(&whole));
}

/// A subscription caught up on a category is woken by a unit's commit and
/// delivers its writes in global order.
pub async fn a_commit_wakes_subscriptions(store: &dyn MessageStore) {
    let category = unique_category("account");
    let mut subscription = store
        .subscribe(
            &category,
            SubscribeOptions::new().with_start(StartPosition::End),
        )
        .await
        .unwrap();
    let mut unit = begin(store).await;
    unit.write(&stream(&category, "1"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    unit.write(&stream(&category, "2"), batch(1, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    unit.commit().await.unwrap();
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(30), subscription.next_batch())
            .await
            .expect("the commit reached the subscription")
            .unwrap();
        delivered.extend(batch);
    }
    assert_eq!(numbers(&delivered), vec![0, 1, 2]);
}
