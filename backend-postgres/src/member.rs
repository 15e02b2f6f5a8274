//! Category reads of a consumer-group member, through the member's partial
//! index when the schema has one ([`InstallOptions::with_consumer_group_index`](crate::InstallOptions::with_consumer_group_index)).
//!
//! `get_category_messages` can use that index only with a plan made for the
//! call's own member and size, so it plans every call afresh and then
//! materializes its rows before the first is sent. Where the member's index
//! exists, the store instead sends the function's own member query with
//! the member and size written in as constants: one prepared statement per
//! member that matches the index's predicate with a generic plan the
//! connection keeps, streaming its rows. It is the same query (filters,
//! order, limit), so it gives the same answers; the store reads through
//! the function wherever the index is missing (genuine Message DB, a size
//! not indexed), and inside units of work.
//!
//! Whether a member's index exists is looked up once per store and member
//! (`to_regclass`, which needs no privilege) and kept: an index created
//! while the store runs is used by stores connected after it. The kept
//! plan runs with the session's planner settings, not the function's;
//! checked with `EXPLAIN` on a million-message category, it is the walk of
//! the member's index in order, stopping at the batch size.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use message_store::{Category, CategoryRead, ConsumerGroup, Message};
use sqlx::postgres::{PgArguments, PgConnection, PgRow, Postgres};
use sqlx::query::Query;

use crate::{convert, rows, statements};

type Sql<T> = Result<T, sqlx::Error>;

/// Which members' partial indexes exist, as far as looked up.
#[derive(Debug, Default)]
pub(crate) struct MemberIndexes {
    known: Mutex<HashMap<(u32, u32), bool>>,
}

impl MemberIndexes {
    fn known(&self, group: ConsumerGroup) -> Option<bool> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.get(&(group.size(), group.member())).copied()
    }

    fn note(&self, group: ConsumerGroup, exists: bool) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.insert((group.size(), group.member()), exists);
    }
}

/// The name the installer gives a member's index.
fn index_name(group: ConsumerGroup) -> String {
    format!(
        "message_store.messages_group_{}_{}",
        group.size(),
        group.member()
    )
}

/// `get_category_messages`' member query with the member and size as
/// constants (the index's predicate, word for word); `$4` is the
/// correlation when `correlated`.
fn member_sql(group: ConsumerGroup, correlated: bool) -> String {
    let correlation = if correlated {
        "AND message_store.category(m.metadata->>'correlationStreamName') = $4\n       "
    } else {
        ""
    };
    format!(
        "SELECT m.id::varchar, m.stream_name::varchar, m.type::varchar, m.position, m.global_position,
            m.data::varchar, m.metadata::varchar, m.time
       FROM message_store.messages m
       WHERE (message_store.category(m.stream_name), m.global_position) >= ($1, $2)
         AND message_store.category(m.stream_name) <= $1
       {correlation}AND @message_store.hash_64(message_store.cardinal_id(m.stream_name)) % {size} = {member}
       ORDER BY message_store.category(m.stream_name), m.global_position
       LIMIT $3",
        size = group.size(),
        member = group.member(),
    )
}

/// The member statement of `options`' consumer group, if it has one and
/// its member's index exists (looked up once); `None`: read through
/// `get_category_messages`.
async fn member_statement(
    conn: &mut PgConnection,
    persistent: bool,
    indexes: &MemberIndexes,
    options: &CategoryRead,
) -> Sql<Option<String>> {
    let Some(group) = options.consumer_group() else {
        return Ok(None);
    };
    let indexed = match indexes.known(group) {
        Some(indexed) => indexed,
        None => {
            let indexed = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(index_name(group))
                .persistent(persistent)
                .fetch_one(&mut *conn)
                .await?;
            indexes.note(group, indexed);
            indexed
        }
    };
    Ok(indexed.then(|| member_sql(group, options.correlation().is_some())))
}

/// The member query of `group` with `options`' values bound.
fn member_query<'q>(
    persistent: bool,
    sql: &'q str,
    category: &'q Category,
    options: &'q CategoryRead,
) -> Query<'q, Postgres, PgArguments> {
    let limit = options.batch_size().limit().map(convert::to_bigint);
    let mut query = sqlx::query(sql)
        .bind(category.as_str())
        .bind(convert::to_bigint(options.position()))
        .bind(limit);
    if let Some(correlation) = options.correlation() {
        query = query.bind(correlation);
    }
    query.persistent(persistent)
}

/// The rows of a page of `category` (options already validated): a
/// member's through its index when it has one, anything else through
/// `get_category_messages`.
pub(crate) async fn read_category(
    conn: &mut PgConnection,
    persistent: bool,
    indexes: &MemberIndexes,
    category: &Category,
    options: &CategoryRead,
) -> Sql<Vec<PgRow>> {
    match member_statement(conn, persistent, indexes, options).await? {
        Some(sql) => {
            let query = member_query(persistent, &sql, category, options);
            query.fetch_all(conn).await
        }
        None => statements::read_category(conn, persistent, category, options).await,
    }
}

/// [`read_category`], each message decoded as its row arrives: a member's
/// index scan sends each row as it finds it, so the decoding keeps pace
/// with the server instead of following it.
pub(crate) async fn read_category_messages(
    conn: &mut PgConnection,
    persistent: bool,
    indexes: &MemberIndexes,
    category: &Category,
    options: &CategoryRead,
) -> Sql<Vec<Message>> {
    match member_statement(conn, persistent, indexes, options).await? {
        Some(sql) => {
            let query = member_query(persistent, &sql, category, options);
            let capacity = statements::expected_rows(options.batch_size());
            rows::fetch_messages(conn, query, capacity).await
        }
        None => statements::read_category_messages(conn, persistent, category, options).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_states_the_index_predicate() {
        let group = ConsumerGroup::new(2, 3).unwrap();
        let sql = member_sql(group, false);
        assert!(sql.contains("% 3 = 2\n"), "{sql}");
        assert!(!sql.contains("$4"), "{sql}");
        assert!(member_sql(group, true).contains("= $4"));
        assert_eq!(index_name(group), "message_store.messages_group_3_2");
    }
}
