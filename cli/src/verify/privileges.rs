//! The privileges check: whether a role may do all a client needs, and
//! whether it may also change messages.

use message_store_postgres::sqlx::{self, PgPool};

use super::schema::FUNCTIONS;
use super::{check, Check, Status};

/// What `role` may do: all a client needs, and whether it may also change
/// or delete messages, which Message DB's own role may not.
pub(super) async fn privileges(
    pool: &PgPool,
    name: &'static str,
    role: &str,
    missing: &[&str],
) -> Result<Check, sqlx::Error> {
    let present: Vec<&str> = FUNCTIONS
        .into_iter()
        .filter(|f| !missing.contains(f))
        .collect();
    let mut lacking: Vec<String> = sqlx::query_scalar(
        "SELECT 'EXECUTE on ' || s FROM unnest($2::text[]) AS s
         WHERE NOT has_function_privilege($1, s, 'EXECUTE')",
    )
    .bind(role)
    .bind(&present)
    .fetch_all(pool)
    .await?;
    let (may_read, may_insert, may_sequence, may_change): (bool, bool, bool, bool) =
        sqlx::query_as(
            "SELECT has_table_privilege($1, t, 'SELECT'), has_table_privilege($1, t, 'INSERT'),
                has_sequence_privilege($1, 'message_store.messages_global_position_seq', 'USAGE'),
                has_table_privilege($1, t, 'UPDATE') OR has_table_privilege($1, t, 'DELETE')
         FROM (SELECT 'message_store.messages'::regclass AS t) AS x",
        )
        .bind(role)
        .fetch_one(pool)
        .await
        .unwrap_or((false, false, false, false));
    for (may, what) in [
        (may_read, "SELECT on message_store.messages"),
        (may_insert, "INSERT on message_store.messages"),
        (
            may_sequence,
            "USAGE on message_store.messages_global_position_seq",
        ),
    ] {
        if !may {
            lacking.push(what.to_owned());
        }
    }
    Ok(if !lacking.is_empty() {
        check(
            name,
            Status::Fail,
            format!("{role} lacks {}", lacking.join(", ")),
        )
    } else if may_change && role == "message_store" {
        check(
            name,
            Status::Warn,
            format!("{role} may also update or delete messages, which Message DB's role may not"),
        )
    } else if may_change {
        check(
            name,
            Status::Ok,
            format!("{role} may call every function (and, as an admin, change messages)"),
        )
    } else {
        check(
            name,
            Status::Ok,
            format!("{role} may call every function, and only read and write messages"),
        )
    })
}
