//! Consumer figures: subscription latency and consumer catch-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use message_store::{
    Category, ExpectedVersion, Message, MessageStore, StartPosition, SubscribeOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_postgres::PostgresStore;
use uuid::Uuid;

use crate::report::{median, quantile, rate, Figure};

/// The consumers figures.
pub(super) async fn run(ours: &PostgresStore, genuine: &PostgresStore, runs: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    // Subscription latency, write -> handler, 1000 messages at 200 msg/s.
    for (store, label, poll) in [
        (ours.clone(), "with NOTIFY (ours)", 100u64),
        (genuine.clone(), "polling every 10 ms (genuine)", 10),
    ] {
        let latencies = subscription_latency(store, poll).await;
        let target = if label.contains("NOTIFY") {
            "p99 <= 5 ms"
        } else {
            ""
        };
        for (q, name) in [(500, "p50"), (990, "p99"), (1000, "max")] {
            figures.push(
                Figure::new(
                    format!("subscription latency {name}, {label}"),
                    "postgres",
                    "ms",
                    vec![quantile(&latencies, q)],
                )
                .lower_is_better()
                .target(if name == "p99" { target } else { "" }),
            );
        }
    }

    // Consumer catch-up over 100k messages, recording its position every
    // 100, against reading the same messages raw, in turns.
    let (mut mine, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        mine.push(consumer_catch_up(ours.clone()).await);
        raw.push(raw_catch_up(ours).await);
    }
    figures.push(
        Figure::new(
            "consumer catch-up, 100k msgs, position every 100",
            "postgres ours",
            "msg/s",
            mine,
        )
        .reference("raw category catch-up", median(&raw))
        .target(">= 0.8x"),
    );

    figures
}

async fn subscription_latency(store: PostgresStore, poll_ms: u64) -> Vec<f64> {
    let category = Category::new(format!("benchLatency{}", Uuid::new_v4().simple())).unwrap();
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let consumer = {
        let (sent, latencies) = (sent.clone(), latencies.clone());
        Consumer::new(category.clone())
            .with_options(
                ConsumerOptions::new().with_subscription(
                    SubscribeOptions::new()
                        .with_consumer_id("latency")
                        .with_start(StartPosition::Beginning)
                        .with_poll_interval(Duration::from_millis(poll_ms)),
                ),
            )
            .on_any(move |message: Message| {
                let (sent, latencies) = (sent.clone(), latencies.clone());
                async move {
                    let n = message.data["n"].as_u64().unwrap_or(0);
                    if let Some(at) = sent.lock().unwrap().get(&n) {
                        latencies
                            .lock()
                            .unwrap()
                            .push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                    HandlerResult::Ok(())
                }
            })
    };
    let handle = consumer.start(store.clone()).await.unwrap();
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    for n in 0..1000u64 {
        ticker.tick().await;
        let s = category.stream(&(n % 10).to_string()).unwrap();
        sent.lock().unwrap().insert(n, Instant::now());
        let m = message_store::NewMessage::new("Tick", serde_json::json!({ "n": n }));
        store
            .write(&s, vec![m], ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().unwrap().len() < 1000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.shutdown().await.unwrap();
    let result = latencies.lock().unwrap().clone();
    result
}

async fn consumer_catch_up(store: PostgresStore) -> f64 {
    let handled = Arc::new(Mutex::new(0u64));
    let consumer = {
        let handled = handled.clone();
        Consumer::new(Category::new("benchConsumer").unwrap())
            .with_options(
                ConsumerOptions::new().with_subscription(
                    SubscribeOptions::new()
                        .with_consumer_id(format!("catchup{}", Uuid::new_v4().simple()))
                        .with_start(StartPosition::Beginning),
                ),
            )
            .on_any(move |_m: Message| {
                let handled = handled.clone();
                async move {
                    *handled.lock().unwrap() += 1;
                    HandlerResult::Ok(())
                }
            })
    };
    let start = Instant::now();
    let handle = consumer.start(store).await.unwrap();
    while *handled.lock().unwrap() < 100_000 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    handle.shutdown().await.unwrap();
    rate(100_000, elapsed)
}

/// The consumer's 100k messages read through the store's paged category
/// read, decoded, nothing else done with them.
async fn raw_catch_up(store: &PostgresStore) -> f64 {
    use futures::TryStreamExt;
    let category = Category::new("benchConsumer").unwrap();
    let start = Instant::now();
    let mut messages = store.category_messages(&category, Default::default());
    let mut count = 0u64;
    while count < 100_000 {
        if messages.try_next().await.unwrap().is_none() {
            break;
        }
        count += 1;
    }
    rate(count, start.elapsed())
}
