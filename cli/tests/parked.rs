//! `message-store parked` end to end, as a process: a consumer's parked
//! messages listed (as text and JSON, all or only those waiting), one
//! shown in full, purged by position or all at once (a dry run changes
//! nothing), and an unknown consumer or position refused.

mod support;

use message_store::Category;
use message_store_consumer::parked_messages;
use message_store_postgres::PostgresStore;
use serde_json::Value;
use support::{cli, deposits, park_refused, stdout_lines, Database};

fn parked(url: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["parked"];
    all.extend_from_slice(args);
    cli(url, &all)
}

fn states(url: &str) -> Vec<(u64, String)> {
    stdout_lines(&parked(
        url,
        &["list", "account", "--consumer", "balances", "--json"],
    ))
    .iter()
    .map(|line| {
        let record: Value = serde_json::from_str(line).unwrap();
        (
            record["parked_position"].as_u64().unwrap(),
            record["state"].as_str().unwrap().to_owned(),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_lists_shows_and_purges() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let category = Category::new("account").unwrap();
    deposits(&store, 0..8, 2).await;
    let health = park_refused(&store, 2, |n| n % 3 == 1).await;
    assert_eq!(health.parked, 3, "n = 1, 4 and 7");

    let of_balances = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "account", "--consumer", "balances"];
        args.extend_from_slice(extra);
        parked(&db.url, &args)
    };
    let text = stdout_lines(&of_balances("list", &[]));
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(text.iter().all(|l| l.contains("waiting")
        && l.contains("Deposited")
        && l.contains("2 attempt(s)")
        && l.contains("is refused")));
    assert!(text[0].contains("account-1/0"), "{}", text[0]);
    let waiting = states(&db.url);
    let positions: Vec<u64> = waiting.iter().map(|(p, _)| *p).collect();
    assert!(waiting.iter().all(|(_, s)| s == "waiting"));

    let shown = of_balances("show", &[&positions[1].to_string()]);
    let record: Value =
        serde_json::from_slice(&shown.stdout).expect("show prints one JSON document");
    assert_eq!(record["message"]["data"]["n"], 4);
    assert_eq!(record["message"]["stream_name"], "account-0");
    assert_eq!(record["parked_from"]["attempts"], 2);
    assert_eq!(record["state"], "waiting");

    let dry = stdout_lines(&of_balances(
        "purge",
        &[&positions[0].to_string(), "--dry-run"],
    ));
    assert_eq!(dry.len(), 1);
    assert!(dry[0].starts_with("would purge"), "{}", dry[0]);
    assert_eq!(states(&db.url), waiting, "a dry run purges nothing");

    let purged = stdout_lines(&of_balances("purge", &[&positions[0].to_string()]));
    assert_eq!(
        purged,
        vec![format!("purged 1 parked message(s), at {}", positions[0])]
    );
    let after = states(&db.url);
    assert_eq!(after[0], (positions[0], "purged".to_owned()));
    assert_eq!(after[1].1, "waiting");
    let still = stdout_lines(&of_balances("list", &["--waiting"]));
    assert_eq!(still.len(), 2);
    let again = stdout_lines(&of_balances("purge", &[&positions[0].to_string()]));
    assert!(again[0].starts_with("nothing to purge"), "{again:?}");

    let dry_all = stdout_lines(&of_balances("purge", &["--all", "--dry-run"]));
    assert_eq!(dry_all.len(), 2, "only those still waiting: {dry_all:?}");
    let all = stdout_lines(&of_balances("purge", &["--all"]));
    assert_eq!(
        all,
        vec![format!(
            "purged 2 parked message(s), at {}, {}",
            positions[1], positions[2]
        )]
    );
    let library = parked_messages(&store, &category, "balances")
        .await
        .unwrap();
    assert!(
        library.iter().all(|e| e.purged && !e.waiting()),
        "the library sees what the tool did"
    );

    for (args, code, says) in [
        (
            vec!["list", "account", "--consumer", "nobody"],
            1,
            "no consumer `nobody` of account",
        ),
        (
            vec!["show", "account", "--consumer", "balances", "999"],
            1,
            "no parked message at position 999",
        ),
        (
            vec![
                "purge",
                "account",
                "--consumer",
                "balances",
                "999",
                "--dry-run",
            ],
            1,
            "no parked message at position 999",
        ),
        (
            vec!["purge", "account", "--consumer", "balances", "999"],
            1,
            "999",
        ),
        (
            vec!["purge", "account", "--consumer", "balances"],
            2,
            "--all",
        ),
        (
            vec!["list", "account-1", "--consumer", "balances"],
            1,
            "account-1",
        ),
    ] {
        let output = parked(&db.url, &args);
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
