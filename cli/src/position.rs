//! `message-store position`: moves a consumer's recorded position, so it
//! resumes at the beginning, at the end, at a global position or at a time.
//!
//! The record written is the one the consumer itself writes (Eventide's
//! `Recorded`), holding the last position handled: to resume at X it holds
//! X - 1, so at-least-once consumers (which resume at the recorded position
//! inclusive) and exactly-once ones (which skip it) both start at X. The
//! write expects the position stream's version, so a consumer that records
//! meanwhile makes it fail instead of being overwritten. A consumer that
//! recorded a position or a heartbeat recently looks alive: it is not moved
//! without `--yes`.

use std::time::Duration;

use message_store::backend::{position_record, read_committed_position};
use message_store::chrono::{DateTime, Utc};
use message_store::{Category, ExpectedVersion, MessageStore, MessageStoreExt};
use message_store_postgres::sqlx;
use message_store_postgres::PostgresStore;

use crate::Failure;

/// The first global position at or after a time, in a category.
const AT_TIME: &str = "SELECT min(global_position) FROM message_store.messages
  WHERE message_store.category(stream_name) = $1 AND time >= $2";

/// What `position` takes.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true)))]
pub(crate) struct Args {
    /// The consumer's category.
    category: String,
    /// The consumer's id (none: the consumer without an id).
    #[arg(long)]
    consumer: Option<String>,
    /// Resume at the category's first message.
    #[arg(long, group = "target")]
    beginning: bool,
    /// Resume after the category's last message.
    #[arg(long, group = "target")]
    end: bool,
    /// Resume at the first message at or after this global position.
    #[arg(long, group = "target", value_name = "GLOBAL_POSITION")]
    resume_at: Option<u64>,
    /// Resume at the first message written at or after this time (RFC 3339).
    #[arg(long, group = "target", value_name = "TIME", value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// Say what would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Move it even though it looks alive.
    #[arg(long)]
    yes: bool,
    /// It looks alive when it recorded a position or a heartbeat this recently.
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    alive_within: u64,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-12-01T08:00:00Z: {e}"))
}

pub(crate) async fn run(store: &PostgresStore, args: Args) -> Result<(), Failure> {
    let category = Category::new(args.category.as_str())?;
    let stream = category.position_stream(args.consumer.as_deref())?;
    let who = args.consumer.as_deref().map_or_else(
        || format!("the consumer of {category} without an id"),
        |id| format!("consumer `{id}` of {category}"),
    );
    let Some(last) = store.last_message(&stream).await? else {
        return Err(Failure::command(format!(
            "no {who}: its position stream {stream} is empty (list them with `message-store consumers`)"
        )));
    };
    let committed = read_committed_position(store, &stream).await?;
    let head = store.category_head(&category).await?.unwrap_or(0);
    let resume_at = if args.beginning {
        1
    } else if args.end {
        head + 1
    } else if let Some(position) = args.resume_at {
        if position > head + 1 {
            return Err(Failure::command(format!(
                "global position {position} is past the head of {category} ({head}); give at most {}",
                head + 1
            )));
        }
        position.max(1)
    } else {
        let time = args.at.expect("clap requires one target");
        let first: Option<i64> = sqlx::query_scalar(AT_TIME)
            .bind(category.as_str())
            .bind(time)
            .fetch_one(store.pool())
            .await
            .map_err(|e| Failure::command(format!("finding the first message at {time}: {e}")))?;
        first.map_or(head + 1, |gp| u64::try_from(gp).unwrap_or(0))
    };
    let record = resume_at - 1;
    let from = committed
        .position
        .map_or_else(|| "none".to_owned(), |p| p.to_string());
    if args.dry_run {
        println!("would move {who} from position {from} to {record} (resuming at {resume_at}); nothing changed");
        return Ok(());
    }
    let alive_within = Duration::from_secs(args.alive_within);
    if !args.yes {
        if let Some(age) = recently(
            store,
            &category,
            args.consumer.as_deref(),
            last.time,
            alive_within,
        )
        .await?
        {
            return Err(Failure::command(format!(
                "{who} looks alive: it wrote to its streams {}s ago; stop it first, or pass --yes",
                age.as_secs()
            )));
        }
    }
    let expected = ExpectedVersion::from_version(committed.version);
    match store
        .write(&stream, vec![position_record(record)], expected)
        .await
    {
        Ok(_) => {
            println!("moved {who} from position {from} to {record}: it resumes at {resume_at}");
            Ok(())
        }
        Err(message_store::Error::WrongExpectedVersion { .. }) => Err(Failure::command(format!(
            "{who} recorded a position meanwhile: it is running; stop it and try again"
        ))),
        Err(other) => Err(other.into()),
    }
}

/// How long ago the consumer wrote its position stream (`last`) or its
/// fleet's heartbeats, if within `within`.
async fn recently(
    store: &PostgresStore,
    category: &Category,
    consumer: Option<&str>,
    last: DateTime<Utc>,
    within: Duration,
) -> Result<Option<Duration>, Failure> {
    let mut latest = last;
    if let Some(id) = consumer {
        let heartbeats = category.fleet_stream(id)?;
        if let Some(beat) = store.last_message(&heartbeats).await? {
            latest = latest.max(beat.time);
        }
    }
    let age = (Utc::now() - latest).to_std().unwrap_or_default();
    Ok((age < within).then_some(age))
}
