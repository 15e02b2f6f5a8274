//! The PostgreSQL backend's fault metrics, captured by a debugging
//! recorder of this test binary's own: a killed listener connection counts
//! one listener reconnect, and a write cut by the statement timeout one
//! backend failure of the write operation, of kind Transient.

mod support;

use std::sync::OnceLock;

use message_store::backend::meter;
use message_store::{Category, ExpectedVersion, MessageStore, NewMessage, SubscribeOptions};
use message_store_conformance::support::wait_until;
use message_store_postgres::sqlx::Executor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use support::Variant;
use uuid::Uuid;

/// The recorder, installed once for this binary, with reporting enabled.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("this binary installs no other recorder");
        meter::enable();
        snapshotter
    })
}

/// The counters named `name` whose labels include every one of `labels`,
/// summed over the values counted since the last call (a snapshot takes them).
fn counted(name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            key.key().name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(count) => count,
            _ => 0,
        })
        .sum()
}

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// Both faults in one test: the snapshot is process-wide, and each
/// counter is read from zero here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_and_backend_failures_are_counted() {
    snapshotter();
    let Some((store, tag)) = support::tagged_store(Variant::Ours).await else {
        return;
    };
    counted(meter::LISTENER_RECONNECTS, &[]);
    let category = unique_category("metered");
    let _subscription = store
        .subscribe(&category, SubscribeOptions::new())
        .await
        .unwrap();
    wait_until("the listener is up", || {
        store.listener_health().unwrap().connected
    })
    .await;
    assert_eq!(
        counted(meter::LISTENER_RECONNECTS, &[]),
        0,
        "the first connection is no reconnect"
    );
    assert_eq!(support::kill(&tag, "LISTEN%").await, 1);
    let mut reconnects = 0;
    wait_until("the reconnect is counted", || {
        reconnects += counted(
            meter::LISTENER_RECONNECTS,
            &[("message_store.backend", "postgres")],
        );
        reconnects >= 1
    })
    .await;
    assert_eq!(reconnects, 1);

    let options = support::options(Variant::Ours).await.unwrap();
    let failing = [
        ("message_store.backend", "postgres"),
        ("messaging.operation.name", "write"),
        ("error.type", "Transient"),
    ];
    counted(meter::BACKEND_FAILURES, &[]);
    let stream = category.stream("1").unwrap();
    let (store, mut holder, refused) = support::timed_out_write(&options, &stream).await;
    assert!(refused.is_transient(), "{refused:?}");
    assert_eq!(counted(meter::BACKEND_FAILURES, &failing), 1);
    holder.execute("ROLLBACK").await.unwrap();

    let conflict = store
        .write(
            &stream,
            vec![NewMessage::new("Early", json!({}))],
            ExpectedVersion::Exact(7),
        )
        .await
        .unwrap_err();
    assert!(!conflict.is_transient());
    assert_eq!(
        counted(meter::BACKEND_FAILURES, &[]),
        0,
        "a wrong expected version is the caller's, not the backend's"
    );
}
