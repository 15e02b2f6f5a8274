//! The same three workloads on every backend, side by side: single
//! appends, batches of 100, and a category's catch-up, on the memory
//! store, SQLite (each durability) and PostgreSQL (our schema).

use std::time::Instant;

use futures::TryStreamExt;
use message_store::{Category, ExpectedVersion, MessageStore};
use message_store_memory::MemoryStore;
use message_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use uuid::Uuid;

use crate::report::{rate, repeat, Figure};
use crate::workload::message;

/// The figures of the embedded backends, and of `postgres` when given.
pub async fn run(
    runs: usize,
    scale: u64,
    postgres: Option<&message_store_postgres::PostgresStore>,
) -> Vec<Figure> {
    let mut figures = workloads(&MemoryStore::new(), "memory", runs, scale).await;
    for (durability, label) in [
        (Durability::Full, "sqlite (synchronous=FULL)"),
        (Durability::Normal, "sqlite (synchronous=NORMAL)"),
    ] {
        let options = SqliteOptions::new().with_durability(durability);
        let store = SqliteStore::open_temporary_with(options)
            .await
            .expect("a temporary SQLite file");
        figures.extend(workloads(&store, label, runs, scale).await);
    }
    if let Some(store) = postgres {
        figures.extend(workloads(store, "postgres ours", runs, scale).await);
    }
    figures
}

fn fresh_category() -> Category {
    Category::new(format!("benchB{}", Uuid::new_v4().simple())).unwrap()
}

async fn workloads<S: MessageStore>(
    store: &S,
    backend: &str,
    runs: usize,
    scale: u64,
) -> Vec<Figure> {
    let appends = 2_000 * scale;
    let single = repeat(runs, || async {
        let category = fresh_category();
        let start = Instant::now();
        for i in 0..appends {
            let stream = category.stream(&(i % 100).to_string()).unwrap();
            store
                .write(&stream, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
        }
        rate(appends, start.elapsed())
    })
    .await;

    let batches = 100 * scale;
    let batched = repeat(runs, || async {
        let category = fresh_category();
        let start = Instant::now();
        for i in 0..batches {
            let stream = category.stream(&(i % 100).to_string()).unwrap();
            let batch = (0..100).map(|_| message()).collect();
            store
                .write(&stream, batch, ExpectedVersion::Any)
                .await
                .unwrap();
        }
        rate(batches * 100, start.elapsed())
    })
    .await;

    let total = 100_000 * scale;
    let category = fresh_category();
    for chunk in 0..total / 1000 {
        let stream = category.stream(&(chunk % 100).to_string()).unwrap();
        let batch = (0..1000).map(|_| message()).collect();
        store
            .write(&stream, batch, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let catch_up = repeat(runs, || async {
        let start = Instant::now();
        let mut messages = store.category_messages(&category, Default::default());
        let mut count = 0u64;
        while messages.try_next().await.unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, total);
        rate(count, start.elapsed())
    })
    .await;

    vec![
        Figure::new("single appends, 100 streams", backend, "msg/s", single),
        Figure::new("batches of 100, 100 streams", backend, "msg/s", batched),
        Figure::new(
            format!("category catch-up, {total} msgs, pages of 1000, decoded"),
            backend,
            "msg/s",
            catch_up,
        ),
    ]
}
