//! `message-store summary`: message counts by stream, type or category,
//! from Message DB's summary views (which both schemas install, and grant
//! to the `message_store` role).

use std::io::Write;

use message_store_postgres::sqlx::{self, Row};
use message_store_postgres::PostgresStore;
use serde_json::json;

use crate::Failure;

/// How to group the counts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum By {
    /// Per stream (`stream_summary`).
    Stream,
    /// Per message type (`type_summary`).
    Type,
    /// Per category and type (`category_type_summary`).
    Category,
    /// Per stream and type (`stream_type_summary`).
    StreamType,
    /// Per type and stream (`type_stream_summary`).
    TypeStream,
    /// Per type and category (`type_category_summary`).
    TypeCategory,
}

impl By {
    /// The view and its key columns, in order.
    fn view(self) -> (&'static str, &'static [&'static str]) {
        match self {
            By::Stream => ("stream_summary", &["stream_name"]),
            By::Type => ("type_summary", &["type"]),
            By::Category => ("category_type_summary", &["category", "type"]),
            By::StreamType => ("stream_type_summary", &["stream_name", "type"]),
            By::TypeStream => ("type_stream_summary", &["type", "stream_name"]),
            By::TypeCategory => ("type_category_summary", &["type", "category"]),
        }
    }
}

/// What `summary` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How to group the counts.
    #[arg(long, value_enum, default_value = "category")]
    by: By,
    /// Only the rows whose first column is this (a stream, type or category).
    #[arg(long)]
    only: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(store: &PostgresStore, args: Args) -> Result<(), Failure> {
    let (view, keys) = args.by.view();
    let sql = format!(
        "SELECT {keys}, message_count, percent::float8 FROM message_store.{view}
         WHERE $1::text IS NULL OR {first} = $1",
        keys = keys.join(", "),
        first = keys[0],
    );
    let rows = sqlx::query(&sql)
        .bind(args.only.as_deref())
        .fetch_all(store.pool())
        .await
        .map_err(|e| Failure::command(format!("reading message_store.{view}: {e}")))?;
    let mut out = std::io::stdout().lock();
    let write = |out: &mut std::io::StdoutLock<'_>, line: String| {
        writeln!(out, "{line}").map_err(|e| Failure::command(format!("writing: {e}")))
    };
    if !args.json {
        write(&mut out, format!("{}  messages  percent", keys.join("  ")))?;
    }
    for row in rows {
        let names: Vec<String> = (0..keys.len()).map(|i| row.get::<String, _>(i)).collect();
        let count: i64 = row.get(keys.len());
        let percent: f64 = row.get(keys.len() + 1);
        let line = if args.json {
            let mut record = json!({ "messages": count, "percent": percent });
            for (key, name) in keys.iter().zip(&names) {
                record[*key] = json!(name);
            }
            record.to_string()
        } else {
            format!("{}  {count}  {percent:.2}", names.join("  "))
        };
        write(&mut out, line)?;
    }
    Ok(())
}
