//! `message-store print`: a stream's or a category's messages, as text or
//! JSON lines, from a position, up to a count, or followed live (woken by
//! the schema's notifications where it has them, polling otherwise).

use std::io::Write;

use futures::StreamExt;
use message_store::{
    CategoryRead, IntoCategory, IntoStreamName, Message, MessageStore, StartPosition, StreamRead,
    SubscribeOptions,
};
use message_store_postgres::PostgresStore;
use serde_json::json;

use crate::Failure;

/// What `print` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A stream (`account-1`) or a category (`account`).
    name: String,
    /// The first position: a stream position for a stream, a global
    /// position for a category.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Print at most this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// After the existing messages, keep printing new ones (a category
    /// only) until Ctrl-C.
    #[arg(long)]
    follow: bool,
}

pub(crate) async fn run(store: &PostgresStore, args: Args) -> Result<(), Failure> {
    let limit = args.count.unwrap_or(u64::MAX);
    let mut printed = 0;
    let mut out = std::io::stdout().lock();
    if args.name.contains('-') {
        if args.follow {
            return Err(Failure::command(
                "--follow follows a category; give the stream's category",
            ));
        }
        let stream = args.name.as_str().into_stream_name()?;
        let mut messages =
            store.stream_messages(&stream, StreamRead::new().with_position(args.from));
        while printed < limit {
            let Some(message) = messages.next().await else {
                break;
            };
            line(&mut out, &message?, args.json)?;
            printed += 1;
        }
        return Ok(());
    }
    let category = args.name.as_str().into_category()?;
    if !args.follow {
        let read = CategoryRead::new().with_position(args.from);
        let mut messages = store.category_messages(&category, read);
        while printed < limit {
            let Some(message) = messages.next().await else {
                break;
            };
            line(&mut out, &message?, args.json)?;
            printed += 1;
        }
        return Ok(());
    }
    drop(out);
    let options = SubscribeOptions::new().with_start(StartPosition::At(args.from));
    let mut subscription = store.subscribe(&category, options).await?;
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch() => batch?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let mut out = std::io::stdout().lock();
        for message in batch {
            line(&mut out, &message, args.json)?;
            printed += 1;
            if printed >= limit {
                return Ok(());
            }
        }
        out.flush()
            .map_err(|e| Failure::command(format!("writing: {e}")))?;
    }
}

/// A message as JSON; data another client stored beyond what this one can
/// parse is `null`, with its text under `data_text`.
pub(crate) fn record(message: &Message) -> serde_json::Value {
    let (data, unreadable) = match message.data.try_value() {
        Ok(value) => (value.clone(), None),
        Err(unreadable) => (serde_json::Value::Null, Some(unreadable.text())),
    };
    let mut record = json!({
        "id": message.id,
        "stream_name": message.stream_name.as_str(),
        "type": message.message_type,
        "position": message.position,
        "global_position": message.global_position,
        "time": message.time,
        "data": data,
        "metadata": message.metadata.to_json(),
    });
    if let Some(text) = unreadable {
        record["data_text"] = json!(text);
    }
    record
}

/// One message as a line: `global position  stream/position  type  data`,
/// plus its metadata when it has any; or the whole message as JSON.
fn line(out: &mut impl Write, message: &Message, json: bool) -> Result<(), Failure> {
    let text = if json {
        record(message).to_string()
    } else {
        let data = match message.data.try_value() {
            Ok(value) => value.to_string(),
            Err(unreadable) => unreadable.text().to_owned(),
        };
        let mut text = format!(
            "{:>8}  {}/{}  {}  {}",
            message.global_position,
            message.stream_name,
            message.position,
            message.message_type,
            data
        );
        if let Some(metadata) = message.metadata.to_json() {
            text.push_str(&format!("  meta {metadata}"));
        }
        text
    };
    writeln!(out, "{text}").map_err(|e| Failure::command(format!("writing: {e}")))
}
