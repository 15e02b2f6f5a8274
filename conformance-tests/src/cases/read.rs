//! Stream reads and category reads: positions, batch sizes, names, paging
//! (last messages, versions and heads: `read_last`).

use message_store::{
    BatchSize, CategoryRead, Error, ErrorKind, ExpectedVersion, MessageStore, MessageStoreExt,
    StreamName, StreamRead,
};

use crate::support::*;

/// §11.8: a stream read starts at the given position (inclusive), in position order.
pub async fn read_stream_from_position_is_inclusive_and_ordered(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 6), ExpectedVersion::Any)
        .await
        .unwrap();
    let read = store
        .read_stream(
            &stream,
            StreamRead::new()
                .with_position(2)
                .with_batch_size(BatchSize::Limit(3)),
        )
        .await
        .unwrap();
    assert_eq!(positions(&read), vec![2, 3, 4]);
    assert_eq!(numbers(&read), vec![2, 3, 4]);
    let past_end = store
        .read_stream(&stream, StreamRead::new().with_position(6))
        .await
        .unwrap();
    assert!(past_end.is_empty());
}

/// §11.8: the default stream read starts at 0 and returns at most 1000 messages.
pub async fn read_stream_defaults_to_position_zero_and_1000_messages(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 1003), ExpectedVersion::Any)
        .await
        .unwrap();
    let read = store.read_stream(&stream, StreamRead::new()).await.unwrap();
    assert_eq!(read.len(), 1000);
    assert_eq!(read[0].position, 0);
    assert_eq!(
        store.read_stream_to_end(&stream).await.unwrap().len(),
        1003,
        "paging reads all"
    );
}

/// §11.10: unlimited returns everything, 0 returns nothing.
pub async fn read_stream_batch_sizes(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    store
        .write(&stream, batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let all = store
        .read_stream(
            &stream,
            StreamRead::new().with_batch_size(BatchSize::Unlimited),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let none = store
        .read_stream(
            &stream,
            StreamRead::new().with_batch_size(BatchSize::Limit(0)),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let one = store
        .read_stream(
            &stream,
            StreamRead::new().with_batch_size(BatchSize::Limit(1)),
        )
        .await
        .unwrap();
    assert_eq!(numbers(&one), vec![0]);
}

/// §11.11: a stream read of a name without `-` is refused (it names a category).
pub async fn read_stream_on_a_category_name_is_refused(store: &dyn MessageStore) {
    let category = unique_category("account");
    let name = StreamName::new(category.as_str()).unwrap();
    let err = store
        .read_stream(&name, StreamRead::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAStream { name: n } if n == category.as_str()),
        "{err:?}"
    );
    assert!(err.to_string().contains(category.as_str()));
}

/// A stream that was never written reads as empty.
pub async fn read_stream_of_an_absent_stream_is_empty(store: &dyn MessageStore) {
    let stream = unique_stream("account");
    assert!(store
        .read_stream(&stream, StreamRead::new())
        .await
        .unwrap()
        .is_empty());
}

/// Stream names match exactly: no prefix match, case-sensitive.
pub async fn read_stream_matches_the_exact_name(store: &dyn MessageStore) {
    let category = unique_category("account");
    for (id, n) in [("1", 1), ("10", 10), ("1+x", 11)] {
        store
            .write(
                &stream(&category, id),
                vec![numbered("N", n)],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let upper = StreamName::new(format!("{}-1", category.as_str().to_uppercase())).unwrap();
    store
        .write(&upper, vec![numbered("N", 99)], ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(
        numbers(&read_all(store, &stream(&category, "1")).await),
        vec![1]
    );
}

/// §11.9: a category read returns every stream of the category in global order.
pub async fn read_category_returns_all_streams_in_global_order(store: &dyn MessageStore) {
    let category = unique_category("account");
    for (id, n) in [("1", 0), ("2", 1), ("1", 2), ("3", 3), ("2", 4)] {
        store
            .write(
                &stream(&category, id),
                vec![numbered("N", n)],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let read = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(numbers(&read), vec![0, 1, 2, 3, 4]);
    assert_strictly_increasing(&global_positions(&read), "category global positions");
    let streams: Vec<_> = read
        .iter()
        .map(|m| m.stream_name.id().unwrap().to_owned())
        .collect();
    assert_eq!(streams, ["1", "2", "1", "3", "2"]);
}

/// §11.9: a category read from a global position includes that position.
pub async fn read_category_from_global_position_is_inclusive(store: &dyn MessageStore) {
    let category = unique_category("account");
    store
        .write(&stream(&category, "1"), batch(0, 5), ExpectedVersion::Any)
        .await
        .unwrap();
    let all = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    let third = all[2].global_position;
    let read = store
        .read_category(
            &category,
            CategoryRead::new()
                .with_position(third)
                .with_batch_size(BatchSize::Limit(2)),
        )
        .await
        .unwrap();
    assert_eq!(numbers(&read), vec![2, 3]);
    let after = all[4].global_position + 1;
    assert!(store
        .read_category(&category, CategoryRead::new().with_position(after))
        .await
        .unwrap()
        .is_empty());
    let zero = store
        .read_category(&category, CategoryRead::new().with_position(0))
        .await
        .unwrap();
    assert_eq!(zero.len(), 5, "position 0 reads like 1");
}

/// §11.13: the stream named exactly like the category is included; `cat:type-…` and `cat+x-…` are not.
pub async fn read_category_includes_exact_name_and_excludes_typed_categories(
    store: &dyn MessageStore,
) {
    let category = unique_category("account");
    let c = category.as_str();
    for (name, n) in [
        (format!("{c}-1"), 0),
        (c.to_owned(), 1),
        (format!("{c}:command-1"), 2),
        (format!("{c}+x-1"), 3),
        (format!("{c}-2-3"), 4),
        (format!("{c}X-1"), 5),
    ] {
        store
            .write(
                &StreamName::new(name).unwrap(),
                vec![numbered("N", n)],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let read = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap();
    assert_eq!(numbers(&read), vec![0, 1, 4]);
}

/// §11.10: category batch sizes: unlimited, 0 and a limit.
pub async fn read_category_batch_sizes(store: &dyn MessageStore) {
    let category = unique_category("account");
    for id in ["1", "2", "3"] {
        store
            .write(&stream(&category, id), batch(0, 2), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let read = |size| store.read_category(&category, CategoryRead::new().with_batch_size(size));
    assert_eq!(read(BatchSize::Unlimited).await.unwrap().len(), 6);
    assert!(read(BatchSize::Limit(0)).await.unwrap().is_empty());
    assert_eq!(read(BatchSize::Limit(4)).await.unwrap().len(), 4);
}

/// A category nobody wrote to reads as empty.
pub async fn read_category_of_an_unknown_category_is_empty(store: &dyn MessageStore) {
    let category = unique_category("nothing");
    assert!(store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap()
        .is_empty());
}

/// Paging over a category with a small batch visits every message once, in order.
pub async fn paging_a_category_visits_every_message_once(store: &dyn MessageStore) {
    use futures::TryStreamExt;
    let category = unique_category("account");
    for id in 0..7u64 {
        store
            .write(
                &stream(&category, &id.to_string()),
                batch(id * 3, 3),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let all: Vec<_> = store
        .category_messages(
            &category,
            CategoryRead::new().with_batch_size(BatchSize::Limit(4)),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(numbers(&all), (0..21).collect::<Vec<_>>());
    let err = store
        .category_messages(
            &category,
            CategoryRead::new().with_batch_size(BatchSize::Limit(0)),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
}

/// Paged reads yield exactly what one unlimited read does, for every batch
/// size (including ones that divide the total, so the last page is empty),
/// start position and filter; a category-shaped name is refused.
pub async fn paged_reads_match_one_unlimited_read(store: &dyn MessageStore) {
    use futures::TryStreamExt;
    use message_store::{ConsumerGroup, Metadata, NewMessage};
    let category = unique_category("paged");
    let stream_one = stream(&category, "1");
    for id in 0..6u64 {
        let messages = (0..4)
            .map(|k| {
                let n = id * 4 + k;
                let message = numbered("Numbered", n);
                if n % 3 == 0 {
                    message.with_metadata(
                        Metadata::new().with_correlation_stream_name(format!("transfer-{n}")),
                    )
                } else {
                    message
                }
            })
            .collect::<Vec<NewMessage>>();
        store
            .write(
                &stream(&category, &id.to_string()),
                messages,
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let first = store
        .read_category(&category, CategoryRead::new())
        .await
        .unwrap()[0]
        .global_position;
    let filters = [
        CategoryRead::new(),
        CategoryRead::new().with_position(first + 5),
        CategoryRead::new().with_correlation("transfer"),
        CategoryRead::new().with_consumer_group(ConsumerGroup::new(1, 3).unwrap()),
    ];
    for filter in filters {
        let expected = store
            .read_category(
                &category,
                filter.clone().with_batch_size(BatchSize::Unlimited),
            )
            .await
            .unwrap();
        for size in [1, 3, 4, 24, 1000] {
            let paged: Vec<_> = store
                .category_messages(
                    &category,
                    filter.clone().with_batch_size(BatchSize::Limit(size)),
                )
                .try_collect()
                .await
                .unwrap();
            assert_eq!(paged, expected, "category, {filter:?}, batch {size}");
        }
    }
    for from in [0, 2, 4] {
        let expected = store
            .read_stream(
                &stream_one,
                StreamRead::new()
                    .with_position(from)
                    .with_batch_size(BatchSize::Unlimited),
            )
            .await
            .unwrap();
        assert_eq!(expected.len(), usize::try_from(4 - from).unwrap());
        for size in [1, 2, 4, 1000] {
            let options = StreamRead::new()
                .with_position(from)
                .with_batch_size(BatchSize::Limit(size));
            let paged: Vec<_> = store
                .stream_messages(&stream_one, options)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(paged, expected, "stream from {from}, batch {size}");
        }
    }
    let refused = store
        .stream_messages(
            &StreamName::new(category.as_str()).unwrap(),
            StreamRead::new(),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::NotAStream { .. }), "{refused:?}");
}
