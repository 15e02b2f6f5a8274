//! Group commit on both schemas: concurrent writes share one transaction,
//! each call keeps its own outcome, and a group that fails as a whole
//! writes each of its calls alone.
//!
//! Groups are made deterministic by holding the category's lock: the
//! first write waits for it alone, the next ones queue behind it (the
//! test waits for each to be queued), and releasing the lock lets the
//! first write finish and the queue go as one group.

mod grouping;
mod support;

use grouping::*;
use message_store::{Error, ExpectedVersion, MessageStore, NewMessage};
use message_store_postgres::sqlx::Connection;
use serde_json::json;

/// 63 writes queued behind a waiting one go in one transaction; with
/// group commit off, 64 writes take 64.
#[tokio::test]
async fn concurrent_writes_share_one_transaction() {
    for variant in VARIANTS {
        if support::options(variant).await.is_none() {
            return;
        }
        let category = unique_category("grouped");
        let (store, holder, first) = first_write_waiting(variant, &category).await;
        let calls: Vec<Call> = (0..63)
            .map(|i| {
                let stream = category.stream(&format!("{}", i % 16)).unwrap();
                (stream, one("W"), ExpectedVersion::Any)
            })
            .collect();
        for outcome in write_as_a_group(&store, holder, first, calls).await {
            outcome.unwrap();
        }
        assert_eq!(
            transactions(variant, &category).await,
            2,
            "{variant:?}: the first write, then one group"
        );

        let ungrouped = unique_category("ungrouped");
        let store = store.with_group_commit(false);
        assert!(!store.group_commit());
        let writes: Vec<_> = (0..64)
            .map(|i| {
                let stream = ungrouped.stream(&format!("{}", i % 16)).unwrap();
                spawn_write(&store, &stream, one("W"), ExpectedVersion::Any)
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert_eq!(
            transactions(variant, &ungrouped).await,
            64,
            "{variant:?}: group commit off"
        );
    }
}

/// In one group: each call's expected version and ids are judged as if it
/// ran alone after the calls queued before it.
#[tokio::test]
async fn each_call_in_a_group_keeps_its_own_outcome() {
    for variant in VARIANTS {
        if support::options(variant).await.is_none() {
            return;
        }
        let category = unique_category("outcomes");
        let store = support::store(variant).await.unwrap();
        let existing = category.stream("existing").unwrap();
        let stored = NewMessage::new("W", json!({}));
        let stored_id = stored.id;
        store
            .write(
                &existing,
                vec![stored, NewMessage::new("W", json!({}))],
                ExpectedVersion::NoStream,
            )
            .await
            .unwrap();

        let (store, holder, first) = first_write_waiting(variant, &category).await;
        let fresh = category.stream("fresh").unwrap();
        let shared = NewMessage::new("W", json!({}));
        let shared_id = shared.id;
        let mut again = NewMessage::new("W", json!({}));
        again.id = shared_id;
        let mut reused = NewMessage::new("W", json!({}));
        reused.id = stored_id;
        let calls: Vec<Call> = vec![
            (
                fresh.clone(),
                vec![NewMessage::new("W", json!({})), shared],
                ExpectedVersion::NoStream,
            ),
            (fresh.clone(), one("W"), ExpectedVersion::NoStream),
            (fresh.clone(), one("W"), ExpectedVersion::Exact(1)),
            (existing.clone(), one("W"), ExpectedVersion::Exact(7)),
            (existing.clone(), vec![reused], ExpectedVersion::Exact(1)),
            (existing.clone(), one("W"), ExpectedVersion::Exact(1)),
            (
                category.stream("other").unwrap(),
                vec![again],
                ExpectedVersion::Any,
            ),
            (
                category.stream("other").unwrap(),
                one("W"),
                ExpectedVersion::Any,
            ),
        ];
        let mut outcomes = Vec::new();
        for outcome in write_as_a_group(&store, holder, first, calls).await {
            outcomes.push(match outcome {
                Ok(position) => format!("at {position}"),
                Err(Error::WrongExpectedVersion { actual, .. }) => {
                    format!("wrong, actual {actual:?}")
                }
                Err(Error::DuplicateMessageId { id }) if id == shared_id => {
                    "duplicate shared".to_owned()
                }
                Err(Error::DuplicateMessageId { id }) if id == stored_id => {
                    "duplicate stored".to_owned()
                }
                Err(other) => panic!("{variant:?}: {other:?}"),
            });
        }
        assert_eq!(
            outcomes,
            [
                "at 1",
                "wrong, actual Some(1)",
                "at 2",
                "wrong, actual Some(1)",
                "duplicate stored",
                "at 2",
                "duplicate shared",
                "at 0",
            ],
            "{variant:?}"
        );
        let positions: Vec<u64> = store
            .read_stream(&fresh, Default::default())
            .await
            .unwrap()
            .iter()
            .map(|m| m.position)
            .collect();
        assert_eq!(positions, [0, 1, 2], "{variant:?}: gapless");
        // The first write, the setup's, and one group.
        assert_eq!(transactions(variant, &category).await, 3, "{variant:?}");
    }
}

/// A group whose connection is killed while it waits for a lock stored
/// nothing: each call is written again alone, and each succeeds once.
#[tokio::test]
async fn a_group_whose_connection_dies_writes_each_call_alone() {
    for variant in VARIANTS {
        if support::options(variant).await.is_none() {
            return;
        }
        let (store, tag) = support::tagged_store(variant).await.unwrap();
        let options = support::options(variant).await.unwrap();
        let (first_category, grouped) = (unique_category("ahead"), unique_category("killed"));
        let first_holder = support::hold_category_lock(&options, &first_category).await;
        let group_holder = support::hold_category_lock(&options, &grouped).await;
        let first = spawn_write(
            &store,
            &first_category.stream("1").unwrap(),
            one("W"),
            ExpectedVersion::Any,
        );
        until("the first write to wait", || {
            support::waits_for_a_lock(&tag)
        })
        .await;
        let stream = grouped.stream("1").unwrap();
        let mut writes = Vec::new();
        for i in 0..7 {
            writes.push(queue(&store, i + 1, &stream, one("W"), ExpectedVersion::Any).await);
        }
        first_holder.close().await.unwrap();
        first.await.unwrap().unwrap();
        until("the group to wait for its lock", || {
            waits_in(variant, &tag, "%m.expected)%")
        })
        .await;
        assert_eq!(support::kill(&tag, "%m.expected)%").await, 1);
        // Each call, written alone, waits for the lock in turn.
        until("a call written alone to wait", || {
            waits_in(variant, &tag, "%write_message($1%")
        })
        .await;
        group_holder.close().await.unwrap();
        let mut positions = Vec::new();
        for write in writes {
            positions.push(write.await.unwrap().unwrap());
        }
        assert_eq!(
            positions,
            [0, 1, 2, 3, 4, 5, 6],
            "{variant:?}: in queue order, once each"
        );
        let stored = store
            .read_stream(&stream, Default::default())
            .await
            .unwrap();
        assert_eq!(stored.len(), 7, "{variant:?}");
    }
}
