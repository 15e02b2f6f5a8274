//! Unit-of-work figures: a unit writing two streams against two plain
//! writes, and an exactly-once consumer against the same consumer handling
//! at least once, on our schema.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use message_store::{
    Category, ExpectedVersion, Message, MessageStore, NewMessage, StartPosition, SubscribeOptions,
    UnitOfWork, UnitOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_postgres::PostgresStore;
use uuid::Uuid;

use super::stream;
use crate::report::{median, rate, repeat, Figure};
use crate::workload::message;

/// Transfers (one message to each of two streams, in two categories).
const TRANSFERS: u64 = 2000;
/// Messages an exactly-once or at-least-once consumer handles.
const CONSUMED: u64 = 10_000;

/// The units figures.
pub(super) async fn run(ours: &PostgresStore, runs: usize) -> Vec<Figure> {
    let plain = repeat(runs, || transfers(ours, false)).await;
    let units = repeat(runs, || transfers(ours, true)).await;
    let mut figures = vec![Figure::new(
        "unit of work, 2 streams x 1 message, transfers/s",
        "postgres ours",
        "units/s",
        units,
    )
    .reference("two plain writes", median(&plain))];

    let source = Category::new(format!("benchOnce{}", Uuid::new_v4().simple())).unwrap();
    for first in (0..CONSUMED).step_by(100) {
        let batch = (0..100).map(|_| message()).collect();
        let id = (first / 100).to_string();
        ours.write(&source.stream(&id).unwrap(), batch, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let at_least_once = repeat(runs, || consume(ours, &source, false)).await;
    let exactly_once = repeat(runs, || consume(ours, &source, true)).await;
    figures.push(
        Figure::new(
            "exactly-once consumer, 10k msgs, one write each",
            "postgres ours",
            "msg/s",
            exactly_once,
        )
        .reference("at least once (position every 100)", median(&at_least_once)),
    );
    figures
}

/// Debits one stream and credits another, `TRANSFERS` times in a row: in
/// one unit each, or as two plain writes.
async fn transfers(store: &PostgresStore, in_unit: bool) -> f64 {
    let run = Uuid::new_v4().simple().to_string();
    let start = Instant::now();
    for n in 0..TRANSFERS {
        let debit = stream(format!("benchDebit{run}-{}", n % 100));
        let credit = stream(format!("benchCredit{run}-{}", n % 100));
        if in_unit {
            let mut unit = store.begin(UnitOptions::new()).await.unwrap();
            unit.write(&debit, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
            unit.write(&credit, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
            unit.commit().await.unwrap();
        } else {
            store
                .write(&debit, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
            store
                .write(&credit, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
        }
    }
    rate(TRANSFERS, start.elapsed())
}

/// A consumer from the beginning of `source` whose handler writes one
/// message per message handled: through the unit (exactly once), or as a
/// plain write with the position recorded every 100 (at least once).
async fn consume(store: &PostgresStore, source: &Category, exactly_once: bool) -> f64 {
    let handled = Arc::new(AtomicU64::new(0));
    let model = Category::new(format!("benchModel{}", Uuid::new_v4().simple())).unwrap();
    let options = ConsumerOptions::new().with_subscription(
        SubscribeOptions::new()
            .with_consumer_id(format!("once{}", Uuid::new_v4().simple()))
            .with_start(StartPosition::Beginning),
    );
    let consumer = Consumer::new(source.clone()).with_options(options);
    let consumer = if exactly_once {
        let (handled, model) = (handled.clone(), model.clone());
        consumer.on_any_in_unit(move |m: Message, unit: &mut dyn UnitOfWork| {
            let (handled, target) = (
                handled.clone(),
                model.stream(m.stream_name.id().unwrap_or("0")),
            );
            Box::pin(async move {
                unit.write(&target?, vec![effect(&m)], ExpectedVersion::Any)
                    .await?;
                handled.fetch_add(1, Ordering::Relaxed);
                HandlerResult::Ok(())
            })
        })
    } else {
        let (handled, model, writer) = (handled.clone(), model.clone(), store.clone());
        consumer.on_any(move |m: Message| {
            let (handled, writer) = (handled.clone(), writer.clone());
            let target = model.stream(m.stream_name.id().unwrap_or("0"));
            async move {
                writer
                    .write(&target?, vec![effect(&m)], ExpectedVersion::Any)
                    .await?;
                handled.fetch_add(1, Ordering::Relaxed);
                HandlerResult::Ok(())
            }
        })
    };
    let start = Instant::now();
    let handle = consumer.start(store.clone()).await.unwrap();
    while handled.load(Ordering::Relaxed) < CONSUMED {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    handle.shutdown().await.unwrap();
    rate(CONSUMED, elapsed)
}

fn effect(source: &Message) -> NewMessage {
    NewMessage::new(
        "Applied",
        serde_json::json!({ "from": source.global_position }),
    )
}
