//! How units meet at a category's lock: a unit holds it from its first
//! write there until it ends, so other writers of the category wait, and
//! units that wait for each other are told apart by a conflict.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::join_all;
use message_store::{
    ConflictReason, Error, ErrorKind, ExpectedVersion, MessageStore, UnitOptions, UnitState,
};

use super::{begin, begin_with};
use crate::support::*;

/// Long enough for a write that does not wait to have finished.
const SETTLE: Duration = Duration::from_millis(150);

/// A plain write to a category a unit has written waits until the unit
/// commits, then lands after it; a write to another category does not wait.
pub async fn a_plain_write_waits_for_a_unit_holding_its_category(store: &dyn MessageStore) {
    let category = unique_category("account");
    let (held, waiting) = (stream(&category, "1"), stream(&category, "2"));
    let elsewhere = unique_stream("ledger");
    let mut unit = begin(store).await;
    unit.write(&held, batch(0, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        write_numbered(store, &elsewhere, 1),
    )
    .await
    .expect("a write to another category does not wait");

    let committed = AtomicBool::new(false);
    let writer = async {
        let position = store
            .write(&waiting, batch(1, 1), ExpectedVersion::NoStream)
            .await;
        (position, committed.load(Ordering::SeqCst))
    };
    let holder = async {
        tokio::time::sleep(SETTLE).await;
        committed.store(true, Ordering::SeqCst);
        unit.commit().await
    };
    let ((position, after_commit), commit) = tokio::join!(writer, holder);
    commit.unwrap();
    assert_eq!(position.unwrap(), 0);
    assert!(
        after_commit,
        "the plain write finished while the unit held its category"
    );
    let messages = read_all(store, &held).await;
    let later = read_all(store, &waiting).await;
    assert!(messages[0].global_position < later[0].global_position);
}

/// Units racing to extend one stream with exact expected versions, each
/// retrying from a fresh unit on a conflict, get one winner per version:
/// the stream is gapless and holds every unit's message once.
pub async fn units_racing_on_one_stream_get_one_winner_per_version(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let racers = 8u64;
    let won = join_all((0..racers).map(|n| {
        let stream = stream.clone();
        async move {
            let mut refused = 0u32;
            loop {
                let mut unit = begin(store).await;
                let version = unit.stream_version(&stream).await.unwrap();
                let expected = ExpectedVersion::from_version(version);
                match unit
                    .write(&stream, vec![numbered("Numbered", n)], expected)
                    .await
                {
                    Ok(position) => {
                        unit.commit().await.unwrap();
                        return (position, refused);
                    }
                    Err(Error::WrongExpectedVersion { .. }) => {
                        assert_eq!(unit.state(), UnitState::Aborted);
                        refused += 1;
                    }
                    Err(other) => panic!("racer {n}: {other}"),
                }
            }
        }
    }))
    .await;
    let mut positions_won: Vec<u64> = won.iter().map(|(p, _)| *p).collect();
    positions_won.sort_unstable();
    assert_eq!(positions_won, (0..racers).collect::<Vec<_>>());
    let mut stored = numbers(&read_all(store, &stream).await);
    stored.sort_unstable();
    assert_eq!(stored, (0..racers).collect::<Vec<_>>());
}

/// Of two units that wrote the same new stream, the second waits for the
/// first and, once it commits, fails with the wrong expected version.
pub async fn second_unit_on_a_stream_waits_and_then_loses(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let mut first = begin(store).await;
    let mut second = begin(store).await;
    first
        .write(&stream, batch(0, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();
    let committed = AtomicBool::new(false);
    let loser = async {
        let result = second
            .write(&stream, batch(1, 1), ExpectedVersion::NoStream)
            .await;
        (result, committed.load(Ordering::SeqCst))
    };
    let winner = async {
        tokio::time::sleep(SETTLE).await;
        committed.store(true, Ordering::SeqCst);
        first.commit().await
    };
    let ((result, after_commit), commit) = tokio::join!(loser, winner);
    commit.unwrap();
    assert!(after_commit, "the second unit did not wait for the first");
    match result {
        Err(Error::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(0)),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(numbers(&read_all(store, &stream).await), vec![0]);
}

/// A unit with a lock timeout that waits longer for a category another unit
/// holds fails with `Conflict { LockTimeout }`, is aborted, and leaves the
/// holder free to commit.
pub async fn a_lock_timeout_ends_the_wait_with_a_conflict(store: &dyn MessageStore) {
    let category = unique_category("account");
    let mut holder = begin(store).await;
    holder
        .write(&stream(&category, "1"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let options = UnitOptions::new().with_lock_timeout(Duration::from_millis(100));
    let mut waiter = begin_with(store, options).await;
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        waiter.write(&stream(&category, "2"), batch(1, 1), ExpectedVersion::Any),
    )
    .await
    .expect("the lock timeout ended the wait");
    match &result {
        Err(Error::Conflict {
            reason: ConflictReason::LockTimeout,
            ..
        }) => {}
        other => panic!("expected a lock-timeout conflict, got {other:?}"),
    }
    assert!(result.unwrap_err().is_transient());
    assert_eq!(waiter.state(), UnitState::Aborted);
    holder.commit().await.unwrap();
    let stored = read_all(store, &stream(&category, "2")).await;
    assert!(stored.is_empty(), "the timed-out unit wrote");
}

/// Two units that write two categories in opposite orders wait for each
/// other: one fails with `Conflict { Deadlock }`, transient and aborted,
/// and the other goes on and commits both of its writes.
pub async fn units_writing_in_opposite_orders_end_in_one_conflict(store: &dyn MessageStore) {
    let (left, right) = (unique_stream("left"), unique_stream("right"));
    let mut a = begin(store).await;
    let mut b = begin(store).await;
    a.write(&left, batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    b.write(&right, batch(1, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let first = async {
        let result = a.write(&right, batch(2, 1), ExpectedVersion::Any).await;
        if result.is_ok() {
            a.commit().await.unwrap();
        }
        result
    };
    let second = async {
        tokio::time::sleep(SETTLE).await; // a waits first
        let result = b.write(&left, batch(3, 1), ExpectedVersion::Any).await;
        if result.is_ok() {
            b.commit().await.unwrap();
        }
        result
    };
    let (first, second) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(first, second)
    })
    .await
    .expect("the deadlock was detected");
    let (won, lost, winner_wrote) = match (first, second) {
        (Ok(_), Err(e)) => (true, e, vec![0, 2]),
        (Err(e), Ok(_)) => (false, e, vec![1, 3]),
        other => panic!("expected exactly one conflict, got {other:?}"),
    };
    assert!(
        matches!(
            lost,
            Error::Conflict {
                reason: ConflictReason::Deadlock,
                ..
            }
        ),
        "{lost}"
    );
    assert!(lost.is_transient());
    assert_eq!(lost.kind(), ErrorKind::Conflict);
    let mut stored = numbers(&read_all(store, &left).await);
    stored.extend(numbers(&read_all(store, &right).await));
    stored.sort_unstable();
    assert_eq!(
        stored, winner_wrote,
        "only the winner's writes (a won: {won})"
    );
}

/// Units that lock both their categories up front, given in opposite
/// orders, and then write them in opposite orders, never deadlock:
/// `lock_categories` takes locks in the one shared order. A third unit holds
/// the first of those locks meanwhile; taken in the order given, the second
/// unit would take the other lock and the two would deadlock.
pub async fn units_that_lock_their_categories_first_never_deadlock(store: &dyn MessageStore) {
    let (left, right) = (unique_category("left"), unique_category("right"));
    let (low, high) =
        if message_store::hash_64(left.as_str()) < message_store::hash_64(right.as_str()) {
            (&left, &right)
        } else {
            (&right, &left)
        };
    let mut blocker = begin(store).await;
    blocker
        .write(&stream(low, "0"), batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let mut a = begin(store).await;
    let mut b = begin(store).await;
    let one = async {
        a.lock_categories(&[low.clone(), high.clone()]).await?;
        a.write(&stream(&left, "a"), batch(1, 1), ExpectedVersion::Any)
            .await?;
        a.write(&stream(&right, "a"), batch(2, 1), ExpectedVersion::Any)
            .await?;
        a.commit().await
    };
    let other = async {
        b.lock_categories(&[high.clone(), low.clone()]).await?;
        b.write(&stream(&right, "b"), batch(3, 1), ExpectedVersion::Any)
            .await?;
        b.write(&stream(&left, "b"), batch(4, 1), ExpectedVersion::Any)
            .await?;
        b.commit().await
    };
    let release = async {
        tokio::time::sleep(SETTLE).await;
        blocker.commit().await
    };
    let (one, other, release) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(one, other, release)
    })
    .await
    .expect("the units finished");
    one.expect("the first unit commits");
    other.expect("the second unit commits");
    release.unwrap();
    let mut stored = Vec::new();
    for category in [&left, &right] {
        let messages = store
            .read_category(category, message_store::CategoryRead::new())
            .await
            .unwrap();
        stored.extend(numbers(&messages));
    }
    stored.sort_unstable();
    assert_eq!(stored, vec![0, 1, 2, 3, 4]);
}

/// `in_unit` runs a unit again when it loses a deadlock: two of them
/// writing two categories in opposite orders both commit, and between them
/// they ran at least three units.
pub async fn in_unit_runs_a_unit_again_after_a_conflict(store: &dyn MessageStore) {
    use message_store::MessageStoreExt;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    let (left, right) = (unique_stream("left"), unique_stream("right"));
    let runs = Arc::new(AtomicU32::new(0));
    let transfer = |first: message_store::StreamName, second: message_store::StreamName, n: u64| {
        let runs = runs.clone();
        store.in_unit(UnitOptions::new(), move |unit| {
            let (first, second, runs) = (first.clone(), second.clone(), runs.clone());
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                unit.write(&first, batch(n, 1), ExpectedVersion::Any)
                    .await?;
                tokio::time::sleep(SETTLE).await; // the other takes its first lock
                unit.write(&second, batch(n + 1, 1), ExpectedVersion::Any)
                    .await
            })
        })
    };
    let (one, other) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            transfer(left.clone(), right.clone(), 0),
            transfer(right.clone(), left.clone(), 10)
        )
    })
    .await
    .expect("both transfers finished");
    one.expect("the first transfer commits");
    other.expect("the second transfer commits");
    assert!(runs.load(Ordering::SeqCst) >= 3, "no unit was run again");
    let mut stored = numbers(&read_all(store, &left).await);
    stored.extend(numbers(&read_all(store, &right).await));
    stored.sort_unstable();
    assert_eq!(stored, vec![0, 1, 10, 11]);
}
