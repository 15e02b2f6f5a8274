//! How a unit ends: every call after its commit or rollback is refused with
//! a typed error and changes nothing, while input refused before it reaches
//! the store leaves the unit open.

use message_store::{
    CategoryRead, ErrorKind, ExpectedVersion, MessageStore, StreamName, StreamRead, UnitState,
};

use super::{begin, ended};
use crate::support::*;

/// After a commit, writes, reads, a second commit and a rollback are all
/// refused with `UnitEnded { Committed }`; after a rollback, everything but
/// another rollback is refused with `UnitEnded { RolledBack }`. The store
/// holds exactly what the committed unit wrote.
pub async fn a_unit_is_refused_after_it_ends(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let mut unit = begin(store).await;
    unit.write(&stream, batch(0, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();
    unit.commit().await.unwrap();

    let committed = UnitState::Committed;
    let write = unit.write(&stream, batch(1, 1), ExpectedVersion::Any).await;
    assert_eq!(ended(write, "write after commit"), committed);
    let read = unit.read_stream(&stream, StreamRead::new()).await;
    assert_eq!(ended(read, "read after commit"), committed);
    let version = unit.stream_version(&stream).await;
    assert_eq!(ended(version, "version after commit"), committed);
    assert_eq!(ended(unit.commit().await, "second commit"), committed);
    assert_eq!(
        ended(unit.rollback().await, "rollback after commit"),
        committed
    );
    assert_eq!(numbers(&read_all(store, &stream).await), vec![0]);

    let mut unit = begin(store).await;
    unit.write(&stream, batch(1, 1), ExpectedVersion::Exact(0))
        .await
        .unwrap();
    unit.rollback().await.unwrap();
    unit.rollback()
        .await
        .expect("a second rollback does nothing");
    let rolled_back = UnitState::RolledBack;
    let write = unit.write(&stream, batch(2, 1), ExpectedVersion::Any).await;
    assert_eq!(ended(write, "write after rollback"), rolled_back);
    let last = unit.read_last_message(&stream, None).await;
    assert_eq!(ended(last, "read after rollback"), rolled_back);
    assert_eq!(
        ended(unit.commit().await, "commit after rollback"),
        rolled_back
    );
    assert_eq!(numbers(&read_all(store, &stream).await), vec![0]);
}

/// An empty batch, a message type with a NUL, a category-shaped stream
/// read and a correlation that is not a category are refused with their usual errors, and the
/// unit goes on: its earlier and later writes commit.
pub async fn input_refused_before_it_is_sent_leaves_the_unit_open(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let mut unit = begin(store).await;
    unit.write(&stream, batch(0, 1), ExpectedVersion::NoStream)
        .await
        .unwrap();

    let empty = unit.write(&stream, Vec::new(), ExpectedVersion::Any).await;
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::EmptyBatch);
    let nul_type = unit
        .write(
            &stream,
            vec![numbered("Bad\0Type", 1)],
            ExpectedVersion::Any,
        )
        .await;
    assert_eq!(nul_type.unwrap_err().kind(), ErrorKind::InvalidMessageType);
    let category = StreamName::new(stream.category().as_str()).unwrap();
    let read = unit.read_stream(&category, StreamRead::new()).await;
    assert_eq!(read.unwrap_err().kind(), ErrorKind::NotAStream);
    let options = CategoryRead::new().with_correlation("not-a-category");
    let read = unit.read_category(&stream.category(), options).await;
    assert_eq!(read.unwrap_err().kind(), ErrorKind::InvalidCorrelation);
    assert_eq!(unit.state(), UnitState::Open);

    let version = unit.stream_version(&stream).await.unwrap();
    let last = unit
        .write(&stream, batch(2, 1), ExpectedVersion::from_version(version))
        .await
        .unwrap();
    unit.commit().await.unwrap();
    let stored = read_all(store, &stream).await;
    assert_eq!(stored.last().map(|m| m.position), Some(last));
    assert_eq!(stored.first().map(|m| m.data["n"].as_u64()), Some(Some(0)));
}
