//! Installs a Message DB 1.3.0-compatible schema, written by us from the
//! documented behaviour, into an existing database.

use message_store::{Error, Result};
use sqlx::PgPool;

const CORE: &str = include_str!("schema/core.sql");
const PRIVILEGES: &str = include_str!("schema/privileges.sql");
const EXTRAS: &str = include_str!("schema/extras.sql");

/// The comment our installer puts on the schema, to recognise its own work.
const MARK: &str = "message-store-rs";

/// A key for the advisory lock that serialises concurrent installers.
const INSTALL_LOCK: i64 = 0x6d73_7273_696e_7374; // "msrsinst"

/// What to install besides the core schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    role: bool,
    extras: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            role: true,
            extras: false,
        }
    }
}

impl InstallOptions {
    /// The core schema and the `message_store` role with functions-only privileges.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to create the cluster-wide `message_store` role and grant it
    /// Message DB's privileges (needs CREATEROLE; default on).
    pub fn role(mut self, role: bool) -> Self {
        self.role = role;
        self
    }

    /// Whether to add the extra that never changes the function interface:
    /// the NOTIFY trigger (channel `message_store`, payload
    /// `{"category": …, "global_position": …}`) that lets subscriptions wake
    /// without polling (default off). Consumer-group and correlation reads
    /// need no extra index: our `get_category_messages` walks the category
    /// index in order and filters as it goes.
    pub fn extras(mut self, extras: bool) -> Self {
        self.extras = extras;
        self
    }
}

/// What the installer found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// Our schema was created or brought up to date.
    Installed,
    /// A Message DB schema not installed by us (for example by Message DB's
    /// own `install.sh`) was found and left untouched.
    ExistingMessageDb {
        /// What `message_store_version()` reports.
        version: String,
    },
}

/// Installs into the database `pool` connects to. Idempotent; safe to run
/// from several processes at once.
pub(crate) async fn install(pool: &PgPool, options: &InstallOptions) -> Result<InstallOutcome> {
    let mut tx = pool.begin().await.map_err(Error::backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INSTALL_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(Error::backend)?;

    let existing: Option<(Option<String>, bool)> = sqlx::query_as(
        "SELECT obj_description(n.oid, 'pg_namespace'), to_regclass('message_store.messages') IS NOT NULL
         FROM pg_namespace n WHERE n.nspname = 'message_store'",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::backend)?;
    if let Some((comment, has_table)) = existing {
        let ours = comment.as_deref().is_some_and(|c| c.starts_with(MARK));
        if has_table && !ours {
            let version: String =
                sqlx::query_scalar("SELECT message_store.message_store_version()")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap_or_else(|_| "unknown".to_owned());
            return Ok(InstallOutcome::ExistingMessageDb { version });
        }
    }

    for script in [
        Some(CORE),
        options.extras.then_some(EXTRAS),
        options.role.then_some(PRIVILEGES),
    ]
    .into_iter()
    .flatten()
    {
        sqlx::raw_sql(script)
            .execute(&mut *tx)
            .await
            .map_err(Error::backend)?;
    }
    tx.commit().await.map_err(Error::backend)?;
    Ok(InstallOutcome::Installed)
}
