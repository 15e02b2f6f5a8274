//! `message-store summary` end to end, as a process: counts by stream,
//! type and category from Message DB's views, on our schema and on genuine
//! Message DB as its functions-only role (with `print` and `consumers`
//! there too).

mod support;

use message_store::{ExpectedVersion, MessageStore, NewMessage};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::{cli, stdout_lines, Database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_counts_by_stream_type_and_category() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    for (stream, kind) in [
        ("account-1", "Opened"),
        ("account-1", "Deposited"),
        ("account-2", "Opened"),
        ("order-1", "Placed"),
    ] {
        let stream = message_store::StreamName::new(stream).unwrap();
        store
            .write(
                &stream,
                vec![NewMessage::new(kind, json!({}))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let by_stream = stdout_lines(&cli(&db.url, &["summary", "--by", "stream"]));
    assert_eq!(by_stream[0], "stream_name  messages  percent");
    assert_eq!(
        &by_stream[1..],
        [
            "account-1  2  50.00",
            "account-2  1  25.00",
            "order-1  1  25.00"
        ]
    );
    let by_category = stdout_lines(&cli(&db.url, &["summary", "--json"]));
    let records: Vec<serde_json::Value> = by_category
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        records[1],
        json!({"category": "account", "type": "Opened", "messages": 2, "percent": 50.0})
    );
    let opened = stdout_lines(&cli(
        &db.url,
        &["summary", "--by", "type", "--only", "Opened"],
    ));
    assert_eq!(&opened[1..], ["Opened  2  50.00"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_summary_and_consumers_run_on_genuine_message_db_as_its_role() {
    let Some(db) = Database::create(false).await else {
        return;
    };
    let Some(url) = db.install_genuine() else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let stream = message_store::StreamName::new("account-1").unwrap();
    store
        .write(
            &stream,
            vec![NewMessage::new("Opened", json!({"owner": "Ada"}))],
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();
    let printed = stdout_lines(&cli(&url, &["print", "account"]));
    assert_eq!(printed.len(), 1);
    assert!(
        printed[0].contains("account-1/0  Opened  {\"owner\":\"Ada\"}"),
        "{}",
        printed[0]
    );
    let summary = stdout_lines(&cli(&url, &["summary", "--by", "stream"]));
    assert_eq!(&summary[1..], ["account-1  1  100.00"]);
    let position = message_store::StreamName::new("account:position-x").unwrap();
    let record = message_store::backend::position_record(1);
    store
        .write(&position, vec![record], ExpectedVersion::NoStream)
        .await
        .unwrap();
    let consumers = stdout_lines(&cli(&url, &["consumers"]));
    assert_eq!(consumers.len(), 2, "{consumers:?}");
    assert!(
        consumers[1].starts_with("x  account  1  0  0  "),
        "{}",
        consumers[1]
    );
}
