//! `message-store trace`: how messages caused one another, as a tree, from
//! their Eventide metadata (`causationMessageGlobalPosition`,
//! `correlationStreamName`).
//!
//! Given a message (by id or global position), it walks up its causes to
//! the first, then shows everything that first message caused, across
//! streams. Given `--correlation NAME`, it shows every message correlated
//! with that stream (or category), each under its cause where the cause is
//! among them. Metadata of any shape is read: a cause that is not a number
//! is no cause.

use std::collections::BTreeMap;
use std::io::Write;

use message_store::Message;
use message_store_postgres::sqlx::{self, postgres::PgRow, Row};
use message_store_postgres::{message_from_row, PostgresStore};
use serde_json::json;

use crate::style::Style;
use crate::Failure;

/// The global position a row names as its cause, when it names a number.
const CAUSE: &str =
    "CASE WHEN jsonb_typeof(m.metadata -> 'causationMessageGlobalPosition') = 'number'
  THEN (m.metadata ->> 'causationMessageGlobalPosition')::numeric END";

/// The largest tree shown; a bigger one is cut, with a note.
const MOST: i64 = 10_000;

/// What `trace` takes.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("start").required(true)))]
pub(crate) struct Args {
    /// A message: its id, or its global position.
    #[arg(group = "start")]
    message: Option<String>,
    /// Every message whose correlation is this stream, or this category
    /// when it names no id.
    #[arg(long, group = "start", value_name = "NAME")]
    correlation: Option<String>,
    /// One JSON object per line (each message with its cause's global
    /// position and its depth) instead of a tree.
    #[arg(long)]
    json: bool,
}

/// The columns [`message_from_row`] reads, from `messages m`.
const MESSAGE: &str = "m.id::text, m.stream_name, m.type, m.position, m.global_position,
  m.data::text, m.metadata::text, m.time";

/// A message in the tree, and what caused it.
#[derive(Debug, Clone)]
struct Node {
    message: Message,
    cause: Option<u64>,
}

pub(crate) async fn run(store: &PostgresStore, args: Args) -> Result<(), Failure> {
    let spinner = crate::style::spinner("tracing");
    let (nodes, marked) = match (&args.message, &args.correlation) {
        (Some(message), _) => {
            let start = find(store, message).await?;
            let root = first_cause(store, start).await?;
            (caused_by(store, root).await?, Some(start))
        }
        (None, Some(name)) => (correlated(store, name).await?, None),
        (None, None) => unreachable!("clap requires one"),
    };
    spinner.finish_and_clear();
    let messages: BTreeMap<u64, &Message> = nodes
        .iter()
        .map(|n| (n.message.global_position, &n.message))
        .collect();
    let mut out = std::io::stdout().lock();
    let style = Style::detect();
    let write = |out: &mut std::io::StdoutLock, line: String| {
        writeln!(out, "{line}").map_err(|e| Failure::command(format!("writing: {e}")))
    };
    let mut children: BTreeMap<Option<u64>, Vec<u64>> = BTreeMap::new();
    for node in &nodes {
        let parent = node.cause.filter(|c| messages.contains_key(c));
        children
            .entry(parent)
            .or_default()
            .push(node.message.global_position);
    }
    let mut stack: Vec<(u64, usize, String, bool)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|&g| (g, 0, String::new(), true))
        .collect();
    while let Some((global_position, depth, prefix, last)) = stack.pop() {
        let Some(message) = messages.get(&global_position) else {
            continue;
        };
        if args.json {
            let record = json!({
                "depth": depth,
                "global_position": message.global_position,
                "stream_name": message.stream_name.as_str(),
                "position": message.position,
                "type": message.message_type,
                "time": message.time,
                "cause": message.metadata.causation_message_global_position,
                "correlation": message.metadata.correlation(),
            });
            write(&mut out, record.to_string())?;
        } else {
            let branch = match (depth, last) {
                (0, _) => "",
                (_, true) => "└─ ",
                (_, false) => "├─ ",
            };
            let mut text = format!(
                "{prefix}{branch}{} {} {}/{}",
                style.bold(&message.message_type),
                message.global_position,
                message.stream_name,
                message.position
            );
            if Some(global_position) == marked {
                text.push_str(&style.warn("  <- this message"));
            }
            write(&mut out, text)?;
        }
        let child_prefix = match (depth, last) {
            (0, _) => String::new(),
            (_, true) => format!("{prefix}   "),
            (_, false) => format!("{prefix}│  "),
        };
        let kids = children
            .get(&Some(global_position))
            .cloned()
            .unwrap_or_default();
        for (i, kid) in kids.iter().enumerate().rev() {
            stack.push((*kid, depth + 1, child_prefix.clone(), i + 1 == kids.len()));
        }
    }
    if nodes.len() >= usize::try_from(MOST).unwrap_or(usize::MAX) {
        eprintln!("message-store: the tree was cut at {MOST} messages");
    }
    Ok(())
}

/// The message `text` names: a global position, or an id.
async fn find(store: &PostgresStore, text: &str) -> Result<u64, Failure> {
    let sql = |e: sqlx::Error| Failure::command(format!("finding {text}: {e}"));
    let found: Option<i64> = if let Ok(global_position) = text.parse::<i64>() {
        sqlx::query_scalar(
            "SELECT global_position FROM message_store.messages WHERE global_position = $1",
        )
        .bind(global_position)
        .fetch_optional(store.pool())
        .await
        .map_err(sql)?
    } else if let Ok(id) = text.parse::<uuid::Uuid>() {
        sqlx::query_scalar("SELECT global_position FROM message_store.messages WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(sql)?
    } else {
        return Err(Failure::command(format!(
            "`{text}` is neither a message id (a UUID) nor a global position"
        )));
    };
    found
        .and_then(|g| u64::try_from(g).ok())
        .ok_or_else(|| Failure::command(format!("no message {text} in this store")))
}

/// The first message of `start`'s chain of causes (itself when it has none
/// that is stored).
async fn first_cause(store: &PostgresStore, start: u64) -> Result<u64, Failure> {
    let chain: Option<i64> = sqlx::query_scalar(&format!(
        "WITH RECURSIVE up(global_position, cause) AS (
           SELECT m.global_position, {CAUSE} FROM message_store.messages m WHERE m.global_position = $1
           UNION
           SELECT m.global_position, {CAUSE} FROM message_store.messages m
           JOIN up ON m.global_position = up.cause AND m.global_position < up.global_position)
         SELECT min(global_position) FROM up"
    ))
    .bind(i64::try_from(start).unwrap_or(i64::MAX))
    .fetch_one(store.pool())
    .await
    .map_err(|e| Failure::command(format!("walking up the causes: {e}")))?;
    Ok(chain.and_then(|g| u64::try_from(g).ok()).unwrap_or(start))
}

/// `root` and everything it caused, directly or not. A message's cause
/// comes before it, so the walk ends even on metadata naming itself.
async fn caused_by(store: &PostgresStore, root: u64) -> Result<Vec<Node>, Failure> {
    let rows = sqlx::query(&format!(
        "WITH RECURSIVE down(global_position, cause) AS (
           SELECT global_position, NULL::bigint FROM message_store.messages WHERE global_position = $1
           UNION
           SELECT m.global_position, down.global_position FROM message_store.messages m
           JOIN down ON {CAUSE} = down.global_position AND m.global_position > down.global_position)
         SELECT {MESSAGE}, d.cause
         FROM (SELECT * FROM down LIMIT {MOST}) d
         JOIN message_store.messages m ON m.global_position = d.global_position
         ORDER BY d.global_position"
    ))
    .bind(i64::try_from(root).unwrap_or(i64::MAX))
    .fetch_all(store.pool())
    .await
    .map_err(|e| Failure::command(format!("finding what it caused: {e}")))?;
    rows.iter().map(node).collect()
}

/// Every message correlated with `name` (a stream, or a category).
async fn correlated(store: &PostgresStore, name: &str) -> Result<Vec<Node>, Failure> {
    let matches = if name.contains('-') {
        "m.metadata ->> 'correlationStreamName' = $1"
    } else {
        "message_store.category(m.metadata ->> 'correlationStreamName') = $1"
    };
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE},
                CASE WHEN {CAUSE} BETWEEN 0 AND 9223372036854775807 THEN ({CAUSE})::bigint END
         FROM message_store.messages m
         WHERE jsonb_typeof(m.metadata) = 'object' AND {matches}
         ORDER BY m.global_position LIMIT {MOST}"
    ))
    .bind(name)
    .fetch_all(store.pool())
    .await
    .map_err(|e| Failure::command(format!("finding the messages correlated with {name}: {e}")))?;
    if rows.is_empty() {
        return Err(Failure::command(format!(
            "no message is correlated with {name} (its metadata's correlationStreamName)"
        )));
    }
    rows.iter().map(node).collect()
}

/// A row of [`MESSAGE`] and the cause's global position.
fn node(row: &PgRow) -> Result<Node, Failure> {
    let unreadable = |e: String| Failure::command(format!("reading a message of the tree: {e}"));
    let message = message_from_row(row).map_err(|e| unreadable(e.to_string()))?;
    let cause: Option<i64> = row.try_get(8).map_err(|e| unreadable(e.to_string()))?;
    Ok(Node {
        message,
        cause: cause.and_then(|c| u64::try_from(c).ok()),
    })
}
