//! Opening a store: connection and pool options, the connect timeout, the
//! checks made once (Message DB's version, the search path, the NOTIFY
//! trigger), and errors that give the cause of a failed connection.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use message_store::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::error::PostgresError;
use crate::notify::Notifier;
use crate::pooler::run;
use crate::statements;
use crate::warm::Warm;
use crate::{version_supported, Inner, PostgresStore, SUPPORTED_VERSIONS};

/// How long [`PostgresStore::connect`] waits for a connection (and for the
/// pool to hand one out) before it fails: 5 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn with_search_path(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("search_path", "message_store,public")])
}

/// `host:port/database as role`, without credentials.
pub(crate) fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{} as {}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)"),
        options.get_username()
    )
}

impl PostgresStore {
    /// Connection options for `url` with `message_store` on the search path,
    /// for building a pool of your own to pass to [`PostgresStore::from_pool`].
    pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
        let options = PgConnectOptions::from_str(url).map_err(Error::backend)?;
        Ok(with_search_path(options))
    }

    /// Connects to `url` and checks the Message DB version. The pool holds up
    /// to 10 connections and does not ping a connection before each use (that
    /// would double the round trips of every call); a connection found dead
    /// is replaced, and a read whose connection broke is retried, up to one
    /// attempt more than the pool has connections (so that every stale
    /// connection in it can be found dead and replaced). Connecting
    /// fails after [`DEFAULT_CONNECT_TIMEOUT`], with the cause (connection
    /// refused, unknown host, authentication, no reply); set another timeout
    /// with [`PostgresStore::connect_with`] and the pool's `acquire_timeout`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(Self::connect_options(url)?, Self::pool_options()).await
    }

    /// The pool options [`PostgresStore::connect`] uses: up to 10
    /// connections, no ping before use, and an `acquire_timeout` of
    /// [`DEFAULT_CONNECT_TIMEOUT`] (the longest a call waits for a
    /// connection, a new one included, and the store's connect timeout).
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .acquire_timeout(DEFAULT_CONNECT_TIMEOUT)
    }

    /// Connects with explicit connection and pool options (the search path
    /// is added). The pool's `acquire_timeout` is the connect timeout.
    pub async fn connect_with(options: PgConnectOptions, pool: PgPoolOptions) -> Result<Self> {
        let pool = pool.connect_lazy_with(with_search_path(options));
        Self::from_pool(pool).await
    }

    /// Uses an existing pool, whose connections must have `message_store` on
    /// their search path (see [`PostgresStore::connect_options`]); checks the
    /// Message DB version.
    ///
    /// When the pool holds no connection yet, one connection is opened
    /// first, outside the pool and within the pool's `acquire_timeout`, so
    /// that a failure reports its cause rather than a pool timeout.
    ///
    /// With our schema's NOTIFY trigger, the first subscription opens one
    /// more connection, outside the pool, for LISTEN: count it when sizing
    /// the server's `max_connections`.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        Self::open(pool, false).await
    }

    /// Connects to `url` through a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`), where consecutive round trips may reach
    /// different server connections: every call runs as one explicit
    /// transaction of unnamed statements (four round trips instead of one),
    /// and subscriptions poll, since `LISTEN` needs a session. Reads,
    /// writes, subscriptions, consumers and fleets work unchanged: none of
    /// them keeps session state.
    ///
    /// The pooler must give server connections `message_store` on their
    /// search path, since PgBouncer does not pass on the `options` startup
    /// parameter: set it on the role (`ALTER ROLE message_store SET
    /// search_path = message_store, public`) or with PgBouncer's
    /// `connect_query`; the store checks it and says so if not. sqlx sends
    /// `extra_float_digits` at startup: list it in PgBouncer's
    /// `ignore_startup_parameters`.
    pub async fn connect_behind_pooler(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(Error::backend)?;
        Self::from_pool_behind_pooler(Self::pool_options().connect_lazy_with(options)).await
    }

    /// [`PostgresStore::from_pool`] for a pool whose connections go through a
    /// pooler in transaction mode (see [`PostgresStore::connect_behind_pooler`]).
    pub async fn from_pool_behind_pooler(pool: PgPool) -> Result<Self> {
        Self::open(pool, true).await
    }

    async fn open(pool: PgPool, pooled: bool) -> Result<Self> {
        let options = pool.connect_options();
        let description = format!("PostgreSQL message store at {}", describe(&options));
        let database = options.get_database().unwrap_or_default().to_owned();
        let role = options.get_username().to_owned();
        let timeout = pool.options().get_acquire_timeout();
        if pool.size() == 0 {
            probe(&options, timeout).await?;
        }

        // One connection for both checks, each as a call runs (see `pooler`).
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| crate::retry::classify(e, None))?;
        let version = run!(
            pooled,
            conn,
            |c, persistent| statements::message_db_version(c, persistent)
        )
        .map_err(
            |e| match e.as_database_error().and_then(|d| d.code()).as_deref() {
                Some("42883" | "3F000") => PostgresError::MissingMessageDb {
                    database: database.clone(),
                    detail: e.to_string(),
                }
                .into(),
                Some("42501") => PostgresError::PermissionDenied {
                    role: role.clone(),
                    detail: e.to_string(),
                }
                .into(),
                _ => crate::retry::classify(e, None),
            },
        )?;
        if !version_supported(&version) {
            return Err(PostgresError::UnsupportedVersion {
                found: version,
                needed: SUPPORTED_VERSIONS,
            }
            .into());
        }

        let (search_path, notify, on_path) =
            run!(pooled, conn, |c, persistent| statements::settings(
                c, persistent
            ))
            .map_err(|e| crate::retry::classify(e, None))?;
        drop(conn);
        if !on_path {
            return Err(PostgresError::SearchPath { search_path }.into());
        }

        let notifier =
            (notify && !pooled).then(|| Arc::new(Notifier::new((*options).clone(), timeout)));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                warm: Warm::new(pool.clone()),
                pool,
                description,
                version,
                notifier,
                pooled,
                members: Default::default(),
            }),
            group: Some(Arc::new(crate::group::Committer::default())),
        })
    }
}

/// Opens and closes one connection within `timeout`; the error names where
/// and why: the server's answer (authentication, a missing database), the
/// I/O error (refused, unknown host, TLS), or silence.
async fn probe(options: &PgConnectOptions, timeout: Duration) -> Result<()> {
    let at = describe(options);
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(connection)) => {
            connection.close().await.ok();
            Ok(())
        }
        Ok(Err(source)) => {
            let transient = crate::retry::is_transient(&source);
            let error = PostgresError::Connect { at, source };
            Err(if transient {
                Error::transient(error)
            } else {
                Error::backend(error)
            })
        }
        Err(_elapsed) => Err(Error::transient(PostgresError::ConnectTimeout {
            at,
            timeout,
        })),
    }
}
