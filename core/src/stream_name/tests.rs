//! Stream-name grammar cases, from the table of Message DB's measured answers.

use super::*;

/// (input, category, id, cardinal id, is_category)
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    bool,
);

// message-db.md table 1.
const TABLE: &[Row] = &[
    ("account", "account", None, None, true),
    ("account-123", "account", Some("123"), Some("123"), false),
    (
        "account-123-456",
        "account",
        Some("123-456"),
        Some("123-456"),
        false,
    ),
    (
        "account-123+456",
        "account",
        Some("123+456"),
        Some("123"),
        false,
    ),
    (
        "account-123+456+789",
        "account",
        Some("123+456+789"),
        Some("123"),
        false,
    ),
    ("account-123+", "account", Some("123+"), Some("123"), false),
    ("account-a+b-c", "account", Some("a+b-c"), Some("a"), false),
    ("a-b-c+d-e", "a", Some("b-c+d-e"), Some("b-c"), false),
    ("account-+456", "account", Some("+456"), Some(""), false),
    ("account-+", "account", Some("+"), Some(""), false),
    ("account-++1", "account", Some("++1"), Some(""), false),
    ("account-", "account", Some(""), Some(""), false),
    ("account--123", "account", Some("-123"), Some("-123"), false),
    ("account--", "account", Some("-"), Some("-"), false),
    ("-123", "", Some("123"), Some("123"), false),
    ("-", "", Some(""), Some(""), false),
    ("--", "", Some("-"), Some("-"), false),
    ("", "", None, None, true),
    (" ", " ", None, None, true),
    ("account:command", "account:command", None, None, true),
    (
        "account:command-123",
        "account:command",
        Some("123"),
        Some("123"),
        false,
    ),
    (
        "account:command+position",
        "account:command+position",
        None,
        None,
        true,
    ),
    (
        "account:command+position-123",
        "account:command+position",
        Some("123"),
        Some("123"),
        false,
    ),
    (
        "account:position-consumer1",
        "account:position",
        Some("consumer1"),
        Some("consumer1"),
        false,
    ),
    (
        "account:position-consumer1+2",
        "account:position",
        Some("consumer1+2"),
        Some("consumer1"),
        false,
    ),
    (
        "account:position-consumer-1",
        "account:position",
        Some("consumer-1"),
        Some("consumer-1"),
        false,
    ),
    ("account+123", "account+123", None, None, true),
    ("account+x-1", "account+x", Some("1"), Some("1"), false),
    ("x:y:z-1", "x:y:z", Some("1"), Some("1"), false),
    (
        "withdrawal-1a2b3c4d-1111-2222-3333-444455556666",
        "withdrawal",
        Some("1a2b3c4d-1111-2222-3333-444455556666"),
        Some("1a2b3c4d-1111-2222-3333-444455556666"),
        false,
    ),
];

#[test]
fn grammar_matches_message_db_table() {
    for &(input, category, id, cardinal, is_cat) in TABLE {
        assert_eq!(category_of(input), category, "category({input:?})");
        assert_eq!(id_of(input), id, "id({input:?})");
        assert_eq!(cardinal_id_of(input), cardinal, "cardinal_id({input:?})");
        assert_eq!(is_category(input), is_cat, "is_category({input:?})");
    }
}

#[test]
fn stream_name_methods_agree_with_the_free_functions() {
    for &(input, category, id, cardinal, is_cat) in TABLE {
        let Ok(name) = StreamName::new(input) else {
            assert!(
                input.is_empty() || input.starts_with('-'),
                "{input:?} rejected"
            );
            continue;
        };
        assert_eq!(name.category().as_str(), category);
        assert_eq!(name.id(), id);
        assert_eq!(name.cardinal_id(), cardinal);
        assert_eq!(name.is_category(), is_cat);
    }
}

#[test]
fn stream_name_rejects_empty_nul_and_leading_dash() {
    let problem = |name: &str| match StreamName::new(name) {
        Err(Error::InvalidStreamName { problem, .. }) => problem,
        other => panic!("{name:?}: {other:?}"),
    };
    assert_eq!(problem(""), NameProblem::Empty);
    assert_eq!(problem("a\0-1"), NameProblem::ContainsNul);
    assert_eq!(problem("-1"), NameProblem::EmptyCategory);
    assert!(StreamName::new("account-").is_ok());
    assert!(StreamName::new("account").is_ok());
}

#[test]
fn category_rejects_dash_empty_and_nul() {
    let problem = |name: &str| match Category::new(name) {
        Err(Error::InvalidCategory { problem, .. }) => problem,
        other => panic!("{name:?}: {other:?}"),
    };
    assert_eq!(problem(""), NameProblem::Empty);
    assert_eq!(problem("a\0"), NameProblem::ContainsNul);
    assert_eq!(problem("account-1"), NameProblem::ContainsDash);
    let message = Category::new("bad-name").unwrap_err().to_string();
    assert!(
        message.contains("bad-name") && message.contains('-'),
        "{message}"
    );
}

#[test]
fn entity_and_types_follow_eventide() {
    let stream = StreamName::new("account:command+position-x").unwrap();
    assert_eq!(stream.entity_name(), "account");
    assert_eq!(stream.types(), vec!["command", "position"]);
    assert!(StreamName::new("account-1").unwrap().types().is_empty());
}

#[test]
fn position_stream_names_follow_eventide() {
    let name = |c: &str, id: Option<&str>| {
        Category::new(c)
            .unwrap()
            .position_stream(id)
            .unwrap()
            .into_string()
    };
    assert_eq!(name("account", None), "account:position");
    assert_eq!(name("account:command", None), "account:command+position");
    assert_eq!(name("account", Some("x")), "account:position-x");
    assert_eq!(
        name("account:command", Some("x")),
        "account:command+position-x"
    );
    assert_eq!(name("account:position", None), "account:position");
}

#[test]
fn category_contains_only_its_exact_streams() {
    let account = Category::new("account").unwrap();
    assert!(account.contains("account-1"));
    assert!(account.contains("account"));
    assert!(!account.contains("account:command-1"));
    assert!(!account.contains("account+x-1"));
    assert!(!account.contains("Account-1"));
}

#[test]
fn names_round_trip_through_serde() {
    let stream = StreamName::new("account-1").unwrap();
    let json = serde_json::to_string(&stream).unwrap();
    assert_eq!(json, "\"account-1\"");
    assert_eq!(serde_json::from_str::<StreamName>(&json).unwrap(), stream);
    assert!(serde_json::from_str::<Category>("\"a-1\"").is_err());
}
