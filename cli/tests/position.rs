//! `message-store position` end to end, as a process: a dry run changes
//! nothing, a consumer that looks alive is refused without --yes, and
//! moving to the beginning, the end, a global position or a time records
//! what the consumer resumes from; bad targets are refused.

mod support;

use std::process::Command;

use message_store::backend::read_committed_position;
use message_store::{Category, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage};
use message_store_postgres::PostgresStore;
use serde_json::json;
use support::{cli, stdout_lines, Database, BIN};

async fn recorded(store: &PostgresStore, category: &Category) -> Option<u64> {
    let stream = category.position_stream(Some("worker")).unwrap();
    read_committed_position(store, &stream)
        .await
        .unwrap()
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_moves_a_consumer_and_refuses_what_it_should() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let category = Category::new("account").unwrap();
    let stream = category.stream("1").unwrap();
    for n in 0..5 {
        store
            .write(
                &stream,
                vec![NewMessage::new("Deposited", json!({ "n": n }))],
                ExpectedVersion::Any,
            )
            .await
            .unwrap();
    }
    let all = store.read_category_to_end("account").await.unwrap();
    let gps: Vec<u64> = all.iter().map(|m| m.global_position).collect();
    let position_stream = category.position_stream(Some("worker")).unwrap();
    store
        .write(
            &position_stream,
            vec![message_store::backend::position_record(gps[3])],
            ExpectedVersion::NoStream,
        )
        .await
        .unwrap();

    let position = |extra: &[&str]| {
        let mut args = vec!["position", "account", "--consumer", "worker"];
        args.extend_from_slice(extra);
        cli(&db.url, &args)
    };
    let dry = stdout_lines(&position(&["--beginning", "--dry-run"]));
    assert!(
        dry[0].contains(&format!("from position {} to 0", gps[3])),
        "{dry:?}"
    );
    assert_eq!(
        recorded(&store, &category).await,
        Some(gps[3]),
        "a dry run changes nothing"
    );

    let alive = position(&["--beginning"]);
    assert_eq!(alive.status.code(), Some(1));
    let text = String::from_utf8_lossy(&alive.stderr);
    assert!(
        text.contains("looks alive") && text.contains("--yes"),
        "{text}"
    );
    assert_eq!(recorded(&store, &category).await, Some(gps[3]));

    let moved = stdout_lines(&position(&["--beginning", "--yes"]));
    assert!(moved[0].contains("resumes at 1"), "{moved:?}");
    assert_eq!(recorded(&store, &category).await, Some(0));

    stdout_lines(&position(&["--resume-at", &gps[2].to_string(), "--yes"]));
    assert_eq!(recorded(&store, &category).await, Some(gps[2] - 1));
    stdout_lines(&position(&["--end", "--yes"]));
    assert_eq!(recorded(&store, &category).await, Some(gps[4]));
    let third_time = all[3].time.to_rfc3339();
    stdout_lines(&position(&["--at", &third_time, "--yes"]));
    assert_eq!(
        recorded(&store, &category).await,
        Some(gps[3] - 1),
        "resumes at the first message at that time"
    );

    let past = position(&["--resume-at", &(gps[4] + 2).to_string(), "--yes"]);
    assert_eq!(past.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&past.stderr).contains("past the head"));
    let unknown = cli(
        &db.url,
        &[
            "position",
            "account",
            "--consumer",
            "nobody",
            "--end",
            "--yes",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no consumer `nobody`"));
    let malformed = position(&["--at", "yesterday"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("RFC 3339"));
    let no_target = Command::new(BIN)
        .args(["--url", &db.url, "position", "account"])
        .output()
        .unwrap();
    assert_eq!(no_target.status.code(), Some(2), "a target is required");
}
