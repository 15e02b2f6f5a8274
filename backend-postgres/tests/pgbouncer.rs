//! The fleet through PgBouncer in transaction pooling mode, where a
//! client's consecutive calls may run on different server connections and
//! session state (advisory locks, prepared statements, `LISTEN`) does not
//! hold: leases live in the store, so a fleet works the same.
//!
//! `scripts/test.sh` installs Debian's `pgbouncer` if needed, starts it on
//! 127.0.0.1 in transaction mode in front of the test server and sets
//! `MESSAGE_STORE_PGBOUNCER_PORT`; without it these tests skip, except
//! under `CI=true`. The store connects with
//! `PostgresStore::from_pool_behind_pooler`: sqlx's named prepared
//! statements cannot pass PgBouncer 1.18 in transaction mode (a name made on
//! one server connection is missing, or already taken, on the next), and
//! its unnamed ones are parsed in one round trip and run in the next, so
//! each call is its own transaction. The search path comes from PgBouncer's
//! `connect_query`, since it does not pass on the `options` startup parameter.

mod support;

use std::sync::Arc;

use message_store::{ExpectedVersion, MessageStore, MessageStoreExt, NewMessage};
use message_store_conformance::cases;
use message_store_conformance::support::unique_stream;
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::Variant;

fn pgbouncer_port() -> Option<u16> {
    match std::env::var("MESSAGE_STORE_PGBOUNCER_PORT") {
        Ok(port) => Some(
            port.parse()
                .expect("MESSAGE_STORE_PGBOUNCER_PORT is a port"),
        ),
        Err(_) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "MESSAGE_STORE_PGBOUNCER_PORT is not set (CI=true, so this fails instead of skipping); scripts/test.sh starts PgBouncer and sets it"
            );
            eprintln!("skipping: MESSAGE_STORE_PGBOUNCER_PORT is not set; scripts/test.sh starts PgBouncer");
            None
        }
    }
}

/// A store on the variant's database, through PgBouncer.
async fn through_pgbouncer(variant: Variant) -> Option<Arc<dyn MessageStore>> {
    let port = pgbouncer_port()?;
    let options = support::options(variant)
        .await?
        .host("127.0.0.1")
        .port(port);
    let pool = PostgresStore::pool_options()
        .max_connections(5)
        .connect_lazy_with(options);
    let store = PostgresStore::from_pool_behind_pooler(pool)
        .await
        .unwrap_or_else(|e| {
            panic!("connecting to the {variant:?} database through PgBouncer: {e}")
        });
    assert!(
        !store.has_notifications(),
        "LISTEN needs a session: subscriptions poll"
    );
    assert!(store.to_string().contains(&format!(":{port}/")), "{store}");
    Some(Arc::new(store))
}

/// Plain calls work through it: appends with expected versions, reads.
async fn writes_and_reads(store: &dyn MessageStore) {
    let stream = unique_stream("bounced");
    for n in 0..3u64 {
        let expected = ExpectedVersion::from_version(n.checked_sub(1));
        store
            .write_one(&stream, NewMessage::new("N", json!({ "n": n })), expected)
            .await
            .unwrap();
    }
    let read = store.read_stream_to_end(&stream).await.unwrap();
    assert_eq!(read.len(), 3);
}

macro_rules! through_pgbouncer {
    ($($case:ident),* $(,)?) => {
        through_pgbouncer!(ours, genuine, |store| store; $($case),*);
    };
    (borrowed: $($case:ident),* $(,)?) => {
        through_pgbouncer!(ours_borrowed, genuine_borrowed, |store| store.as_ref(); $($case),*);
    };
    ($ours:ident, $genuine:ident, |$store:ident| $arg:expr; $($case:ident),*) => {
        mod $ours {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some($store) = through_pgbouncer(Variant::Ours).await else { return };
                    writes_and_reads($store.as_ref()).await;
                    cases::$case($arg).await;
                }
            )*
        }
        mod $genuine {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some($store) = through_pgbouncer(Variant::Genuine).await else { return };
                    writes_and_reads($store.as_ref()).await;
                    cases::$case($arg).await;
                }
            )*
        }
    };
}

through_pgbouncer!(
    fleet_of_four_shares_a_category,
    rolling_deploy_hands_buckets_over,
    crashed_fleet_instance_loses_nothing,
    paused_fleet_instance_late_commit_is_refused,
    cut_off_fleet_instance_stops_before_the_takeover,
);

// Units of work: each is one transaction, which keeps one server
// connection through the pooler for its life.
through_pgbouncer!(
    borrowed: unit_commits_writes_to_several_streams_at_once,
    dropped_or_rolled_back_unit_leaves_nothing,
    failed_third_write_leaves_nothing,
    a_unit_sees_its_own_writes_and_nobody_else_does,
    units_writing_in_opposite_orders_end_in_one_conflict,
    units_that_lock_their_categories_first_never_deadlock,
);
