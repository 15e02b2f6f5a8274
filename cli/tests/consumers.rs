//! `message-store consumers` end to end, as a process: a consumer found
//! through its position stream, with its position, lag, parked messages
//! and last update, as a table and as JSON, also for a category with a
//! type (its position stream is `{category}+position-{id}`).

mod support;

use message_store::{
    Category, ExpectedVersion, Message, MessageStore, NewMessage, SubscribeOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::{cli, deposits, park_refused, stdout_lines, Database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_lists_position_lag_and_parked() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let category = Category::new("account").unwrap();
    deposits(&store, 0..10, 3).await;
    let health = park_refused(&store, 1, |n| n == 4).await;
    assert_eq!(health.parked, 1);
    let recorded = health.committed.expect("a recorded position");
    for n in 10..13u64 {
        let stream = category.stream("9").unwrap();
        store
            .write(
                &stream,
                vec![NewMessage::new("Deposited", json!({ "n": n }))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }

    let table = stdout_lines(&cli(&db.url, &["consumers"]));
    assert_eq!(
        table[0],
        "consumer  category  position  lag  parked  updated"
    );
    assert_eq!(table.len(), 2, "{table:?}");
    assert!(
        table[1].starts_with(&format!("balances  account  {recorded}  3  1  ")),
        "{}",
        table[1]
    );
    let json_lines = stdout_lines(&cli(
        &db.url,
        &["consumers", "--json", "--category", "account"],
    ));
    let record: serde_json::Value = serde_json::from_str(&json_lines[0]).unwrap();
    assert_eq!(record["consumer"], "balances");
    assert_eq!(record["position"], recorded);
    assert_eq!(record["lag"], 3);
    assert_eq!(record["parked"], 1);
    assert!(record["updated"].as_str().is_some_and(|t| t.contains('T')));
    let none = stdout_lines(&cli(&db.url, &["consumers", "--category", "order"]));
    assert_eq!(
        none.len(),
        1,
        "only the header for a category without consumers"
    );

    // A category with a type (`account:command`) records its positions
    // in `account:command+position-{id}`, as Eventide names it.
    let commands = Category::new("account:command").unwrap();
    store
        .write(
            &commands.stream("1").unwrap(),
            vec![NewMessage::new("Deposit", json!({}))],
            ExpectedVersion::Any,
        )
        .await
        .unwrap();
    let handled = Consumer::new(commands.clone())
        .with_options(
            ConsumerOptions::new()
                .with_subscription(SubscribeOptions::new().with_consumer_id("handler")),
        )
        .on_any(|_: Message| async { HandlerResult::Ok(()) })
        .run_until_caught_up(store.clone())
        .await
        .unwrap();
    let typed = stdout_lines(&cli(
        &db.url,
        &["consumers", "--category", "account:command"],
    ));
    assert_eq!(typed.len(), 2, "{typed:?}");
    assert!(
        typed[1].starts_with(&format!(
            "handler  account:command  {}  0  0  ",
            handled.committed.unwrap()
        )),
        "{}",
        typed[1]
    );
    let all = stdout_lines(&cli(&db.url, &["consumers"]));
    assert_eq!(all.len(), 3, "both consumers: {all:?}");
}
