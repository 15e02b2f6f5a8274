//! Appends: positions, expected versions, atomic batches, ids, one time per
//! write (what a write accepts and returns: `write_input`).

use message_store::{Error, ErrorKind, ExpectedVersion, MessageStore, MessageStoreExt, StreamName};
use uuid::Uuid;

use crate::support::*;

/// §11.1: a new stream starts at position 0 and each write adds one.
pub async fn first_write_is_position_zero_and_each_write_adds_one(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    for expected in 0..3 {
        let position = store
            .write_one(
                &stream,
                numbered("Numbered", expected),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
        assert_eq!(position, expected, "write #{expected} to a fresh stream");
    }
}

/// §11.2: a mismatching expected version is refused with the stream's actual version.
pub async fn wrong_expected_version_reports_expected_and_actual(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    write_numbered(store, &stream, 3).await;
    let err = store
        .write(&stream, batch(3, 1), ExpectedVersion::Exact(5))
        .await
        .unwrap_err();
    match &err {
        Error::WrongExpectedVersion {
            stream: s,
            expected,
            actual,
        } => {
            assert_eq!(s, stream.as_str());
            assert_eq!(*expected, ExpectedVersion::Exact(5));
            assert_eq!(*actual, Some(2));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(stream.as_str()) && text.contains('5') && text.contains('2'),
        "{text}"
    );
    assert_eq!(read_all(store, &stream).await.len(), 3, "nothing written");
}

/// §11.2: expecting a version of an absent stream reports "no stream" as the actual version.
pub async fn expected_version_on_absent_stream_reports_no_stream(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let err = store
        .write(&stream, batch(0, 1), ExpectedVersion::Exact(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                actual: None,
                expected: ExpectedVersion::Exact(0),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
}

/// §11.3: `NoStream` succeeds only while the stream has no messages.
pub async fn no_stream_expectation_succeeds_only_on_an_empty_stream(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let first = store
        .write(&stream, batch(0, 1), ExpectedVersion::NoStream)
        .await;
    assert_eq!(first.unwrap(), 0);
    let second = store
        .write(&stream, batch(1, 1), ExpectedVersion::NoStream)
        .await;
    let err = second.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                actual: Some(0),
                expected: ExpectedVersion::NoStream,
                ..
            }
        ),
        "{err:?}"
    );
}

/// The expected version applies to the first message and is chained through the batch.
pub async fn batch_with_exact_version_chains_positions(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    write_numbered(store, &stream, 2).await;
    let last = store
        .write(&stream, batch(2, 3), ExpectedVersion::Exact(1))
        .await
        .unwrap();
    assert_eq!(last, 4, "a batch returns its last position");
    let messages = read_all(store, &stream).await;
    assert_eq!(positions(&messages), vec![0, 1, 2, 3, 4]);
    assert_eq!(numbers(&messages), vec![0, 1, 2, 3, 4]);
    let batch_gps = global_positions(&messages[2..]);
    assert_strictly_increasing(&batch_gps, "global positions within a batch");
}

/// A batch refused for its expected version writes none of its messages.
pub async fn failed_batch_writes_nothing(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    write_numbered(store, &stream, 1).await;
    let err = store
        .write(&stream, batch(1, 5), ExpectedVersion::NoStream)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongExpectedVersion);
    assert_eq!(numbers(&read_all(store, &stream).await), vec![0]);
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(0));
}

/// §11.4: an id already in the store (any stream) is refused and nothing is written.
pub async fn duplicate_id_in_another_stream_is_refused(store: &dyn MessageStore) {
    let category = unique_category("account");
    let (first, second) = (stream(&category, "1"), stream(&category, "2"));
    let original = numbered("Numbered", 0);
    store
        .write(&first, vec![original.clone()], ExpectedVersion::Any)
        .await
        .unwrap();
    let again = numbered("Numbered", 1).with_id(original.id);
    let err = store
        .write(&second, vec![again], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateMessageId { id } if id == original.id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&original.id.to_string()));
    assert!(read_all(store, &second).await.is_empty());
}

/// A batch whose third message reuses a stored id leaves the store exactly as it was.
pub async fn duplicate_id_late_in_a_batch_writes_nothing_of_it(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let stored = numbered("Numbered", 0);
    store
        .write(&stream, vec![stored.clone()], ExpectedVersion::Any)
        .await
        .unwrap();
    let mut messages = batch(1, 4);
    messages[2].id = stored.id;
    let err = store
        .write(&stream, messages, ExpectedVersion::Exact(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateMessageId);
    assert_eq!(numbers(&read_all(store, &stream).await), vec![0]);
    let next = store
        .write(&stream, batch(1, 1), ExpectedVersion::Exact(0))
        .await
        .unwrap();
    assert_eq!(
        next, 1,
        "the stream version is unchanged by the failed batch"
    );
}

/// Two messages of one batch with the same id: refused before anything is written.
pub async fn duplicate_id_within_a_batch_is_refused(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let first = numbered("Numbered", 0);
    let second = numbered("Numbered", 1).with_id(first.id);
    let err = store
        .write(&stream, vec![first, second], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateMessageId);
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
}

/// Message DB checks the expected version before the id.
pub async fn wrong_expected_version_is_reported_before_duplicate_id(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let stored = numbered("Numbered", 0);
    store
        .write(&stream, vec![stored.clone()], ExpectedVersion::Any)
        .await
        .unwrap();
    let err = store
        .write(
            &stream,
            vec![numbered("Numbered", 1).with_id(stored.id)],
            ExpectedVersion::Exact(7),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongExpectedVersion);
}

/// A caller-supplied id is stored and read back unchanged.
pub async fn caller_supplied_id_is_kept(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let id = Uuid::new_v4();
    store
        .write(
            &stream,
            vec![numbered("Numbered", 0).with_id(id)],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    assert_eq!(read_all(store, &stream).await[0].id, id);
}

/// §11.6: global positions are positive and strictly increase, also across a failed write.
pub async fn global_positions_strictly_increase_across_failures(store: &dyn MessageStore) {
    let category = unique_category("account");
    let s = stream(&category, "1");
    let stored = numbered("Numbered", 0);
    store
        .write(&s, vec![stored.clone()], ExpectedVersion::Any)
        .await
        .unwrap();
    let _ = store
        .write(
            &s,
            vec![numbered("Numbered", 9).with_id(stored.id)],
            ExpectedVersion::Any,
        )
        .await;
    store
        .write(&s, batch(1, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .write(&stream(&category, "2"), batch(4, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let messages = store
        .read_category(&category, message_store::CategoryRead::new())
        .await
        .unwrap();
    let gps = global_positions(&messages);
    assert!(gps[0] >= 1, "global positions start at 1: {gps:?}");
    assert_strictly_increasing(&gps, "global positions");
    assert_eq!(numbers(&messages), vec![0, 1, 2, 3, 4, 5]);
}

/// §11.7: stream positions are gapless across single writes and batches.
pub async fn stream_positions_are_gapless(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 2), ExpectedVersion::NoStream)
        .await
        .unwrap();
    store
        .write(&stream, batch(2, 1), ExpectedVersion::Exact(1))
        .await
        .unwrap();
    let _ = store
        .write(&stream, batch(3, 2), ExpectedVersion::Exact(0))
        .await;
    store
        .write(&stream, batch(3, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(
        positions(&read_all(store, &stream).await),
        vec![0, 1, 2, 3, 4, 5]
    );
}

/// A name without `-` is a writable stream; it shows in its category's reads.
pub async fn category_shaped_stream_name_is_writable(store: &dyn MessageStore) {
    let category = unique_category("account");
    let literal = StreamName::new(category.as_str()).unwrap();
    assert_eq!(
        store
            .write(&literal, batch(0, 2), ExpectedVersion::NoStream)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.stream_version(&literal).await.unwrap(), Some(1));
    let read = store
        .read_category(&category, message_store::CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(numbers(&read), vec![0, 1]);
}

/// §11.23: every message of one write carries the same time, in UTC, to the microsecond.
pub async fn messages_of_one_write_share_one_time(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let before = message_store::chrono::Utc::now() - message_store::chrono::Duration::seconds(5);
    store
        .write(&stream, batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let messages = read_all(store, &stream).await;
    let time = messages[0].time;
    assert!(
        messages.iter().all(|m| m.time == time),
        "one write, one time"
    );
    assert_eq!(
        time.timestamp_subsec_nanos() % 1000,
        0,
        "microsecond precision"
    );
    let after = message_store::chrono::Utc::now() + message_store::chrono::Duration::seconds(5);
    assert!(
        before <= time && time <= after,
        "time is now, in UTC: {time}"
    );
}
