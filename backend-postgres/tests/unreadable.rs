//! Rows other clients stored, through plain `write_message` SQL, that a
//! `serde_json::Value` cannot hold (nesting past `MAX_JSON_DEPTH`, numbers
//! outside `f64`'s range): every read still returns them, each one says
//! what cannot be read, and a consumer retries, stops or parks on them.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{
    Category, CategoryRead, Error, Message, MessageStore, MessageStoreExt, StreamRead,
    SubscribeOptions,
};
use message_store_conformance::support::wait_until;
use message_store_consumer::{
    parked_messages, Consumer, ConsumerOptions, FailurePolicy, HandlerResult, RetryPolicy,
};
use message_store_postgres::sqlx;
use message_store_postgres::PostgresStore;
use support::Variant;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

/// 200 nested arrays: jsonb takes them, serde_json stops at 128.
fn deep() -> String {
    format!("{}{}", "[".repeat(200), "]".repeat(200))
}

/// What is written to `{category}-1`, in order: `(type, data, metadata,
/// the part that cannot be read)`.
fn rows() -> Vec<(&'static str, String, Option<String>, Option<&'static str>)> {
    vec![
        ("Fine", r#"{"n": 0}"#.into(), None, None),
        ("DeepData", deep(), None, Some("data")),
        (
            "HugeData",
            r#"{"amount": 1e400}"#.into(),
            None,
            Some("data"),
        ),
        (
            "HugeMetadata",
            r#"{"n": 3}"#.into(),
            Some(r#"{"schemaVersion": "1", "weight": 1e400}"#.into()),
            Some("metadata"),
        ),
        (
            "DeepMetadata",
            r#"{"n": 4}"#.into(),
            Some(format!(r#"{{"trace": {}}}"#, deep())),
            Some("metadata"),
        ),
        ("Fine", r#"{"n": 5}"#.into(), None, None),
    ]
}

/// Writes [`rows`] through plain SQL; returns the category and the ids.
async fn write_rows(store: &PostgresStore) -> (Category, Vec<Uuid>) {
    let category = Category::new(format!("odd{}", Uuid::new_v4().simple())).unwrap();
    let stream = category.stream("1").unwrap();
    let mut ids = Vec::new();
    for (message_type, data, metadata, _) in rows() {
        let id = Uuid::new_v4();
        sqlx::query("SELECT write_message($1, $2, $3, $4::jsonb, $5::jsonb)")
            .bind(id.to_string())
            .bind(stream.as_str())
            .bind(message_type)
            .bind(data)
            .bind(metadata)
            .execute(store.pool())
            .await
            .unwrap();
        ids.push(id);
    }
    (category, ids)
}

/// Every read returns every row; each unreadable one names its part, stream,
/// position and reason, and the readable ones read as usual.
#[tokio::test]
async fn rows_a_value_cannot_hold_never_fail_a_read() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let (category, ids) = write_rows(&store).await;
        let stream = category.stream("1").unwrap();
        let by_stream = store.read_stream(&stream, StreamRead::new()).await.unwrap();
        let by_category = store
            .read_category(&category, CategoryRead::new())
            .await
            .unwrap();
        assert_eq!(by_stream, by_category, "{variant:?}");
        assert_eq!(by_stream.len(), 6, "{variant:?}");
        for ((message, id), (message_type, _, _, part)) in by_stream.iter().zip(&ids).zip(rows()) {
            assert_eq!(
                (message.id, message.message_type.as_str()),
                (*id, message_type)
            );
            match (part, message.check()) {
                (None, Ok(())) => {}
                (
                    Some(expected),
                    Err(Error::Unreadable {
                        part,
                        stream: name,
                        position,
                        reason,
                        ..
                    }),
                ) => {
                    assert_eq!(part, expected, "{variant:?} {message_type}");
                    assert_eq!(
                        (name.as_str(), position),
                        (stream.as_str(), message.position)
                    );
                    assert!(
                        reason.contains("recursion limit") || reason.contains("out of range"),
                        "{variant:?} {message_type}: {reason}"
                    );
                }
                (part, result) => panic!("{variant:?} {message_type}: {part:?} but {result:?}"),
            }
        }
        assert_eq!(by_stream[5].data["n"], 5);
        // The stored text is kept, and the decode error says why.
        let huge = by_stream[2].data.unreadable().unwrap();
        assert!(
            huge.text().contains("amount"),
            "{variant:?}: {}",
            huge.text()
        );
        assert!(matches!(
            by_stream[2].decode::<serde_json::Value>(),
            Err(Error::Unreadable { part: "data", .. })
        ));
        // Readable data beside unreadable metadata is still read.
        assert_eq!(by_stream[3].data["n"], 3);
        let last = store.last_message(&stream).await.unwrap().unwrap();
        assert_eq!(last.position, 5);
        let deep_one = store
            .last_message_of_type(&stream, "DeepData")
            .await
            .unwrap()
            .unwrap();
        assert!(deep_one.data.unreadable().is_some(), "{variant:?}");
    }
}

fn consumer(
    category: &Category,
    policy: FailurePolicy,
    seen: &Arc<Mutex<Vec<String>>>,
) -> Consumer {
    let seen = seen.clone();
    let subscription = SubscribeOptions::new()
        .with_consumer_id("reader")
        .with_poll_interval(Duration::from_millis(20));
    let retry = RetryPolicy::new()
        .with_max_attempts(2)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(1));
    let options = ConsumerOptions::new()
        .with_subscription(subscription)
        .with_retry(retry)
        .with_failure_policy(policy);
    Consumer::new(category.clone())
        .with_options(options)
        .on_any(move |message: Message| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(message.message_type.clone());
                HandlerResult::Ok(())
            }
        })
}

/// Under `Park`, each unreadable row is retried, parked and passed; the
/// consumer handles the rest and catches up. The parked entries list the
/// originals; once an operator repairs a row in SQL, its replay succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_parks_unreadable_rows_and_goes_on() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let (category, ids) = write_rows(&store).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handle = consumer(&category, FailurePolicy::Park, &seen)
            .start(store.clone())
            .await
            .unwrap();
        wait_until("both readable rows are handled", || {
            seen.lock().unwrap().len() == 2
        })
        .await;
        let health = handle.shutdown().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["Fine", "Fine"], "{variant:?}");
        assert_eq!(
            (health.parked, health.failed_attempts),
            (4, 8),
            "{variant:?}"
        );

        let parked = parked_messages(&store, &category, "reader").await.unwrap();
        let parked_ids: Vec<Uuid> = parked.iter().map(|p| p.message.id).collect();
        assert_eq!(parked_ids, ids[1..5], "{variant:?}");
        for entry in &parked {
            assert!(entry.parked_from.unreadable, "{variant:?}");
            assert_eq!(entry.parked_from.attempts, 2);
            assert!(
                entry.parked_from.error.contains("cannot read"),
                "{}",
                entry.parked_from.error
            );
            assert!(entry.message.check().is_err(), "the original, as stored");
        }

        // Repair the huge number in place; only that replay succeeds.
        support::as_admin(
            variant,
            r#"UPDATE message_store.messages SET data = '{"amount": 1}' WHERE id = $1"#,
            ids[2],
        )
        .await;
        seen.lock().unwrap().clear();
        let report = consumer(&category, FailurePolicy::Park, &seen)
            .replay_parked(&store)
            .await
            .unwrap();
        assert_eq!(report.replayed, 1, "{variant:?}: {report:?}");
        assert_eq!(report.still_failing.len(), 3, "{variant:?}: {report:?}");
        assert_eq!(*seen.lock().unwrap(), ["HugeData"]);
    }
}

/// Under `Stop`, the consumer stops at the first unreadable row with
/// `HandlerFailed`, whose source is the `Unreadable` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_consumer_names_the_unreadable_row() {
    let Some(store) = support::store(Variant::Ours).await else {
        return;
    };
    let (category, _) = write_rows(&store).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = consumer(&category, FailurePolicy::Stop, &seen)
        .start(store.clone())
        .await
        .unwrap();
    let err = handle.join().await.unwrap_err();
    let message_store_consumer::Error::HandlerFailed {
        position,
        attempts,
        source,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*position, *attempts), (1, 2));
    let source = source
        .downcast_ref::<Error>()
        .expect("the Unreadable error");
    assert!(
        matches!(
            source,
            Error::Unreadable {
                part: "data",
                position: 1,
                ..
            }
        ),
        "{source:?}"
    );
    assert_eq!(*seen.lock().unwrap(), ["Fine"]);
}
