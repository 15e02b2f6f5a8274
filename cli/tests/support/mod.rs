//! What the CLI's end-to-end tests share: a database of their own, and
//! running the binary as a process.

#![allow(dead_code)] // each test binary uses its own part

use std::process::{Command, Output, Stdio};
use std::str::FromStr;

use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{ConnectOptions, Connection, Executor};
use message_store_postgres::{InstallOptions, PostgresStore};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_message-store");

/// A database of this test's, dropped at the end.
pub struct Database {
    admin: PgConnectOptions,
    name: String,
    /// Its URL, as the admin role.
    pub url: String,
}

impl Database {
    /// Creates it (with our schema when `install`); `None` without
    /// `DATABASE_URL`, which fails under `CI=true`.
    pub async fn create(install: bool) -> Option<Database> {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "the CLI tests need DATABASE_URL (CI=true: failing instead of skipping)"
            );
            eprintln!("skipping: set DATABASE_URL to run the CLI tests");
            return None;
        };
        let admin = PgConnectOptions::from_str(&url).expect("DATABASE_URL is a PostgreSQL URL");
        let prefix =
            std::env::var("MESSAGE_STORE_TEST_DB_PREFIX").unwrap_or_else(|_| "ms_test".into());
        let name = format!(
            "{prefix}_cli_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut connection = admin.connect().await.unwrap();
        connection
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        connection.close().await.ok();
        if install {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(admin.clone().database(&name))
                .await
                .unwrap();
            PostgresStore::install(&pool, &InstallOptions::new().with_extras(true))
                .await
                .unwrap();
            pool.close().await;
        }
        let url = format!(
            "postgres://{}@{}:{}/{name}",
            admin.get_username(),
            admin.get_host(),
            admin.get_port()
        );
        Some(Database { admin, name, url })
    }

    /// Installs genuine Message DB with its own script (`MESSAGE_DB_INSTALL`)
    /// and returns the URL of its functions-only `message_store` role.
    pub fn install_genuine(&self) -> Option<String> {
        let Ok(script) = std::env::var("MESSAGE_DB_INSTALL") else {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "MESSAGE_DB_INSTALL is needed under CI=true");
            return None;
        };
        let status = Command::new("bash")
            .arg(script)
            .env("DATABASE_NAME", &self.name)
            .env("CREATE_DATABASE", "off")
            .env("PGHOST", self.admin.get_host())
            .env("PGPORT", self.admin.get_port().to_string())
            .env("PGUSER", self.admin.get_username())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("Message DB's install.sh runs");
        assert!(status.success(), "Message DB's install.sh failed");
        Some(format!(
            "postgres://message_store@{}:{}/{}",
            self.admin.get_host(),
            self.admin.get_port(),
            self.name
        ))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut connection) = admin.connect().await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = connection.execute(drop.as_str()).await;
                }
            });
        })
        .join()
        .ok();
    }
}

pub fn cli(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("message-store runs")
}

pub fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `Deposited {n}` for each `n` in `numbers` to `account-{n % streams}`.
pub async fn deposits(
    store: &message_store_postgres::PostgresStore,
    numbers: std::ops::Range<u64>,
    streams: u64,
) {
    use message_store::{Category, ExpectedVersion, MessageStore, NewMessage};
    let category = Category::new("account").unwrap();
    for n in numbers {
        store
            .write(
                &category.stream(&(n % streams).to_string()).unwrap(),
                vec![NewMessage::new("Deposited", serde_json::json!({ "n": n }))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
}

/// Runs the consumer `balances` of `account` until caught up: `attempts`
/// tries per message, then it parks the messages whose `n` `refuses`.
pub async fn park_refused(
    store: &message_store_postgres::PostgresStore,
    attempts: u32,
    refuses: fn(u64) -> bool,
) -> message_store_consumer::ConsumerHealth {
    use message_store::{Category, Message, SubscribeOptions};
    use message_store_consumer::{
        Consumer, ConsumerOptions, FailurePolicy, HandlerResult, RetryPolicy,
    };
    use std::time::Duration;
    let options = ConsumerOptions::new()
        .with_subscription(SubscribeOptions::new().with_consumer_id("balances"))
        .with_retry(
            RetryPolicy::new()
                .with_max_attempts(attempts)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
        )
        .with_failure_policy(FailurePolicy::Park);
    Consumer::new(Category::new("account").unwrap())
        .with_options(options)
        .on_any(move |message: Message| async move {
            if message.data["n"].as_u64().is_some_and(refuses) {
                return Err(format!("n = {} is refused", message.data["n"]).into());
            }
            HandlerResult::Ok(())
        })
        .run_until_caught_up(store.clone())
        .await
        .unwrap()
}
