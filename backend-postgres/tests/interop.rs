//! Interoperability with plain Message DB SQL: what the store writes reads
//! back through Message DB's functions, and what they wrote (any metadata
//! shape) reads back through the store, and through `message_from_row` over
//! one's own SQL, on both schemas.

mod support;

use message_store::{
    Category, CategoryRead, ExpectedVersion, Message, MessageStore, MessageStoreExt, Metadata,
    NewMessage,
};
use message_store_postgres::sqlx::{self, Row};
use message_store_postgres::{message_from_row, PostgresError};
use serde_json::json;
use support::Variant;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

fn unique_category(entity: &str) -> Category {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple())).unwrap()
}

/// What `PostgresStore` writes reads back exactly through plain SQL calls of
/// Message DB's functions.
#[tokio::test]
async fn plain_sql_reads_what_the_store_wrote() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let category = unique_category("interop");
        let stream = category.stream("1").unwrap();
        let id = Uuid::new_v4();
        let metadata = Metadata::new()
            .with_correlation_stream_name("transfer-9")
            .with_property("k", "v");
        let message = NewMessage::new("Opened", json!({"owner": "Ada", "n": 1}))
            .with_id(id)
            .with_metadata(metadata);
        store
            .write(
                &stream,
                vec![message, NewMessage::new("Noted", json!(null))],
                ExpectedVersion::NoStream,
            )
            .await
            .unwrap();

        let rows = sqlx::query("SELECT * FROM get_stream_messages($1)")
            .bind(stream.as_str())
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{variant:?}");
        let first = &rows[0];
        assert_eq!(first.get::<String, _>("id"), id.to_string());
        assert_eq!(first.get::<String, _>("stream_name"), stream.as_str());
        assert_eq!(first.get::<String, _>("type"), "Opened");
        assert_eq!(first.get::<i64, _>("position"), 0);
        let data: serde_json::Value =
            serde_json::from_str(&first.get::<String, _>("data")).unwrap();
        assert_eq!(data, json!({"owner": "Ada", "n": 1}));
        let stored_metadata: serde_json::Value =
            serde_json::from_str(&first.get::<String, _>("metadata")).unwrap();
        assert_eq!(
            stored_metadata,
            json!({"correlationStreamName": "transfer-9", "properties": {"k": "v"}})
        );
        assert_eq!(
            rows[1].get::<Option<String>, _>("metadata"),
            None,
            "{variant:?}: empty metadata is SQL NULL"
        );
        let version: i64 = sqlx::query_scalar("SELECT stream_version($1)")
            .bind(stream.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(version, 1);
    }
}

/// A message written by plain `write_message` SQL with Eventide's camelCase
/// metadata is read with every field.
#[tokio::test]
async fn store_reads_what_plain_sql_wrote() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let category = unique_category("interop");
        let stream = category.stream("2+x").unwrap();
        let id = Uuid::new_v4();
        let metadata = json!({
            "causationMessageStreamName": "command-1",
            "causationMessagePosition": 3,
            "causationMessageGlobalPosition": 33,
            "correlationStreamName": "transfer-1",
            "replyStreamName": "reply-1",
            "schemaVersion": "2",
            "properties": {"tenant": "acme"},
            "localProperties": {"trace": "t"},
            "custom": [1, 2]
        });
        let position: i64 = sqlx::query_scalar(
            "SELECT write_message($1, $2, 'Deposited', $3::jsonb, $4::jsonb, -1)",
        )
        .bind(id.to_string().to_uppercase())
        .bind(stream.as_str())
        .bind(r#"{"amount": 1e2, "note": "caf\u00e9"}"#)
        .bind(metadata.to_string())
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(position, 0);
        let read = store
            .last_message_of_type(&stream, "Deposited")
            .await
            .unwrap()
            .expect("the message");
        assert_eq!(
            read.id, id,
            "{variant:?}: upper-case id read back canonical"
        );
        assert_eq!(read.stream_name, stream);
        assert_eq!(read.position, 0);
        assert_eq!(read.data["amount"], json!(100), "jsonb normalises 1e2");
        assert_eq!(read.data["note"], json!("café"));
        let m = &read.metadata;
        assert_eq!(
            m.causation_message_stream_name.as_deref(),
            Some("command-1")
        );
        assert_eq!(m.causation_message_position, Some(3));
        assert_eq!(m.causation_message_global_position, Some(33));
        assert_eq!(m.correlation_stream_name.as_deref(), Some("transfer-1"));
        assert_eq!(m.reply_stream_name.as_deref(), Some("reply-1"));
        assert_eq!(m.schema_version.as_deref(), Some("2"));
        assert_eq!(m.properties.get("tenant"), Some(&json!("acme")));
        assert_eq!(m.local_properties.get("trace"), Some(&json!("t")));
        assert_eq!(m.other.get("custom"), Some(&json!([1, 2])));
        let by_category = store
            .read_category(&category, CategoryRead::new().with_correlation("transfer"))
            .await
            .unwrap();
        assert_eq!(by_category.len(), 1);

        // Metadata of any other shape (Message DB accepts any JSON) never stops a read.
        for odd in [
            r#"[1, 2]"#,
            r#""text""#,
            r#"{"schemaVersion": 2, "causationMessagePosition": "x"}"#,
        ] {
            sqlx::query("SELECT write_message($1, $2, 'Odd', '{}'::jsonb, $3::jsonb)")
                .bind(Uuid::new_v4().to_string())
                .bind(stream.as_str())
                .bind(odd)
                .execute(store.pool())
                .await
                .unwrap();
        }
        let all = store
            .read_category(&category, CategoryRead::new())
            .await
            .unwrap();
        assert_eq!(all.len(), 4, "{variant:?}");
        assert_eq!(all[1].metadata.other.get("value"), Some(&json!([1, 2])));
        assert_eq!(all[2].metadata.other.get("value"), Some(&json!("text")));
        assert_eq!(all[3].metadata.other.get("schemaVersion"), Some(&json!(2)));
        assert_eq!(
            all[3].metadata.other.get("causationMessagePosition"),
            Some(&json!("x"))
        );

        // Rows of one's own SQL over the table decode as the store's reads.
        let rows = sqlx::query(
            "SELECT id::text, stream_name, type, position, global_position, data::text,
                    metadata::text, time, 'a column of the caller''s'
             FROM message_store.messages WHERE stream_name = $1 ORDER BY position",
        )
        .bind(stream.as_str())
        .fetch_all(store.pool())
        .await
        .unwrap();
        let own: Vec<Message> = rows.iter().map(|r| message_from_row(r).unwrap()).collect();
        assert_eq!(own, all, "{variant:?}");
        let wrong = sqlx::query("SELECT id, stream_name FROM message_store.messages LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(
            matches!(
                message_from_row(&wrong),
                Err(PostgresError::Decode { column: "id", .. })
            ),
            "a uuid column where text is due names the column"
        );
    }
}
