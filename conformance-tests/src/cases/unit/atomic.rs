//! All or nothing: a unit's writes appear together at commit, and nothing of
//! a unit that is dropped, rolled back or aborted is stored.

use message_store::{ErrorKind, ExpectedVersion, MessageStore, UnitState};

use super::{begin, ended};
use crate::support::*;

/// Writes to two streams of two categories become visible together at
/// commit, and not before.
pub async fn unit_commits_writes_to_several_streams_at_once(store: &dyn MessageStore) {
    let (debit, credit) = (unique_stream("account"), unique_stream("ledger"));
    let mut unit = begin(store).await;
    let first = unit
        .write(&debit, batch(0, 2), ExpectedVersion::NoStream)
        .await
        .unwrap();
    let second = unit
        .write(&credit, batch(2, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();
    assert_eq!(
        (first, second),
        (1, 0),
        "positions as plain writes give them"
    );
    assert!(
        read_all(store, &debit).await.is_empty(),
        "visible before commit"
    );
    assert_eq!(store.stream_version(&credit).await.unwrap(), None);

    unit.commit().await.unwrap();
    assert_eq!(unit.state(), UnitState::Committed);
    let debited = read_all(store, &debit).await;
    let credited = read_all(store, &credit).await;
    assert_eq!(numbers(&debited), vec![0, 1]);
    assert_eq!(numbers(&credited), vec![2]);
    let mut all = global_positions(&debited);
    all.extend(global_positions(&credited));
    assert_strictly_increasing(&all, "global positions in write order");
}

/// A dropped unit and a rolled-back one leave nothing: the streams stay
/// absent, and their ids and stream positions are free again.
pub async fn dropped_or_rolled_back_unit_leaves_nothing(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let message = numbered("Numbered", 7);
    {
        let mut unit = begin(store).await;
        unit.write(&stream, vec![message.clone()], ExpectedVersion::NoStream)
            .await
            .unwrap();
    } // dropped
    assert!(read_all(store, &stream).await.is_empty());

    let mut unit = begin(store).await;
    unit.write(&stream, vec![message.clone()], ExpectedVersion::NoStream)
        .await
        .unwrap();
    unit.rollback().await.unwrap();
    assert_eq!(unit.state(), UnitState::RolledBack);
    assert!(read_all(store, &stream).await.is_empty());

    let position = store
        .write(&stream, vec![message.clone()], ExpectedVersion::NoStream)
        .await
        .expect("the id and the stream are free after a rollback");
    assert_eq!(position, 0);
    assert_eq!(read_all(store, &stream).await[0].id, message.id);
}

/// A wrong expected version in the third of three writes fails with the
/// error a plain write gives, aborts the unit, and stores none of the three.
pub async fn failed_third_write_leaves_nothing(store: &dyn MessageStore) {
    let (a, b, c) = (
        unique_stream("account"),
        unique_stream("account"),
        unique_stream("ledger"),
    );
    write_numbered(store, &c, 2).await; // version 1
    let mut unit = begin(store).await;
    unit.write(&a, batch(0, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();
    unit.write(&b, batch(1, 3), ExpectedVersion::Any)
        .await
        .unwrap();
    let error = unit
        .write(&c, batch(4, 1), ExpectedVersion::Exact(5))
        .await
        .unwrap_err();
    match &error {
        message_store::Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, c.as_str());
            assert_eq!(*expected, ExpectedVersion::Exact(5));
            assert_eq!(*actual, Some(1));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(unit.state(), UnitState::Aborted);
    assert_eq!(
        ended(unit.commit().await, "commit after a failed write"),
        UnitState::Aborted
    );
    unit.rollback().await.expect("rolling back an aborted unit");
    assert!(read_all(store, &a).await.is_empty());
    assert!(read_all(store, &b).await.is_empty());
    assert_eq!(numbers(&read_all(store, &c).await), vec![0, 1]);
}

/// An id already stored, or written earlier in the same unit, fails the
/// write with `DuplicateMessageId` and aborts the unit.
pub async fn duplicate_id_in_a_unit_aborts_it(store: &dyn MessageStore) {
    let (stored, fresh) = (unique_stream("account"), unique_stream("account"));
    let taken = numbered("Numbered", 1);
    store
        .write(&stored, vec![taken.clone()], ExpectedVersion::Any)
        .await
        .unwrap();

    let mut unit = begin(store).await;
    unit.write(&fresh, batch(0, 1), ExpectedVersion::Any)
        .await
        .unwrap();
    let error = unit
        .write(&fresh, vec![taken.clone()], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DuplicateMessageId, "{error}");
    assert_eq!(unit.state(), UnitState::Aborted);
    drop(unit);
    assert!(read_all(store, &fresh).await.is_empty());

    let mut unit = begin(store).await;
    let own = numbered("Numbered", 2);
    unit.write(&fresh, vec![own.clone()], ExpectedVersion::Any)
        .await
        .unwrap();
    let error = unit
        .write(&stored, vec![own.clone()], ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(error, message_store::Error::DuplicateMessageId { id } if id == own.id),
        "{error}"
    );
    assert_eq!(unit.state(), UnitState::Aborted);
    drop(unit);
    assert!(read_all(store, &fresh).await.is_empty());
    assert_eq!(read_all(store, &stored).await.len(), 1);
}
