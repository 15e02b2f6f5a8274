//! The checks of the schema's objects: the messages table, Message DB's
//! function interface, the indexes reads rely on, the notify trigger.

use message_store_postgres::sqlx::{self, PgPool};

use super::{check, Check, Status};

/// Message DB 1.3's function interface, as `regprocedure` signatures.
pub(super) const FUNCTIONS: [&str; 12] = [
    "message_store.acquire_lock(varchar)",
    "message_store.cardinal_id(varchar)",
    "message_store.category(varchar)",
    "message_store.get_category_messages(varchar, bigint, bigint, varchar, bigint, bigint, varchar)",
    "message_store.get_last_stream_message(varchar, varchar)",
    "message_store.get_stream_messages(varchar, bigint, bigint, varchar)",
    "message_store.hash_64(varchar)",
    "message_store.id(varchar)",
    "message_store.is_category(varchar)",
    "message_store.message_store_version()",
    "message_store.stream_version(varchar)",
    "message_store.write_message(varchar, varchar, varchar, jsonb, jsonb, bigint)",
];

/// The messages table's columns and their types.
const COLUMNS: [(&str, &str); 8] = [
    ("id", "uuid"),
    ("stream_name", "text"),
    ("type", "text"),
    ("position", "bigint"),
    ("global_position", "bigint"),
    ("data", "jsonb"),
    ("metadata", "jsonb"),
    ("time", "timestamp without time zone"),
];

/// The indexes reads rely on: name, unique, what the definition must hold
/// (as [`bare`] leaves it).
const INDEXES: [(&str, bool, &str); 3] = [
    ("messages_id", true, "btree id"),
    ("messages_stream", true, "btree stream_name, \"position\""),
    (
        "messages_category",
        false,
        "btree categorystream_name, global_position",
    ),
];

/// An index definition without casts, schema names and parentheses, which
/// differ between installers and server versions.
fn bare(definition: &str) -> String {
    definition
        .replace("::character varying", "")
        .replace("::text", "")
        .replace("message_store.", "")
        .replace(['(', ')'], "")
}

pub(super) async fn table(pool: &PgPool) -> Result<Check, sqlx::Error> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = 'message_store' AND table_name = 'messages'",
    )
    .fetch_all(pool)
    .await?;
    if columns.is_empty() {
        return Ok(check(
            "table",
            Status::Fail,
            "message_store.messages is missing (or not visible to this role)",
        ));
    }
    let wrong: Vec<String> = COLUMNS
        .iter()
        .filter(|(name, ty)| !columns.iter().any(|(n, t)| n == name && t == ty))
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    let rows: i64 =
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM message_store.messages")
            .fetch_one(pool)
            .await
            .unwrap_or(-1);
    Ok(if wrong.is_empty() {
        let head = match rows {
            -1 => "its head is not readable by this role".to_owned(),
            0 => "no messages yet".to_owned(),
            n => format!("head at global position {n}"),
        };
        check(
            "table",
            Status::Ok,
            format!("message_store.messages, {head}"),
        )
    } else {
        check(
            "table",
            Status::Fail,
            format!(
                "message_store.messages lacks or mistypes: {}",
                wrong.join(", ")
            ),
        )
    })
}

/// The function check, and the functions missing (whose privileges are not checked).
pub(super) async fn functions(pool: &PgPool) -> Result<(Check, Vec<&'static str>), sqlx::Error> {
    let absent: Vec<String> = sqlx::query_scalar(
        "SELECT s FROM unnest($1::text[]) AS s WHERE to_regprocedure(s) IS NULL",
    )
    .bind(FUNCTIONS.as_slice())
    .fetch_all(pool)
    .await?;
    let missing: Vec<&'static str> = FUNCTIONS
        .into_iter()
        .filter(|f| absent.iter().any(|a| a == f))
        .collect();
    let check = if missing.is_empty() {
        check(
            "functions",
            Status::Ok,
            format!("all {} of Message DB's interface", FUNCTIONS.len()),
        )
    } else {
        check(
            "functions",
            Status::Fail,
            format!("missing: {}", missing.join(", ")),
        )
    };
    Ok((check, missing))
}

pub(super) async fn indexes(pool: &PgPool) -> Result<Vec<Check>, sqlx::Error> {
    let found: Vec<(String, bool, bool, String)> = sqlx::query_as(
        "SELECT c.relname::text, i.indisunique, i.indisvalid, pg_get_indexdef(i.indexrelid)
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'message_store'",
    )
    .fetch_all(pool)
    .await?;
    let mut checks = Vec::new();
    for (name, unique, holds) in INDEXES {
        let finding = match found.iter().find(|(n, ..)| n == name) {
            None => (
                Status::Fail,
                format!("{name} is missing: reads scan the whole table"),
            ),
            Some((_, _, false, _)) => (
                Status::Fail,
                format!("{name} is invalid (a failed build): rebuild it"),
            ),
            Some((_, u, _, def)) if *u != unique || !bare(def).contains(holds) => (
                Status::Warn,
                format!("{name} differs from Message DB's: {def}"),
            ),
            Some(_) => (
                Status::Ok,
                format!("{name}{}", if unique { " (unique)" } else { "" }),
            ),
        };
        checks.push(check("index", finding.0, finding.1));
    }
    let groups = found
        .iter()
        .filter(|(n, ..)| n.starts_with("messages_group_"))
        .count();
    if groups > 0 {
        checks.push(check(
            "index",
            Status::Ok,
            format!("{groups} consumer-group member indexes"),
        ));
    }
    Ok(checks)
}

pub(super) async fn trigger(pool: &PgPool, ours: bool) -> Result<Check, sqlx::Error> {
    let enabled: Option<String> = sqlx::query_scalar(
        "SELECT tgenabled::text FROM pg_trigger
         WHERE tgrelid = to_regclass('message_store.messages') AND tgname = 'message_store_notify'",
    )
    .fetch_optional(pool)
    .await?;
    Ok(match enabled.as_deref() {
        Some("D") => check(
            "trigger",
            Status::Warn,
            "message_store_notify is disabled: subscriptions poll",
        ),
        Some(_) => check(
            "trigger",
            Status::Ok,
            "message_store_notify: subscriptions are woken by NOTIFY",
        ),
        None if ours => check(
            "trigger",
            Status::Warn,
            "no notify trigger: subscriptions poll (add it with `message-store install --notify`)",
        ),
        None => check(
            "trigger",
            Status::Ok,
            "none (genuine Message DB has none): subscriptions poll",
        ),
    })
}
