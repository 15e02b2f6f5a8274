//! Benchmarks: each workload on the memory store and on PostgreSQL, with the
//! PostgreSQL ceilings measured by pgbench in the same run, printed as a
//! table of medians with ratios and as one `BENCH {json}` line per figure.
//!
//! `bash scripts/bench.sh` prepares the databases and runs it; by itself:
//! `cargo run --release -p message-store-examples --bin bench -- --help`.

mod backends;
mod decode;
mod memory;
mod pgbench;
mod postgres;
mod report;
mod workload;

use std::str::FromStr;

use message_store_postgres::sqlx::postgres::PgConnectOptions;

use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "message-store benchmarks")]
struct Args {
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Scale factor for data sizes (1 = the sizes for memory; smaller for a quick look).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    scale: u64,
    /// No PostgreSQL: only the memory (and, in `backends`, SQLite) figures.
    #[arg(long)]
    memory_only: bool,
    /// Only these groups of figures (repeatable): memory (with client-side
    /// decoding), backends (the same workloads on memory, SQLite and
    /// PostgreSQL side by side), writes, reads, consumers, fleet, units, idle.
    #[arg(long, value_parser = ["memory", "backends", "writes", "reads", "consumers", "fleet", "units", "idle"])]
    only: Vec<String>,
    /// A PostgreSQL role that may create databases; the benchmark creates and drops its own.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    /// Run on Tokio's current-thread runtime instead of the multi-threaded one
    /// (fewer context switches per call: ~1.3 against ~4 measured, but no
    /// overlap of decoding with I/O).
    #[arg(long)]
    current_thread: bool,
    /// Genuine Message DB's database/install.sh (`npm pack @eventide/message-db`).
    #[arg(
        long,
        env = "MESSAGE_DB_INSTALL",
        default_value = "target/message-db/package/database/install.sh"
    )]
    message_db_install: String,
}

fn main() {
    let args = Args::parse();
    let runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .expect("a Tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let wanted = |group: &str| args.only.is_empty() || args.only.iter().any(|g| g == group);
    let mut figures = Vec::new();
    if wanted("memory") {
        figures.extend(memory::run(args.runs, args.scale).await);
        figures.extend(decode::run(args.runs, args.scale));
    }
    if args.memory_only && wanted("backends") {
        figures.extend(backends::run(args.runs, args.scale, None).await);
    }
    let postgres_groups = [
        "backends",
        "writes",
        "reads",
        "consumers",
        "fleet",
        "units",
        "idle",
    ];
    if !args.memory_only && postgres_groups.iter().any(|g| wanted(g)) {
        let admin =
            PgConnectOptions::from_str(&args.admin_url).expect("--admin-url is a PostgreSQL URL");
        eprintln!("creating and loading the benchmark databases...");
        let databases =
            postgres::Databases::create(admin, &args.message_db_install, args.scale).await;
        figures.extend(postgres::run(&databases, args.runs, args.scale, &wanted).await);
        databases.drop().await;
    }
    report::print(&figures);
}
