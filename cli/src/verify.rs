//! `message-store verify`: whether a database holds a working Message DB
//! store (ours or genuine): its version, the messages table, the function
//! interface, the indexes reads rely on, the notify trigger, and the
//! privileges of the role connected (and of `message_store`, when another
//! role connects). Each check is ok, a warning, or a failure; any failure
//! makes the exit code 1.

use std::io::Write;

use message_store_postgres::sqlx::{self, PgPool};
use serde_json::json;

use crate::style::Style;
use crate::Failure;

/// Message DB 1.3's function interface, as `regprocedure` signatures.
pub(crate) const FUNCTIONS: [&str; 12] = [
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

/// What `verify` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's finding.
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

pub(crate) async fn run(pool: &PgPool, args: Args) -> Result<(), Failure> {
    let checks = checks(pool).await?;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({
                    "check": c.name,
                    "status": match c.status {
                        Status::Ok => "ok",
                        Status::Warn => "warning",
                        Status::Fail => "failed",
                    },
                    "detail": c.detail,
                })
            })
            .collect();
        writeln!(out, "{}", json!({ "ok": failed == 0, "checks": list }))
    } else {
        let style = Style::detect();
        checks.iter().try_for_each(|c| {
            let status = match c.status {
                Status::Ok => style.good("ok     "),
                Status::Warn => style.warn("warning"),
                Status::Fail => style.bad("FAILED "),
            };
            writeln!(out, "{status}  {:<11} {}", c.name, c.detail)
        })
    };
    written.map_err(|e| Failure::command(format!("writing: {e}")))?;
    if failed > 0 {
        return Err(Failure::command(format!(
            "{failed} check(s) failed; `message-store install` repairs our schema (a genuine one: Message DB's own update scripts)"
        )));
    }
    Ok(())
}

async fn checks(pool: &PgPool) -> Result<Vec<Check>, Failure> {
    let sql = |e: sqlx::Error| Failure::command(format!("verifying: {e}"));
    let schema: Option<Option<String>> = sqlx::query_scalar(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'message_store'",
    )
    .fetch_optional(pool)
    .await
    .map_err(sql)?;
    let Some(comment) = schema else {
        return Err(Failure::no_store(
            "this database has no message_store schema: install one with `message-store install`",
        ));
    };
    let mut checks = Vec::new();
    let ours = comment
        .as_deref()
        .is_some_and(|c| c.starts_with("message-store-rs"));
    let kind = if ours {
        "message-store's schema"
    } else {
        "genuine Message DB"
    };
    let version: Result<String, _> =
        sqlx::query_scalar("SELECT message_store.message_store_version()")
            .fetch_one(pool)
            .await;
    checks.push(match version {
        Ok(version) => check("version", Status::Ok, format!("{kind}, version {version}")),
        Err(e) => check("version", Status::Fail, format!("{kind}: {e}")),
    });
    checks.push(table(pool).await.map_err(sql)?);
    let (functions, missing) = functions(pool).await.map_err(sql)?;
    checks.push(functions);
    checks.extend(indexes(pool).await.map_err(sql)?);
    checks.push(trigger(pool, ours).await.map_err(sql)?);
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(pool)
        .await
        .map_err(sql)?;
    checks.push(
        privileges(pool, "privileges", &user, &missing)
            .await
            .map_err(sql)?,
    );
    let has_role: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'message_store')")
            .fetch_one(pool)
            .await
            .map_err(sql)?;
    if user != "message_store" {
        checks.push(if has_role {
            privileges(pool, "role", "message_store", &missing)
                .await
                .map_err(sql)?
        } else {
            check(
                "role",
                Status::Warn,
                "no message_store role: services connect as a role with more rights than they need",
            )
        });
    }
    Ok(checks)
}

async fn table(pool: &PgPool) -> Result<Check, sqlx::Error> {
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
async fn functions(pool: &PgPool) -> Result<(Check, Vec<&'static str>), sqlx::Error> {
    let mut missing = Vec::new();
    for signature in FUNCTIONS {
        let found: bool = sqlx::query_scalar("SELECT to_regprocedure($1) IS NOT NULL")
            .bind(signature)
            .fetch_one(pool)
            .await?;
        if !found {
            missing.push(signature);
        }
    }
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

async fn indexes(pool: &PgPool) -> Result<Vec<Check>, sqlx::Error> {
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

async fn trigger(pool: &PgPool, ours: bool) -> Result<Check, sqlx::Error> {
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

/// What `role` may do: all a client needs, and whether it may also change
/// or delete messages, which Message DB's own role may not.
async fn privileges(
    pool: &PgPool,
    name: &'static str,
    role: &str,
    missing: &[&str],
) -> Result<Check, sqlx::Error> {
    let mut lacking = Vec::new();
    for signature in FUNCTIONS.iter().filter(|f| !missing.contains(f)) {
        let may: bool = sqlx::query_scalar("SELECT has_function_privilege($1, $2, 'EXECUTE')")
            .bind(role)
            .bind(signature)
            .fetch_one(pool)
            .await?;
        if !may {
            lacking.push(format!("EXECUTE on {signature}"));
        }
    }
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
