//! Exactly-once handlers: a consumer whose handlers write through the
//! message's unit of work applies each message once, however often it is
//! killed; the same consumer handling at least once does not.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use message_store::{
    BatchSize, Category, CategoryRead, ExpectedVersion, Message, MessageStore, NewMessage,
    StreamName, UnitOfWork,
};
use message_store_consumer::{Consumer, HandlerResult};
use serde_json::json;
use tokio::sync::Notify;

use super::alone;
use crate::support::*;

const MESSAGES: u64 = 1000;
const KILLS: u64 = 20;

/// Where the next kill happens: the handler's attempt number `stop_at`
/// halts, before writing its effect or after it (before the position is
/// recorded), and says so; the case then kills the consumer.
#[derive(Default)]
struct Gate {
    attempts: AtomicU64,
    stop_at: AtomicU64,
    after_write: AtomicBool,
    reached: Notify,
}

impl Gate {
    /// Halts this attempt for good if it is the one to kill at `after_write`.
    async fn halt_if(&self, attempt: u64, after_write: bool) {
        if attempt == self.stop_at.load(Ordering::SeqCst)
            && after_write == self.after_write.load(Ordering::SeqCst)
        {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

fn counted(message: &Message) -> NewMessage {
    NewMessage::new("Counted", json!({ "position": message.global_position }))
}

/// A consumer whose handler appends a `Counted` record of each message's
/// global position to the read model's stream: through the message's unit
/// (`in_unit`), or as a plain write (at least once).
fn counting(
    store: &Arc<dyn MessageStore>,
    category: &Category,
    model: &StreamName,
    gate: &Arc<Gate>,
    in_unit: bool,
) -> Consumer {
    let (model, gate) = (model.clone(), gate.clone());
    let consumer = Consumer::new(category.clone());
    if in_unit {
        return consumer.with_options(alone("exactly")).on_any_in_unit(
            move |message: Message, unit: &mut dyn UnitOfWork| {
                let (model, gate) = (model.clone(), gate.clone());
                Box::pin(async move {
                    let attempt = gate.attempts.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.halt_if(attempt, false).await;
                    unit.write(&model, vec![counted(&message)], ExpectedVersion::Any)
                        .await?;
                    gate.halt_if(attempt, true).await;
                    HandlerResult::Ok(())
                })
            },
        );
    }
    let store = store.clone();
    consumer
        .with_options(alone("at-least"))
        .on_any(move |message: Message| {
            let (store, model, gate) = (store.clone(), model.clone(), gate.clone());
            async move {
                let attempt = gate.attempts.fetch_add(1, Ordering::SeqCst) + 1;
                gate.halt_if(attempt, false).await;
                store
                    .write(&model, vec![counted(&message)], ExpectedVersion::Any)
                    .await?;
                gate.halt_if(attempt, true).await;
                HandlerResult::Ok(())
            }
        })
}

/// Runs the consumer, killing it `KILLS` times, each at an attempt 5 to
/// 44 after the last kill, before or after its write (a fixed xorshift
/// schedule, so a failure repeats), then lets it finish. Returns the read
/// model's records.
async fn kill_and_finish(
    store: &Arc<dyn MessageStore>,
    category: &Category,
    in_unit: bool,
) -> Vec<u64> {
    let model = unique_stream("model");
    let gate = Arc::new(Gate::default());
    let mut schedule = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |below: u64| {
        schedule ^= schedule << 13;
        schedule ^= schedule >> 7;
        schedule ^= schedule << 17;
        schedule % below
    };
    for _ in 0..KILLS {
        let at = gate.attempts.load(Ordering::SeqCst) + 5 + next(40);
        gate.stop_at.store(at, Ordering::SeqCst);
        gate.after_write.store(next(2) == 1, Ordering::SeqCst);
        let handle = counting(store, category, &model, &gate, in_unit)
            .start(store.clone())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(60), gate.reached.notified())
            .await
            .expect("the consumer reached the kill point");
        handle.abort(); // a crash, mid-handler
        let _ = handle.join().await;
    }
    gate.stop_at.store(0, Ordering::SeqCst);
    let handle = counting(store, category, &model, &gate, in_unit)
        .start(store.clone())
        .await
        .unwrap();
    handle.caught_up().await.unwrap();
    handle.shutdown().await.unwrap();
    read_all(store.as_ref(), &model)
        .await
        .iter()
        .map(|m| m.data["position"].as_u64().expect("a Counted record"))
        .collect()
}

/// 1000 messages, the consumer killed 20 times mid-handler (before or after
/// its write): with the handler writing the read model through the unit of
/// work, the model holds each message exactly once; with the same handler
/// writing outside it (at least once), it holds more, which shows the case
/// can fail.
pub async fn exactly_once_handlers_apply_each_message_once_across_kills(
    store: Arc<dyn MessageStore>,
) {
    let category = unique_category("account");
    for first in (0..MESSAGES).step_by(10) {
        let messages = (first..first + 10)
            .map(|n| numbered("Numbered", n))
            .collect();
        let id = (first / 10 % 10).to_string();
        store
            .write(&stream(&category, &id), messages, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let read = CategoryRead::new().with_batch_size(BatchSize::Unlimited);
    let all: BTreeSet<u64> = global(&store.read_category(&category, read).await.unwrap())
        .into_iter()
        .collect();

    let once = kill_and_finish(&store, &category, true).await;
    assert_eq!(once.iter().copied().collect::<BTreeSet<_>>(), all);
    assert_eq!(
        once.len() as u64,
        MESSAGES,
        "{} applications in units for {MESSAGES} messages and {KILLS} kills",
        once.len()
    );

    let twice = kill_and_finish(&store, &category, false).await;
    eprintln!(
        "{MESSAGES} messages, {KILLS} kills: {} applications exactly once, {} at least once",
        once.len(),
        twice.len()
    );
    assert_eq!(twice.iter().copied().collect::<BTreeSet<_>>(), all);
    assert!(
        twice.len() as u64 > MESSAGES,
        "at least once, killed {KILLS} times mid-handler, applied no message twice"
    );
}

fn global(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.global_position).collect()
}

/// Another writer moves an exactly-once consumer's position stream on while
/// one of its handlers is in its unit (as a fleet instance taking the bucket
/// over, or a second consumer, would): the unit fails at its position
/// write, the handler's effect rolls back with it, and the consumer stops
/// with `PositionStreamInUse`.
pub async fn a_stale_exactly_once_consumer_commits_nothing(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    let source = stream(&category, "1");
    store
        .write(&source, batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let model = unique_stream("model");
    let (inside, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let consumer = {
        let (model, inside, go) = (model.clone(), inside.clone(), go.clone());
        Consumer::new(category.clone())
            .with_options(alone("stale"))
            .on_any_in_unit(move |message: Message, unit: &mut dyn UnitOfWork| {
                let (model, inside, go) = (model.clone(), inside.clone(), go.clone());
                Box::pin(async move {
                    unit.write(&model, vec![counted(&message)], ExpectedVersion::Any)
                        .await?;
                    if message.position == 2 {
                        inside.notify_one();
                        go.notified().await;
                    }
                    HandlerResult::Ok(())
                })
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), inside.notified())
        .await
        .expect("the handler of position 2 ran");
    let position_stream = category.position_stream(Some("stale")).unwrap();
    store
        .write(
            &position_stream,
            vec![message_store::backend::position_record(0)],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    go.notify_one();
    let stopped = tokio::time::timeout(Duration::from_secs(60), handle.join())
        .await
        .expect("the consumer stopped");
    let error = stopped.unwrap_err();
    assert!(
        matches!(
            error.store_error(),
            Some(message_store::Error::PositionStreamInUse { .. })
        ),
        "{error:?}"
    );
    let applied: Vec<u64> = read_all(store.as_ref(), &model)
        .await
        .iter()
        .map(|m| m.data["position"].as_u64().unwrap())
        .collect();
    let sources = read_all(store.as_ref(), &source).await;
    assert_eq!(
        applied,
        global(&sources[..2]),
        "only the messages before the foreign write were applied"
    );
}

/// An exactly-once consumer meets refused units (at `begin`), refused
/// commits (nothing stored) and commits whose reply is lost (stored): it
/// handles the refused ones again, finds the lost-reply ones landed by
/// reading its position stream back, keeps running, and applies each
/// message once.
pub async fn exactly_once_consumer_resolves_failed_and_lost_commits(store: Arc<dyn MessageStore>) {
    let category = unique_category("account");
    for id in 0..5 {
        store
            .write(
                &stream(&category, &id.to_string()),
                batch(0, 10),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let failing = crate::faults::FailingStore::new(store.clone());
    failing.fail_next(crate::faults::Operation::Begin, 2);
    failing.fail_next(crate::faults::Operation::Commit, 3);
    failing.lose_next_commit_replies(3);
    let model = unique_stream("model");
    let consumer = {
        let model = model.clone();
        Consumer::new(category.clone())
            .with_options(alone("faulty"))
            .on_any_in_unit(move |message: Message, unit: &mut dyn UnitOfWork| {
                let model = model.clone();
                Box::pin(async move {
                    unit.write(&model, vec![counted(&message)], ExpectedVersion::Any)
                        .await?;
                    HandlerResult::Ok(())
                })
            })
    };
    let handle = consumer.start(failing.clone()).await.unwrap();
    handle.caught_up().await.unwrap();
    let health = handle.shutdown().await.unwrap();
    assert_eq!(failing.injected(), 8, "every armed fault was met");
    assert_eq!(health.handled, 50);
    let applied: Vec<u64> = read_all(store.as_ref(), &model)
        .await
        .iter()
        .map(|m| m.data["position"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = applied.iter().copied().collect();
    assert_eq!(distinct.len(), 50);
    assert_eq!(applied.len(), 50, "a message was applied twice");
}
