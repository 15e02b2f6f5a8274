//! The database fixture: one uniquely named database per variant and test
//! binary, created on first use. `scripts/test.sh` drops them after the run.
//!
//! Environment:
//! - `DATABASE_URL`: a server connection allowed to create databases
//!   (for example `postgres://postgres@127.0.0.1:5432/postgres`);
//! - `MESSAGE_DB_INSTALL`: the path of genuine Message DB's `database/install.sh`
//!   (`npm pack @eventide/message-db`), for the genuine variant;
//! - `MESSAGE_STORE_TEST_DB_PREFIX`: the prefix of the databases' names.
//!
//! Without them the tests print what to set and pass without running,
//! except under `CI=true`, where that is a failure.

#![allow(dead_code)]

use std::str::FromStr;

use message_store_postgres::sqlx;
use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{ConnectOptions, Connection, Executor};
use message_store_postgres::{InstallOptions, InstallOutcome, PostgresStore};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Which schema a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Installed by `PostgresStore::install` (with the extras and indexes for
    /// consumer groups of 3).
    Ours,
    /// Installed by genuine Message DB's `install.sh`.
    Genuine,
}

static OURS: OnceCell<Option<PgConnectOptions>> = OnceCell::const_new();
static GENUINE: OnceCell<Option<PgConnectOptions>> = OnceCell::const_new();

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn missing(what: &str) -> Option<PgConnectOptions> {
    let text = format!(
        "{what}; the PostgreSQL tests need DATABASE_URL (for example postgres://postgres@127.0.0.1:5432/postgres) \
         and MESSAGE_DB_INSTALL (Message DB's database/install.sh); scripts/test.sh sets both"
    );
    assert!(
        !in_ci(),
        "{text} (CI=true, so this fails instead of skipping)"
    );
    eprintln!("skipping: {text}");
    None
}

/// The admin connection options from `DATABASE_URL`.
pub fn admin_options() -> Option<PgConnectOptions> {
    let url = std::env::var("DATABASE_URL").ok()?;
    Some(PgConnectOptions::from_str(&url).expect("DATABASE_URL is a PostgreSQL URL"))
}

async fn create_database(admin: &PgConnectOptions, variant: &str) -> String {
    let prefix =
        std::env::var("MESSAGE_STORE_TEST_DB_PREFIX").unwrap_or_else(|_| "ms_test".to_owned());
    // Within PostgreSQL's 63 bytes, which it cuts longer names to (and
    // PgBouncer, looking the cut name up, then finds no such database).
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{prefix}_{}_{variant}", &unique[..16]);
    assert!(
        name.len() <= 63,
        "database name {name} is too long for PostgreSQL"
    );
    let mut connection = admin
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting with DATABASE_URL: {e}"));
    connection
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    connection.close().await.ok();
    name
}

async fn prepare(variant: Variant) -> Option<PgConnectOptions> {
    let Some(admin) = admin_options() else {
        return missing("DATABASE_URL is not set");
    };
    match variant {
        Variant::Ours => {
            let name = create_database(&admin, "ours").await;
            let as_admin = admin.clone().database(&name);
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(as_admin)
                .await
                .unwrap();
            // Groups of 3 indexed, other sizes not: the suite covers both reads.
            let options = InstallOptions::new()
                .with_extras(true)
                .with_consumer_group_index(3);
            let outcome = PostgresStore::install(&pool, &options).await.unwrap();
            assert_eq!(outcome, InstallOutcome::Installed);
            pool.close().await;
            Some(admin.database(&name).username("message_store").password(""))
        }
        Variant::Genuine => {
            let Ok(script) = std::env::var("MESSAGE_DB_INSTALL") else {
                return missing("MESSAGE_DB_INSTALL is not set");
            };
            let name = create_database(&admin, "genuine").await;
            let output = tokio::process::Command::new("bash")
                .arg(&script)
                .env("DATABASE_NAME", &name)
                .env("CREATE_DATABASE", "off")
                .env("PGHOST", admin.get_host())
                .env("PGPORT", admin.get_port().to_string())
                .env("PGUSER", admin.get_username())
                .output()
                .await
                .unwrap_or_else(|e| panic!("running {script}: {e}"));
            assert!(
                output.status.success(),
                "Message DB's install.sh failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            Some(admin.database(&name).username("message_store").password(""))
        }
    }
}

/// Connection options for the variant's database, as the `message_store` role.
pub async fn options(variant: Variant) -> Option<PgConnectOptions> {
    let cell = match variant {
        Variant::Ours => &OURS,
        Variant::Genuine => &GENUINE,
    };
    cell.get_or_init(|| prepare(variant)).await.clone()
}

/// A store on the variant's database, with its own small pool.
pub async fn store(variant: Variant) -> Option<PostgresStore> {
    let options = options(variant).await?;
    let store =
        PostgresStore::connect_with(options, PostgresStore::pool_options().max_connections(5))
            .await
            .unwrap_or_else(|e| panic!("connecting to the {variant:?} database: {e}"));
    Some(store)
}

/// A store whose connections carry a unique application name, so a test can
/// kill exactly its connections and no other test's.
pub async fn tagged_store(variant: Variant) -> Option<(PostgresStore, String)> {
    let tag = format!("ms_test_{}", Uuid::new_v4().simple());
    let options = options(variant).await?.application_name(&tag);
    let store =
        PostgresStore::connect_with(options, PostgresStore::pool_options().max_connections(2))
            .await
            .unwrap();
    Some((store, tag))
}

/// Terminates the backends whose application name is `tag` (and whose query matches `query`).
pub async fn kill(tag: &str, query: &str) -> i64 {
    let admin = admin_options().expect("DATABASE_URL");
    let mut connection = admin.connect().await.unwrap();
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE application_name = $1 AND query ILIKE $2 AND pid <> pg_backend_pid()",
    )
    .bind(tag)
    .bind(query)
    .fetch_one(&mut connection)
    .await
    .unwrap()
}

/// True when a session with application name `tag` waits for a lock (an
/// advisory lock: the category lock of Message DB's writes).
pub async fn waits_for_a_lock(tag: &str) -> bool {
    let admin = admin_options().expect("DATABASE_URL");
    let mut connection = admin.connect().await.unwrap();
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE application_name = $1 AND wait_event_type = 'Lock')",
    )
    .bind(tag)
    .fetch_one(&mut connection)
    .await
    .unwrap()
}

/// A write to `stream` cut by the statement timeout: a store whose
/// statements time out after 300 ms writes while [`hold_category_lock`]
/// holds the category. Returns that store, the holder (roll it back to
/// release the lock), and the write's error.
pub async fn timed_out_write(
    options: &PgConnectOptions,
    stream: &message_store::StreamName,
) -> (PostgresStore, sqlx::PgConnection, message_store::Error) {
    use message_store::{ExpectedVersion, MessageStore, NewMessage};
    let impatient = options.clone().options([("statement_timeout", "300")]);
    let store = PostgresStore::connect_with(impatient, PostgresStore::pool_options())
        .await
        .unwrap();
    let holder = hold_category_lock(options, &stream.category()).await;
    let late = vec![NewMessage::new("Late", serde_json::json!({}))];
    let error = store
        .write(stream, late, ExpectedVersion::Any)
        .await
        .unwrap_err();
    (store, holder, error)
}

/// Opens a transaction that writes `Held` to `{category}-held` through plain
/// SQL and stays open: it holds the category's lock, so every other write
/// to the category waits until the returned connection commits or rolls back.
pub async fn hold_category_lock(
    options: &PgConnectOptions,
    category: &message_store::Category,
) -> sqlx::PgConnection {
    let mut holder = options.connect().await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT write_message($1, $2, 'Held', '{}'::jsonb)")
        .bind(Uuid::new_v4().to_string())
        .bind(category.stream("held").unwrap().as_str())
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

/// The text of a `Backend` error's source (panics on any other error).
pub fn backend_source(error: &message_store::Error) -> String {
    match error {
        message_store::Error::Backend { source } => source.to_string(),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Runs `sql` (with `id` bound as `$1`) on the variant's database as the
/// admin role: what an operator repairing a row by hand would do.
pub async fn as_admin(variant: Variant, sql: &str, id: Uuid) {
    let database = options(variant)
        .await
        .expect("the database")
        .get_database()
        .map(str::to_owned);
    let mut admin = admin_options().expect("DATABASE_URL");
    if let Some(database) = database {
        admin = admin.database(&database);
    }
    let mut connection = admin.connect().await.unwrap();
    sqlx::query(sql)
        .bind(id)
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.ok();
}

/// Opens a transaction that writes `Held` to `{category}-held` and stays open,
/// then starts a store write of `Later` to `{category}-3`, which must wait for
/// the category lock. Commit the returned connection to let both through.
pub async fn hold_a_write_open(
    store: &PostgresStore,
    options: &PgConnectOptions,
    category: &message_store::Category,
) -> (
    sqlx::PgConnection,
    tokio::task::JoinHandle<message_store::Result<u64>>,
) {
    let holder = hold_category_lock(options, category).await;
    let later = {
        let store = store.clone();
        let stream = category.stream("3").unwrap();
        tokio::spawn(async move {
            let message = message_store::NewMessage::new("Later", serde_json::json!({}));
            message_store::MessageStore::write(
                &store,
                &stream,
                vec![message],
                message_store::ExpectedVersion::Any,
            )
            .await
        })
    };
    (holder, later)
}
