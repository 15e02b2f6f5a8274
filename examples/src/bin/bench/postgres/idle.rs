//! What idle subscriptions cost the server: 10 and 100 caught-up
//! subscriptions (quiet categories, default options) held for a window,
//! measured as the database's committed transactions per second and the
//! CPU its backends used per second, on our schema (woken by NOTIFY, a
//! fallback read every 5 s) next to genuine Message DB (polling every
//! 100 ms, the only way there), and genuine again with an idle backoff to
//! 1 s.

use std::time::{Duration, Instant};

use message_store::{Category, MessageStore, SubscribeOptions};
use message_store_postgres::sqlx::{self, ConnectOptions, PgConnection};
use message_store_postgres::PostgresStore;
use uuid::Uuid;

use super::Databases;
use crate::report::Figure;

/// How long each count of idle subscriptions is measured.
const WINDOW: Duration = Duration::from_secs(10);

/// What one window cost the server.
struct Cost {
    transactions_per_second: f64,
    cpu_seconds_per_second: f64,
}

/// The idle figures, for 10 and 100 subscriptions, one window each.
pub(super) async fn run(
    databases: &Databases,
    ours: &PostgresStore,
    genuine: &PostgresStore,
) -> Vec<Figure> {
    let mut figures = Vec::new();
    for count in [10, 100] {
        let defaults = SubscribeOptions::new();
        let on_ours = idle(databases, &databases.ours, ours, count, &defaults).await;
        let on_genuine = idle(databases, &databases.genuine, genuine, count, &defaults).await;
        let target = if count == 100 { "<= 30 tx/s" } else { "" };
        figures.push(
            Figure::new(
                format!("{count} idle subscriptions, server transactions/s"),
                "postgres ours",
                "tx/s",
                vec![on_ours.transactions_per_second],
            )
            .reference("genuine (polling)", on_genuine.transactions_per_second)
            .target(target)
            .lower_is_better(),
        );
        figures.push(
            Figure::new(
                format!("{count} idle subscriptions, server CPU"),
                "postgres ours",
                "cpu s/s",
                vec![on_ours.cpu_seconds_per_second],
            )
            .reference("genuine (polling)", on_genuine.cpu_seconds_per_second)
            .lower_is_better(),
        );
    }
    let backing_off = SubscribeOptions::new().with_idle_backoff(Duration::from_secs(1));
    let polling = figures[2].reference.as_ref().map_or(0.0, |(_, v)| *v);
    let backed_off = idle(databases, &databases.genuine, genuine, 100, &backing_off).await;
    figures.push(
        Figure::new(
            "100 idle subscriptions, idle backoff to 1 s, tx/s",
            "postgres genuine",
            "tx/s",
            vec![backed_off.transactions_per_second],
        )
        .reference("polling every 100 ms", polling)
        .lower_is_better(),
    );
    figures
}

/// Holds `count` caught-up subscriptions on `store` (database `name`) for
/// one window and measures what the server spent meanwhile.
async fn idle(
    databases: &Databases,
    name: &str,
    store: &PostgresStore,
    count: usize,
    options: &SubscribeOptions,
) -> Cost {
    let run = Uuid::new_v4().simple().to_string();
    let mut tasks = Vec::new();
    for n in 0..count {
        let category = Category::new(format!("benchIdle{run}x{n}")).unwrap();
        let mut subscription = store.subscribe(&category, options.clone()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            // Nothing is written: this waits for the whole window.
            let _ = subscription.next_batch().await;
        }));
    }
    // Let every subscription make its first read and settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut admin = databases
        .admin
        .clone()
        .database(name)
        .connect()
        .await
        .unwrap();
    let (transactions, cpu) = (
        committed(&mut admin, name).await,
        cpu_seconds(&mut admin, name).await,
    );
    let start = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (transactions_after, cpu_after) = (
        committed(&mut admin, name).await,
        cpu_seconds(&mut admin, name).await,
    );
    for task in tasks {
        task.abort();
    }
    Cost {
        // The two statistics reads are the admin connection's own.
        transactions_per_second: (transactions_after - transactions).saturating_sub(2) as f64
            / elapsed,
        cpu_seconds_per_second: (cpu_after - cpu).max(0.0) / elapsed,
    }
}

/// The database's committed transactions so far, as the cumulative
/// statistics have them. A backend reports its counts at most once a
/// second, and an idle one within ten: in a steady state what is not yet
/// reported at the window's start and at its end is about the same.
async fn committed(admin: &mut PgConnection, name: &str) -> u64 {
    sqlx::query_scalar::<_, i64>("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(name)
        .fetch_one(admin)
        .await
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// The CPU time (user and system, in seconds) the database's backends have
/// used so far, from `/proc/{pid}/stat` of each (the server runs on this
/// machine in the benchmark's setup).
async fn cpu_seconds(admin: &mut PgConnection, name: &str) -> f64 {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(admin)
    .await
    .unwrap_or_default();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name, which is in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / ticks_per_second)
        })
        .sum()
}
