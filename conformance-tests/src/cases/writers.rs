//! 64 writers at once in one category, each call with its own expected
//! version: every call's outcome is what it would have been alone, however
//! the backend schedules (or coalesces) the writes.

use std::collections::BTreeMap;

use futures::future::join_all;
use message_store::{CategoryRead, Error, ExpectedVersion, MessageStore, NewMessage};
use uuid::Uuid;

use crate::support::*;

/// What one call was and how it ended.
struct Call {
    stream: String,
    ids: Vec<Uuid>,
    outcome: Result<u64, Error>,
}

async fn call(
    store: &dyn MessageStore,
    stream: &message_store::StreamName,
    messages: Vec<NewMessage>,
    expected: ExpectedVersion,
) -> Call {
    let ids = messages.iter().map(|m| m.id).collect();
    let outcome = store.write(stream, messages, expected).await;
    Call {
        stream: stream.as_str().to_owned(),
        ids,
        outcome,
    }
}

/// 64 concurrent writers on 16 streams of one category. Eight own a stream
/// each and write it with `NoStream` then `Exact` versions, mixing in a
/// wrong `Exact` and a second `NoStream`, which fail as they would alone
/// (with the stream's true version) and store nothing. 56 append batches
/// of 1 to 3 messages with `Any` to 8 shared streams, and each re-sends one
/// id it already stored, which fails as a duplicate. Afterwards every
/// stream is gapless, holds exactly the calls that succeeded, each batch
/// contiguous and each writer's calls in its order, and stream order
/// agrees with global order.
pub async fn concurrent_writers_each_get_their_own_outcome(store: &dyn MessageStore) {
    let category = unique_category("writers");
    let calls: Vec<Vec<Call>> = join_all((0..64u64).map(|writer| {
        let category = category.clone();
        async move {
            let mut calls = Vec::new();
            if writer < 8 {
                let own = stream(&category, &format!("own{writer}"));
                let mut version = None;
                for n in 0..6u64 {
                    let first = numbered("Owned", writer * 1000 + n);
                    let expected = ExpectedVersion::from_version(version);
                    let done = call(store, &own, vec![first], expected).await;
                    assert_eq!(done.outcome.as_ref().ok(), Some(&n), "owner {writer}");
                    version = Some(n);
                    calls.push(done);
                    if n % 2 == 1 {
                        let wrong = ExpectedVersion::Exact(n + 3);
                        let refused = call(store, &own, batch(0, 2), wrong).await;
                        match &refused.outcome {
                            Err(Error::WrongExpectedVersion { actual, .. }) => {
                                assert_eq!(*actual, Some(n), "owner {writer}: the true version");
                            }
                            other => panic!("owner {writer}: a wrong Exact gave {other:?}"),
                        }
                        calls.push(refused);
                        let again = call(store, &own, batch(0, 1), ExpectedVersion::NoStream).await;
                        assert!(
                            matches!(again.outcome, Err(Error::WrongExpectedVersion { .. })),
                            "owner {writer}: NoStream on its stream"
                        );
                        calls.push(again);
                    }
                }
            } else {
                let shared = stream(&category, &format!("shared{}", writer % 8));
                for n in 0..5u64 {
                    let size = 1 + (writer + n) % 3;
                    let messages = (0..size)
                        .map(|i| numbered("Shared", writer * 1000 + n * 10 + i))
                        .collect();
                    let done = call(store, &shared, messages, ExpectedVersion::Any).await;
                    assert!(done.outcome.is_ok(), "writer {writer}: {:?}", done.outcome);
                    calls.push(done);
                }
                let stored = calls[0].ids[0];
                let resent = numbered("Shared", writer * 1000 + 99).with_id(stored);
                let duplicate = call(store, &shared, vec![resent], ExpectedVersion::Any).await;
                match &duplicate.outcome {
                    Err(Error::DuplicateMessageId { id }) => assert_eq!(*id, stored),
                    other => panic!("writer {writer}: a stored id re-sent gave {other:?}"),
                }
                calls.push(duplicate);
            }
            calls
        }
    }))
    .await;

    let stored = store
        .read_category(&category, CategoryRead::new().with_batch_size(10_000))
        .await
        .unwrap();
    let mut by_stream: BTreeMap<String, Vec<&message_store::Message>> = BTreeMap::new();
    for message in &stored {
        by_stream
            .entry(message.stream_name.as_str().to_owned())
            .or_default()
            .push(message);
    }
    assert_eq!(by_stream.len(), 16);
    for (name, messages) in &by_stream {
        let positions: Vec<u64> = messages.iter().map(|m| m.position).collect();
        assert_eq!(
            positions,
            (0..messages.len() as u64).collect::<Vec<_>>(),
            "{name}: gapless, in global order"
        );
    }
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].global_position < w[1].global_position),
        "global order"
    );
    let at: BTreeMap<Uuid, (&str, u64)> = stored
        .iter()
        .map(|m| (m.id, (m.stream_name.as_str(), m.position)))
        .collect();
    assert_eq!(at.len(), stored.len(), "no id stored twice");
    let mut succeeded = 0;
    for writer_calls in &calls {
        let mut last_end = None;
        for done in writer_calls {
            let Ok(last) = done.outcome else {
                if !matches!(done.outcome, Err(Error::DuplicateMessageId { .. })) {
                    assert!(
                        done.ids.iter().all(|id| !at.contains_key(id)),
                        "a refused call stored nothing"
                    );
                }
                continue;
            };
            succeeded += done.ids.len();
            let places: Vec<(&str, u64)> = done.ids.iter().map(|id| at[id]).collect();
            let first = last + 1 - done.ids.len() as u64;
            let expected: Vec<(&str, u64)> =
                (first..=last).map(|p| (done.stream.as_str(), p)).collect();
            assert_eq!(
                places, expected,
                "the batch is contiguous, where its call said"
            );
            assert!(last_end < Some(first), "a writer's calls in its order");
            last_end = Some(last);
        }
    }
    assert_eq!(succeeded, stored.len(), "exactly what succeeded is stored");
}
