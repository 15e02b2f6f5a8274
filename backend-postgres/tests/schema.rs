//! Our schema against genuine Message DB's: the installer, its functions
//! and views compared with genuine's, and the opt-in consumer-group indexes.

mod support;

use message_store::{Category, CategoryRead, ErrorKind, ExpectedVersion, MessageStore, NewMessage};
use message_store_postgres::sqlx::postgres::PgPoolOptions;
use message_store_postgres::sqlx::{self, ConnectOptions, Row};
use message_store_postgres::{InstallOptions, InstallOutcome, PostgresStore};
use serde_json::json;
use support::Variant;
use uuid::Uuid;

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// The installer is idempotent, and leaves a genuine Message DB untouched.
#[tokio::test]
async fn installer_is_idempotent_and_leaves_genuine_message_db_alone() {
    let Some(ours) = support::options(Variant::Ours).await else {
        return;
    };
    let Some(genuine) = support::options(Variant::Genuine).await else {
        return;
    };
    let Some(admin) = support::admin_options() else {
        return;
    };
    let pool = PgPoolOptions::new()
        .connect_with(admin.clone().database(ours.get_database().unwrap()))
        .await
        .unwrap();
    let outcome = PostgresStore::install(&pool, &InstallOptions::new().with_extras(true))
        .await
        .unwrap();
    assert_eq!(outcome, InstallOutcome::Installed);
    let genuine_as_admin = admin.database(genuine.get_database().unwrap());
    let pool = PgPoolOptions::new()
        .connect_with(genuine_as_admin.clone())
        .await
        .unwrap();
    let outcome = PostgresStore::install(&pool, &InstallOptions::new().with_extras(true))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        InstallOutcome::ExistingMessageDb {
            version: "1.3.0".into()
        }
    );
    let error = PostgresStore::from_pool(pool).await.unwrap_err();
    assert!(
        support::backend_source(&error).contains("search_path"),
        "a pool without message_store on its path is refused: {error}"
    );
    let store = PostgresStore::connect_with(genuine_as_admin, PgPoolOptions::new())
        .await
        .unwrap();
    assert!(
        !store.has_notifications(),
        "no trigger was added to the genuine install"
    );
}

/// Indexing a consumer-group size on a populated database: the installer
/// creates one partial index per member, a member's read then goes through
/// its own index (counted in pg_stat_user_indexes) and returns exactly the
/// streams `member_of` assigns it, and sizes outside 2..=64 are refused
/// before anything is touched.
#[tokio::test]
async fn consumer_group_indexes_serve_their_members() {
    let Some(ours) = support::options(Variant::Ours).await else {
        return;
    };
    let Some(admin) = support::admin_options() else {
        return;
    };
    let store = PostgresStore::connect_with(ours.clone(), PostgresStore::pool_options())
        .await
        .unwrap();
    let category = unique_category("grouped");
    for id in 0..40 {
        store
            .write(
                &category.stream(&format!("{id}+part")).unwrap(),
                vec![NewMessage::new("A", json!({ "id": id }))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let as_admin = admin.database(ours.get_database().unwrap());
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(as_admin.clone())
        .await
        .unwrap();
    for size in [0, 1, 65] {
        let error = PostgresStore::install(
            &pool,
            &InstallOptions::new().with_consumer_group_index(size),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption, "{size}: {error}");
        assert!(error.to_string().contains(&size.to_string()), "{error}");
    }
    let options = InstallOptions::new()
        .with_extras(true)
        .with_consumer_group_index(5);
    for _ in 0..2 {
        let outcome = PostgresStore::install(&pool, &options).await.unwrap();
        assert_eq!(outcome, InstallOutcome::Installed);
    }
    let indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'message_store' AND indexname LIKE 'messages\\_group\\_5\\_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(indexes, 5);

    let mut conn = as_admin.connect().await.unwrap();
    let scans = |member: u32| {
        format!(
            "SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_user_indexes WHERE indexrelname = 'messages_group_5_{member}'"
        )
    };
    let mut seen = 0;
    for member in 0..5u32 {
        let before: i64 = sqlx::query_scalar(&scans(member))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT stream_name FROM message_store.get_category_messages($1, 1, 1000, NULL, $2, 5)",
        )
        .bind(category.as_str())
        .bind(i64::from(member))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut conn)
            .await
            .unwrap();
        let after: i64 = sqlx::query_scalar(&scans(member))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(after > before, "member {member} read through its index");
        for name in &names {
            let cardinal = name.split_once('-').unwrap().1.split('+').next().unwrap();
            assert_eq!(message_store::member_of(cardinal, 5), member, "{name}");
        }
        let through_store = store
            .read_category(
                &category,
                CategoryRead::new()
                    .with_consumer_group(message_store::ConsumerGroup::new(member, 5).unwrap()),
            )
            .await
            .unwrap();
        let store_names: Vec<&str> = through_store
            .iter()
            .map(|m| m.stream_name.as_str())
            .collect();
        assert_eq!(store_names, names, "member {member}");
        seen += names.len();
    }
    assert_eq!(seen, 40, "the members partition the category");
}

/// Our schema's functions behave like genuine Message DB's on the grammar and
/// hashing edge cases of message-db.md §1 and §3.2.
#[tokio::test]
async fn schema_functions_agree_with_genuine_message_db() {
    let Some(ours) = support::store(Variant::Ours).await else {
        return;
    };
    let Some(genuine) = support::store(Variant::Genuine).await else {
        return;
    };
    let inputs = [
        None,
        Some(""),
        Some(" "),
        Some("account"),
        Some("account-123"),
        Some("account-123+456"),
        Some("account-+456"),
        Some("account-"),
        Some("account--"),
        Some("-123"),
        Some("-"),
        Some("a-b-c+d-e"),
        Some("account:command+position-x"),
        Some("café-ü"),
        Some("someStream"),
    ];
    let query = "SELECT category($1), id($1), cardinal_id($1), is_category($1), hash_64($1), acquire_lock($1)::text";
    for input in inputs {
        let mut results = Vec::new();
        for store in [&ours, &genuine] {
            let mut tx = store.pool().begin().await.unwrap();
            let row = sqlx::query(query)
                .bind(input)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            results.push((
                row.get::<Option<String>, _>(0),
                row.get::<Option<String>, _>(1),
                row.get::<Option<String>, _>(2),
                row.get::<Option<bool>, _>(3),
                row.get::<Option<i64>, _>(4),
                row.get::<Option<String>, _>(5),
            ));
            tx.rollback().await.unwrap();
        }
        assert_eq!(results[0], results[1], "ours vs genuine for {input:?}");
    }
    let errors = [
        "SELECT * FROM get_stream_messages('account')",
        "SELECT * FROM get_category_messages('account-1')",
        "SELECT * FROM get_category_messages('account', correlation => 'x-1')",
        "SELECT * FROM get_category_messages('account', consumer_group_member => 1)",
        "SELECT * FROM get_category_messages('account', consumer_group_member => 0, consumer_group_size => 0)",
        "SELECT * FROM get_category_messages('account', consumer_group_member => -1, consumer_group_size => 2)",
        "SELECT * FROM get_category_messages('account', consumer_group_member => 2, consumer_group_size => 2)",
        "SELECT * FROM get_category_messages('account', consumer_group_member => 0, consumer_group_size => 40000)",
        "SELECT * FROM get_category_messages('account', batch_size => -2)",
        "SELECT * FROM get_stream_messages('account-1', condition => 'true')",
        "SELECT write_message('not-a-uuid', 'account-1', 'T', '{}')",
        "SELECT write_message(gen_random_uuid()::varchar, 'account-1', 'T', '{}', NULL, 7)",
    ];
    for sql in errors {
        let mut messages = Vec::new();
        for store in [&ours, &genuine] {
            let error = sqlx::query(sql).fetch_all(store.pool()).await.unwrap_err();
            let database = error.as_database_error().expect("a database error");
            messages.push((
                database.code().map(|c| c.into_owned()),
                database.message().to_owned(),
            ));
        }
        assert_eq!(messages[0], messages[1], "ours vs genuine for {sql}");
    }
}

/// Our summary views have genuine Message DB's names, columns and types, and
/// report the same counts and percentages for the same rows.
#[tokio::test]
async fn summary_views_match_genuine_message_db() {
    let Some(ours) = support::store(Variant::Ours).await else {
        return;
    };
    let Some(genuine) = support::store(Variant::Genuine).await else {
        return;
    };
    let views = [
        "stream_summary",
        "type_summary",
        "stream_type_summary",
        "type_stream_summary",
        "category_type_summary",
        "type_category_summary",
    ];
    let columns = "SELECT column_name::text, data_type::text FROM information_schema.columns
                   WHERE table_schema = 'message_store' AND table_name = $1 ORDER BY ordinal_position";
    for view in views {
        let mut shapes = Vec::new();
        for store in [&ours, &genuine] {
            let shape: Vec<(String, String)> = sqlx::query_as(columns)
                .bind(view)
                .fetch_all(store.pool())
                .await
                .unwrap();
            assert!(!shape.is_empty(), "{view} exists");
            shapes.push(shape);
        }
        assert_eq!(shapes[0], shapes[1], "columns of {view}");
    }
    // The same rows in a fresh category of each: the same per-stream summary.
    let category = unique_category("summary");
    let mut summaries = Vec::new();
    for store in [&ours, &genuine] {
        for (id, count) in [("1", 3), ("2", 1)] {
            let messages = (0..count)
                .map(|_| NewMessage::new("T", json!({})))
                .collect();
            store
                .write(
                    &category.stream(id).unwrap(),
                    messages,
                    ExpectedVersion::Any,
                )
                .await
                .unwrap();
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream_name::text, message_count FROM stream_summary WHERE stream_name LIKE $1 ORDER BY stream_name",
        )
        .bind(format!("{}-%", category.as_str()))
        .fetch_all(store.pool())
        .await
        .unwrap();
        summaries.push(rows);
    }
    assert_eq!(summaries[0], summaries[1]);
    assert_eq!(
        summaries[0].iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [3, 1]
    );
}
