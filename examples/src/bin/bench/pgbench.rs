//! The ceilings: pgbench calling Message DB's functions directly, one round
//! trip per statement, prepared, on the same database in the same run.

use std::process::Command;

/// Runs a pgbench script and returns its transactions per second.
pub fn tps(
    url: &str,
    script: &str,
    clients: u32,
    transactions: u32,
    defines: &[(&str, String)],
) -> f64 {
    let dir = std::env::temp_dir().join(format!("ms-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("script.sql");
    std::fs::write(&file, script).expect("pgbench script");
    let mut command = Command::new("pgbench");
    command
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-t", &transactions.to_string(), "-f"])
        .arg(&file);
    for (name, value) in defines {
        command.arg("-D").arg(format!("{name}={value}"));
    }
    command.arg(url);
    let output = command
        .output()
        .expect("pgbench runs (install postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{stdout}"))
}

const DATA: &str = r#"'{"attribute": "some value"}'::jsonb"#;
const METADATA: &str = r#"'{"correlationStreamName": "someCorrelation-123"}'::jsonb"#;

/// One `write_message` per transaction to `stream_expr` (SQL, may use `:id`, `:client_id`).
pub fn write_script(stream_expr: &str, data: &str) -> String {
    format!(
        "\\set id random(1, 1000)\nSELECT message_store.write_message(gen_random_uuid()::varchar, {stream_expr}, 'SomeType', {data}, {METADATA});\n"
    )
}

/// The default payload.
pub fn data() -> &'static str {
    DATA
}

/// One statement writing 100 messages to one stream.
pub fn batch_script() -> String {
    format!(
        "\\set id random(1, 1000000000)\nSELECT message_store.write_message(gen_random_uuid()::varchar, 'pgbenchB-' || :id, 'SomeType', {DATA}, {METADATA}, NULL) FROM generate_series(1, 100);\n"
    )
}

/// Pages through a category, keeping the last row's global position.
pub fn paging_script(category: &str) -> String {
    format!(
        "SELECT * FROM message_store.get_category_messages('{category}', :pos, 1000) \\aset\n\\set pos :global_position + 1\n"
    )
}

/// One page of `category` from one of ten start positions spread over its
/// `total` messages, with `filter` (SQL for the correlation and consumer-group
/// arguments), as the client-side page figures read them.
pub fn filtered_page_script(category: &str, total: u64, filter: &str) -> String {
    let step = total / 10;
    format!(
        "\\set step random(0, 9)\nSELECT * FROM message_store.get_category_messages('{category}', 1 + :step * {step}, 1000, {filter});\n"
    )
}
