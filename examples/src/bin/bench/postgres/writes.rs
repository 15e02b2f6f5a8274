//! Write figures: single writes against pgbench, batches of 100 (with and
//! without the notify trigger).

use super::*;
use std::time::Instant;

use futures::future::join_all;
use message_store::{ExpectedVersion, MessageStore, StreamName};
use message_store_postgres::PostgresStore;
use uuid::Uuid;

use crate::pgbench;
use crate::report::{median, rate, Figure};
use crate::workload::{large_message, message};

/// A single-message write workload and its pgbench twin.
struct WriteWorkload {
    name: &'static str,
    writers: u64,
    per_writer: u64,
    large: bool,
    /// Names the stream of writer `w`'s `i`-th write.
    stream: fn(u64, u64) -> String,
    /// The same streams as a pgbench SQL expression.
    pgbench_stream: &'static str,
    target: &'static str,
}

/// Single-message writes from `writers` tasks, `per_writer` each; `name(writer, i)` names the stream.
async fn write_singles(
    store: &PostgresStore,
    writers: u64,
    per_writer: u64,
    large: bool,
    name: impl Fn(u64, u64) -> String,
) -> f64 {
    let start = Instant::now();
    join_all((0..writers).map(|w| {
        let streams: Vec<StreamName> = (0..per_writer).map(|i| stream(name(w, i))).collect();
        async move {
            for s in streams {
                let m = if large { large_message() } else { message() };
                store
                    .write(&s, vec![m], ExpectedVersion::Any)
                    .await
                    .unwrap();
            }
        }
    }))
    .await;
    rate(writers * per_writer, start.elapsed())
}

/// 100 writes of 100 messages, each to a new stream: messages per second.
async fn batches_of_100(store: &PostgresStore) -> f64 {
    let start = Instant::now();
    for _ in 0..100 {
        let batch = (0..100).map(|_| message()).collect();
        let name = stream(format!("benchB-{}", Uuid::new_v4().simple()));
        store
            .write(&name, batch, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    rate(100 * 100, start.elapsed())
}

/// The write figures.
pub(super) async fn run(
    databases: &Databases,
    ours: &PostgresStore,
    url: &str,
    runs: usize,
) -> Vec<Figure> {
    let mut figures = Vec::new();
    // Writes, each run back to back with its pgbench twin.
    let large_data = format!("'{{\"attribute\": \"{}\"}}'::jsonb", "x".repeat(1000));
    let write_workloads = [
        WriteWorkload {
            name: "single writes, 1 writer, one stream",
            writers: 1,
            per_writer: 2000,
            large: false,
            stream: |_, _| "benchW1-0".to_owned(),
            pgbench_stream: "'pgbenchW1-' || :run",
            target: ">= 0.95x",
        },
        WriteWorkload {
            name: "single writes, 1 writer, 1000 streams of one category",
            writers: 1,
            per_writer: 2000,
            large: false,
            stream: |_, i| format!("benchW2-{}", i % 1000),
            pgbench_stream: "'pgbenchW2-' || :id",
            target: ">= 0.95x",
        },
        WriteWorkload {
            name: "single writes, 8 writers, a category each",
            writers: 8,
            per_writer: 500,
            large: false,
            stream: |w, i| format!("benchW3c{w}-{}", i % 100),
            pgbench_stream: "'pgbenchW3c' || :client_id || '-' || :id",
            target: ">= 0.95x",
        },
        WriteWorkload {
            name: "single writes, 8 writers, one category (group commit)",
            writers: 8,
            per_writer: 1000,
            large: false,
            stream: |w, i| format!("benchW4-{w}x{}", i % 100),
            pgbench_stream: "'pgbenchW4-' || :client_id || 'x' || :id",
            target: ">= 3x",
        },
        WriteWorkload {
            name: "single writes, 64 writers, one category (group commit)",
            writers: 64,
            per_writer: 250,
            large: false,
            stream: |w, i| format!("benchW6-{w}x{}", i % 100),
            pgbench_stream: "'pgbenchW6-' || :client_id || 'x' || :id",
            target: "",
        },
        WriteWorkload {
            name: "single writes 1 KiB, 1 writer, 1000 streams",
            writers: 1,
            per_writer: 2000,
            large: true,
            stream: |_, i| format!("benchW5-{}", i % 1000),
            pgbench_stream: "'pgbenchW5-' || :id",
            target: "",
        },
    ];
    for w in write_workloads {
        let (mut mine, mut ceiling) = (Vec::new(), Vec::new());
        let clients = u32::try_from(w.writers).unwrap();
        for run in 0..runs {
            // A fresh set of streams per run, so versions do not carry over.
            let tag = format!("r{}", &Uuid::new_v4().simple().to_string()[..6]);
            let name = |writer, i| (w.stream)(writer, i).replacen('-', &format!("{tag}-"), 1);
            mine.push(write_singles(ours, w.writers, w.per_writer, w.large, name).await);
            let data = if w.large {
                large_data.as_str()
            } else {
                pgbench::data()
            };
            let per_client = u32::try_from(w.per_writer).unwrap();
            let script = pgbench::write_script(w.pgbench_stream, data);
            ceiling.push(pgbench::tps(
                url,
                &script,
                clients,
                per_client,
                &[("run", format!("{run}{tag}"))],
            ));
        }
        figures.push(
            Figure::new(w.name, "postgres", "msg/s", mine)
                .reference("pgbench", median(&ceiling))
                .target(w.target),
        );
    }

    // A lone writer with group commit on and off, in turns: coalescing
    // must not tax it.
    let alone = ours.clone().with_group_commit(false);
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let tag = Uuid::new_v4().simple().to_string();
        let name = |_, i| format!("benchW7{}-{}", &tag[..6], i % 1000);
        for grouped in [run % 2 == 0, run % 2 == 1] {
            let store = if grouped { ours } else { &alone };
            let figure = write_singles(store, 1, 2000, false, name).await;
            if grouped {
                on.push(figure)
            } else {
                off.push(figure)
            }
        }
    }
    figures.push(
        Figure::new(
            "single writes, 1 writer, group commit on",
            "postgres",
            "msg/s",
            on,
        )
        .reference("group commit off", median(&off))
        .target(">= 0.95x"),
    );

    // Batches of 100 in one write.
    let (mut mine, mut ceiling) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        mine.push(batches_of_100(ours).await);
        ceiling.push(100.0 * pgbench::tps(url, &pgbench::batch_script(), 1, 100, &[]));
    }
    figures.push(
        Figure::new(
            "batch of 100 in one write, 1 writer",
            "postgres",
            "msg/s",
            mine,
        )
        .reference("pgbench one statement", median(&ceiling))
        .target(">= 0.9x"),
    );

    // The same with our schema's notify trigger switched off, in turns.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for trigger in [run % 2 == 0, run % 2 == 1] {
            databases.notify_trigger(trigger).await;
            let figure = batches_of_100(ours).await;
            if trigger {
                with.push(figure)
            } else {
                without.push(figure)
            }
        }
    }
    databases.notify_trigger(true).await;
    figures.push(
        Figure::new(
            "batch of 100 in one write, 1 writer, notify trigger on",
            "postgres ours",
            "msg/s",
            with,
        )
        .reference("trigger off", median(&without))
        .target(">= 0.9x"),
    );

    figures
}
