//! The PostgreSQL figures, each next to its ceiling (pgbench on the same
//! database) or its genuine Message DB reference, measured back to back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::TryStreamExt;
use message_store::consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store::{
    BatchSize, Category, CategoryRead, ConsumerGroup, ExpectedVersion, Message, MessageStore,
    StartPosition, StreamName, StreamRead, SubscribeOptions,
};
use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{self, ConnectOptions, Executor};
use message_store_postgres::{InstallOptions, PostgresStore};
use uuid::Uuid;

use crate::pgbench;
use crate::report::{median, quantile, rate, Figure};
use crate::workload::{large_message, message};

/// The two databases of one benchmark run.
pub struct Databases {
    pub admin: PgConnectOptions,
    pub ours: String,
    pub genuine: String,
}

impl Databases {
    /// Creates `{prefix}_ours` (our installer, with extras) and
    /// `{prefix}_genuine` (Message DB's install.sh), and loads both.
    pub async fn create(admin: PgConnectOptions, install_script: &str, scale: u64) -> Databases {
        let prefix = format!("ms_bench_{}", std::process::id());
        let (ours, genuine) = (format!("{prefix}_ours"), format!("{prefix}_genuine"));
        let mut connection = admin.connect().await.expect("connect with --admin-url");
        for name in [&ours, &genuine] {
            connection
                .execute(format!("CREATE DATABASE \"{name}\"").as_str())
                .await
                .expect("create database");
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(admin.clone().database(&ours))
            .await
            .unwrap();
        let options = InstallOptions::new().extras(true).consumer_group_index(4);
        PostgresStore::install(&pool, &options)
            .await
            .expect("install ours");
        pool.close().await;
        let status = std::process::Command::new("bash")
            .arg(install_script)
            .env("DATABASE_NAME", &genuine)
            .env("CREATE_DATABASE", "off")
            .env("PGHOST", admin.get_host())
            .env("PGPORT", admin.get_port().to_string())
            .env("PGUSER", admin.get_username())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run Message DB's install.sh");
        assert!(status.success(), "Message DB's install.sh failed");
        let databases = Databases {
            admin,
            ours,
            genuine,
        };
        for name in [&databases.ours, &databases.genuine] {
            databases.load(name, scale).await;
        }
        databases
    }

    /// 1M messages in `benchCat` (10,000 streams, 10% correlated with `corrA`),
    /// then 100k in `benchConsumer` and 200k newer ones in ten other categories.
    async fn load(&self, database: &str, scale: u64) {
        let category_size = 1_000_000 * scale;
        let mut connection = self
            .admin
            .clone()
            .database(database)
            .connect()
            .await
            .unwrap();
        let sql = format!(
            "INSERT INTO message_store.messages (stream_name, position, type, data, metadata)
             SELECT 'benchCat-' || (g % 10000), g / 10000, 'SomeType', '{{\"attribute\": \"some value\"}}',
                    CASE WHEN g % 10 = 0 THEN '{{\"correlationStreamName\": \"corrA-1\"}}'
                         ELSE '{{\"correlationStreamName\": \"someCorrelation-123\"}}' END::jsonb
             FROM generate_series(0, {last}) g;
             INSERT INTO message_store.messages (stream_name, position, type, data, metadata)
             SELECT 'benchConsumer-' || (g % 1000), g / 1000, 'SomeType', '{{\"attribute\": \"some value\"}}',
                    '{{\"correlationStreamName\": \"someCorrelation-123\"}}'
             FROM generate_series(0, 99999) g;
             INSERT INTO message_store.messages (stream_name, position, type, data, metadata)
             SELECT 'benchOther' || (g % 10) || '-' || (g % 1000), g / 1000, 'SomeType', '{{\"attribute\": \"some value\"}}', NULL
             FROM generate_series(0, 199999) g;
             ANALYZE message_store.messages;",
            last = category_size - 1
        );
        sqlx::raw_sql(&sql)
            .execute(&mut connection)
            .await
            .expect("load benchmark data");
    }

    fn role_options(&self, database: &str) -> PgConnectOptions {
        self.admin
            .clone()
            .database(database)
            .username("message_store")
            .password("")
    }

    /// The libpq URL pgbench connects with (as the `message_store` role).
    fn url(&self, database: &str) -> String {
        format!(
            "postgresql://message_store@{}:{}/{database}",
            self.admin.get_host(),
            self.admin.get_port()
        )
    }

    async fn store(&self, database: &str) -> PostgresStore {
        PostgresStore::connect_with(
            self.role_options(database),
            PgPoolOptions::new().max_connections(10),
        )
        .await
        .expect("connect as message_store")
    }

    /// Drops both databases.
    pub async fn drop(self) {
        let mut connection = self.admin.connect().await.unwrap();
        for name in [&self.ours, &self.genuine] {
            let _ = connection
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
}

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

fn stream(name: String) -> StreamName {
    StreamName::new(name).unwrap()
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

/// Runs every PostgreSQL workload.
pub async fn run(databases: &Databases, runs: usize, scale: u64) -> Vec<Figure> {
    let ours = databases.store(&databases.ours).await;
    let genuine = databases.store(&databases.genuine).await;
    let url = databases.url(&databases.ours);
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
            mine.push(write_singles(&ours, w.writers, w.per_writer, w.large, name).await);
            let data = if w.large {
                large_data.as_str()
            } else {
                pgbench::data()
            };
            let per_client = u32::try_from(w.per_writer).unwrap();
            let script = pgbench::write_script(w.pgbench_stream, data);
            ceiling.push(pgbench::tps(
                &url,
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

    // Batches of 100 in one write.
    let (mut mine, mut ceiling) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        for i in 0..100 {
            let batch = (0..100).map(|_| message()).collect();
            ours.write(
                &stream(format!("benchB-{}", Uuid::new_v4().simple())),
                batch,
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
            let _ = i;
        }
        mine.push(rate(100 * 100, start.elapsed()));
        ceiling.push(100.0 * pgbench::tps(&url, &pgbench::batch_script(), 1, 100, &[]));
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

    // Category catch-up with decoding.
    let category = Category::new("benchCat").unwrap();
    let total = 1_000_000 * scale;
    let (mut mine, mut ceiling) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // Through the paged stream, which asks for the next page while this one is decoded.
        let start = Instant::now();
        let options = CategoryRead::new().batch_size(BatchSize::Limit(1000));
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
                    &url,
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
        reads.push(pgbench::tps(&url, stream_sql, 1, 200, &[]));
        let last_sql = "SELECT * FROM message_store.get_last_stream_message('benchS-1');\n";
        last.push(pgbench::tps(&url, last_sql, 1, 2000, &[]));
        let version_sql = "SELECT message_store.stream_version('benchS-1');\n";
        versions.push(pgbench::tps(&url, version_sql, 1, 2000, &[]));
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
            ours.last_message(&read_stream, None)
                .await
                .unwrap()
                .unwrap();
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
                    CategoryRead::new().from_position(head + 1),
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
                    options.clone().from_position(from),
                )
                .await
                .unwrap();
            assert!(!page.is_empty());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        median(&times)
    };
    let group = CategoryRead::new().consumer_group(ConsumerGroup::new(1, 4).unwrap());
    let correlated = CategoryRead::new().correlation("corrA").unwrap();
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
            mine.push(1000.0 / pgbench::tps(&url, &script, 1, 100, &[]));
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

    // Consumer catch-up over 100k messages, recording its position every 100.
    let mut mine = Vec::new();
    for _ in 0..runs {
        mine.push(consumer_catch_up(ours.clone()).await);
    }
    figures.push(Figure::new(
        "consumer catch-up, 100k msgs, position every 100",
        "postgres ours",
        "msg/s",
        mine,
    ));
    figures
}

fn category_of(name: &str) -> Category {
    Category::new(name).unwrap()
}

async fn subscription_latency(store: PostgresStore, poll_ms: u64) -> Vec<f64> {
    let category = Category::new(format!("benchLatency{}", Uuid::new_v4().simple())).unwrap();
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let consumer = {
        let (sent, latencies) = (sent.clone(), latencies.clone());
        Consumer::new(category.clone())
            .with_options(
                ConsumerOptions::new().subscription(
                    SubscribeOptions::new()
                        .consumer_id("latency")
                        .unwrap()
                        .start(StartPosition::Beginning)
                        .poll_interval(Duration::from_millis(poll_ms))
                        .unwrap(),
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
                ConsumerOptions::new().subscription(
                    SubscribeOptions::new()
                        .consumer_id(format!("catchup{}", Uuid::new_v4().simple()))
                        .unwrap()
                        .start(StartPosition::Beginning),
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
