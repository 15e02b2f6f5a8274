//! Read figures: category catch-up, stream reads, empty reads at the head,
//! consumer-group and correlation pages, ours against genuine Message DB.

use super::*;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use message_store::{
    BatchSize, Category, CategoryRead, ConsumerGroup, ExpectedVersion, MessageStore,
    MessageStoreExt, StreamRead,
};
use message_store_postgres::PostgresStore;

use crate::pgbench;
use crate::report::{median, rate, Figure};
use crate::workload::message;

/// The reads figures.
pub(super) async fn run(
    databases: &Databases,
    ours: &PostgresStore,
    genuine: &PostgresStore,
    url: &str,
    runs: usize,
    scale: u64,
) -> Vec<Figure> {
    let mut figures = Vec::new();
    // Category catch-up with decoding.
    let category = Category::new("benchCat").unwrap();
    let total = 1_000_000 * scale;
    let (mut mine, mut ceiling) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // Through the paged stream, which asks for the next page while this one is decoded.
        let start = Instant::now();
        let options = CategoryRead::new().with_batch_size(BatchSize::Limit(1000));
        let count = ours
            .category_messages(&category, options)
            .try_fold(0u64, |count, _message| async move { Ok(count + 1) })
            .await
            .unwrap();
        assert_eq!(count, total);
        mine.push(rate(count, start.elapsed()));
        let pages = u32::try_from(total / 1000).unwrap();
        ceiling.push(
            1000.0
                * pgbench::tps(
                    url,
                    &pgbench::paging_script("benchCat"),
                    1,
                    pages,
                    &[("pos", "1".into())],
                ),
        );
    }
    figures.push(
        Figure::new(
            format!("category catch-up, {total} msgs, pages of 1000, decoded"),
            "postgres",
            "msg/s",
            mine,
        )
        .reference("pgbench paging", median(&ceiling))
        .target(">= 0.8x"),
    );

    // Stream read, last message, stream version.
    let read_stream = stream("benchS-1".into());
    for chunk in 0..10 {
        let batch = (0..100).map(|_| message()).collect();
        ours.write(&read_stream, batch, ExpectedVersion::Any)
            .await
            .unwrap();
        let _ = chunk;
    }
    let calls = |n: u64, elapsed: Duration| rate(n, elapsed);
    let (mut reads, mut last, mut versions) = (Vec::new(), Vec::new(), Vec::new());
    let (mut reads_ceiling, mut last_ceiling, mut versions_ceiling) =
        (Vec::new(), Vec::new(), Vec::new());
    let ceilings = |reads: &mut Vec<f64>, last: &mut Vec<f64>, versions: &mut Vec<f64>| {
        let stream_sql = "SELECT * FROM message_store.get_stream_messages('benchS-1', 0, 1000);\n";
        reads.push(pgbench::tps(url, stream_sql, 1, 200, &[]));
        let last_sql = "SELECT * FROM message_store.get_last_stream_message('benchS-1');\n";
        last.push(pgbench::tps(url, last_sql, 1, 2000, &[]));
        let version_sql = "SELECT message_store.stream_version('benchS-1');\n";
        versions.push(pgbench::tps(url, version_sql, 1, 2000, &[]));
    };
    for run in 0..runs {
        if run % 2 == 1 {
            ceilings(&mut reads_ceiling, &mut last_ceiling, &mut versions_ceiling);
        }
        let start = Instant::now();
        for _ in 0..200 {
            let page = ours
                .read_stream(&read_stream, StreamRead::new())
                .await
                .unwrap();
            assert_eq!(page.len(), 1000);
        }
        reads.push(calls(200, start.elapsed()));
        let start = Instant::now();
        for _ in 0..2000 {
            ours.last_message(&read_stream).await.unwrap().unwrap();
        }
        last.push(calls(2000, start.elapsed()));
        let start = Instant::now();
        for _ in 0..2000 {
            ours.stream_version(&read_stream).await.unwrap().unwrap();
        }
        versions.push(calls(2000, start.elapsed()));
        if run % 2 == 0 {
            ceilings(&mut reads_ceiling, &mut last_ceiling, &mut versions_ceiling);
        }
    }
    figures.push(
        Figure::new(
            "stream read of a 1000-message stream",
            "postgres",
            "calls/s",
            reads,
        )
        .reference("pgbench", median(&reads_ceiling)),
    );
    figures.push(
        Figure::new("last message", "postgres", "calls/s", last)
            .reference("pgbench", median(&last_ceiling)),
    );
    figures.push(
        Figure::new("stream version", "postgres", "calls/s", versions)
            .reference("pgbench", median(&versions_ceiling)),
    );

    // Empty read at the head of the 1M category: ours vs genuine.
    let empty_read = |store: PostgresStore| async move {
        let head = store
            .category_head(&category_of("benchCat"))
            .await
            .unwrap()
            .unwrap();
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let page = store
                .read_category(
                    &category_of("benchCat"),
                    CategoryRead::new().with_position(head + 1),
                )
                .await
                .unwrap();
            assert!(page.is_empty());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        median(&times)
    };
    let (mut mine, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        mine.push(empty_read(ours.clone()).await);
        reference.push(empty_read(genuine.clone()).await);
    }
    figures.push(
        Figure::new(
            "empty read at the head of the 1M category",
            "postgres ours",
            "ms",
            mine,
        )
        .reference("genuine Message DB", median(&reference))
        .lower_is_better()
        .target("<= 1 ms"),
    );

    // Consumer-group and correlation pages over the 1M category: ours vs genuine.
    let page_time = |store: PostgresStore, options: CategoryRead| async move {
        let mut times = Vec::new();
        for step in 0..10u64 {
            let start = Instant::now();
            let from = 1 + step * (total / 10);
            let page = store
                .read_category(
                    &category_of("benchCat"),
                    options.clone().with_position(from),
                )
                .await
                .unwrap();
            assert!(!page.is_empty());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        median(&times)
    };
    let group = CategoryRead::new().with_consumer_group(ConsumerGroup::new(1, 4).unwrap());
    let correlated = CategoryRead::new().with_correlation("corrA");
    let genuine_url = databases.url(&databases.genuine);
    for (name, options, filter_sql, target) in [
        (
            "consumer-group page (member 1 of 4), 1000 msgs",
            group,
            "NULL, 1, 4",
            ">= 10x",
        ),
        (
            "correlation page (10% match), 1000 msgs",
            correlated,
            "'corrA'",
            "",
        ),
    ] {
        let (mut mine, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            mine.push(page_time(ours.clone(), options.clone()).await);
            reference.push(page_time(genuine.clone(), options.clone()).await);
        }
        figures.push(
            Figure::new(name, "postgres ours", "ms", mine)
                .reference("genuine Message DB", median(&reference))
                .lower_is_better()
                .target(target),
        );
        // The same pages as the server alone serves them: pgbench calling
        // get_category_messages on each schema, no client decoding.
        let script = pgbench::filtered_page_script("benchCat", total, filter_sql);
        let (mut mine, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            mine.push(1000.0 / pgbench::tps(url, &script, 1, 100, &[]));
            reference.push(1000.0 / pgbench::tps(&genuine_url, &script, 1, 20, &[]));
        }
        figures.push(
            Figure::new(
                format!("{name}, server only (pgbench)"),
                "postgres ours",
                "ms",
                mine,
            )
            .reference("genuine Message DB", median(&reference))
            .lower_is_better(),
        );
    }

    figures
}
