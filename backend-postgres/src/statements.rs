//! The SQL of every call, run on a connection its caller holds: one leased
//! from the store's warm set (see `pooler`), and later a unit of work's or
//! the caller's own transaction's. `persistent`: prepare the statement
//! under a name sqlx caches (directly), or unnamed (behind a pooler).

use message_store::{
    BatchSize, Category, CategoryRead, ExpectedVersion, Message, NewMessage, StreamName, StreamRead,
};
use sqlx::postgres::{PgArguments, PgConnection, PgRow, Postgres};
use sqlx::query::Query;

use crate::{convert, rows};

// The readers' columns, in the order rows::decode reads them.
const READ_STREAM: &str =
    "SELECT id, stream_name, type, position, global_position, data, metadata, time
     FROM message_store.get_stream_messages($1, $2, $3)";
const READ_CATEGORY: &str =
    "SELECT id, stream_name, type, position, global_position, data, metadata, time
     FROM message_store.get_category_messages($1, $2, $3, $4, $5, $6)";
const READ_LAST: &str =
    "SELECT id, stream_name, type, position, global_position, data, metadata, time
     FROM message_store.get_last_stream_message($1, $2)";

const WRITE_ONE: &str =
    "SELECT message_store.write_message($1, $2, $3, $4::text::jsonb, $5::text::jsonb, $6)";

const WRITE_BATCH: &str = "SELECT message_store.write_message(m.id, $1, m.type, m.data, m.metadata, $2::bigint + m.ord - 1)
     FROM unnest($3::varchar[], $4::varchar[], $5::text[]::jsonb[], $6::text[]::jsonb[])
          WITH ORDINALITY AS m(id, type, data, metadata, ord)";

// Message DB has no function for this; the role may read the table. The
// row comparison makes the (category, global_position) index the only plan
// without a sort: one backward step, however many newer messages other
// categories hold.
const CATEGORY_HEAD: &str = "SELECT global_position FROM message_store.messages
     WHERE (message_store.category(stream_name), global_position) <= ($1, 9223372036854775807)
       AND message_store.category(stream_name) >= $1
     ORDER BY message_store.category(stream_name) DESC, global_position DESC
     LIMIT 1";

type Sql<T> = Result<T, sqlx::Error>;

/// A write's messages as the statements bind them, serialized once for
/// every attempt.
pub(crate) struct Batch {
    pub(crate) ids: Vec<String>,
    pub(crate) types: Vec<String>,
    pub(crate) data: Vec<String>,
    pub(crate) metadata: Vec<Option<String>>,
}

impl Batch {
    pub(crate) fn new(messages: Vec<NewMessage>) -> Batch {
        let count = messages.len();
        let mut batch = Batch {
            ids: Vec::with_capacity(count),
            types: Vec::with_capacity(count),
            data: Vec::with_capacity(count),
            metadata: Vec::with_capacity(count),
        };
        for message in messages {
            batch.ids.push(message.id.hyphenated().to_string());
            batch.data.push(message.data.to_string());
            batch
                .metadata
                .push(message.metadata.to_json().map(|m| m.to_string()));
            batch.types.push(message.message_type);
        }
        batch
    }

    /// How many messages.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Writes `batch` to `stream` expecting `expected`: the last position
/// written. One message is Message DB's own call, the cheapest statement
/// there is; more are one statement over `unnest`, the expected version
/// chained.
pub(crate) async fn write(
    conn: &mut PgConnection,
    persistent: bool,
    stream: &StreamName,
    batch: &Batch,
    expected: ExpectedVersion,
) -> Sql<Vec<i64>> {
    if batch.ids.len() == 1 {
        let position: i64 = sqlx::query_scalar(WRITE_ONE)
            .bind(&batch.ids[0])
            .bind(stream.as_str())
            .bind(&batch.types[0])
            .bind(&batch.data[0])
            .bind(&batch.metadata[0])
            .bind(convert::expected_version(expected))
            .persistent(persistent)
            .fetch_one(conn)
            .await?;
        return Ok(vec![position]);
    }
    sqlx::query_scalar(WRITE_BATCH)
        .bind(stream.as_str())
        .bind(convert::expected_version(expected))
        .bind(&batch.ids)
        .bind(&batch.types)
        .bind(&batch.data)
        .bind(&batch.metadata)
        .persistent(persistent)
        .fetch_all(conn)
        .await
}

/// The rows of one stream read.
pub(crate) async fn read_stream(
    conn: &mut PgConnection,
    persistent: bool,
    stream: &StreamName,
    options: &StreamRead,
) -> Sql<Vec<PgRow>> {
    sqlx::query(READ_STREAM)
        .bind(stream.as_str())
        .bind(convert::to_bigint(options.position()))
        .bind(convert::batch_size(options.batch_size()))
        .persistent(persistent)
        .fetch_all(conn)
        .await
}

/// One category read (options already validated) through
/// `get_category_messages`, as a query to run.
fn category_query<'q>(
    persistent: bool,
    category: &'q Category,
    options: &'q CategoryRead,
) -> Query<'q, Postgres, PgArguments> {
    let group = options.consumer_group();
    sqlx::query(READ_CATEGORY)
        .bind(category.as_str())
        .bind(convert::to_bigint(options.position()))
        .bind(convert::batch_size(options.batch_size()))
        .bind(options.correlation())
        .bind(group.map(|g| i64::from(g.member())))
        .bind(group.map(|g| i64::from(g.size())))
        .persistent(persistent)
}

/// The rows of one category read (options already validated).
pub(crate) async fn read_category(
    conn: &mut PgConnection,
    persistent: bool,
    category: &Category,
    options: &CategoryRead,
) -> Sql<Vec<PgRow>> {
    category_query(persistent, category, options)
        .fetch_all(conn)
        .await
}

/// The messages of one category read (options already validated), each
/// decoded as its row arrives.
pub(crate) async fn read_category_messages(
    conn: &mut PgConnection,
    persistent: bool,
    category: &Category,
    options: &CategoryRead,
) -> Sql<Vec<Message>> {
    let query = category_query(persistent, category, options);
    rows::fetch_messages(conn, query, expected_rows(options.batch_size())).await
}

/// The room to make for a page of `batch` messages: the batch size, up to
/// Message DB's default page of 1000.
pub(crate) fn expected_rows(batch: BatchSize) -> usize {
    batch.limit().map_or(1000, |limit| {
        usize::try_from(limit.min(1000)).unwrap_or(1000)
    })
}

/// The row of a stream's last message (of `message_type`, if given).
pub(crate) async fn read_last(
    conn: &mut PgConnection,
    persistent: bool,
    stream: &StreamName,
    message_type: Option<&str>,
) -> Sql<Option<PgRow>> {
    sqlx::query(READ_LAST)
        .bind(stream.as_str())
        .bind(message_type)
        .persistent(persistent)
        .fetch_optional(conn)
        .await
}

/// A stream's version, as Message DB's `stream_version` gives it.
pub(crate) async fn stream_version(
    conn: &mut PgConnection,
    persistent: bool,
    stream: &StreamName,
) -> Sql<Option<i64>> {
    sqlx::query_scalar("SELECT message_store.stream_version($1)")
        .bind(stream.as_str())
        .persistent(persistent)
        .fetch_one(conn)
        .await
}

/// The version Message DB reports (the first of the opening checks).
pub(crate) async fn message_db_version(conn: &mut PgConnection, persistent: bool) -> Sql<String> {
    sqlx::query_scalar("SELECT message_store.message_store_version()")
        .persistent(persistent)
        .fetch_one(conn)
        .await
}

/// The search path, whether our NOTIFY trigger is installed, and whether
/// `message_store` is on the path (the other opening check).
pub(crate) async fn settings(
    conn: &mut PgConnection,
    persistent: bool,
) -> Sql<(String, bool, bool)> {
    sqlx::query_as(
        "SELECT current_setting('search_path'),
                EXISTS (SELECT 1 FROM pg_trigger
                        WHERE tgname = 'message_store_notify'
                          AND tgrelid = to_regclass('message_store.messages')),
                'message_store' = ANY(current_schemas(false))",
    )
    .persistent(persistent)
    .fetch_one(conn)
    .await
}

/// The global position of a category's last message.
pub(crate) async fn category_head(
    conn: &mut PgConnection,
    persistent: bool,
    category: &Category,
) -> Sql<Option<i64>> {
    sqlx::query_scalar(CATEGORY_HEAD)
        .bind(category.as_str())
        .persistent(persistent)
        .fetch_optional(conn)
        .await
}

/// The order every multi-category transaction takes its categories' locks
/// in: by lock key (the category's `hash_64`), each key once, so that no
/// two such transactions deadlock. `categories` may repeat.
pub(crate) fn lock_order<'a>(categories: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut keyed: Vec<(i64, &str)> = categories
        .into_iter()
        .map(|category| (message_store::hash_64(category), category))
        .collect();
    keyed.sort_unstable();
    keyed.dedup_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, category)| category).collect()
}

/// Takes the advisory locks of `categories`, in the order given, as
/// Message DB's `write_message` takes a category's: `acquire_lock` of a
/// category name is its own category's lock. One statement; `unnest` hands
/// the rows to the function in array order.
pub(crate) async fn lock_categories(
    conn: &mut PgConnection,
    persistent: bool,
    categories: &[&str],
) -> Sql<()> {
    sqlx::query("SELECT message_store.acquire_lock(c) FROM unnest($1::varchar[]) AS c")
        .bind(categories)
        .persistent(persistent)
        .execute(conn)
        .await?;
    Ok(())
}
