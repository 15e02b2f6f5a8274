//! `message-store parked`: the messages a consumer parked (in
//! `{category}:parked-{consumer id}`), listed, shown one by one with why
//! they were parked, or purged: given up on, with a marker the consumer's
//! replay honours, while the parked copy stays as a record.

use std::io::Write;

use message_store::{Category, MessageStoreExt};
use message_store_consumer::{parked_messages, parked_to_purge, purge_parked, ParkedMessage};
use message_store_postgres::PostgresStore;
use serde_json::json;

use crate::Failure;

/// Which consumer.
#[derive(Debug, clap::Args)]
pub(crate) struct Which {
    /// The consumer's category.
    category: String,
    /// The consumer's id.
    #[arg(long)]
    consumer: String,
}

/// What `parked` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Lists the parked messages, oldest first, with their state.
    List {
        #[command(flatten)]
        which: Which,
        /// Only those waiting for a replay (neither replayed nor purged).
        #[arg(long)]
        waiting: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Shows one parked message in full, as JSON.
    Show {
        #[command(flatten)]
        which: Which,
        /// Its position in the parked stream (as `list` shows it).
        parked_position: u64,
    },
    /// Purges parked messages: they are never replayed.
    #[command(group(clap::ArgGroup::new("what").required(true)))]
    Purge {
        #[command(flatten)]
        which: Which,
        /// The parked positions to purge (as `list` shows them).
        #[arg(group = "what")]
        parked_positions: Vec<u64>,
        /// Every message still waiting.
        #[arg(long, group = "what")]
        all: bool,
        /// Say what would be purged, and purge nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(crate) async fn run(store: &PostgresStore, command: Command) -> Result<(), Failure> {
    let which = match &command {
        Command::List { which, .. }
        | Command::Show { which, .. }
        | Command::Purge { which, .. } => which,
    };
    let category = Category::new(which.category.as_str())?;
    let consumer = which.consumer.clone();
    let parked = found(store, &category, &consumer).await?;
    let mut out = std::io::stdout().lock();
    let mut write = |line: String| {
        writeln!(out, "{line}").map_err(|e| Failure::command(format!("writing: {e}")))
    };
    match command {
        Command::List { waiting, json, .. } => {
            for entry in parked.iter().filter(|e| !waiting || e.waiting()) {
                write(if json {
                    record(entry).to_string()
                } else {
                    summary(entry)
                })?;
            }
        }
        Command::Show {
            parked_position, ..
        } => {
            let Some(entry) = parked.iter().find(|e| e.parked_position == parked_position) else {
                return Err(Failure::command(format!(
                    "no parked message at position {parked_position} (list them with `message-store parked list`)"
                )));
            };
            let pretty = serde_json::to_string_pretty(&record(entry))
                .map_err(|e| Failure::command(format!("formatting: {e}")))?;
            write(pretty)?;
        }
        Command::Purge {
            parked_positions,
            dry_run,
            ..
        } => {
            let asked = (!parked_positions.is_empty()).then_some(parked_positions.as_slice());
            if dry_run {
                for entry in parked_to_purge(store, &category, &consumer, asked).await? {
                    write(format!("would purge {}", summary(&entry)))?;
                }
                return Ok(());
            }
            let purged = purge_parked(store, &category, &consumer, asked).await?;
            write(match purged.len() {
                0 => "nothing to purge: those asked for were replayed or purged already".to_owned(),
                n => format!(
                    "purged {n} parked message(s), at {}",
                    purged
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        }
    }
    Ok(())
}

/// The consumer's parked messages; an unknown consumer (no parked stream and
/// no position stream) is an error.
async fn found(
    store: &PostgresStore,
    category: &Category,
    consumer: &str,
) -> Result<Vec<ParkedMessage>, Failure> {
    let parked = parked_messages(store, category, consumer).await?;
    if parked.is_empty() {
        let position = category.position_stream(Some(consumer))?;
        if store.last_message(&position).await?.is_none() {
            return Err(Failure::command(format!(
                "no consumer `{consumer}` of {category}: it has neither parked messages nor a position \
                 (list them with `message-store consumers`)"
            )));
        }
    }
    Ok(parked)
}

fn state(entry: &ParkedMessage) -> &'static str {
    match (entry.replayed, entry.purged) {
        (true, _) => "replayed",
        (false, true) => "purged",
        (false, false) => "waiting",
    }
}

/// One line: parked position, state, where it came from, attempts, error.
fn summary(entry: &ParkedMessage) -> String {
    let from = &entry.parked_from;
    format!(
        "{:>4}  {:<8}  {:>8}  {}/{}  {}  {} attempt(s)  {}",
        entry.parked_position,
        state(entry),
        from.global_position,
        from.stream_name,
        from.position,
        entry.message.message_type,
        from.attempts,
        from.error
    )
}

fn record(entry: &ParkedMessage) -> serde_json::Value {
    json!({
        "parked_position": entry.parked_position,
        "state": state(entry),
        "parked_from": entry.parked_from,
        "message": crate::print::record(&entry.message),
    })
}
