//! `message-store trace` end to end, as a process: the causation tree
//! around a message across streams (found by global position or id), a
//! correlation's messages, and metadata of any shape (not an object, a
//! cause that is a string or names the message itself) read without
//! breaking the walk.

mod support;

use message_store::{
    ExpectedVersion, Message, MessageStore, MessageStoreExt, Metadata, NewMessage, StreamName,
};
use message_store_postgres::sqlx::{self, Executor};
use message_store_postgres::PostgresStore;
use serde_json::{json, Value};
use support::{cli, stdout_lines, Database};

async fn write(store: &PostgresStore, stream: &str, message: NewMessage) -> Message {
    let stream = StreamName::new(stream).unwrap();
    store
        .write(&stream, vec![message], ExpectedVersion::Any)
        .await
        .unwrap();
    store.last_message(&stream).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_shows_the_tree_around_a_message_and_a_correlation() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let process = Metadata::new().with_correlation_stream_name("checkout-7");
    // PlaceOrder -> OrderPlaced -> {ReserveStock -> StockReserved, ChargeCard}
    let command = write(
        &store,
        "order:command-7",
        NewMessage::new("PlaceOrder", json!({})).with_metadata(process),
    )
    .await;
    let placed = write(
        &store,
        "order-7",
        NewMessage::new("OrderPlaced", json!({})).following(&command),
    )
    .await;
    let noise = write(&store, "order-8", NewMessage::new("OrderPlaced", json!({}))).await;
    let reserve = write(
        &store,
        "stock:command-7",
        NewMessage::new("ReserveStock", json!({})).following(&placed),
    )
    .await;
    let charge = write(
        &store,
        "payment:command-7",
        NewMessage::new("ChargeCard", json!({})).following(&placed),
    )
    .await;
    let reserved = write(
        &store,
        "stock-7",
        NewMessage::new("StockReserved", json!({})).following(&reserve),
    )
    .await;
    // Metadata other clients may write: not an object, a cause as a
    // string, a cause naming the message itself.
    let admin = message_store_postgres::sqlx::PgPool::connect(&db.url)
        .await
        .unwrap();
    admin
        .execute(
            "SELECT message_store.write_message(gen_random_uuid()::varchar, 'odd-1', 'NotAnObject', '{}', '\"text\"');
             SELECT message_store.write_message(gen_random_uuid()::varchar, 'odd-1', 'StringCause', '{}',
               '{\"causationMessageGlobalPosition\": \"2\", \"correlationStreamName\": \"checkout-7\"}')",
        )
        .await
        .unwrap();
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM message_store.messages")
        .fetch_one(&admin)
        .await
        .unwrap();
    let own = head + 1;
    sqlx::query(
        "SELECT message_store.write_message(gen_random_uuid()::varchar, 'odd-2', 'ItsOwnCause', '{}', $1)",
    )
    .bind(json!({ "causationMessageGlobalPosition": own }))
    .execute(&admin)
    .await
    .unwrap();

    let tree = stdout_lines(&cli(
        &db.url,
        &["trace", &reserve.global_position.to_string()],
    ));
    let g = |m: &Message| m.global_position;
    assert_eq!(
        tree,
        vec![
            format!("PlaceOrder {} order:command-7/0", g(&command)),
            format!("└─ OrderPlaced {} order-7/0", g(&placed)),
            format!(
                "   ├─ ReserveStock {} stock:command-7/0  <- this message",
                g(&reserve)
            ),
            format!("   │  └─ StockReserved {} stock-7/0", g(&reserved)),
            format!("   └─ ChargeCard {} payment:command-7/0", g(&charge)),
        ],
        "a pipe gets no colour"
    );
    assert!(!tree.iter().any(|l| l.contains(&g(&noise).to_string())));

    let by_id = stdout_lines(&cli(&db.url, &["trace", "--json", &charge.id.to_string()]));
    let records: Vec<Value> = by_id
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let depths: Vec<(u64, u64)> = records
        .iter()
        .map(|r| {
            (
                r["global_position"].as_u64().unwrap(),
                r["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        depths,
        vec![
            (g(&command), 0),
            (g(&placed), 1),
            (g(&reserve), 2),
            (g(&reserved), 3),
            (g(&charge), 2)
        ]
    );
    assert_eq!(records[1]["cause"], g(&command));
    assert_eq!(records[1]["correlation"], "checkout-7");
    assert_eq!(records[4]["stream_name"], "payment:command-7");

    // Every message correlated with checkout-7, each under its cause; the
    // string cause is no cause, so that message is a root of its own.
    let correlated = stdout_lines(&cli(&db.url, &["trace", "--correlation", "checkout-7"]));
    assert_eq!(correlated.len(), 6, "{correlated:#?}");
    assert!(correlated[0].starts_with("PlaceOrder "));
    assert!(correlated[5].starts_with("StringCause "), "{correlated:#?}");
    let by_category = stdout_lines(&cli(&db.url, &["trace", "--correlation", "checkout"]));
    assert_eq!(by_category, correlated);

    // Odd metadata: each message is its own one-message tree.
    for name in ["NotAnObject", "ItsOwnCause"] {
        let at: i64 = sqlx::query_scalar(
            "SELECT global_position FROM message_store.messages WHERE type = $1",
        )
        .bind(name)
        .fetch_one(&admin)
        .await
        .unwrap();
        let alone = stdout_lines(&cli(&db.url, &["trace", &at.to_string()]));
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert!(alone[0].starts_with(name), "{alone:?}");
    }
    admin.close().await;

    for (args, says) in [
        (vec!["trace", "999999"], "no message 999999"),
        (vec!["trace", "not-a-message"], "neither a message id"),
        (
            vec!["trace", "--correlation", "nobody-1"],
            "no message is correlated with nobody-1",
        ),
    ] {
        let output = cli(&db.url, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let output = cli(&db.url, &["trace"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a message or --correlation is required"
    );
}
