//! A fleet instance that crashes: its buckets move once its lease runs
//! out, and nothing is lost.

use std::sync::Arc;

use message_store::MessageStore;

use super::*;

/// Three instances on 6 buckets; one is aborted with no shutdown. Its
/// buckets are taken over within two lease durations, no message is
/// lost, and the duplicates come only from its unrecorded window.
pub async fn crashed_fleet_instance_loses_nothing(store: Arc<dyn MessageStore>) {
    let category = unique_category("fleet");
    let interval = 10;
    let first_half = write_streams(store.as_ref(), &category, 60, 5).await;
    let log = Log::default();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let instance = logging(&category, &log, interval)
            .start_fleet(store.clone(), fleet(6))
            .await
            .unwrap();
        instances.push(instance);
    }
    wait_handled(&log, first_half).await;
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;
    let crashed = instances.pop().unwrap();
    let its_buckets = crashed.health().buckets.len();
    crashed.abort();
    let aborted_at = Instant::now();
    // Handovers while the three balanced redelivered their last recorded
    // message each; the crash's duplicates are the ones after this.
    let before_crash = duplicates_in_order(&log);
    wait_balanced(&instances.iter().collect::<Vec<_>>(), 6).await;
    let moved_in = aborted_at.elapsed();
    // Its last heartbeat was at most a third of a lease before the abort;
    // the others claim at their first tick past one lease after it: within
    // a lease and two ticks, to which a loaded test machine adds some.
    assert!(moved_in < LEASE * 3, "moved in {moved_in:?}");
    // More messages, for the streams of every bucket.
    append_to_streams(store.as_ref(), &category, 60, 5).await;
    wait_handled(&log, first_half + 60).await;
    let duplicates = duplicates_in_order(&log) - before_crash;
    generations(&log);
    let mut takeovers = 0;
    for instance in instances {
        let health = instance.shutdown().await.unwrap();
        takeovers += health.takeovers;
    }
    println!(
        "crash: {} messages, 1 crash, {its_buckets} buckets moved in {moved_in:?}, {takeovers} takeovers, {duplicates} duplicates from the crash ({before_crash} from handovers before it), 0 lost",
        first_half + 60
    );
    // Each of its buckets is taken over; a machine that stalls the runtime
    // past a lease may make a live instance look expired too, and that
    // takeover redelivers like the crash's.
    assert!(takeovers >= its_buckets as u64, "{takeovers} takeovers");
    // Only what was handled from the last recorded position on comes again
    // (resuming is inclusive): at most `interval` messages per takeover.
    assert!(
        (duplicates as u64) <= takeovers * interval,
        "{duplicates} duplicates from {takeovers} takeovers of which {its_buckets} the crash's"
    );
}
