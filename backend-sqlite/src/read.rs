//! The reads, as SQL over the stored columns: a stream by position, a
//! category by global position through its index (the filters test stored
//! values, so no row is hashed or parsed at read time), the last message,
//! a stream's version and a category's head. A page of a stream or a
//! category comes back as one JSON value (see `rows::page_sql`): sqlx's
//! SQLite driver hands rows over one at a time, which cost more than the
//! reads themselves.

use message_store::{BatchSize, Category, CategoryRead, Message, StreamName, StreamRead};
use sqlx::SqliteConnection;

use crate::error::SqliteError;
use crate::rows::{self, COLUMNS};

/// SQLite's "no limit".
fn limit(batch_size: BatchSize) -> i64 {
    batch_size
        .limit()
        .and_then(|l| i64::try_from(l).ok())
        .unwrap_or(-1)
}

fn bigint(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

pub(crate) async fn stream(
    conn: &mut SqliteConnection,
    stream: &StreamName,
    options: &StreamRead,
) -> Result<Vec<Message>, SqliteError> {
    let select = format!(
        "SELECT {COLUMNS} FROM messages WHERE stream_name = ?1 AND position >= ?2 \
         ORDER BY position LIMIT ?3"
    );
    let page: String = sqlx::query_scalar(&rows::page_sql(&select, "position"))
        .bind(stream.as_str())
        .bind(bigint(options.position()))
        .bind(limit(options.batch_size()))
        .fetch_one(conn)
        .await?;
    rows::decode_page(&page)
}

pub(crate) async fn category(
    conn: &mut SqliteConnection,
    category: &Category,
    options: &CategoryRead,
) -> Result<Vec<Message>, SqliteError> {
    // abs(h % size) is |h| % size without the overflow of abs(i64::MIN).
    let select = format!(
        "SELECT {COLUMNS} FROM messages WHERE category = ?1 AND global_position >= ?2 \
         AND (?4 IS NULL OR correlation_category = ?4) \
         AND (?5 IS NULL OR abs(cardinal_hash % ?6) = ?5) \
         ORDER BY global_position LIMIT ?3"
    );
    let group = options.consumer_group();
    let page: String = sqlx::query_scalar(&rows::page_sql(&select, "global_position"))
        .bind(category.as_str())
        .bind(bigint(options.position()))
        .bind(limit(options.batch_size()))
        .bind(options.correlation())
        .bind(group.map(|g| i64::from(g.member())))
        .bind(group.map(|g| i64::from(g.size())))
        .fetch_one(conn)
        .await?;
    rows::decode_page(&page)
}

pub(crate) async fn last(
    conn: &mut SqliteConnection,
    stream: &StreamName,
    message_type: Option<&str>,
) -> Result<Option<Message>, SqliteError> {
    let select = format!(
        "SELECT {COLUMNS} FROM messages WHERE stream_name = ?1 AND (?2 IS NULL OR type = ?2) \
         ORDER BY position DESC LIMIT 1"
    );
    let page: String = sqlx::query_scalar(&rows::page_sql(&select, "position"))
        .bind(stream.as_str())
        .bind(message_type)
        .fetch_one(conn)
        .await?;
    Ok(rows::decode_page(&page)?.pop())
}

pub(crate) async fn stream_version(
    conn: &mut SqliteConnection,
    stream: &StreamName,
) -> Result<Option<u64>, SqliteError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT max(position) FROM messages WHERE stream_name = ?1")
            .bind(stream.as_str())
            .fetch_one(conn)
            .await?;
    Ok(version.and_then(|v| u64::try_from(v).ok()))
}

pub(crate) async fn category_head(
    conn: &mut SqliteConnection,
    category: &Category,
) -> Result<Option<u64>, SqliteError> {
    let head: Option<i64> =
        sqlx::query_scalar("SELECT max(global_position) FROM messages WHERE category = ?1")
            .bind(category.as_str())
            .fetch_one(conn)
            .await?;
    Ok(head.and_then(|h| u64::try_from(h).ok()))
}

/// The last global position handed out (AUTOINCREMENT's counter); 0 before
/// the first write.
pub(crate) async fn sequence(conn: &mut SqliteConnection) -> Result<u64, SqliteError> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
            .fetch_optional(conn)
            .await?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// True when a message with `id` is stored.
pub(crate) async fn has_id(
    conn: &mut SqliteConnection,
    id: uuid::Uuid,
) -> Result<bool, SqliteError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM messages WHERE id = ?1")
        .bind(id.hyphenated().to_string())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}
