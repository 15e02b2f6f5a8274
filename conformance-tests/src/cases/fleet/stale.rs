//! Stale owners: an instance that pauses whole (a stopped process, a long
//! GC) while a handler runs, whose late commit is refused; and one cut off
//! from the store, which stops its handler before anyone takes over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use message_store::{MessageStore, MessageStoreExt};
use message_store_consumer::fleet::{FleetHealth, CLAIMED};
use message_store_consumer::HandlerResult;

use super::bridge::OnRuntime;
use super::*;
use crate::faults::FailingStore;

/// Five messages in one stream of a one-bucket fleet.
async fn one_stream(store: &dyn MessageStore) -> Category {
    let category = unique_category("fleet");
    let account = stream(&category, "1");
    for n in 0..5 {
        store
            .write_one(&account, numbered("Numbered", n), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    category
}

/// Starts the other instance, and waits until it has taken the bucket over
/// and handled the stream's end.
async fn take_over(store: &Arc<dyn MessageStore>, category: &Category, log: &Log) -> FleetHandle {
    let other = logging(category, log, 1)
        .start_fleet(store.clone(), fleet(1))
        .await
        .unwrap();
    wait_until("the other instance handled the stream's end", || {
        handled_by(log, other.instance()).contains(&4)
    })
    .await;
    other
}

/// The positions an instance handled, in order.
fn handled_by(log: &Log, instance: &str) -> Vec<u64> {
    log.entries()
        .iter()
        .filter(|h| h.instance == instance)
        .map(|h| h.position)
        .collect()
}

/// An instance runs on a thread of its own, and its handler of position 2
/// blocks that thread: the whole instance stops, heartbeats and timers
/// too, as a stopped process does. Its lease runs out; another instance
/// claims the bucket and delivers again from the last recorded position.
/// When the paused one wakes, its handler finishes, but nothing it then
/// writes lands: its commit is refused (or its own fence cuts it first),
/// and it stops handling the bucket.
pub async fn paused_fleet_instance_late_commit_is_refused(store: Arc<dyn MessageStore>) {
    let category = one_stream(store.as_ref()).await;
    let log = Log::default();
    let instance_id = Arc::new(Mutex::new(String::new()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The paused instance's thread waits on this until the other instance
    // has taken over and handled the stream's end.
    let (wake, woken) = std::sync::mpsc::channel::<()>();
    let woken = Arc::new(Mutex::new(woken));
    // Its store calls run on this runtime, so the connections it shares
    // with the other instance stay served while its own thread is stopped.
    let its_store = OnRuntime {
        inner: store.clone(),
        runtime: tokio::runtime::Handle::current(),
        refused: Arc::default(),
    };
    let refused = its_store.refused.clone();
    let paused = {
        let (category, log, instance_id) = (category.clone(), log.clone(), instance_id.clone());
        let woken = woken.clone();
        std::thread::spawn(move || -> FleetHealth {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let handler_log = log.clone();
                let woken = woken.clone();
                let consumer = Consumer::new(category)
                    .with_options(consumer_options(1))
                    .on_any(move |message: Message| {
                        let (log, woken) = (handler_log.clone(), woken.clone());
                        async move {
                            let first_time = log.entries().iter().all(|h| h.position != 2);
                            if message.position == 2 && first_time {
                                // Blocks the thread: the whole instance stops.
                                woken.lock().unwrap().recv().ok();
                            }
                            log.record(&message);
                            HandlerResult::Ok(())
                        }
                    });
                let handle = consumer.start_fleet(its_store, fleet(1)).await.unwrap();
                *instance_id.lock().unwrap() = handle.instance().to_owned();
                stopped.await.ok();
                // What it does after waking (its late write refused, its
                // lease found lapsed) may still be under way: wait for it.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                while tokio::time::Instant::now() < deadline {
                    let health = handle.health();
                    if health.refused_commits + health.expiries >= 1 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let health = handle.health();
                match handle.shutdown().await {
                    Ok(health) => health,
                    // A stale instance's stop may be cut (what it ran when it
                    // woke is not waited for); anything else is a failure.
                    Err(error @ message_store_consumer::Error::ShutdownDeadline { .. }) => {
                        eprintln!("the paused instance's shutdown was cut: {error}");
                        health
                    }
                    Err(error) => panic!("the paused instance's shutdown: {error:?}; {health:?}"),
                }
            })
        })
    };
    wait_until("the paused instance handled positions 0 and 1", || {
        log.entries().len() == 2
    })
    .await;
    let paused_id = instance_id.lock().unwrap().clone();
    let other = take_over(&store, &category, &log).await;
    wake.send(()).unwrap();
    wait_until("the paused instance woke and finished position 2", || {
        handled_by(&log, &paused_id).contains(&2)
    })
    .await;
    // Give what it does after waking the time to land, if it could.
    wait_until("the paused instance holds nothing", || {
        other.health().buckets.len() == 1
    })
    .await;
    stop.send(()).unwrap();
    let paused_health = tokio::task::spawn_blocking(move || paused.join().unwrap())
        .await
        .unwrap();

    let position_stream = category.position_stream(Some("workers")).unwrap();
    let records = store.read_stream_to_end(&position_stream).await.unwrap();
    let claims: Vec<_> = records
        .iter()
        .filter(|m| m.message_type == CLAIMED)
        .collect();
    assert_eq!(claims.len(), 2, "the paused instance never claimed again");
    assert_eq!(claims[1].data["instance"], other.instance());
    // Every position recorded after the other's claim is the other's: its
    // last one is the stream's end, and nothing older was written after it.
    let after_claim: Vec<u64> = records
        .iter()
        .filter(|m| m.position > claims[1].position && m.message_type == "Recorded")
        .map(|m| m.data["position"].as_u64().unwrap())
        .collect();
    assert_strictly_increasing(&after_claim, "positions recorded after the takeover");
    // The other delivered again from the last position recorded before its
    // claim: the paused instance's record of 1 (interval 1), or of 0 when
    // that record, written in the background, had not landed yet.
    let theirs = handled_by(&log, other.instance());
    assert!(
        theirs == [1, 2, 3, 4] || theirs == [0, 1, 2, 3, 4],
        "{theirs:?}"
    );
    assert_eq!(handled_by(&log, &paused_id), [0, 1, 2]);
    // Its commit of position 2, made as it woke, was refused by the store
    // (it may have fenced itself before it heard so).
    let refused = refused.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        refused >= 1,
        "the late commit was refused: {paused_health:?}"
    );
    assert!(
        paused_health.refused_commits + paused_health.expiries >= 1,
        "the paused instance learned it lost the bucket: {paused_health:?}"
    );
    println!(
        "pause: 5 messages, 1 takeover, {refused} late write(s) refused by the store ({} seen by the instance, {} expiries), {} duplicates, 0 lost",
        paused_health.refused_commits,
        paused_health.expiries,
        duplicates_in_order(&log)
    );
    other.shutdown().await.unwrap();
}

/// An instance cut off from the store (every call hangs) while a handler
/// runs: it cannot renew, so it stops taking messages and then drops its
/// handler in flight, before the other instance's takeover. Once the store
/// answers again, it rejoins as a standby.
pub async fn cut_off_fleet_instance_stops_before_the_takeover(store: Arc<dyn MessageStore>) {
    let category = one_stream(store.as_ref()).await;
    let log = Log::default();
    let cut_store = FailingStore::new(store.clone());
    let dropped_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let cut_off = {
        let (log, cut_store, dropped_at) = (log.clone(), cut_store.clone(), dropped_at.clone());
        Consumer::new(category.clone())
            .with_options(consumer_options(1))
            .on_any(move |message: Message| {
                let (log, cut_store, dropped_at) =
                    (log.clone(), cut_store.clone(), dropped_at.clone());
                async move {
                    let first_time = log.entries().iter().all(|h| h.position != 2);
                    if message.position == 2 && first_time {
                        cut_store.pause();
                        let guard = DropTime(dropped_at, AtomicBool::new(true));
                        tokio::time::sleep(LEASE * 10).await;
                        guard.1.store(false, Ordering::SeqCst);
                    }
                    log.record(&message);
                    HandlerResult::Ok(())
                }
            })
    };
    let cut_off = cut_off
        .start_fleet(cut_store.clone(), fleet(1))
        .await
        .unwrap();
    wait_until("the cut-off instance handled positions 0 and 1", || {
        log.entries().len() == 2
    })
    .await;
    let other = take_over(&store, &category, &log).await;
    let dropped = dropped_at
        .lock()
        .unwrap()
        .expect("the handler in flight was dropped");
    let taken_over = log
        .entries()
        .iter()
        .find(|h| h.instance == other.instance())
        .map(|h| h.at)
        .unwrap();
    assert!(
        dropped <= taken_over,
        "the cut-off instance's handler ran past the takeover"
    );
    assert_eq!(handled_by(&log, cut_off.instance()), [0, 1]);
    // From the cut-off instance's last record: of 1, or of 0 when the
    // record of 1 (written in the background) had not landed.
    let theirs = handled_by(&log, other.instance());
    assert!(
        theirs == [1, 2, 3, 4] || theirs == [0, 1, 2, 3, 4],
        "{theirs:?}"
    );
    let health = cut_off.health();
    assert!(health.expiries >= 1, "{health:?}");
    assert!(health.buckets.is_empty(), "{health:?}");

    cut_store.resume();
    wait_until("the cut-off instance is back, as a standby", || {
        let health = cut_off.health();
        health.members.len() == 2 && health.buckets.is_empty()
    })
    .await;
    println!(
        "cut off: handler dropped {:?} before the takeover, {} expiries",
        taken_over - dropped,
        health.expiries
    );
    cut_off.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

/// Records when it is dropped while its flag is still up (the handler was
/// dropped before it finished).
struct DropTime(Arc<Mutex<Option<Instant>>>, AtomicBool);

impl Drop for DropTime {
    fn drop(&mut self) {
        if self.1.load(Ordering::SeqCst) {
            *self.0.lock().unwrap() = Some(Instant::now());
        }
    }
}
