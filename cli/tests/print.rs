//! `message-store print` end to end, as a process, against a database of
//! its own: a stream, a category (text and JSON, from a position, up to a
//! count), following a category live, and the exit codes of a database
//! that cannot be reached or holds no Message DB.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use message_store::{Category, ExpectedVersion, MessageStore, Metadata, NewMessage};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::{cli, stdout_lines, Database, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_shows_streams_and_categories() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let category = Category::new("account").unwrap();
    let one = category.stream("1").unwrap();
    let correlated = Metadata::new().with_correlation_stream_name("transfer-9");
    for n in 0..3 {
        let message =
            NewMessage::new("Deposited", json!({ "amount": n })).with_metadata(correlated.clone());
        store
            .write(&one, vec![message], ExpectedVersion::Any)
            .await
            .unwrap();
    }
    store
        .write(
            &category.stream("2").unwrap(),
            vec![NewMessage::new("Opened", json!({}))],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();

    let stream = stdout_lines(&cli(&db.url, &["print", "account-1"]));
    assert_eq!(stream.len(), 3, "{stream:?}");
    assert!(
        stream[0].contains("account-1/0  Deposited  {\"amount\":0}"),
        "{}",
        stream[0]
    );
    assert!(
        stream[0].contains("transfer-9"),
        "the metadata is shown: {}",
        stream[0]
    );

    let all = stdout_lines(&cli(&db.url, &["print", "account", "--json"]));
    assert_eq!(all.len(), 4);
    let records: Vec<serde_json::Value> = all
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[3]["stream_name"], "account-2");
    assert_eq!(records[3]["type"], "Opened");
    assert_eq!(
        records[0]["metadata"]["correlationStreamName"],
        "transfer-9"
    );
    let third = records[2]["global_position"].as_u64().unwrap().to_string();

    let later = stdout_lines(&cli(&db.url, &["print", "account", "--from", &third]));
    assert_eq!(later.len(), 2, "{later:?}");
    let one_only = stdout_lines(&cli(&db.url, &["print", "account", "--count", "1"]));
    assert_eq!(one_only.len(), 1);
    let from_stream = stdout_lines(&cli(&db.url, &["print", "account-1", "--from", "2"]));
    assert_eq!(from_stream.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_follow_tails_a_category() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let stream = Category::new("order").unwrap().stream("1").unwrap();
    store
        .write(
            &stream,
            vec![NewMessage::new("Placed", json!({}))],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let follower = Command::new(BIN)
        .args([
            "--url", &db.url, "print", "order", "--follow", "--count", "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for kind in ["Paid", "Shipped"] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store
            .write(
                &stream,
                vec![NewMessage::new(kind, json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let output = tokio::task::spawn_blocking(move || follower.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let lines = stdout_lines(&output);
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(types, ["Placed", "Paid", "Shipped"], "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_serve_is_exit_code_3() {
    let Some(db) = Database::create(false).await else {
        return;
    };
    let missing = cli(&db.url, &["print", "account"]);
    assert_eq!(missing.status.code(), Some(3));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("has no Message DB") && text.contains("install"),
        "{text}"
    );

    let unreachable = cli("postgres://nobody@127.0.0.1:1/none", &["print", "account"]);
    assert_eq!(unreachable.status.code(), Some(3));
    let text = String::from_utf8_lossy(&unreachable.stderr);
    assert!(text.contains("cannot connect"), "{text}");

    let no_url = Command::new(BIN)
        .args(["print", "account"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(no_url.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&no_url.stderr).contains("--url"));

    let usage = cli(&db.url, &["print"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a missing argument is a usage error"
    );
}
