//! `message-store consumers`: every consumer found through its position
//! stream (`{category}:position[-{consumer id}]`), with its recorded
//! position, its lag (messages of the category after that position), its
//! parked messages not yet replayed, and when it last recorded anything.
//!
//! Categories are found with a skip scan of the category index (one index
//! probe per category); a position category's streams by reading its
//! records. The lag counts the category's messages after the position,
//! whatever filters (consumer group, correlation) the consumer reads with.

use std::io::Write;

use message_store::backend::read_committed_position;
use message_store::{Category, MessageStoreExt, StreamName};
use message_store_postgres::sqlx;
use message_store_postgres::PostgresStore;
use serde_json::json;

use crate::Failure;

/// Every distinct category, one index probe each.
const CATEGORIES: &str = "WITH RECURSIVE categories(category) AS (
    (SELECT message_store.category(stream_name) FROM message_store.messages
     ORDER BY message_store.category(stream_name) LIMIT 1)
    UNION ALL
    SELECT (SELECT message_store.category(stream_name) FROM message_store.messages
            WHERE message_store.category(stream_name) > c.category
            ORDER BY message_store.category(stream_name) LIMIT 1)
    FROM categories c WHERE c.category IS NOT NULL)
  SELECT category FROM categories WHERE category LIKE '%:%position%'";

const STREAMS: &str = "SELECT DISTINCT stream_name FROM message_store.messages
  WHERE message_store.category(stream_name) = $1 ORDER BY stream_name";

const AFTER: &str = "SELECT count(*) FROM message_store.messages
  WHERE message_store.category(stream_name) = $1 AND global_position > $2";

/// What `consumers` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only the consumers of this category.
    #[arg(long)]
    category: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// One consumer as found.
struct Found {
    category: Category,
    consumer: Option<String>,
    position: Option<u64>,
    lag: u64,
    parked: usize,
    updated: Option<String>,
}

pub(crate) async fn run(store: &PostgresStore, args: Args) -> Result<(), Failure> {
    let sql = |e: sqlx::Error| Failure::command(format!("listing consumers: {e}"));
    let position_categories: Vec<String> = sqlx::query_scalar(CATEGORIES)
        .fetch_all(store.pool())
        .await
        .map_err(sql)?;
    let mut streams = Vec::new();
    for position_category in position_categories {
        let Some(category) = consumed_category(&position_category) else {
            continue;
        };
        if args
            .category
            .as_deref()
            .is_some_and(|only| only != category)
        {
            continue;
        }
        let category = Category::new(category)?;
        let names: Vec<String> = sqlx::query_scalar(STREAMS)
            .bind(&position_category)
            .fetch_all(store.pool())
            .await
            .map_err(sql)?;
        streams.extend(
            names
                .into_iter()
                .map(|name| (category.clone(), position_category.clone(), name)),
        );
    }
    let bar = crate::style::bar(streams.len() as u64, "reading positions");
    let mut found = Vec::new();
    for (category, position_category, stream) in &streams {
        found.push(consumer(store, category, position_category, stream).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    let mut write = |line: String| {
        writeln!(out, "{line}").map_err(|e| Failure::command(format!("writing: {e}")))
    };
    if !args.json {
        write("consumer  category  position  lag  parked  updated".to_owned())?;
    }
    for f in found {
        let line = if args.json {
            json!({
                "consumer": f.consumer,
                "category": f.category.as_str(),
                "position": f.position,
                "lag": f.lag,
                "parked": f.parked,
                "updated": f.updated,
            })
            .to_string()
        } else {
            let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            format!(
                "{}  {}  {}  {}  {}  {}",
                show(f.consumer),
                f.category,
                show(f.position.map(|p| p.to_string())),
                f.lag,
                f.parked,
                show(f.updated)
            )
        };
        write(line)?;
    }
    Ok(())
}

/// The category whose consumers record their positions in
/// `position_category`, if it is a position category: Eventide's naming
/// adds the type `position` to the category's, so `account:position` is
/// `account`'s and `account:command+position` is `account:command`'s.
fn consumed_category(position_category: &str) -> Option<String> {
    let (entity, types) = position_category.split_once(':')?;
    let types: Vec<&str> = types.split('+').collect();
    if !types.contains(&"position") {
        return None;
    }
    let rest: Vec<&str> = types.into_iter().filter(|t| *t != "position").collect();
    Some(if rest.is_empty() {
        entity.to_owned()
    } else {
        format!("{entity}:{}", rest.join("+"))
    })
}

/// What one position stream says of its consumer.
async fn consumer(
    store: &PostgresStore,
    category: &Category,
    position_category: &str,
    stream: &str,
) -> Result<Found, Failure> {
    let consumer = stream
        .strip_prefix(position_category)
        .and_then(|rest| rest.strip_prefix('-'))
        .map(str::to_owned);
    let stream = StreamName::new(stream)?;
    let committed = read_committed_position(store, &stream).await?;
    let updated = store
        .last_message(&stream)
        .await?
        .map(|m| m.time.to_rfc3339());
    let after = i64::try_from(committed.position.unwrap_or(0)).unwrap_or(i64::MAX);
    let lag: i64 = sqlx::query_scalar(AFTER)
        .bind(category.as_str())
        .bind(after)
        .fetch_one(store.pool())
        .await
        .map_err(|e| Failure::command(format!("counting the lag of {stream}: {e}")))?;
    let parked = match &consumer {
        Some(id) => message_store_consumer::parked_messages(store, category, id)
            .await?
            .iter()
            .filter(|p| p.waiting())
            .count(),
        None => 0,
    };
    Ok(Found {
        category: category.clone(),
        consumer,
        position: committed.position,
        lag: u64::try_from(lag).unwrap_or(0),
        parked,
        updated,
    })
}

#[cfg(test)]
mod tests {
    use super::consumed_category;

    #[test]
    fn position_categories_name_the_category_consumed() {
        assert_eq!(
            consumed_category("account:position").as_deref(),
            Some("account")
        );
        assert_eq!(
            consumed_category("account:command+position").as_deref(),
            Some("account:command")
        );
        assert_eq!(consumed_category("account:command"), None);
        assert_eq!(consumed_category("account:positions"), None);
        assert_eq!(consumed_category("position"), None, "an entity, no types");
    }
}
