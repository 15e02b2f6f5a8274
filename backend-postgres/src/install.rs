//! Installs a Message DB 1.3.0-compatible schema, written by us from the
//! documented behaviour, into an existing database.

use std::collections::BTreeSet;

use message_store::{Error, Result};
use sqlx::PgPool;

const CORE: &str = include_str!("schema/core.sql");
const PRIVILEGES: &str = include_str!("schema/privileges.sql");
const EXTRAS: &str = include_str!("schema/extras.sql");

/// The comment our installer puts on the schema, to recognise its own work.
const MARK: &str = "message-store-rs";

/// A key for the advisory lock that serialises concurrent installers.
const INSTALL_LOCK: i64 = 0x6d73_7273_696e_7374; // "msrsinst"

/// The largest consumer-group size [`InstallOptions::with_consumer_group_index`]
/// accepts: a size of n adds n indexes, each evaluated on every write.
pub const MAX_INDEXED_GROUP_SIZE: u32 = 64;

/// What to install besides the core schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    role: bool,
    extras: bool,
    group_sizes: BTreeSet<u32>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            role: true,
            extras: false,
            group_sizes: BTreeSet::new(),
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
    pub fn with_role(mut self, role: bool) -> Self {
        self.role = role;
        self
    }

    /// Whether to add the extra that never changes the function interface:
    /// the NOTIFY trigger (channel `message_store`, payload
    /// `{"category": …}`, one notification per transaction and category)
    /// that lets subscriptions wake without polling (default off). Running
    /// the installer again replaces an earlier version of the trigger's
    /// function. Correlation reads need no extra index:
    /// our `get_category_messages` walks the category index in order and
    /// filters as it goes.
    pub fn with_extras(mut self, extras: bool) -> Self {
        self.extras = extras;
        self
    }

    /// Indexes consumer groups of `size` members (2 to
    /// [`MAX_INDEXED_GROUP_SIZE`]; call once per size your consumers use).
    ///
    /// Without it, a member's read walks the whole category from its start
    /// position and hashes every stream name on the way to keep its share
    /// (about 1/size) of the messages. With it, each member has a partial
    /// index of the category holding only its streams, which the planner
    /// picks for exactly that size. [`PostgresStore`](crate::PostgresStore)
    /// reads such a member's pages with the function's member query itself,
    /// the member and size as constants, so the plan is kept and rows stream
    /// as they are found: a member's page costs less than an unfiltered one
    /// through the function. Each index costs an MD5 per write, so index the sizes in
    /// use, not every size. Building them on a populated table blocks
    /// writes while they build (about 1.5 s per million messages measured
    /// here); the function interface does not change.
    pub fn with_consumer_group_index(mut self, size: u32) -> Self {
        self.group_sizes.insert(size);
        self
    }

    /// Whether the role is created and granted.
    pub fn role(&self) -> bool {
        self.role
    }

    /// Whether the extras are installed.
    pub fn extras(&self) -> bool {
        self.extras
    }

    /// The consumer-group sizes to index, smallest first.
    pub fn consumer_group_indexes(&self) -> impl Iterator<Item = u32> + '_ {
        self.group_sizes.iter().copied()
    }

    /// The statement creating the missing consumer-group indexes, if any are asked for.
    fn group_index_sql(&self) -> Result<Option<String>> {
        if self.group_sizes.is_empty() {
            return Ok(None);
        }
        let mut sql = String::from("DO $install$\nBEGIN\n");
        for &size in &self.group_sizes {
            if !(2..=MAX_INDEXED_GROUP_SIZE).contains(&size) {
                return Err(Error::InvalidOption {
                    option: "consumer_group_index",
                    problem: format!(
                        "a consumer-group size to index must be 2 to {MAX_INDEXED_GROUP_SIZE}, got {size}"
                    ),
                });
            }
            for member in 0..size {
                // Created only when missing, like the core indexes. The
                // predicate is get_category_messages' member filter with the
                // size and member as constants, so the planner matches it.
                let name = format!("messages_group_{size}_{member}");
                sql.push_str(&format!(
                    "  IF to_regclass('message_store.{name}') IS NULL THEN\n    CREATE INDEX {name} ON message_store.messages \
                     (message_store.category(stream_name), global_position)\n      \
                     WHERE @message_store.hash_64(message_store.cardinal_id(stream_name)) % {size} = {member};\n  END IF;\n"
                ));
            }
        }
        sql.push_str("END\n$install$;\n");
        Ok(Some(sql))
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
    let group_indexes = options.group_index_sql()?;
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
        group_indexes.as_deref(),
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
