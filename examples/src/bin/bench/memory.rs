//! The in-memory backend's figures: appends and category reads on one
//! thread, and a consumer's catch-up next to the raw read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use message_store::{
    BatchSize, Category, CategoryRead, ExpectedVersion, Message, MessageStore, StartPosition,
    SubscribeOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_memory::MemoryStore;
use uuid::Uuid;

use crate::report::{rate, repeat, Figure};
use crate::workload::message;

/// Appends and category reads on one thread.
pub async fn run(runs: usize, scale: u64) -> Vec<Figure> {
    let appends = 200_000 * scale;
    let append_runs = repeat(runs, || async {
        let store = MemoryStore::new();
        let category = Category::new("benchM").unwrap();
        let streams: Vec<_> = (0..1000)
            .map(|i| category.stream(&i.to_string()).unwrap())
            .collect();
        let template = message();
        let batch: Vec<_> = (0..appends)
            .map(|i| template.clone().with_id(Uuid::from_u128(u128::from(i) + 1)))
            .collect();
        let start = Instant::now();
        for (i, m) in batch.into_iter().enumerate() {
            store
                .write(&streams[i % streams.len()], vec![m], ExpectedVersion::Any)
                .await
                .unwrap();
        }
        rate(appends, start.elapsed())
    })
    .await;

    let store = MemoryStore::new();
    let category = Category::new("benchR").unwrap();
    let total = 1_000_000 * scale;
    for chunk in 0..total / 100 {
        let stream = category.stream(&(chunk % 10_000).to_string()).unwrap();
        let batch = (0..100).map(|_| message()).collect();
        store
            .write(&stream, batch, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let read_runs = repeat(runs, || async {
        let start = Instant::now();
        let mut position = 1;
        let mut count = 0u64;
        loop {
            let options = CategoryRead::new()
                .with_position(position)
                .with_batch_size(BatchSize::Limit(1000));
            let page = store.read_category(&category, options).await.unwrap();
            let Some(last) = page.last() else { break };
            position = last.global_position + 1;
            count += page.len() as u64;
        }
        assert_eq!(count, total);
        rate(count, start.elapsed())
    })
    .await;

    // A consumer over the same category, position every 100, handlers
    // that do nothing: what the runtime adds to a read.
    let consumed = 200_000.min(total);
    let consumer_runs = repeat(runs, || async {
        let handled = Arc::new(AtomicU64::new(0));
        let counter = handled.clone();
        let options = ConsumerOptions::new().with_subscription(
            SubscribeOptions::new()
                .with_consumer_id(format!("bench{}", Uuid::new_v4().simple()))
                .with_start(StartPosition::Beginning),
        );
        let start = Instant::now();
        let handle = Consumer::new(category.clone())
            .with_options(options)
            .on_any(move |_: Message| {
                counter.fetch_add(1, Ordering::Relaxed);
                async { HandlerResult::Ok(()) }
            })
            .start(store.clone())
            .await
            .unwrap();
        while handled.load(Ordering::Relaxed) < consumed {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let elapsed = start.elapsed();
        handle.shutdown().await.unwrap();
        rate(consumed, elapsed)
    })
    .await;
    let read_median = crate::report::median(&read_runs);

    vec![
        Figure::new(
            format!("consumer catch-up, {consumed} msgs, position every 100"),
            "memory",
            "msg/s",
            consumer_runs,
        )
        .reference("category read", read_median),
        Figure::new(
            "single-message appends, 1 thread",
            "memory",
            "msg/s",
            append_runs,
        )
        .target(">= 1,000,000 msg/s"),
        Figure::new(
            format!("category read, pages of 1000 ({total} msgs)"),
            "memory",
            "msg/s",
            read_runs,
        )
        .target(">= 5,000,000 msg/s"),
    ]
}
