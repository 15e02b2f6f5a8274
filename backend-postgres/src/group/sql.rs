//! The two statements of a group's transaction, through Message DB's
//! public functions and a read of its table (which the functions-only
//! `message_store` role may do), so groups work on genuine Message DB.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

/// Takes the categories' locks ($1, in lock-key order), then reads each
/// stream's version ($2) and which ids ($3) are stored.
///
/// The locks are one uncorrelated subquery, evaluated once, before the
/// first version is read (the `CASE` needs it first). `stream_version` is
/// VOLATILE, so each call reads a fresh snapshot: it sees every write
/// committed before the locks were granted, and none can commit after.
/// The id check reads the statement's snapshot, which may miss an id
/// committed just before: the write then fails on the unique index and the
/// group falls back to one write per call.
const CHECK: &str = "SELECT s.name::varchar,
            CASE WHEN (SELECT count(message_store.acquire_lock(c)) FROM unnest($1::varchar[]) AS c) >= 0
                 THEN message_store.stream_version(s.name) END,
            NULL::text
     FROM unnest($2::varchar[]) AS s(name)
     UNION ALL
     SELECT NULL, NULL, m.id::text FROM message_store.messages m
     WHERE m.id = ANY($3::text[]::uuid[])";

/// Every message of the group's written calls, in queue order, each with
/// its own stream and expected version: `write_message` checks them again.
const WRITE: &str = "SELECT message_store.write_message(m.id, m.stream, m.type, m.data, m.metadata, m.expected)
     FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::text[]::jsonb[], $5::text[]::jsonb[], $6::bigint[])
          AS m(id, stream, type, data, metadata, expected)";

type Sql<T> = Result<T, sqlx::Error>;

/// What the check read: each stream's version (absent: no stream) and the
/// stored ids among the group's.
pub(crate) struct Found {
    pub(crate) versions: HashMap<String, i64>,
    pub(crate) stored: HashSet<Uuid>,
}

/// Runs [`CHECK`]; `locks` names one stream (or the category) per lock.
pub(crate) async fn check(
    conn: &mut PgConnection,
    persistent: bool,
    locks: &[&str],
    streams: &[&str],
    ids: &[&str],
) -> Sql<Found> {
    let rows = sqlx::query(CHECK)
        .bind(locks)
        .bind(streams)
        .bind(ids)
        .persistent(persistent)
        .fetch_all(conn)
        .await?;
    let mut found = Found {
        versions: HashMap::new(),
        stored: HashSet::new(),
    };
    for row in rows {
        let stream: Option<String> = row.try_get(0)?;
        let version: Option<i64> = row.try_get(1)?;
        let id: Option<String> = row.try_get(2)?;
        match (stream, id) {
            (Some(stream), _) => {
                if let Some(version) = version {
                    found.versions.insert(stream, version);
                }
            }
            (None, Some(id)) => {
                let id = Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                found.stored.insert(id);
            }
            (None, None) => {}
        }
    }
    Ok(found)
}

/// The columns of [`WRITE`], one entry per message.
#[derive(Default)]
pub(crate) struct Rows<'a> {
    pub(crate) ids: Vec<&'a str>,
    pub(crate) streams: Vec<&'a str>,
    pub(crate) types: Vec<&'a str>,
    pub(crate) data: Vec<&'a str>,
    pub(crate) metadata: Vec<Option<&'a str>>,
    pub(crate) expected: Vec<Option<i64>>,
}

/// Runs [`WRITE`]: the position of each message, in order.
pub(crate) async fn write(
    conn: &mut PgConnection,
    persistent: bool,
    rows: &Rows<'_>,
) -> Sql<Vec<i64>> {
    sqlx::query_scalar(WRITE)
        .bind(&rows.ids)
        .bind(&rows.streams)
        .bind(&rows.types)
        .bind(&rows.data)
        .bind(&rows.metadata)
        .bind(&rows.expected)
        .persistent(persistent)
        .fetch_all(conn)
        .await
}
