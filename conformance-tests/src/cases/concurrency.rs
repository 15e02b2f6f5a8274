//! Many writers and readers at once.

use std::collections::BTreeSet;

use futures::future::join_all;
use message_store::{CategoryRead, ErrorKind, ExpectedVersion, MessageStore};

use crate::support::*;

/// 16 writers race to append to one stream with `Exact` versions, retrying on conflict:
/// exactly one wins each version, positions are gapless, nothing is lost or duplicated.
pub async fn racing_writers_get_one_winner_per_version(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    let writers = 16u64;
    let per_writer = 5u64;
    let results = join_all((0..writers).map(|writer| {
        let stream = stream.clone();
        async move {
            let mut won = Vec::new();
            let mut conflicts = 0u64;
            for i in 0..per_writer {
                let n = writer * 100 + i;
                loop {
                    let version = store.stream_version(&stream).await.unwrap();
                    let expected = ExpectedVersion::from_version(version);
                    match store
                        .write(&stream, vec![numbered("Numbered", n)], expected)
                        .await
                    {
                        Ok(position) => {
                            won.push(position);
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::WrongExpectedVersion => {
                            conflicts += 1;
                            tokio::task::yield_now().await;
                        }
                        Err(e) => panic!("writer {writer}: {e}"),
                    }
                }
            }
            (won, conflicts)
        }
    }))
    .await;
    let mut won: Vec<u64> = results
        .iter()
        .flat_map(|(w, _)| w.iter().copied())
        .collect();
    won.sort_unstable();
    let total = writers * per_writer;
    assert_eq!(
        won,
        (0..total).collect::<Vec<_>>(),
        "one winner per version"
    );
    let messages = read_all(store, &stream).await;
    assert_eq!(positions(&messages), (0..total).collect::<Vec<_>>());
    let written: BTreeSet<u64> = numbers(&messages).into_iter().collect();
    let expected: BTreeSet<u64> = (0..writers)
        .flat_map(|w| (0..per_writer).map(move |i| w * 100 + i))
        .collect();
    assert_eq!(written, expected, "every message exactly once");
}

/// Concurrent batches to one stream are never interleaved: each batch's positions are contiguous.
pub async fn concurrent_batches_are_not_interleaved(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    join_all((0..8u64).map(|writer| {
        let stream = stream.clone();
        async move {
            for round in 0..3u64 {
                let first = (writer * 10 + round) * 10;
                store
                    .write(&stream, batch(first, 5), ExpectedVersion::Any)
                    .await
                    .unwrap();
            }
        }
    }))
    .await;
    let messages = read_all(store, &stream).await;
    assert_eq!(messages.len(), 8 * 3 * 5);
    for chunk in numbers(&messages).chunks(5) {
        let expected: Vec<u64> = (chunk[0]..chunk[0] + 5).collect();
        assert_eq!(chunk, expected.as_slice(), "a batch was interleaved");
    }
}

/// §11.25: a category reader polling while writers append never sees a lower global position
/// appear after a higher one, and ends up with every message.
pub async fn category_reader_never_sees_positions_go_backwards(store: &dyn MessageStore) {
    let category = unique_category("account");
    let writers = 4u64;
    let per_writer = 25u64;
    let write_all = join_all((0..writers).map(|w| {
        let s = stream(&category, &w.to_string());
        async move {
            for i in 0..per_writer {
                store
                    .write(
                        &s,
                        vec![numbered("Numbered", w * 1000 + i)],
                        ExpectedVersion::Any,
                    )
                    .await
                    .unwrap();
            }
        }
    }));
    let read_while = async {
        let mut cursor = 1u64;
        let mut seen = Vec::new();
        for _ in 0..200 {
            let page = store
                .read_category(&category, CategoryRead::new().with_position(cursor))
                .await
                .unwrap();
            if let Some(last) = page.last() {
                cursor = last.global_position + 1;
            }
            seen.extend(global_positions(&page));
            if u64::try_from(seen.len()).unwrap() == writers * per_writer {
                break;
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let (_, mut seen) = futures::join!(write_all, read_while);
    assert_strictly_increasing(&seen, "global positions seen by a polling reader");
    let rest = store
        .read_category(
            &category,
            CategoryRead::new().with_position(seen.last().map_or(1, |p| p + 1)),
        )
        .await
        .unwrap();
    seen.extend(global_positions(&rest));
    assert_eq!(
        u64::try_from(seen.len()).unwrap(),
        writers * per_writer,
        "nothing skipped"
    );
}
