//! Category-read filters: consumer groups and correlation.

use std::collections::{BTreeMap, BTreeSet};

use message_store::{
    BatchSize, CategoryRead, ConsumerGroup, ConsumerGroupProblem, Error, ErrorKind,
    ExpectedVersion, MessageStore, Metadata, NewMessage, StreamName,
};
use serde_json::json;

use crate::support::*;

fn group(member: u32, size: u32) -> ConsumerGroup {
    ConsumerGroup::new(member, size).unwrap()
}

async fn read_group(
    store: &dyn MessageStore,
    category: &message_store::Category,
    g: ConsumerGroup,
) -> Vec<String> {
    store
        .read_category(
            category,
            CategoryRead::new()
                .with_consumer_group(g)
                .with_batch_size(BatchSize::Unlimited),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.stream_name.into_string())
        .collect()
}

/// §11.16: `account-2` belongs to member 1 of a group of 3 (the hash's absolute value, then modulo).
pub async fn consumer_group_assigns_streams_as_message_db_does(store: &dyn MessageStore) {
    let category = unique_category("account");
    for id in ["1", "2", "3", "123", "abc"] {
        store
            .write(&stream(&category, id), batch(0, 1), ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let ids = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .map(|n| n.split_once('-').unwrap().1.to_owned())
            .collect()
    };
    // Members for size 3, from message-db.md §3.3: 1→0, 2→1, 3→2, 123→1, abc→2.
    assert_eq!(ids(read_group(store, &category, group(0, 3)).await), ["1"]);
    assert_eq!(
        ids(read_group(store, &category, group(1, 3)).await),
        ["2", "123"]
    );
    assert_eq!(
        ids(read_group(store, &category, group(2, 3)).await),
        ["3", "abc"]
    );
}

/// §11.16-17: the members of a group partition a category's id-bearing streams disjointly and
/// completely; streams with compound ids follow their cardinal id; id-less streams go to no member.
pub async fn consumer_group_members_partition_the_category(store: &dyn MessageStore) {
    let category = unique_category("account");
    let c = category.as_str();
    let mut names: Vec<String> = (0..40).map(|i| format!("{c}-{i}")).collect();
    names.extend(
        ["7+a", "7+b", "", "+x", "a-b"]
            .iter()
            .map(|id| format!("{c}-{id}")),
    );
    names.push(c.to_owned());
    for name in &names {
        store
            .write(
                &StreamName::new(name.as_str()).unwrap(),
                batch(0, 1),
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let size = 4;
    let mut owner: BTreeMap<String, u32> = BTreeMap::new();
    for member in 0..size {
        for name in read_group(store, &category, group(member, size)).await {
            assert!(
                owner.insert(name.clone(), member).is_none(),
                "{name} delivered to two members"
            );
        }
    }
    let expected: BTreeSet<String> = names.iter().filter(|n| n.contains('-')).cloned().collect();
    assert_eq!(
        owner.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every id-bearing stream, once"
    );
    assert_eq!(owner[&format!("{c}-7+a")], owner[&format!("{c}-7")]);
    assert_eq!(owner[&format!("{c}-7+b")], owner[&format!("{c}-7")]);
    assert_eq!(
        owner[&format!("{c}-+x")],
        owner[&format!("{c}-")],
        "empty cardinal ids hash alike"
    );
    let whole = read_group(store, &category, group(0, 1)).await;
    assert_eq!(
        whole.len(),
        names.len() - 1,
        "a group of one gets all but the id-less stream"
    );
}

/// §11.18: invalid consumer groups are refused with the rule they break, in Message DB's order.
pub async fn consumer_group_validation_names_the_rule(_store: &dyn MessageStore) {
    let problem = |m, s| match ConsumerGroup::new(m, s) {
        Err(Error::InvalidConsumerGroup { problem, .. }) => problem,
        other => panic!("member {m} size {s}: {other:?}"),
    };
    assert_eq!(problem(0, 0), ConsumerGroupProblem::SizeLessThanOne);
    assert_eq!(problem(5, 0), ConsumerGroupProblem::SizeLessThanOne);
    assert_eq!(problem(2, 2), ConsumerGroupProblem::MemberNotLessThanSize);
    assert_eq!(problem(0, 40_000), ConsumerGroupProblem::SizeTooLarge);
}

fn correlated(n: u64, correlation: Option<&str>) -> NewMessage {
    let metadata = match correlation {
        Some(c) => Metadata::new().with_correlation_stream_name(c),
        None => Metadata::new(),
    };
    NewMessage::new("Numbered", json!({ "n": n })).with_metadata(metadata)
}

/// §11.19: correlation keeps only messages whose `correlationStreamName` is in that category.
pub async fn correlation_keeps_only_the_correlated_category(store: &dyn MessageStore) {
    let category = unique_category("account");
    let messages = vec![
        correlated(0, Some("transfer-1")),
        correlated(1, Some("transfer")),
        correlated(2, Some("transfer:command-1")),
        correlated(3, None),
        correlated(4, Some("other-1")),
        correlated(5, Some("transfer-2-3")),
    ];
    store
        .write(&stream(&category, "1"), messages, ExpectedVersion::Any)
        .await
        .unwrap();
    let read = store
        .read_category(&category, CategoryRead::new().with_correlation("transfer"))
        .await
        .unwrap();
    assert_eq!(numbers(&read), vec![0, 1, 5]);
}

/// §11.19: a correlation containing `-` (or NUL) is refused by the read, and
/// by opening a subscription, with a typed error, before any I/O.
pub async fn correlation_with_a_dash_is_refused(store: &dyn MessageStore) {
    let category = unique_category("account");
    for bad in ["transfer-1", "trans\0fer"] {
        let err = store
            .read_category(&category, CategoryRead::new().with_correlation(bad))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCorrelation, "{err}");
        let options = message_store::SubscribeOptions::new().with_correlation(bad);
        let Err(err) = store.subscribe(&category, options).await else {
            panic!("a subscription correlated with {bad:?} opened");
        };
        assert_eq!(err.kind(), ErrorKind::InvalidCorrelation, "{err}");
    }
    let err = store
        .read_category(
            &category,
            CategoryRead::new().with_correlation("transfer-1"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("transfer-1"), "{err}");
}

/// Correlation and consumer group combine (both must hold); the batch size counts filtered rows.
pub async fn correlation_and_consumer_group_combine(store: &dyn MessageStore) {
    let category = unique_category("account");
    for id in ["1", "2", "3", "123"] {
        let s = stream(&category, id);
        store
            .write(
                &s,
                vec![
                    correlated(0, Some("transfer-9")),
                    correlated(1, Some("other-9")),
                ],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let options = CategoryRead::new()
        .with_correlation("transfer")
        .with_consumer_group(group(1, 3));
    let read = store
        .read_category(&category, options.clone())
        .await
        .unwrap();
    let names: Vec<_> = read.iter().map(|m| m.stream_name.id().unwrap()).collect();
    assert_eq!(names, ["2", "123"]);
    assert!(read.iter().all(|m| m.data["n"] == 0));
    let limited = store
        .read_category(&category, options.with_batch_size(BatchSize::Limit(1)))
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].stream_name.id(), Some("2"));
}
