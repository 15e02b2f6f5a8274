//! `message-store install` and `verify` end to end, as processes: our
//! schema installed (again, harmlessly) and verified; a genuine Message DB
//! left untouched and verified as its functions-only role; a dropped index
//! failing the check, a missing trigger warning; no schema and no server
//! exiting 3.

mod support;

use message_store_postgres::sqlx::{Executor, PgPool};
use serde_json::Value;
use support::{cli, stdout_lines, Database};

/// `verify --json`: its exit code, and each check's (name, status, detail).
fn verify(url: &str) -> (Option<i32>, Vec<(String, String, String)>) {
    let output = cli(url, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json prints one document ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let checks = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap().to_owned();
            (text("check"), text("status"), text("detail"))
        })
        .collect();
    assert_eq!(report["ok"], output.status.success());
    (output.status.code(), checks)
}

fn statuses(checks: &[(String, String, String)]) -> Vec<(&str, &str)> {
    checks
        .iter()
        .map(|(n, s, _)| (n.as_str(), s.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_verify_our_schema_and_its_faults() {
    let Some(db) = Database::create(false).await else {
        return;
    };
    let none = cli(&db.url, &["verify"]);
    assert_eq!(none.status.code(), Some(3), "no schema yet");
    assert!(String::from_utf8_lossy(&none.stderr).contains("message-store install"));
    for args in [
        vec!["print", "account"],
        vec!["consumers"],
        vec!["trace", "1"],
    ] {
        let output = cli(&db.url, &args);
        assert_eq!(output.status.code(), Some(3), "{args:?}: no Message DB");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("`message-store install`"),
            "{args:?}: {stderr}"
        );
    }

    let installed = stdout_lines(&cli(
        &db.url,
        &["install", "--notify", "--group-index", "4"],
    ));
    assert_eq!(
        installed,
        vec![
            "installed message-store's schema (Message DB 1.3.0-compatible), the notify trigger, \
             the message_store role with functions-only privileges, consumer-group indexes for 4 \
             members; check it with `message-store verify`"
        ]
    );
    let again = cli(&db.url, &["install", "--notify", "--group-index", "4"]);
    assert!(again.status.success(), "installing twice is harmless");

    let (code, checks) = verify(&db.url);
    assert_eq!(code, Some(0), "{checks:#?}");
    assert_eq!(
        statuses(&checks),
        vec![
            ("version", "ok"),
            ("table", "ok"),
            ("functions", "ok"),
            ("index", "ok"),
            ("index", "ok"),
            ("index", "ok"),
            ("index", "ok"),
            ("trigger", "ok"),
            ("privileges", "ok"),
            ("role", "ok"),
        ],
        "{checks:#?}"
    );
    assert!(checks[0]
        .2
        .starts_with("message-store's schema, version 1.3"));
    assert_eq!(checks[6].2, "4 consumer-group member indexes");
    assert_eq!(
        checks[9].2,
        "message_store may call every function, and only read and write messages"
    );
    let text = stdout_lines(&cli(&db.url, &["verify"]));
    assert_eq!(text.len(), checks.len());
    assert!(text[0].starts_with("ok       version"), "{}", text[0]);

    let pool = PgPool::connect(&db.url).await.unwrap();
    pool.execute("DROP TRIGGER message_store_notify ON message_store.messages")
        .await
        .unwrap();
    let (code, checks) = verify(&db.url);
    assert_eq!(code, Some(0), "a missing trigger is a warning");
    let trigger = checks.iter().find(|c| c.0 == "trigger").unwrap();
    assert_eq!(trigger.1, "warning");
    assert!(trigger.2.contains("install --notify"), "{}", trigger.2);

    pool.execute("DROP INDEX message_store.messages_category")
        .await
        .unwrap();
    pool.execute("REVOKE EXECUTE ON FUNCTION message_store.get_category_messages(varchar, bigint, bigint, varchar, bigint, bigint, varchar) FROM PUBLIC, message_store")
        .await
        .unwrap();
    let (code, checks) = verify(&db.url);
    assert_eq!(code, Some(1), "{checks:#?}");
    assert!(checks
        .iter()
        .any(|c| c.1 == "failed"
            && c.2 == "messages_category is missing: reads scan the whole table"));
    let role = checks.iter().find(|c| c.0 == "role").unwrap();
    assert_eq!(role.1, "failed");
    assert!(
        role.2
            .contains("lacks EXECUTE on message_store.get_category_messages"),
        "{}",
        role.2
    );
    let text = cli(&db.url, &["verify"]);
    assert_eq!(text.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text.stderr).contains("2 check(s) failed"));

    let repaired = cli(&db.url, &["install", "--notify", "--group-index", "4"]);
    assert!(repaired.status.success());
    assert_eq!(verify(&db.url).0, Some(0), "install repairs our schema");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_leaves_genuine_message_db_untouched_and_verify_accepts_it() {
    let Some(db) = Database::create(false).await else {
        return;
    };
    let Some(role_url) = db.install_genuine() else {
        return;
    };
    let installed = stdout_lines(&cli(&db.url, &["install"]));
    assert_eq!(installed.len(), 1);
    assert!(
        installed[0].starts_with("found genuine Message DB 1.3")
            && installed[0].contains("left it untouched"),
        "{}",
        installed[0]
    );
    let pool = PgPool::connect(&db.url).await.unwrap();
    let ours: i64 = message_store_postgres::sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'message_store_notify'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ours, 0, "nothing of ours was added");
    pool.close().await;

    for url in [&db.url, &role_url] {
        let (code, checks) = verify(url);
        assert_eq!(code, Some(0), "{url}: {checks:#?}");
        assert!(
            checks[0].2.starts_with("genuine Message DB, version 1.3"),
            "{checks:#?}"
        );
        let trigger = checks.iter().find(|c| c.0 == "trigger").unwrap();
        assert_eq!(
            (trigger.1.as_str(), trigger.2.as_str()),
            (
                "ok",
                "none (genuine Message DB has none): subscriptions poll"
            )
        );
        assert!(checks.iter().all(|c| c.1 == "ok"), "{url}: {checks:#?}");
    }
}

#[test]
fn an_unreachable_server_exits_3_with_its_reason() {
    for command in ["verify", "install", "print"] {
        let args: Vec<&str> = if command == "print" {
            vec![command, "account"]
        } else {
            vec![command]
        };
        let output = cli("postgres://postgres@127.0.0.1:1/postgres", &args);
        assert_eq!(output.status.code(), Some(3), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("check the URL"), "{command}: {stderr}");
    }
    let output = std::process::Command::new(support::BIN)
        .arg("verify")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pass --url"));
}
