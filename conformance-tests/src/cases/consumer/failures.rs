//! Handlers that fail, panic or hang, under each failure policy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use message_store::{ExpectedVersion, Message, MessageStore};
use message_store_consumer::{parked_messages, Consumer, Error, FailurePolicy, HandlerTimedOut};

use crate::support::*;

use super::*;

/// A handler that fails twice and then succeeds: the message is handled once
/// successfully, and every message in order.
pub async fn failing_handler_is_retried_and_order_is_kept(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 6), ExpectedVersion::Any)
        .await
        .unwrap();
    let succeeded: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failures_left = Arc::new(Mutex::new(2u32));
    let consumer = {
        let (succeeded, failures_left) = (succeeded.clone(), failures_left.clone());
        Consumer::new(category.clone())
            .with_options(options("retry"))
            .on_any(move |message: Message| {
                let (succeeded, failures_left) = (succeeded.clone(), failures_left.clone());
                async move {
                    let n = message.data["n"].as_u64().unwrap();
                    if n == 3 {
                        let mut left = failures_left.lock().unwrap();
                        if *left > 0 {
                            *left -= 1;
                            return Err("transient failure".into());
                        }
                    }
                    succeeded.lock().unwrap().push(n);
                    Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    wait_until("all six are handled", || {
        succeeded.lock().unwrap().len() == 6
    })
    .await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(*succeeded.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(health.failed_attempts, 2);
    assert_eq!(health.handled, 6);
}

/// A handler that panics is a failure under the policy, not a crash of the runtime.
pub async fn panicking_handler_is_retried_not_fatal(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    // Message 1 panics once inside the handler's future, message 2 once while
    // the handler builds its future: both are failures, retried.
    let panicked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let seen: Seen = Arc::default();
    let consumer = {
        let (panicked, seen) = (panicked.clone(), seen.clone());
        Consumer::new(category.clone())
            .with_options(options("panics"))
            .on_any(move |message: Message| {
                let (panicked, seen) = (panicked.clone(), seen.clone());
                if message.position == 2 && panicked.lock().unwrap().insert(2) {
                    panic!("handler bug before its future");
                }
                async move {
                    if message.position == 1 && panicked.lock().unwrap().insert(1) {
                        panic!("handler bug");
                    }
                    seen.lock().unwrap().push(message);
                    Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    wait_until("all three are handled", || seen.lock().unwrap().len() == 3).await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(health.failed_attempts, 2);
    assert!(health
        .last_error
        .unwrap()
        .contains("handler bug before its future"));
    assert_eq!(positions(&seen.lock().unwrap()), vec![0, 1, 2]);
}

/// With the `Stop` policy the consumer stops with an error naming the message, and the
/// message is delivered again after a restart.
pub async fn consumer_stops_on_a_failing_message_and_redelivers_it(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let build = |fail: bool, seen: Arc<Mutex<Vec<u64>>>| {
        Consumer::new(category.clone())
            .with_options(options("stopper").with_retry(quick_retry(2)))
            .on(move |value: Numbered, _m: Message| {
                let seen = seen.clone();
                async move {
                    if fail && value.n == 2 {
                        return Err(std::io::Error::other("always fails").into());
                    }
                    seen.lock().unwrap().push(value.n);
                    Ok(())
                }
            })
    };
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let error = build(true, seen.clone())
        .start(store.clone())
        .await
        .unwrap()
        .join()
        .await
        .unwrap_err();
    match &error {
        Error::HandlerFailed {
            position,
            attempts,
            source,
            ..
        } => {
            assert_eq!((*position, *attempts), (2, 2));
            assert!(source.to_string().contains("always fails"));
            // The handler's own error is kept, as the error's source.
            assert!(source.downcast_ref::<std::io::Error>().is_some());
            let chained = std::error::Error::source(&error).expect("a source");
            assert!(chained.to_string().contains("always fails"));
        }
        other => panic!("expected HandlerFailed, got {other:?}"),
    }
    assert_eq!(*seen.lock().unwrap(), vec![0, 1]);
    let after: Arc<Mutex<Vec<u64>>> = Arc::default();
    let handle = build(false, after.clone())
        .start(store.clone())
        .await
        .unwrap();
    wait_until("the rest is handled", || {
        after.lock().unwrap().last() == Some(&3)
    })
    .await;
    handle.shutdown().await.unwrap();
    assert_eq!(
        *after.lock().unwrap(),
        vec![1, 2, 3],
        "resumes at the last recorded message, inclusive"
    );
}

/// A handler attempt that runs past the handler timeout is dropped and
/// counts as a failure: retried, then parked under `Park`, and the consumer
/// goes on. Message 1 hangs on its first attempt only, message 2 on every one.
pub async fn handler_timeout_is_a_failure_under_the_policy(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 4), ExpectedVersion::Any)
        .await
        .unwrap();
    let succeeded: Arc<Mutex<Vec<u64>>> = Arc::default();
    let attempts_of_1 = Arc::new(Mutex::new(0u32));
    let options = options("slow")
        .with_retry(quick_retry(2))
        .with_handler_timeout(Duration::from_millis(50))
        .with_failure_policy(FailurePolicy::Park);
    let consumer = {
        let (succeeded, attempts_of_1) = (succeeded.clone(), attempts_of_1.clone());
        Consumer::new(category.clone())
            .with_options(options)
            .on_any(move |message: Message| {
                let (succeeded, attempts_of_1) = (succeeded.clone(), attempts_of_1.clone());
                async move {
                    let n = message.data["n"].as_u64().unwrap();
                    let hangs = match n {
                        1 => {
                            let mut attempts = attempts_of_1.lock().unwrap();
                            *attempts += 1;
                            *attempts == 1
                        }
                        2 => true,
                        _ => false,
                    };
                    if hangs {
                        std::future::pending::<()>().await;
                    }
                    succeeded.lock().unwrap().push(n);
                    HandlerResult::Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    wait_until("the last message is handled", || {
        succeeded.lock().unwrap().contains(&3)
    })
    .await;
    let health = handle.shutdown().await.unwrap();
    assert_eq!(*succeeded.lock().unwrap(), [0, 1, 3]);
    assert_eq!((health.handled, health.parked), (3, 1));
    assert_eq!(health.failed_attempts, 3, "one for message 1, two for 2");
    let parked = parked_messages(store.as_ref(), &category, "slow")
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].message.data["n"], 2);
    assert_eq!(parked[0].parked_from.attempts, 2);
    assert!(
        parked[0].parked_from.error.contains("timed out after 50ms"),
        "{}",
        parked[0].parked_from.error
    );
}

/// Under `Stop`, a timed-out handler stops the consumer with `HandlerFailed`,
/// whose source is the `HandlerTimedOut`.
pub async fn handler_timeout_stops_a_stopping_consumer(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 2), ExpectedVersion::Any)
        .await
        .unwrap();
    let options = options("stuck")
        .with_retry(quick_retry(1))
        .with_handler_timeout(Duration::from_millis(20));
    let handle = Consumer::new(category.clone())
        .with_options(options)
        .on_any(|_: Message| async {
            std::future::pending::<()>().await;
            HandlerResult::Ok(())
        })
        .start(store.clone())
        .await
        .unwrap();
    let err = handle.join().await.unwrap_err();
    let Error::HandlerFailed {
        position, source, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*position, 0);
    assert_eq!(
        source.downcast_ref::<HandlerTimedOut>(),
        Some(&HandlerTimedOut {
            after: Duration::from_millis(20)
        })
    );
}
