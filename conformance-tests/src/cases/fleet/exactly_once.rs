//! An exactly-once fleet: buckets that move (as instances start, and when
//! one crashes mid-handler) apply each message once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use message_store::{
    BatchSize, CategoryRead, MessageStore, MessageStoreExt, NewMessage, StreamName, UnitOfWork,
};
use message_store_consumer::fleet::current_lease;
use serde_json::json;
use tokio::sync::Notify;

use super::*;

/// Polls the read model until it holds `count` records; fails after 60 s.
async fn wait_applied(store: &dyn MessageStore, model: &StreamName, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let version = store.stream_version(model).await.unwrap();
        if version.map_or(0, |v| v + 1) >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the model never held {count} records"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Three instances on 6 buckets with a handler that writes a record of
/// each message to a read model through the message's unit: the buckets
/// move while the instances start, then one instance halts in the middle of
/// a handler (its record written, its position not) and is aborted. The
/// model holds every message exactly once.
pub async fn exactly_once_fleet_applies_each_message_once_across_a_crash(
    store: Arc<dyn MessageStore>,
) {
    let category = unique_category("fleet");
    let first = write_streams(store.as_ref(), &category, 60, 5).await as u64;
    let model = unique_stream("model");
    let log = Log::default();
    // The instance whose next handler halts after its write, and the signal
    // that it did.
    let halt: Arc<Mutex<Option<String>>> = Arc::default();
    let halted = Arc::new(Notify::new());
    let consumer = || {
        let (model, log, halt, halted) = (model.clone(), log.clone(), halt.clone(), halted.clone());
        Consumer::new(category.clone())
            .with_options(consumer_options(1))
            .on_any_in_unit(move |message: Message, unit: &mut dyn UnitOfWork| {
                let (model, log, halt, halted) =
                    (model.clone(), log.clone(), halt.clone(), halted.clone());
                Box::pin(async move {
                    log.record(&message);
                    let record =
                        NewMessage::new("Counted", json!({ "position": message.global_position }));
                    unit.write(&model, vec![record], ExpectedVersion::Any)
                        .await?;
                    let instance = current_lease().map(|lease| lease.instance);
                    let stop = {
                        let mut halt = halt.lock().unwrap();
                        let stop = halt.is_some() && *halt == instance;
                        if stop {
                            *halt = None;
                        }
                        stop
                    };
                    if stop {
                        halted.notify_one();
                        std::future::pending::<()>().await;
                    }
                    HandlerResult::Ok(())
                })
            })
    };
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(
            consumer()
                .start_fleet(store.clone(), fleet(6))
                .await
                .unwrap(),
        );
    }
    wait_applied(store.as_ref(), &model, first).await;
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;

    let crashed = instances.pop().unwrap();
    *halt.lock().unwrap() = Some(crashed.instance().to_owned());
    append_to_streams(store.as_ref(), &category, 60, 5).await;
    tokio::time::timeout(Duration::from_secs(60), halted.notified())
        .await
        .expect("the instance halted mid-handler");
    crashed.abort();
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;
    wait_applied(store.as_ref(), &model, first + 60).await;
    for instance in instances {
        instance.shutdown().await.unwrap();
    }

    let read = CategoryRead::new().with_batch_size(BatchSize::Unlimited);
    let all: BTreeSet<u64> = store
        .read_category(&category, read)
        .await
        .unwrap()
        .iter()
        .map(|m| m.global_position)
        .collect();
    let applied: Vec<u64> = store
        .read_stream_to_end(&model)
        .await
        .unwrap()
        .iter()
        .map(|m| m.data["position"].as_u64().unwrap())
        .collect();
    let handlings = log.entries().len();
    println!(
        "exactly-once fleet: {} messages, {handlings} handlings, {} applications",
        all.len(),
        applied.len()
    );
    assert_eq!(applied.iter().copied().collect::<BTreeSet<_>>(), all);
    assert_eq!(applied.len(), all.len(), "a message was applied twice");
    assert!(handlings > all.len(), "no handling was rolled back");
}
