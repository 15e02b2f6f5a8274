//! Spans: every store call and every handled message opens one, with
//! OpenTelemetry's messaging attribute names (see `message_store::backend::trace`).

use std::sync::Arc;

use message_store::{
    CategoryRead, ExpectedVersion, Message, MessageStore, Metadata, StreamRead, SubscribeOptions,
    UnitOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};

use crate::spans::{self, CapturedSpan, TRACED};
use crate::support::*;

/// The kept spans of `destination`.
fn of(destination: &str) -> Vec<CapturedSpan> {
    spans::captured()
        .into_iter()
        .filter(|s| s.field("messaging.destination.name") == Some(destination))
        .collect()
}

fn one<'a>(spans: &'a [CapturedSpan], operation: &str) -> &'a CapturedSpan {
    let found: Vec<&CapturedSpan> = spans
        .iter()
        .filter(|s| s.field("messaging.operation.name") == Some(operation))
        .collect();
    assert!(!found.is_empty(), "no {operation} span in {spans:#?}");
    found[0]
}

/// Writes (ok and failed), reads and a consumer's handling each open a span
/// carrying the messaging attributes: system, operation name and type,
/// destination, message count, the backend, the error kind of a failure,
/// and the Eventide correlation of the message written and handled.
pub async fn store_calls_and_handled_messages_are_traced(store: Arc<dyn MessageStore>) {
    spans::start();
    let category = unique_category(TRACED);
    let account = stream(&category, "1");
    let correlated = Metadata::new().with_correlation_stream_name("order-7");
    let messages = vec![
        numbered("Numbered", 0).with_metadata(correlated.clone()),
        numbered("Numbered", 1).with_metadata(correlated),
    ];
    store
        .write(&account, messages, ExpectedVersion::NoStream)
        .await
        .unwrap();
    let refused = store
        .write(&account, batch(2, 1), ExpectedVersion::NoStream)
        .await;
    assert!(refused.is_err());
    store
        .read_stream(&account, StreamRead::new())
        .await
        .unwrap();
    store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    let mut unit = store.begin(UnitOptions::new()).await.unwrap();
    unit.write(&account, batch(3, 1), ExpectedVersion::Exact(1))
        .await
        .unwrap();
    unit.commit().await.unwrap();

    let options = ConsumerOptions::new()
        .with_subscription(SubscribeOptions::new().with_consumer_id("tracer"))
        .with_standby(false);
    Consumer::new(category.clone())
        .with_options(options)
        .on_any(|_: Message| async { HandlerResult::Ok(()) })
        .run_until_caught_up(store.clone())
        .await
        .unwrap();

    let spans = of(account.as_str());
    assert!(
        !spans.is_empty(),
        "no span captured: is another global tracing subscriber installed in this test binary?"
    );
    for span in &spans {
        assert_eq!(
            span.field("messaging.system"),
            Some("message_db"),
            "{span:?}"
        );
        // The consumer's spans are the runtime's, not a backend's.
        let by_backend = span.name != "message_store.process";
        assert_eq!(
            span.field("message_store.backend").is_some(),
            by_backend,
            "{span:?}"
        );
    }
    let writes: Vec<&CapturedSpan> = spans
        .iter()
        .filter(|s| s.name == "message_store.write")
        .collect();
    assert_eq!(
        writes.len(),
        3,
        "two plain writes and one in the unit: {writes:#?}"
    );
    let first = writes[0];
    assert_eq!(first.field("messaging.operation.type"), Some("send"));
    assert_eq!(first.field("messaging.batch.message_count"), Some("2"));
    assert_eq!(
        first.field("message_store.correlation_stream_name"),
        Some("order-7")
    );
    assert_eq!(
        first.field("otel.name"),
        Some(format!("send {account}").as_str())
    );
    assert_eq!(first.field("error.type"), None);
    assert_eq!(writes[1].field("error.type"), Some("WrongExpectedVersion"));
    assert_eq!(writes[1].field("otel.status_code"), Some("ERROR"));

    let read = one(&spans, "read_stream");
    assert_eq!(read.field("messaging.operation.type"), Some("receive"));
    assert_eq!(read.field("messaging.batch.message_count"), Some("2"));
    let page = of(category.as_str());
    let category_read = one(&page, "read_category");
    assert_eq!(
        category_read.field("messaging.batch.message_count"),
        Some("2")
    );

    let handled: Vec<&CapturedSpan> = spans
        .iter()
        .filter(|s| s.name == "message_store.process")
        .collect();
    assert_eq!(
        handled.len(),
        3,
        "one span per handled message: {handled:#?}"
    );
    let first = handled[0];
    assert_eq!(first.field("messaging.operation.type"), Some("process"));
    assert_eq!(first.field("messaging.consumer.group.name"), Some("tracer"));
    assert_eq!(first.field("message_store.position"), Some("0"));
    assert_eq!(first.field("message_store.attempts"), Some("1"));
    assert_eq!(
        first.field("message_store.correlation_stream_name"),
        Some("order-7")
    );
    assert!(first.field("messaging.message.id").is_some());
}

/// Writes (plain and in a committed unit; not a rolled-back unit's) count as
/// sent messages of their category, and a consumer's handled messages,
/// their durations and a retry are counted under its id.
pub async fn store_calls_and_handled_messages_are_metered(store: Arc<dyn MessageStore>) {
    use message_store::backend::meter;
    use message_store_consumer::RetryPolicy;
    use std::sync::atomic::{AtomicBool, Ordering};

    assert!(
        crate::meters::start(),
        "another global metrics recorder is installed in this test binary"
    );
    let category = unique_category(TRACED);
    let account = stream(&category, "1");
    store
        .write(&account, batch(0, 2), ExpectedVersion::NoStream)
        .await
        .unwrap();
    let mut unit = store.begin(UnitOptions::new()).await.unwrap();
    unit.write(&account, batch(2, 1), ExpectedVersion::Exact(1))
        .await
        .unwrap();
    unit.commit().await.unwrap();
    let mut dropped = store.begin(UnitOptions::new()).await.unwrap();
    dropped
        .write(&account, batch(3, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    drop(dropped);

    let failed_once = Arc::new(AtomicBool::new(false));
    let options = ConsumerOptions::new()
        .with_subscription(SubscribeOptions::new().with_consumer_id("meter"))
        .with_retry(RetryPolicy::new().with_backoff(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(2),
        ))
        .with_standby(false);
    Consumer::new(category.clone())
        .with_options(options)
        .on_any(move |_: Message| {
            let first = !failed_once.swap(true, Ordering::SeqCst);
            async move {
                if first {
                    return Err("once".into());
                }
                HandlerResult::Ok(())
            }
        })
        .run_until_caught_up(store.clone())
        .await
        .unwrap();

    let metrics = crate::meters::of(category.as_str());
    let find = |name: &str| {
        metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} in {metrics:#?}"))
    };
    let sent = find(meter::SENT);
    assert_eq!(sent.counter, Some(3), "two plain, one committed in a unit");
    assert_eq!(sent.label("messaging.system"), Some("message_db"));
    assert!(sent.label("message_store.backend").is_some());
    let consumed = find(meter::CONSUMED);
    assert_eq!(consumed.counter, Some(3));
    assert_eq!(
        consumed.label("messaging.consumer.group.name"),
        Some("meter")
    );
    assert_eq!(find(meter::RETRIES).counter, Some(1));
    assert_eq!(find(meter::PARKED).counter, Some(0));
    assert_eq!(find(meter::PROCESS_DURATION).samples, 3);
}
