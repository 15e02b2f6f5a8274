//! Failures a caller can act on: connecting (the cause, within the connect
//! timeout), a server that is not there or never answers, a write whose
//! reply is lost (outcome unknown, then resent), and failures that pass.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use message_store::{Category, Error, ErrorKind, ExpectedVersion, MessageStore, NewMessage};
use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{self, ConnectOptions, Connection, Executor};
use message_store_postgres::{PostgresStore, DEFAULT_CONNECT_TIMEOUT};
use serde_json::json;
use support::Variant;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

fn on_port(port: u16) -> PgConnectOptions {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("nobody")
        .database("nothing")
}

/// A closed port fails at once with the cause (connection refused), as a
/// failure that passes.
#[tokio::test]
async fn connecting_to_a_closed_port_says_connection_refused() {
    if support::admin_options().is_none() {
        return;
    }
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let url = format!("postgres://nobody@127.0.0.1:{port}/nothing");
    let error = PostgresStore::connect(&url).await.unwrap_err();
    let elapsed = started.elapsed();
    println!("refused port: failed in {elapsed:?}: {error}");
    assert!(error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("refused") && text.contains(&format!("127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        elapsed < DEFAULT_CONNECT_TIMEOUT,
        "failed at once, not after a timeout"
    );
}

/// A server that accepts connections and never answers fails within the
/// connect timeout (the pool's acquire timeout, here 1 s; by default
/// [`DEFAULT_CONNECT_TIMEOUT`]), saying it did not answer.
#[tokio::test]
async fn connecting_to_a_server_that_never_answers_times_out() {
    if support::admin_options().is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, never answered
        }
    });
    let pool = PostgresStore::pool_options().acquire_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let error = PostgresStore::connect_with(on_port(port), pool)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    println!("silent server, 1 s timeout: failed in {elapsed:?}: {error}");
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("no answer within 1s"), "{error}");
    assert!(elapsed >= Duration::from_secs(1));

    let started = Instant::now();
    let error = PostgresStore::connect(&format!("postgres://nobody@127.0.0.1:{port}/nothing"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    println!("silent server, default timeout: failed in {elapsed:?}");
    assert!(error.to_string().contains("no answer within 5s"), "{error}");
    assert!(elapsed >= DEFAULT_CONNECT_TIMEOUT);
    silent.abort();
}

/// Wrong credentials, a missing database, no Message DB or a too-old one:
/// each a clear error naming the problem, none of them transient.
#[tokio::test]
async fn connection_failures_name_the_problem() {
    let Some(admin) = support::admin_options() else {
        return;
    };
    let no_database = PostgresStore::connect_with(
        admin
            .clone()
            .database(&format!("missing_{}", Uuid::new_v4().simple())),
        PostgresStore::pool_options(),
    )
    .await
    .unwrap_err();
    assert!(!no_database.is_transient());
    assert!(
        no_database.to_string().contains("does not exist"),
        "{no_database}"
    );

    // A database without Message DB.
    let prefix =
        std::env::var("MESSAGE_STORE_TEST_DB_PREFIX").unwrap_or_else(|_| "ms_test".to_owned());
    let empty = format!("{prefix}_{}_empty", Uuid::new_v4().simple());
    admin
        .connect()
        .await
        .unwrap()
        .execute(format!("CREATE DATABASE \"{empty}\"").as_str())
        .await
        .unwrap();
    let error = PostgresStore::connect_with(admin.clone().database(&empty), PgPoolOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Backend);
    assert!(error.to_string().contains("has no Message DB"), "{error}");

    // A too-old Message DB.
    let pool = PgPoolOptions::new()
        .connect_with(admin.clone().database(&empty))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA message_store;
         CREATE FUNCTION message_store.message_store_version() RETURNS varchar LANGUAGE sql AS $$ SELECT '1.2.4'::varchar $$;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let error = PostgresStore::from_pool(pool).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("1.2.4") && text.contains("1.3.0"), "{text}");
}

/// A TCP relay to the server whose connections can all be cut at once, as
/// a network failure would.
struct Relay {
    port: u16,
    cut: watch::Sender<bool>,
}

impl Relay {
    async fn start(server: (String, u16)) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(false);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                let server = server.clone();
                tokio::spawn(async move {
                    let mut upstream = TcpStream::connect(server).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = async { cut.wait_for(|cut| *cut).await.is_ok() } => {
                            client.shutdown().await.ok();
                        }
                    }
                });
            }
        });
        Relay { port, cut }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// A write sent while another transaction holds the category's lock, whose
/// connection is then cut: the caller gets `OutcomeUnknown` (transient).
/// The server still commits it once the lock is free, and resending the
/// same messages then fails with `DuplicateMessageId`: it had landed, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_write_reply_is_outcome_unknown_and_a_resend_finds_it() {
    for variant in VARIANTS {
        let Some(options) = support::options(variant).await else {
            return;
        };
        let relay = Relay::start((options.get_host().to_owned(), options.get_port())).await;
        let tag = format!("ms_test_{}", Uuid::new_v4().simple());
        let relayed = options
            .clone()
            .host("127.0.0.1")
            .port(relay.port)
            .application_name(&tag);
        let store = Arc::new(
            PostgresStore::connect_with(relayed, PostgresStore::pool_options().max_connections(1))
                .await
                .unwrap(),
        );
        let category = unique_category("lost");
        let mut holder = support::hold_category_lock(&options, &category).await;

        let stream = category.stream("2").unwrap();
        let message = NewMessage::new("Lost", json!({ "n": 1 }));
        let write = {
            let (store, stream, message) = (store.clone(), stream.clone(), message.clone());
            tokio::spawn(async move {
                store
                    .write(&stream, vec![message], ExpectedVersion::Any)
                    .await
            })
        };
        // The write waits for the category lock; then the network fails.
        for _ in 0..2000 {
            if write.is_finished() || support::waits_for_a_lock(&tag).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!write.is_finished(), "{variant:?}: {:?}", write.await);
        relay.cut();
        let error = write.await.unwrap().unwrap_err();
        assert!(
            matches!(&error, Error::OutcomeUnknown { stream: s, .. } if s == stream.as_str()),
            "{variant:?}: {error:?}"
        );
        assert!(error.is_transient() && error.is_outcome_unknown());

        holder.execute("COMMIT").await.unwrap();
        let direct = PostgresStore::connect_with(options.clone(), PostgresStore::pool_options())
            .await
            .unwrap();
        let mut landed = false;
        for _ in 0..1000 {
            if direct.stream_version(&stream).await.unwrap() == Some(0) {
                landed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            landed,
            "{variant:?}: the server committed the write once the lock was free"
        );
        let resent = direct
            .write(&stream, vec![message.clone()], ExpectedVersion::Any)
            .await
            .unwrap_err();
        assert!(
            matches!(resent, Error::DuplicateMessageId { id } if id == message.id),
            "{variant:?}: {resent:?}"
        );
        assert_eq!(direct.stream_version(&stream).await.unwrap(), Some(0));
        holder.close().await.ok();
    }
}

/// A write the server gives up on (here its statement timeout passes while
/// another transaction holds the category's lock) is `Transient`, and
/// nothing was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_is_transient_and_writes_nothing() {
    for variant in VARIANTS {
        let Some(options) = support::options(variant).await else {
            return;
        };
        let stream = unique_category("timeout").stream("2").unwrap();
        let (store, mut holder, error) = support::timed_out_write(&options, &stream).await;
        assert_eq!(error.kind(), ErrorKind::Transient, "{variant:?}: {error:?}");
        assert!(error.is_transient() && !error.is_outcome_unknown());
        holder.execute("ROLLBACK").await.unwrap();
        assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    }
}
