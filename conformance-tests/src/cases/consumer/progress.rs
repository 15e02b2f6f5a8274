//! Knowing when a consumer has caught up: `ConsumerHandle::caught_up` and
//! `Consumer::run_until_caught_up`, for plain consumers and group members.

use std::sync::Arc;

use message_store::{ConsumerGroup, ExpectedVersion, MessageStore};
use message_store_consumer::{Error, FailurePolicy};

use crate::support::*;

use super::*;

/// `caught_up` resolves once everything written before the call was handled
/// (then, not before); messages written later are waited for by the next
/// call. A consumer-group member waits only for its own streams.
pub async fn caught_up_resolves_once_everything_there_is_was_handled(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    write_spread(store.as_ref(), &category, 6, 5).await;
    let seen = Seen::default();
    let handle = recording(&category, options("catcher"), &seen)
        .start(store.clone())
        .await
        .unwrap();
    handle.caught_up().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 30);
    assert_eq!(handle.lag().await.unwrap(), 0);
    write_spread(store.as_ref(), &category, 2, 3).await;
    handle.caught_up().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 36);
    handle.shutdown().await.unwrap();

    let group = ConsumerGroup::new(1, 3).unwrap();
    let mine = store
        .read_category(
            &category,
            message_store::CategoryRead::new().with_consumer_group(group),
        )
        .await
        .unwrap();
    assert!(!mine.is_empty());
    let member = Seen::default();
    let options =
        options("member-1").with_subscription(subscription("member-1").with_consumer_group(group));
    let handle = recording(&category, options, &member)
        .start(store.clone())
        .await
        .unwrap();
    handle.caught_up().await.unwrap();
    assert_eq!(global(&member.lock().unwrap()), global(&mine));
    handle.shutdown().await.unwrap();
}

/// `run_until_caught_up` handles what is there, records the position and
/// stops; run again, it resumes at the recorded position (inclusive).
pub async fn run_until_caught_up_handles_what_is_there_and_stops(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 7), ExpectedVersion::Any)
        .await
        .unwrap();
    let seen = Seen::default();
    let health = recording(&category, options("batch-job"), &seen)
        .run_until_caught_up(store.clone())
        .await
        .unwrap();
    let written = global(&seen.lock().unwrap());
    assert_eq!(written.len(), 7);
    assert!(!health.running);
    assert_eq!(
        (health.handled, health.committed),
        (7, written.last().copied())
    );

    let again = Seen::default();
    let health = recording(&category, options("batch-job"), &again)
        .run_until_caught_up(store.clone())
        .await
        .unwrap();
    assert_eq!(global(&again.lock().unwrap()), written[6..]);
    assert_eq!(health.handled, 1);

    // Nothing in the category at all: it returns at once.
    let empty = unique_category("account");
    let health = recording(&empty, options("batch-job"), &Seen::default())
        .run_until_caught_up(store.clone())
        .await
        .unwrap();
    assert_eq!(health.handled, 0);
}

/// A consumer that stops on a failing message never catches up: `caught_up`
/// says so with `ConsumerStopped`, and `run_until_caught_up` returns the
/// stop's own error.
pub async fn caught_up_fails_when_the_consumer_stops_first(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let failing = || {
        Consumer::new(category.clone())
            .with_options(
                options("stopper")
                    .with_retry(quick_retry(1))
                    .with_failure_policy(FailurePolicy::Stop),
            )
            .on_any(|message: Message| async move {
                if message.position == 1 {
                    return Err("broken".into());
                }
                HandlerResult::Ok(())
            })
    };
    let handle = failing().start(store.clone()).await.unwrap();
    let err = handle.caught_up().await.unwrap_err();
    assert!(
        matches!(&err, Error::ConsumerStopped { last_error: Some(e), .. } if e.contains("broken")),
        "{err:?}"
    );
    assert!(matches!(
        handle.join().await,
        Err(Error::HandlerFailed { position: 1, .. })
    ));
    let err = failing()
        .run_until_caught_up(store.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HandlerFailed { position: 1, .. }),
        "{err:?}"
    );
}
