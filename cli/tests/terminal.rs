//! Colour only on a terminal: `message-store` run under a pseudo-terminal
//! (util-linux `script`) colours its findings, the same command in a pipe
//! or with `NO_COLOR` set prints plain text.

mod support;

use std::process::Command;

use support::{cli, Database, BIN};

/// Runs the tool under a pseudo-terminal; what the terminal showed.
fn on_a_terminal(url: &str, args: &str, no_colour: bool) -> String {
    let mut command = Command::new("script");
    command
        .arg("-qec")
        .arg(format!("'{BIN}' --url '{url}' {args}"))
        .arg("/dev/null")
        .env_remove("DATABASE_URL")
        .env_remove("NO_COLOR");
    if no_colour {
        command.env("NO_COLOR", "1");
    }
    let output = command
        .output()
        .expect("util-linux `script` runs (it gives the tool a terminal)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_appears_on_a_terminal_only() {
    let Some(db) = Database::create(true).await else {
        return;
    };
    let shown = on_a_terminal(&db.url, "verify", false);
    assert!(shown.contains("\x1b[32mok"), "{shown:?}");
    assert!(shown.contains("version"), "{shown:?}");

    let plain = on_a_terminal(&db.url, "verify", true);
    assert!(plain.contains("version"), "{plain:?}");
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");

    let piped = cli(&db.url, &["verify"]);
    assert!(piped.status.success());
    let piped = String::from_utf8(piped.stdout).unwrap();
    assert!(piped.starts_with("ok       version"), "{piped:?}");
    assert!(!piped.contains('\x1b'), "a pipe: {piped:?}");
    assert_eq!(
        plain.replace("\r\n", "\n"),
        piped,
        "a terminal with NO_COLOR shows what a pipe gets"
    );
}
