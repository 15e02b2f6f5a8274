//! `message-store verify`: whether a database holds a working Message DB
//! store (ours or genuine): its version, the messages table, the function
//! interface, the indexes reads rely on, the notify trigger, and the
//! privileges of the role connected (and of `message_store`, when another
//! role connects). Each check is ok, a warning, or a failure; any failure
//! makes the exit code 1.
//!
//! This module runs the checks and reports them; [`schema`] checks the
//! schema's objects, [`mod@privileges`] what a role may do.

mod privileges;
mod schema;

use std::io::Write;

use message_store_postgres::sqlx::{self, PgPool};
use serde_json::json;

use crate::style::Style;
use crate::Failure;

use privileges::privileges;
use schema::{functions, indexes, table, trigger};

/// What `verify` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's finding.
pub(super) struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

pub(super) fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
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
