//! A row another client stored against the store's own rules (here a
//! negative stream position, which `write_message` never writes): every
//! read that meets it fails with an error naming the column, whichever way
//! it reads (a single read decoding rows as they arrive, through
//! `get_category_messages` or a member's index; the paged feed), reads
//! that stop short of it succeed, and the store's connection serves the
//! next call.

mod support;

use futures::TryStreamExt;
use message_store::{
    BatchSize, Category, CategoryRead, ConsumerGroup, ExpectedVersion, MessageStore, NewMessage,
};
use serde_json::json;
use support::Variant;
use uuid::Uuid;

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

#[tokio::test]
async fn a_row_that_cannot_be_decoded_fails_the_read_and_names_its_column() {
    for variant in [Variant::Ours, Variant::Genuine] {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let category = unique_category("undecodable");
        let stream = category.stream("1").unwrap();
        let good = |n: u64| NewMessage::new("Good", json!({ "n": n }));
        store
            .write(&stream, (0..3).map(good).collect(), ExpectedVersion::Any)
            .await
            .unwrap();
        let sql = format!(
            "INSERT INTO message_store.messages (id, stream_name, type, position, data)
             VALUES ($1, '{stream}', 'Bad', -1, '{{}}')"
        );
        support::as_admin(variant, &sql, Uuid::new_v4()).await;
        store
            .write(&stream, vec![good(3)], ExpectedVersion::Any)
            .await
            .unwrap();
        let last = store.category_head(&category).await.unwrap().unwrap();

        // Groups of 3 are indexed on our schema: the member reads through its index.
        let member = message_store::member_of("1", 3);
        let group = ConsumerGroup::new(member, 3).unwrap();
        for read in [
            CategoryRead::new(),
            CategoryRead::new().with_consumer_group(group),
        ] {
            let error = store
                .read_category(&category, read.clone())
                .await
                .unwrap_err();
            let source = support::backend_source(&error);
            assert!(source.contains("position"), "{variant:?}: {source}");

            let paged: Result<Vec<_>, _> = store
                .category_messages(&category, read.clone().with_batch_size(BatchSize::Limit(2)))
                .try_collect()
                .await;
            let source = support::backend_source(&paged.unwrap_err());
            assert!(source.contains("position"), "{variant:?}: {source}");

            // Short of the row, and past it, reads go on as before.
            let first = store
                .read_category(&category, read.clone().with_batch_size(BatchSize::Limit(3)))
                .await
                .unwrap();
            assert_eq!(first.len(), 3, "{variant:?}");
            let after = store
                .read_category(&category, read.with_position(last))
                .await
                .unwrap();
            assert_eq!(after.len(), 1, "{variant:?}");
            assert_eq!(after[0].data["n"], 3);
        }
    }
}
