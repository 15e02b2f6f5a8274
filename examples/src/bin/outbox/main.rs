//! An outbox-style service: placing an order inserts its row and writes
//! its `OrderPlaced` event in one unit of work (both or neither), and an
//! exactly-once consumer ships each placed order: it marks the row shipped
//! and writes `ShipmentRequested` in the message's unit, which also records
//! the consumer's position. A handler that fails once, and a consumer
//! killed in the middle of a handler, still ship each order once.
//!
//! On the memory store by default; on PostgreSQL with `DATABASE_URL` (a
//! database with Message DB, as a role that may create a table in
//! `public`). Each run uses fresh order ids, so it can run again.

mod table;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use message_store::{
    Category, ExpectedVersion, Message, MessageStore, MessageStoreExt, NewMessage, Result,
    StreamName, SubscribeOptions, UnitOfWork, UnitOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult};
use message_store_memory::MemoryStore;
use message_store_postgres::PostgresStore;
use serde_json::json;
use table::{Row, Table};

/// Places an order: its row and its event in one unit. `refuse` makes the
/// command fail after both were written, to show that neither stays.
async fn place(
    store: &dyn MessageStore,
    table: &Table,
    id: &str,
    total: u64,
    refuse: bool,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut unit = store.begin(UnitOptions::new()).await?;
    table.insert(unit.unit(), id, total).await?;
    let placed = NewMessage::new("OrderPlaced", json!({ "id": id, "total": total }));
    unit.write(&order_stream(id)?, vec![placed], ExpectedVersion::NoStream)
        .await?;
    if refuse {
        // Dropping the unit rolls the row and the event back.
        return Err(format!("order {id} refused after its row and event were written").into());
    }
    Ok(unit.commit().await?)
}

fn order_stream(id: &str) -> Result<StreamName> {
    StreamName::new(format!("order-{id}"))
}

/// The shipping consumer: marks the row shipped and requests the shipment
/// in the message's unit. Its handler fails the first time it sees `fail`,
/// and never finishes the first time it sees `halt` (the process is then
/// killed).
fn shipping(table: Arc<Table>, attempts: Arc<AtomicU32>, fail: String, halt: String) -> Consumer {
    let options = ConsumerOptions::new().with_subscription(
        SubscribeOptions::new()
            .with_consumer_id("shipping")
            .with_poll_interval(std::time::Duration::from_millis(20)),
    );
    Consumer::new(Category::new("order").expect("a valid category"))
        .with_options(options.with_standby(false))
        .on_any_in_unit(move |message: Message, unit: &mut dyn UnitOfWork| {
            let (table, attempts) = (table.clone(), attempts.clone());
            let (fail, halt) = (fail.clone(), halt.clone());
            Box::pin(async move {
                let id = message.data["id"].as_str().unwrap_or_default().to_owned();
                table.mark_shipped(unit, &id).await?;
                let request = NewMessage::new("ShipmentRequested", json!({ "order": id }));
                unit.write(
                    &StreamName::new(format!("shipment-{id}"))?,
                    vec![request],
                    ExpectedVersion::Any,
                )
                .await?;
                let attempt = attempts.fetch_add(1, Ordering::SeqCst);
                if id == fail && attempt == 0 {
                    return Err("the carrier's API timed out".into());
                }
                if id == halt && attempts.load(Ordering::SeqCst) <= 3 {
                    std::future::pending::<()>().await; // killed here
                }
                HandlerResult::Ok(())
            })
        })
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (store, pg): (Arc<dyn MessageStore>, Option<PostgresStore>) =
        match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let pg = PostgresStore::connect(&url).await?;
                println!("On PostgreSQL: {pg}");
                (Arc::new(pg.clone()), Some(pg))
            }
            Err(_) => {
                println!("On the memory store (set DATABASE_URL for PostgreSQL)");
                (Arc::new(MemoryStore::new()), None)
            }
        };
    let table = Arc::new(match &pg {
        Some(pg) => Table::create(pg).await?,
        None => Table::Memory,
    });
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let ids: Vec<String> = (1..=3).map(|n| format!("{run}x{n}")).collect();

    for (n, id) in ids.iter().enumerate() {
        place(store.as_ref(), &table, id, 10 * (n as u64 + 1), false).await?;
    }
    let refused = format!("{run}x9");
    let outcome = place(store.as_ref(), &table, &refused, 99, true).await;
    println!(
        "placed {} orders; a refused one: {}",
        ids.len(),
        outcome.unwrap_err()
    );
    assert_eq!(
        table.row(store.as_ref(), pg.as_ref(), &refused).await?,
        None
    );
    assert_eq!(store.stream_version(&order_stream(&refused)?).await?, None);
    println!("  the refused order left no row and no event");

    let attempts = Arc::new(AtomicU32::new(0));
    let consumer = || {
        shipping(
            table.clone(),
            attempts.clone(),
            ids[0].clone(),
            ids[1].clone(),
        )
    };
    let first = consumer().start(store.clone()).await?;
    while attempts.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    first.abort(); // killed in the middle of shipping the second order
    println!("the shipping consumer was killed in the middle of a handler");
    let second = consumer().start(store.clone()).await?;
    let finished = ids.last().expect("orders").clone();
    loop {
        let row = table.row(store.as_ref(), pg.as_ref(), &finished).await?;
        if row.is_some_and(|row| row.shipped) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    second.shutdown().await?;

    for (n, id) in ids.iter().enumerate() {
        let row = table.row(store.as_ref(), pg.as_ref(), id).await?;
        let requests = store
            .read_stream_to_end(format!("shipment-{id}"))
            .await?
            .len();
        println!("  order {id}: {row:?}, {requests} shipment request(s)");
        assert_eq!(
            row,
            Some(Row {
                total: 10 * (n as u64 + 1),
                shipped: true
            })
        );
        assert_eq!(requests, 1, "order {id} shipped once");
    }
    println!(
        "{} handler runs for {} orders: each shipped exactly once",
        attempts.load(Ordering::SeqCst),
        ids.len()
    );
    Ok(())
}
