//! The metrics example as a process: it serves Prometheus text on a local
//! port, and a scrape holds the store's and the consumer's metrics with
//! their labels and values.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the example when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn get(address: SocketAddr) -> std::io::Result<String> {
    let mut connection = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    connection.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        connection,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    connection.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn the_metrics_example_serves_prometheus_text() {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_metrics"))
        .args(["--port", &port.to_string(), "--serve"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the metrics example starts");
    let _running = Running(child);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let consumed = "messaging_client_consumed_messages{messaging_system=\"message_db\",messaging_destination_name=\"account\",messaging_consumer_group_name=\"balances\"} 100";
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Ok(response) = get(address) {
            if response.contains(consumed) {
                break response;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete scrape from {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for expected in [
        "# TYPE messaging_client_sent_messages counter",
        "messaging_client_sent_messages{messaging_system=\"message_db\",message_store_backend=\"memory\",messaging_destination_name=\"account\"} 100",
        "message_store_consumer_retries{messaging_system=\"message_db\",messaging_destination_name=\"account\",messaging_consumer_group_name=\"balances\"} 1",
        "messaging_process_duration_count{messaging_system=\"message_db\",messaging_destination_name=\"account\",messaging_consumer_group_name=\"balances\"} 100",
        "# TYPE message_store_consumer_lag gauge",
        "message_store_consumer_lag{messaging_system=\"message_db\",messaging_destination_name=\"account\",messaging_consumer_group_name=\"balances\"} 0",
        "message_store_fleet_lease_changes{messaging_system=\"message_db\",messaging_destination_name=\"account\",messaging_consumer_group_name=\"balances\",kind=\"claim\"} 1",
    ] {
        assert!(body.contains(expected), "missing `{expected}` in:\n{body}");
    }
}
