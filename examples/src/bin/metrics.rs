//! The store's and the consumer runtime's metrics in Prometheus text on a
//! local port, through `metrics-exporter-prometheus`.
//!
//! `cargo run -p message-store-examples --bin metrics` installs the
//! exporter's recorder with its HTTP listener on 127.0.0.1:9464, turns the
//! store's reporting on, writes 100 messages to the memory store (10 of
//! them in a unit of work), handles them with a consumer whose handler
//! fails once, and prints its own scrape of `/metrics`. `--port N` picks
//! the port; `--serve` keeps serving until Ctrl-C, for a Prometheus to
//! scrape.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use message_store::backend::meter;
use message_store::{
    Category, ExpectedVersion, Message, MessageStore, NewMessage, SubscribeOptions, UnitOptions,
};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult, RetryPolicy};
use message_store_memory::MemoryStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The port to serve /metrics on, at 127.0.0.1.
    #[arg(long, default_value_t = 9464)]
    port: u16,
    /// Keep serving after the demo, until Ctrl-C.
    #[arg(long)]
    serve: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    PrometheusBuilder::new()
        .with_http_listener(address)
        .install()?;
    meter::enable();

    let store = MemoryStore::new();
    let category = Category::new("account")?;
    for n in 0..90u64 {
        let stream = category.stream(&(n % 10).to_string())?;
        let deposit = NewMessage::new("Deposited", json!({ "amount": n }));
        store
            .write(&stream, vec![deposit], ExpectedVersion::Any)
            .await?;
    }
    let mut unit = store.begin(UnitOptions::new()).await?;
    for n in 0..10u64 {
        let stream = category.stream(&format!("unit{n}"))?;
        let opened = NewMessage::new("Opened", json!({}));
        unit.write(&stream, vec![opened], ExpectedVersion::NoStream)
            .await?;
    }
    unit.commit().await?;

    let failed_once = Arc::new(AtomicBool::new(false));
    let options = ConsumerOptions::new()
        .with_subscription(SubscribeOptions::new().with_consumer_id("balances"))
        .with_retry(
            RetryPolicy::new().with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        );
    let health = Consumer::new(category)
        .with_options(options)
        .on_any(move |_message: Message| {
            let first = !failed_once.swap(true, Ordering::SeqCst);
            async move {
                if first {
                    return Err("the first attempt fails".into());
                }
                HandlerResult::Ok(())
            }
        })
        .run_until_caught_up(store.clone())
        .await?;
    println!(
        "handled {} messages; scraping http://{address}/metrics:",
        health.handled
    );

    let scrape = tokio::task::spawn_blocking(move || scrape(address)).await??;
    for line in scrape
        .lines()
        .filter(|l| l.starts_with("messaging") || l.starts_with("message_store"))
    {
        println!("  {line}");
    }
    if args.serve {
        println!("serving on http://{address}/metrics until Ctrl-C");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// GET /metrics over a plain socket: the body.
fn scrape(address: SocketAddr) -> std::io::Result<String> {
    let mut connection = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    connection.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        connection,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    connection.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(_, body)| body)
        .to_owned())
}
