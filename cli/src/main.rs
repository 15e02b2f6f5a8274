//! `message-store`: the operator's tool for a Message DB store on
//! PostgreSQL (ours or genuine), built on the library.
//!
//! It connects through `--url` or `DATABASE_URL`. Exit codes: 0 done, 1 the
//! command failed, 2 the command line is wrong (clap's), 3 the database
//! cannot be reached or holds no Message DB.

mod consumers;
mod position;
mod print;
mod summary;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
            Some(
                PostgresError::MissingMessageDb { .. }
                | PostgresError::UnsupportedVersion { .. }
                | PostgresError::SearchPath { .. },
            ) => (3, ""),
            _ => (1, ""),
        };
        Failure {
            code,
            message: format!("{error}{hint}"),
        }
    }
}

async fn connect(url: Option<&str>) -> Result<PostgresStore, Failure> {
    let Some(url) = url else {
        return Err(Failure {
            code: 3,
            message: "no database: pass --url postgres://user@host/database or set DATABASE_URL"
                .to_owned(),
        });
    };
    Ok(PostgresStore::connect(url).await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = async {
        let store = connect(cli.url.as_deref()).await?;
        match cli.command {
            Command::Print(args) => print::run(&store, args).await,
            Command::Summary(args) => summary::run(&store, args).await,
            Command::Consumers(args) => consumers::run(&store, args).await,
            Command::Position(args) => position::run(&store, args).await,
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
