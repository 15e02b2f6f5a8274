//! Decoding stored data, the client-side half of every PostgreSQL read:
//! `JsonData` as the backends build it from a row's text, against the way
//! data was decoded before (check the text, build a `Value`, decode from
//! it), measured back to back in one run.

use std::hint::black_box;
use std::time::Instant;

use message_store::JsonData;
use serde::Deserialize;

use crate::report::{median, rate, Figure};

/// An event's data as an application decodes it.
#[derive(Deserialize)]
#[allow(dead_code)] // read by serde only
struct Deposited {
    account: String,
    amount: u64,
    currency: String,
    tags: Vec<String>,
}

const TEXT: &str = r#"{"account": "account-123", "amount": 1250, "currency": "EUR", "tags": ["web", "eu"], "note": "monthly"}"#;

/// Reading rows only (the data not looked at), and reading and decoding
/// each into a struct.
pub fn run(runs: usize, scale: u64) -> Vec<Figure> {
    let rows = 200_000 * scale;
    let texts: Vec<String> = (0..rows).map(|_| TEXT.to_owned()).collect();
    let time = |f: &dyn Fn(&str)| {
        let start = Instant::now();
        for text in &texts {
            f(text);
        }
        rate(rows, start.elapsed())
    };
    let (mut read, mut read_before, mut decoded, mut decoded_before) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        read.push(time(&|text| {
            black_box(JsonData::from_stored_text(text));
        }));
        read_before.push(time(&|text| {
            black_box(JsonData::from_json_text(text).unwrap());
        }));
        decoded.push(time(&|text| {
            let data = JsonData::from_stored_text(text);
            black_box(data.decode::<Deposited>().unwrap());
        }));
        decoded_before.push(time(&|text| {
            let data = JsonData::from_json_text(text).unwrap();
            black_box(Deposited::deserialize(data.value()).unwrap());
        }));
    }
    vec![
        Figure::new("stored data read, not looked at", "client", "rows/s", read)
            .reference("checked on read (before)", median(&read_before))
            .target(">= 1x"),
        Figure::new(
            "stored data read and decoded into a struct",
            "client",
            "rows/s",
            decoded,
        )
        .reference("check, Value, decode (before)", median(&decoded_before))
        .target(">= 1x"),
    ]
}
