//! `message-store`: the operator's tool for a Message DB store on
//! PostgreSQL (ours or genuine), built on the library.
//!
//! It connects through `--url` or `DATABASE_URL`. Exit codes: 0 done, 1 the
//! command failed, 2 the command line is wrong (clap's), 3 the database
//! cannot be reached or holds no Message DB.

mod consumers;
mod install;
mod parked;
mod position;
mod print;
mod style;
mod summary;
mod trace;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::str::FromStr;
use std::time::Duration;

use message_store_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use message_store_postgres::sqlx::{self, Connection, PgConnection, PgPool};
use message_store_postgres::{PostgresError, PostgresStore};

/// The operator's tool for a Message DB store on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "message-store", version)]
struct Cli {
    /// The database, e.g. postgres://message_store@localhost/message_store.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Installs message-store's Message DB-compatible schema (a genuine
    /// Message DB already there is left untouched).
    Install(install::Args),
    /// Checks the store: version, table, functions, indexes, notify
    /// trigger, privileges (ours or genuine Message DB).
    Verify(verify::Args),
    /// Prints the messages of a stream (a name with `-`) or a category.
    Print(print::Args),
    /// Counts messages by stream, type or category (Message DB's summary views).
    Summary(summary::Args),
    /// Lists the consumers found through their position streams: position,
    /// lag, parked messages, last update.
    Consumers(consumers::Args),
    /// Moves a consumer's recorded position: to the beginning, the end, a
    /// global position or a time (refused while it looks alive, without --yes).
    Position(position::Args),
    /// Lists, shows and purges the messages a consumer parked.
    #[command(subcommand)]
    Parked(parked::Command),
    /// Shows the causation tree around a message, or a correlation's messages.
    Trace(trace::Args),
}

/// A failure, with the exit code it ends the process with.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The command failed.
    pub(crate) fn command(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// The database cannot be reached or holds no Message DB.
    pub(crate) fn no_store(message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<message_store::Error> for Failure {
    fn from(error: message_store::Error) -> Failure {
        let source = match &error {
            message_store::Error::Backend { source }
            | message_store::Error::Transient { source } => source.downcast_ref::<PostgresError>(),
            _ => None,
        };
        let (code, hint) = match source {
            Some(PostgresError::Connect { .. } | PostgresError::ConnectTimeout { .. }) => (
                3,
                "; check the URL, and that PostgreSQL runs and accepts this role",
            ),
            Some(PostgresError::MissingMessageDb { .. }) => {
                (3, "; from here: `message-store install`")
            }
            Some(PostgresError::UnsupportedVersion { .. } | PostgresError::SearchPath { .. }) => {
                (3, "")
            }
            _ => (1, ""),
        };
        Failure {
            code,
            message: format!("{error}{hint}"),
        }
    }
}

fn url(url: Option<&str>) -> Result<&str, Failure> {
    url.ok_or_else(|| {
        Failure::no_store(
            "no database: pass --url postgres://user@host/database or set DATABASE_URL",
        )
    })
}

/// The store at `url`, which must hold Message DB.
async fn connect(url: Option<&str>) -> Result<PostgresStore, Failure> {
    Ok(PostgresStore::connect(self::url(url)?).await?)
}

/// A plain connection to `url`, for the commands that look at (or create)
/// the schema itself.
async fn pool(url: Option<&str>) -> Result<PgPool, Failure> {
    let unreachable = |e: sqlx::Error| {
        Failure::no_store(format!(
            "cannot connect: {e}; check the URL, and that PostgreSQL runs and accepts this role"
        ))
    };
    let options = PgConnectOptions::from_str(self::url(url)?).map_err(unreachable)?;
    // One connection first, for the server's own reason when it fails (a
    // pool reports only that it timed out).
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(unreachable)?;
    probe.close().await.ok();
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(unreachable)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = async {
        let url = cli.url.as_deref();
        match cli.command {
            Command::Install(args) => install::run(&pool(url).await?, args).await,
            Command::Verify(args) => verify::run(&pool(url).await?, args).await,
            Command::Print(args) => print::run(&connect(url).await?, args).await,
            Command::Summary(args) => summary::run(&connect(url).await?, args).await,
            Command::Consumers(args) => consumers::run(&connect(url).await?, args).await,
            Command::Position(args) => position::run(&connect(url).await?, args).await,
            Command::Parked(command) => parked::run(&connect(url).await?, command).await,
            Command::Trace(args) => trace::run(&connect(url).await?, args).await,
        }
    }
    .await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("message-store: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
