//! Message data as PostgreSQL's jsonb gives it back: for backends that
//! keep JSON as text (the memory store, SQLite), so their reads agree with
//! Message DB's.

use crate::message::NewMessage;
use serde_json::Value;

/// Rewrites the numbers of each message's data and metadata as jsonb returns them.
pub fn as_stored(messages: &mut [NewMessage]) {
    for message in messages {
        as_jsonb_returns(&mut message.data);
        for map in [
            &mut message.metadata.properties,
            &mut message.metadata.local_properties,
            &mut message.metadata.other,
        ] {
            map.values_mut().for_each(as_jsonb_returns);
        }
    }
}

/// Rewrites the numbers of `value` as PostgreSQL's jsonb gives them back,
/// so reads agree with Message DB. jsonb keeps a number's decimal digits,
/// not its notation, and has no negative zero. serde_json writes a float of
/// 1e16 or more in exponent form with its shortest digits (2^60 is
/// `1.152921504606847e18`), which jsonb returns as those digits spelled out
/// (`1152921504606847000`): a client reads that back as an integer when it
/// fits one (u64, or i64 when negative). `-0.0` comes back as `0.0`. Every
/// other number reads back as written.
fn as_jsonb_returns(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            let text = number.to_string();
            if text == "-0.0" {
                *value = Value::from(0.0);
            } else if let Some(integer) = spelled_out(&text) {
                *value = integer;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_jsonb_returns),
        Value::Object(map) => map.values_mut().for_each(as_jsonb_returns),
        _ => {}
    }
}

/// `1.5e16` as the integer `15000000000000000`, when it is a whole number
/// written with a positive exponent and fits a u64 (or an i64, negative).
fn spelled_out(text: &str) -> Option<Value> {
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: usize = exponent.trim_start_matches('+').parse().ok()?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let zeros = exponent.checked_sub(fraction.len())?;
    let digits = format!("{sign}{whole}{fraction}{}", "0".repeat(zeros));
    if sign.is_empty() {
        digits.parse::<u64>().ok().map(Value::from)
    } else {
        digits.parse::<i64>().ok().map(Value::from)
    }
}
