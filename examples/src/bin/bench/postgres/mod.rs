//! The PostgreSQL figures, each next to its ceiling (pgbench on the same
//! database) or its genuine Message DB reference, measured back to back:
//! the databases here, the workloads in `writes`, `reads`, `consumers`,
//! `fleet`, `units` and `idle`.

mod consumers;
mod fleet;
mod idle;
mod reads;
mod units;
mod writes;

use message_store::{Category, StreamName};
use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{self, ConnectOptions, Executor};
use message_store_postgres::{InstallOptions, PostgresStore};

use crate::report::Figure;

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
        let options = InstallOptions::new()
            .with_extras(true)
            .with_consumer_group_index(4);
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
    /// then 100k in `benchConsumer` and 200k newer ones in ten other categories;
    /// then vacuumed, analyzed and checkpointed.
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
             FROM generate_series(0, 199999) g;",
            last = category_size - 1
        );
        sqlx::raw_sql(&sql)
            .execute(&mut connection)
            .await
            .expect("load benchmark data");
        // What autovacuum would do to the loaded table soon after (its pass
        // for inserts, hint bits, a checkpoint of the load's pages) is done
        // now, not under the measurements.
        for settle in ["VACUUM ANALYZE message_store.messages", "CHECKPOINT"] {
            connection
                .execute(settle)
                .await
                .expect("settle the loaded table");
        }
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

    /// Switches our schema's notify trigger on or off.
    pub async fn notify_trigger(&self, on: bool) {
        let mut connection = self
            .admin
            .clone()
            .database(&self.ours)
            .connect()
            .await
            .unwrap();
        let action = if on { "ENABLE" } else { "DISABLE" };
        connection
            .execute(
                format!("ALTER TABLE message_store.messages {action} TRIGGER message_store_notify")
                    .as_str(),
            )
            .await
            .expect("switch the notify trigger");
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

/// Runs the PostgreSQL workloads of the groups `wanted` accepts (writes,
/// reads, consumers).
pub async fn run(
    databases: &Databases,
    runs: usize,
    scale: u64,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Figure> {
    let ours = databases.store(&databases.ours).await;
    let genuine = databases.store(&databases.genuine).await;
    let url = databases.url(&databases.ours);
    let mut figures = Vec::new();
    if wanted("backends") {
        figures.extend(crate::backends::run(runs, scale, Some(&ours)).await);
    }
    if wanted("writes") {
        figures.extend(writes::run(databases, &ours, &url, runs).await);
    }
    if wanted("reads") {
        figures.extend(reads::run(databases, &ours, &genuine, &url, runs, scale).await);
    }
    if wanted("consumers") {
        figures.extend(consumers::run(&ours, &genuine, runs).await);
    }
    if wanted("fleet") {
        figures.extend(fleet::run(&ours, runs).await);
    }
    if wanted("units") {
        figures.extend(units::run(&ours, runs).await);
    }
    if wanted("idle") {
        figures.extend(idle::run(databases, &ours, &genuine).await);
    }
    figures
}

pub(super) fn category_of(name: &str) -> Category {
    Category::new(name).unwrap()
}

pub(super) fn stream(name: String) -> StreamName {
    StreamName::new(name).unwrap()
}
